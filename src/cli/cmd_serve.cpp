// troupe serve: the OpenAI-compatible HTTP server over the local llama.cpp engine.

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <cstdlib>
#include <filesystem>
#include <memory>
#include <thread>

#include "cli/command.hpp"
#include "engine/local_backend.hpp"
#include "engine/sim_backend.hpp"
#include "mkmodel/model_spec.hpp"
#include "server/server.hpp"

namespace troupe::cli {
namespace {

struct ServeOptions {
  std::string model;
  std::string alias;
  std::string engine = "llama";
  int parallel = 4;
  int ctx_size = 4096;
  int threads = 0;
  int batch = 512;
  int max_queue = 64;
  int io_threads = 2;
  double header_timeout_s = 10;
  double body_timeout_s = 30;
  double shutdown_grace_s = 10;
  double sim_decode_tps = 50;
  double sim_prefill_tps = 5000;
  server::ServerConfig config;
};

// $XDG_CACHE_HOME/troupe/models, or ~/.cache/troupe/models.
std::filesystem::path cache_dir() {
  if (const char* xdg = std::getenv("XDG_CACHE_HOME"); xdg != nullptr && *xdg != '\0') {
    return std::filesystem::path(xdg) / "troupe" / "models";
  }
  const char* home = std::getenv("HOME");
  return std::filesystem::path(home != nullptr ? home : ".") / ".cache" / "troupe" / "models";
}

// The default model: a random-weight `small` model, written on first use.
Result<std::string> default_model() {
  const auto path = cache_dir() / "small-f16.gguf";
  if (std::filesystem::exists(path))
    return path.string();
  std::error_code ec;
  std::filesystem::create_directories(path.parent_path(), ec);
  auto shape = mkmodel::shape_by_name("small");
  if (!shape)
    return shape.error();
  spdlog::info("no --model given: writing a random-weight 'small' model to {}", path.string());
  mkmodel::ModelSpec spec{*shape, mkmodel::WeightType::f16, 42};
  if (auto ok = mkmodel::write_model(spec, path.string()); !ok)
    return ok.error();
  return path.string();
}

std::chrono::milliseconds millis(double seconds) {
  return std::chrono::milliseconds(static_cast<std::int64_t>(seconds * 1000.0));
}

std::unique_ptr<engine::Backend> make_sim(const ServeOptions& o) {
  engine::SimOptions so;
  if (!o.alias.empty())
    so.model_id = o.alias;
  so.n_ctx = o.ctx_size;
  so.n_parallel = o.parallel;
  so.max_queue = o.max_queue;
  so.decode_tokens_per_s = o.sim_decode_tps;
  so.prefill_tokens_per_s = o.sim_prefill_tps;
  return engine::make_sim_backend(so);
}

Result<std::unique_ptr<engine::Backend>> make_llama(ServeOptions& o) {
  if (o.model.empty()) {
    auto path = default_model();
    if (!path)
      return Error{path.error().code, "cannot write the default model: " + path.error().message};
    o.model = *path;
  }
  engine::EngineOptions eo;
  eo.model_path = o.model;
  eo.model_id = o.alias;
  eo.n_ctx = o.ctx_size;
  eo.n_parallel = o.parallel;
  eo.n_batch = o.batch;
  eo.n_threads = o.threads;
  eo.max_queue = o.max_queue;
  return engine::make_local_backend(eo);
}

int run_serve(ServeOptions o) {
  if (o.config.api_key.empty()) {
    if (const char* key = std::getenv("TROUPE_API_KEY"))
      o.config.api_key = key;
  }
  std::unique_ptr<engine::Backend> backend;
  if (o.engine == "sim") {
    backend = make_sim(o);
  } else {
    auto made = make_llama(o);
    if (!made) {
      spdlog::error("{}", made.error().message);
      return 1;
    }
    backend = std::move(made).value();
  }
  o.config.header_timeout = millis(o.header_timeout_s);
  o.config.keep_alive_timeout = millis(std::max(o.header_timeout_s, 30.0));
  o.config.body_timeout = millis(o.body_timeout_s);
  o.config.shutdown_grace = millis(o.shutdown_grace_s);
  const bool with_key = !o.config.api_key.empty();
  auto show_usage = [&o, with_key](std::uint16_t port) {
    // stdout, so that a user who just typed `troupe serve` sees how to talk to it.
    fmt::print(
        "troupe is serving on http://{0}:{1} (Ctrl-C stops it). Try:\n"
        "  curl http://{0}:{1}/v1/chat/completions -H 'Content-Type: application/json'{2} \\\n"
        "    -d '{{\"messages\":[{{\"role\":\"user\",\"content\":\"Hello\"}}],"
        "\"max_tokens\":32,\"stream\":true}}'\n"
        "  troupe chat --url http://{0}:{1}\n",
        o.config.host, port, with_key ? " -H \"Authorization: Bearer $TROUPE_API_KEY\"" : "");
    std::fflush(stdout);
  };
  return server::run_until_signal(*backend, o.config, std::max(1, o.io_threads), show_usage);
}

std::function<int()> setup(CLI::App& app) {
  auto o = std::make_shared<ServeOptions>();
  app.add_option("-m,--model", o->model, "GGUF model (default: a generated 'small' model)");
  app.add_option("-a,--alias", o->alias, "model name clients use (default: the file name)");
  app.add_option("--host", o->config.host, "address to listen on")->capture_default_str();
  app.add_option("--port", o->config.port, "port (0: any free port)")->capture_default_str();
  app.add_option("--api-key", o->config.api_key,
                 "require 'Authorization: Bearer <key>' (or env TROUPE_API_KEY)");
  app.add_option("--engine", o->engine, "llama|sim")
      ->check(CLI::IsMember({"llama", "sim"}))
      ->capture_default_str();
  app.add_option("--parallel", o->parallel, "sequences decoded together")->capture_default_str();
  app.add_option("-c,--ctx-size", o->ctx_size, "KV cells in all")->capture_default_str();
  app.add_option("-t,--threads", o->threads, "llama.cpp threads (0: all cores)")
      ->capture_default_str();
  app.add_option("-b,--batch", o->batch, "token budget of one decode step")->capture_default_str();
  app.add_option("--max-queue", o->max_queue, "waiting requests before 503")->capture_default_str();
  app.add_option("--cors-origin", o->config.cors_origin,
                 "send CORS headers for this origin ('*' for any)");
  app.add_option("--max-body", o->config.max_body_bytes, "largest request body in bytes")
      ->capture_default_str();
  app.add_option("--max-connections", o->config.max_connections, "open connections before 503")
      ->capture_default_str();
  app.add_option("--io-threads", o->io_threads, "HTTP I/O threads")->capture_default_str();
  app.add_option("--header-timeout", o->header_timeout_s, "seconds to receive request headers")
      ->capture_default_str();
  app.add_option("--body-timeout", o->body_timeout_s, "seconds to receive a request body")
      ->capture_default_str();
  app.add_option("--shutdown-grace", o->shutdown_grace_s,
                 "seconds in-flight requests get at shutdown")
      ->capture_default_str();
  app.add_option("--sim-decode-tps", o->sim_decode_tps, "--engine sim: tokens/s per sequence")
      ->capture_default_str();
  app.add_option("--sim-prefill-tps", o->sim_prefill_tps, "--engine sim: prompt tokens/s")
      ->capture_default_str();
  return [o] { return run_serve(*o); };
}

const CommandRegistration registration{"serve", "OpenAI-compatible HTTP server", 10, setup};

}  // namespace
}  // namespace troupe::cli
