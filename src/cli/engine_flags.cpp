#include "cli/engine_flags.hpp"

#include <fmt/format.h>

#include <fstream>
#include <sstream>

#include "engine/local_backend.hpp"
#include "engine/sim_backend.hpp"

namespace troupe::cli {

void add_engine_flags(CLI::App& app, EngineFlags& f, const std::string& model_help) {
  app.add_option("-m,--model", f.model, model_help);
  app.add_option("-a,--alias", f.alias, "model name clients use (default: the file name)");
  app.add_option("--engine", f.engine, "llama|sim")
      ->check(CLI::IsMember({"llama", "sim"}))
      ->capture_default_str();
  app.add_option("--parallel", f.parallel, "sequences decoded together")->capture_default_str();
  app.add_option("-c,--ctx-size", f.ctx_size, "KV cells in all")->capture_default_str();
  app.add_option("-t,--threads", f.threads, "llama.cpp threads (0: all cores)")
      ->capture_default_str();
  app.add_option("--poll", f.poll,
                 "threadpool workers' polling between decodes, 0 (sleep at once) to 100")
      ->check(CLI::Range(0, 100))
      ->capture_default_str();
  app.add_flag("!--no-threadpool", f.threadpool,
               "let llama.cpp start its worker threads on every decode instead of keeping a pool");
  app.add_option("-b,--batch", f.batch, "token budget of one decode step")->capture_default_str();
  app.add_option("--max-queue", f.max_queue, "waiting requests before refusing (503)")
      ->capture_default_str();
  app.add_option("--sim-decode-tps", f.sim_decode_tps, "--engine sim: tokens/s per sequence")
      ->capture_default_str();
  app.add_option("--sim-prefill-tps", f.sim_prefill_tps, "--engine sim: prompt tokens/s")
      ->capture_default_str();
  app.add_flag("--sim-steps", f.sim_steps,
               "--engine sim: every sequence's tokens on one step clock, as a batching engine "
               "emits them (default: each stream on its own phase)");
  auto* name = app.add_option("--chat-template", f.chat_template,
                              "chat template instead of the model's: chatml, or the name of "
                              "another template in the GGUF (e.g. tool_use)");
  app.add_option("--chat-template-file", f.chat_template_file,
                 "chat template instead of the model's: a Jinja file")
      ->excludes(name);
}

namespace {

// The chat template EngineOptions takes: the file's text, the name, or empty (the model's).
Result<std::string> chat_template_choice(const EngineFlags& f) {
  if (f.chat_template_file.empty())
    return f.chat_template;
  std::ifstream in(f.chat_template_file, std::ios::binary);
  std::ostringstream text;
  if (in)
    text << in.rdbuf();
  if (!in || text.str().empty()) {
    return Error{Errc::invalid_request,
                 fmt::format("--chat-template-file {}: cannot read it, or it is empty",
                             f.chat_template_file)};
  }
  return text.str();
}

}  // namespace

Result<std::unique_ptr<engine::Backend>> make_backend(const EngineFlags& f) {
  if (f.engine == "sim") {
    if (!f.chat_template.empty() || !f.chat_template_file.empty()) {
      return Error{Errc::invalid_request,
                   "--chat-template and --chat-template-file need --engine llama (the simulated "
                   "engine renders no templates)"};
    }
    engine::SimOptions so;
    if (!f.alias.empty())
      so.model_id = f.alias;
    so.n_ctx = f.ctx_size;
    so.n_parallel = f.parallel;
    so.max_queue = f.max_queue;
    so.decode_tokens_per_s = f.sim_decode_tps;
    so.prefill_tokens_per_s = f.sim_prefill_tps;
    so.step_aligned = f.sim_steps;
    return engine::make_sim_backend(so);
  }
  if (f.model.empty())
    return Error{Errc::invalid_request, "--model is required with --engine llama"};
  auto chat_template = chat_template_choice(f);
  if (!chat_template)
    return chat_template.error();
  engine::EngineOptions eo;
  eo.chat_template = std::move(chat_template).value();
  eo.model_path = f.model;
  eo.model_id = f.alias;
  eo.n_ctx = f.ctx_size;
  eo.n_parallel = f.parallel;
  eo.n_batch = f.batch;
  eo.n_threads = f.threads;
  eo.persistent_threads = f.threadpool;
  eo.thread_poll = static_cast<std::uint32_t>(f.poll);
  eo.max_queue = f.max_queue;
  return engine::make_local_backend(eo);
}

}  // namespace troupe::cli
