#pragma once
// The load generator: runs every (scenario x load) point against one endpoint and measures
// each request. Closed loop (`concurrency` workers, each sending its next request when the last
// one ends) or open loop (sends at the times an ArrivalProcess draws, optionally capped at
// `max_concurrency` in flight). Everything runs on one io_context thread.
//
// Thread-safety: run_benchmark() is a blocking call that owns its own io_context; call it
// from one thread at a time (it adjusts the process's fd limit).

#include <boost/json.hpp>
#include <cstdint>
#include <cstdio>
#include <optional>
#include <string>
#include <vector>

#include "bench/arrival.hpp"
#include "bench/metrics.hpp"
#include "bench/scenario.hpp"
#include "bench/tool_sets.hpp"
#include "client/client.hpp"
#include "util/result.hpp"

namespace troupe::bench {

enum class ProgressMode { automatic, bar, lines, off };

struct BenchConfig {
  client::ClientOptions client;  // base_url, api_key, headers, timeout
  std::string model;             // empty: the first model /v1/models lists
  bool chat = true;              // /v1/chat/completions, else /v1/completions
  bool messages = false;         // with chat: Anthropic's /v1/messages instead
  bool responses = false;        // with chat: OpenAI's /v1/responses instead
  std::vector<Scenario> scenarios;
  std::string dataset;    // prompts from this file instead of the corpus
  std::string corpus;     // text file to cut prompts from (empty: built-in)
  std::string tokenizer;  // GGUF file whose vocabulary sizes prompts (empty: the server's)
  std::int32_t prefix_len = 0;
  double prefix_ratio = 0;
  bool ignore_eos = true;  // send ignore_eos and min_tokens to hold output lengths
  std::optional<double> temperature;
  // Tool sets to sweep: every (scenario, set, load) is a point whose requests carry the set's
  // tools. Empty: no tools and no sweep.
  std::vector<ToolSet> tool_sets;
  std::string tool_choice;  // sent with requests that carry tools, unless empty
  // Members added to every request body (e.g. a response_format), over what the bench sets.
  boost::json::object extra_body;
  std::vector<int> concurrency;  // closed-loop points
  std::vector<double> rates;     // open-loop points (requests/s); used when non-empty
  ArrivalKind arrival = ArrivalKind::poisson;
  double burstiness = 1.0;
  int max_concurrency = 0;        // open loop: cap on requests in flight (0: none)
  std::int64_t max_requests = 0;  // measured requests per point (0: only max_duration)
  double max_duration_s = 0;      // per point (0: only max_requests)
  std::int64_t warmup = 0;        // first requests of each point, not measured
  std::int64_t cooldown = 0;      // last requests of each point, not measured
  std::uint64_t seed = 42;
  Slo slo;
  std::string slo_text;
  ProgressMode progress = ProgressMode::automatic;
};

struct PointSpec {
  Scenario scenario;
  bool open_loop = false;
  int concurrency = 0;  // closed loop
  double rate = 0;      // open loop
  // With a tools sweep: BenchConfig::tool_sets[tool_set], whose name is `tools`.
  std::size_t tool_set = 0;
  std::string tools;           // empty: no tools sweep
  std::size_t tool_count = 0;  // functions each request carries
  // "c=8 D(100,100)" or "rate=4 D(100,100)", with " tools=5" in a tools sweep.
  std::string label() const;
};

struct PointResult {
  PointSpec spec;
  PointStats stats;
  std::vector<RequestRecord> records;
  double wall_s = 0;            // from the first send to the last response
  double client_cpu = 0;        // CPU seconds the process used / wall seconds
  std::int64_t late_sends = 0;  // open loop: sends more than 10 ms after their time
  double max_late_s = 0;
  std::int64_t output_len_mismatch = 0;  // completed requests whose output != target
  std::int64_t tool_call_answers = 0;    // measured answers that carried tool calls
  std::int64_t max_in_flight = 0;
};

struct RunResult {
  BenchConfig config;
  std::string model;
  std::vector<std::string> server_models;
  bool exact_prompts = false;
  std::int64_t inexact_prompts = 0;
  // What sized the prompts: "server" (its /tokenize), "local:<path>" (--tokenizer), "none"
  // (approximate prompts) or "dataset" (prompts taken as given).
  std::string tokenizer;
  std::string started_at;  // ISO 8601 UTC
  std::vector<PointResult> points;
  std::vector<std::string> warnings;  // saturation, unhonoured lengths, ...
};

// Runs the whole benchmark. Errors: the server is unreachable before the first point, a
// dataset, corpus or --tokenizer file cannot be read. Request failures are results, not errors.
// Progress goes to `progress_out` (stderr in the CLI).
Result<RunResult> run_benchmark(const BenchConfig& config, std::FILE* progress_out);

// What a finished point says about the measurement itself: the client's own saturation (its
// CPU above 90% of its core, open-loop sends more than 10 ms late), output lengths the server
// did not honour, responses without usage. One line each, prefixed with the point's label.
std::vector<std::string> point_warnings(const PointResult& p);

// Raises the soft open-files limit to the hard limit; returns the new soft limit.
std::uint64_t raise_fd_limit();

}  // namespace troupe::bench
