#pragma once
// Command-line flags of `troupe bench` as plain strings and numbers, and their validation into
// a BenchConfig. Kept apart from CLI11 so that the checks are unit-tested.
//
// Thread-safety: pure functions.

#include <cstdint>
#include <string>
#include <vector>

#include "bench/runner.hpp"
#include "util/result.hpp"

namespace troupe::bench {

struct BenchFlags {
  std::string url = "http://127.0.0.1:8080";
  std::string model;
  std::string api_key;
  std::vector<std::string> headers;  // "Name: value"
  std::string timeout = "600s";
  std::string endpoint = "chat";  // chat | completions | messages | responses
  std::vector<std::string> scenarios;
  std::string dataset, corpus;
  std::string tokenizer;  // GGUF file: size prompts with its vocabulary, not the server's
  std::int32_t prefix_len = 0;
  double prefix_ratio = 0;
  bool no_ignore_eos = false;
  double temperature = -1;   // < 0: not sent
  std::string tools;         // "0,5" / "tools.json": tool sets to sweep (empty: no tools)
  std::string tool_choice;   // auto | required | none; empty: not sent
  std::string extra_body;    // JSON file: an object merged into every request body
  std::string concurrency;   // "1,2,4"
  std::string request_rate;  // "2,4,8"
  std::string arrival = "poisson";
  double burstiness = 1.0;
  int max_concurrency = 0;
  std::int64_t max_requests = 0;
  std::string max_duration;  // "60s", "500ms"; empty: none
  std::int64_t warmup = 0, cooldown = 0;
  std::uint64_t seed = 42;
  std::string slo;
  std::string progress = "auto";  // auto | bar | lines | off
};

// Validates and converts. Errors (invalid_request) name the flag and what was expected.
Result<BenchConfig> make_config(const BenchFlags& flags);

// "1,2,4" -> {1, 2, 4}; every item a positive number.
Result<std::vector<double>> parse_list(const std::string& text, const std::string& flag);

// "500ms", "2s", "1.5" (seconds) -> seconds.
Result<double> parse_duration(const std::string& text, const std::string& flag);

}  // namespace troupe::bench
