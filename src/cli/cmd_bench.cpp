// `troupe bench`: load generator for OpenAI-compatible endpoints (see docs/bench.md), and
// `troupe bench report DIR...`: the HTML report of one or more runs.

#include <fmt/chrono.h>
#include <fmt/format.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <memory>

#include "bench/embed_bench.hpp"
#include "bench/options.hpp"
#include "bench/report.hpp"
#include "bench/results.hpp"
#include "bench/runner.hpp"
#include "cli/command.hpp"
#include "cli/duration_option.hpp"

namespace {

using troupe::bench::BenchFlags;

struct BenchCommand {
  BenchFlags flags;
  std::string output_dir;
  bool html = false;
  std::vector<std::string> report_dirs;
  std::string report_out = "report.html";
  std::string inputs = "1";         // --endpoint embeddings: inputs per request, swept
  std::int32_t input_tokens = 128;  // --endpoint embeddings: tokens per input
};

void add_target_flags(CLI::App& app, BenchFlags& f) {
  app.add_option("--url", f.url, "server base URL (http only)")->capture_default_str();
  app.add_option("-m,--model", f.model, "model name (default: the server's first)");
  app.add_option("--api-key", f.api_key, "API key (default: $OPENAI_API_KEY)");
  app.add_option("-H,--header", f.headers, "extra header 'Name: value' (repeatable)");
  app.add_option("--timeout", f.timeout, "per-request deadline")
      ->type_name("DURATION")
      ->capture_default_str();
  app.add_option("--endpoint", f.endpoint,
                 "chat | completions | embeddings | messages (Anthropic's /v1/messages) | "
                 "responses (OpenAI's /v1/responses)")
      ->capture_default_str();
}

void add_workload_flags(CLI::App& app, BenchFlags& f) {
  app.add_option("-s,--scenario", f.scenarios,
                 "D(in,out) | N(mi,si)/(mo,so) | U(min_in,max_in)/(min_out,max_out) | "
                 "U(max_in,max_out); repeatable (default D(128,128))");
  app.add_option("--dataset", f.dataset,
                 "prompts: text file (one per line) or JSONL with "
                 "\"prompt\" or \"messages\"");
  app.add_option("--corpus", f.corpus, "text to cut exact-length prompts from (default: built-in)");
  app.add_option("--tokenizer", f.tokenizer,
                 "GGUF model whose vocabulary sizes the prompts (for servers without /tokenize)");
  app.add_option("--prefix-len", f.prefix_len, "shared prefix tokens in every prompt");
  app.add_option("--prefix-ratio", f.prefix_ratio, "shared prefix as a fraction of each prompt");
  app.add_flag("--no-ignore-eos", f.no_ignore_eos,
               "do not send ignore_eos/min_tokens (for servers that reject them)");
  app.add_option("--temperature", f.temperature, "sampling temperature (default: not sent)");
  app.add_option("--tools", f.tools,
                 "tool sets to sweep, e.g. 0,5: N built-in functions (0..8) or a JSON file "
                 "with an OpenAI tools array; every request of a point carries its set");
  app.add_option("--extra-body", f.extra_body,
                 "JSON file with an object merged into every request body (e.g. a "
                 "response_format), after the bench's own members");
  app.add_option("--tool-choice", f.tool_choice,
                 "auto | required | none, sent with requests that carry tools");
}

void add_traffic_flags(CLI::App& app, BenchFlags& f) {
  app.add_option("--concurrency", f.concurrency, "closed-loop sweep, e.g. 1,2,4,8");
  // -c was --concurrency's short name; everywhere else -c is the context size (llama.cpp's
  // meaning), so bench keeps it only as a hidden spelling for old scripts.
  troupe::cli::add_hidden_alias(app, "-c", f.concurrency);
  app.add_option("-r,--request-rate", f.request_rate, "open-loop sweep in requests/s, e.g. 2,4,8");
  app.add_option("--arrival", f.arrival, "poisson | gamma | constant | uniform | normal")
      ->capture_default_str();
  app.add_option("--burstiness", f.burstiness, "gamma shape (< 1 burstier)")->capture_default_str();
  app.add_option("--max-concurrency", f.max_concurrency, "open loop: cap on requests in flight");
  app.add_option("-n,--max-requests", f.max_requests, "measured requests per point (default 100)");
  app.add_option("-d,--max-duration", f.max_duration, "time per point, e.g. 60s")
      ->type_name("DURATION");
  app.add_option("--warmup", f.warmup, "requests per point excluded at the start");
  app.add_option("--cooldown", f.cooldown, "requests per point excluded at the end");
  app.add_option("--seed", f.seed, "workload seed (same seed, same prompts and arrivals)")
      ->capture_default_str();
  app.add_option("--slo", f.slo, "goodput SLOs, e.g. ttft=500ms,tpot=50ms,e2e=10s");
  app.add_option("--progress", f.progress, "auto | bar | lines | off")->capture_default_str();
}

int run_report(const BenchCommand& cmd) {
  if (auto r = troupe::bench::write_report(cmd.report_dirs, cmd.report_out); !r) {
    fmt::print(stderr, "troupe bench report: {}\n", r.error().message);
    return 1;
  }
  fmt::print("wrote {}\n", cmd.report_out);
  return 0;
}

// Where --html without -o writes: bench-<UTC time> in the working directory.
std::string default_output_dir() {
  const std::time_t now = std::chrono::system_clock::to_time_t(std::chrono::system_clock::now());
  std::tm utc{};
  gmtime_r(&now, &utc);
  return fmt::format("bench-{:%Y%m%d-%H%M%S}", utc);
}
int run_embed_bench(const BenchCommand& cmd);

int run_bench(BenchCommand& cmd) {
  if (cmd.flags.api_key.empty()) {
    if (const char* key = std::getenv("OPENAI_API_KEY"))
      cmd.flags.api_key = key;
  }
  if (cmd.flags.endpoint == "embeddings")
    return run_embed_bench(cmd);
  auto config = troupe::bench::make_config(cmd.flags);
  if (!config) {
    fmt::print(stderr, "troupe bench: {}\n", config.error().message);
    return 2;
  }
  auto run = troupe::bench::run_benchmark(config.value(), stderr);
  if (!run) {
    fmt::print(stderr, "troupe bench: {}\n", run.error().message);
    return 1;
  }
  troupe::bench::print_table(run.value(), stdout);
  const auto failed = troupe::bench::failed_points(run.value());
  for (const auto& line : failed)
    fmt::print(stderr, "troupe bench: {}\n", line);
  const int rc = failed.empty() ? 0 : 1;
  if (cmd.html && cmd.output_dir.empty())
    cmd.output_dir = default_output_dir();
  if (cmd.output_dir.empty())
    return rc;
  if (auto r = troupe::bench::write_results(run.value(), cmd.output_dir); !r) {
    fmt::print(stderr, "troupe bench: {}\n", r.error().message);
    return 1;
  }
  fmt::print("wrote {}/results.json and per-request CSVs\n", cmd.output_dir);
  if (!cmd.html)
    return rc;
  cmd.report_dirs = {cmd.output_dir};
  cmd.report_out = (std::filesystem::path(cmd.output_dir) / "report.html").string();
  const int report_rc = run_report(cmd);
  return rc != 0 ? rc : report_rc;
}

// --endpoint embeddings (bench/embed_bench.hpp): the target and traffic flags as for
// generations; --inputs and --input-tokens instead of scenarios.
int run_embed_bench(const BenchCommand& cmd) {
  BenchFlags flags = cmd.flags;
  if (!flags.scenarios.empty() || !flags.dataset.empty() || !flags.tools.empty() ||
      !flags.request_rate.empty()) {
    fmt::print(stderr,
               "troupe bench: --endpoint embeddings takes --inputs, --input-tokens and "
               "--concurrency (not --scenario, --dataset, --tools or --request-rate)\n");
    return 2;
  }
  flags.endpoint = "completions";  // the shared checks (URL, loads, limits)
  auto config = troupe::bench::make_config(flags);
  auto inputs = troupe::bench::parse_list(cmd.inputs, "--inputs");
  if (!config || !inputs || cmd.input_tokens < 1) {
    fmt::print(stderr, "troupe bench: {}\n",
               !config   ? config.error().message
               : !inputs ? inputs.error().message
                         : std::string("--input-tokens must be at least 1"));
    return 2;
  }
  troupe::bench::EmbedBenchConfig ec{std::move(config).value(), {}, cmd.input_tokens};
  for (double n : *inputs)
    ec.inputs.push_back(static_cast<int>(n));
  auto points = troupe::bench::run_embed_benchmark(ec, stderr);
  if (!points) {
    fmt::print(stderr, "troupe bench: {}\n", points.error().message);
    return 1;
  }
  troupe::bench::print_embed_table(*points, stdout);
  if (cmd.output_dir.empty())
    return 0;
  std::filesystem::create_directories(cmd.output_dir);
  const auto path = std::filesystem::path(cmd.output_dir) / "embeddings.json";
  std::FILE* f = std::fopen(path.c_str(), "w");
  if (f == nullptr) {
    fmt::print(stderr, "troupe bench: cannot write {}\n", path.string());
    return 1;
  }
  fmt::print(f, "{}\n", troupe::bench::embed_results_json(ec, *points));
  std::fclose(f);
  fmt::print("wrote {}\n", path.string());
  return 0;
}

std::function<int()> setup_bench(CLI::App& app) {
  auto cmd = std::make_shared<BenchCommand>();
  add_target_flags(app, cmd->flags);
  add_workload_flags(app, cmd->flags);
  add_traffic_flags(app, cmd->flags);
  app.add_option("-o,--output-dir", cmd->output_dir, "write results.json and requests_N.csv here");
  app.add_flag("--html", cmd->html,
               "also write report.html into --output-dir (default: bench-<UTC time>)");
  app.add_option("--inputs", cmd->inputs,
                 "--endpoint embeddings: inputs per request, swept, e.g. 1,16,64")
      ->capture_default_str();
  app.add_option("--input-tokens", cmd->input_tokens,
                 "--endpoint embeddings: tokens per input (token arrays cut from the corpus)")
      ->capture_default_str();
  CLI::App* report = app.add_subcommand("report", "HTML report comparing runs (results dirs)");
  report->add_option("dirs", cmd->report_dirs, "directories with results.json")->required();
  report->add_option("-o,--output", cmd->report_out, "report file")->capture_default_str();
  return [cmd, report] { return report->parsed() ? run_report(*cmd) : run_bench(*cmd); };
}

const troupe::cli::CommandRegistration reg{
    "bench", "load generator and reports for any OpenAI-compatible endpoint", 40, setup_bench};

}  // namespace
