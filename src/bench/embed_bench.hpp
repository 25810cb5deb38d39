#pragma once
// `troupe bench --endpoint embeddings`: closed-loop load on POST /v1/embeddings. Each request
// carries `inputs` inputs of exactly `input_tokens` tokens each, sent as token arrays (windows
// of the tokenized corpus; every server takes token input, so lengths are exact and no server
// tokenizes), encoding_format base64 (what OpenAI's clients ask for). A point is one
// (inputs per request, concurrency) pair; its result: embeddings/s, tokens/s, requests/s and
// request latency percentiles.
//
// Thread-safety: run_embed_benchmark runs its own io_context on the calling thread.

#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

#include "bench/runner.hpp"
#include "bench/stats.hpp"
#include "util/result.hpp"

namespace troupe::bench {

struct EmbedBenchConfig {
  BenchConfig base;  // client, model, tokenizer, concurrency, max_requests / duration, warmup
  std::vector<int> inputs = {1};  // inputs per request, swept
  std::int32_t input_tokens = 128;
};

struct EmbedPoint {
  int inputs = 0;
  int concurrency = 0;
  std::int64_t requests = 0;  // measured (warmup excluded)
  std::int64_t failed = 0;
  std::string first_error;
  double duration_s = 0;  // from the first measured send to the last measured answer
  Summary latency_s;      // of the successful measured requests
  double embeddings_per_s = 0;
  double tokens_per_s = 0;
  double requests_per_s = 0;
};

// Runs every point in turn. Errors: the server is unreachable or lists no model, the corpus
// cannot be tokenized (the server has no /tokenize and no --tokenizer was given) or is shorter
// than input_tokens. Request failures are counted in the points.
Result<std::vector<EmbedPoint>> run_embed_benchmark(const EmbedBenchConfig& config,
                                                    std::FILE* progress);

// One line per point.
void print_embed_table(const std::vector<EmbedPoint>& points, std::FILE* out);

// The points as JSON (the configuration and every point's figures).
std::string embed_results_json(const EmbedBenchConfig& config,
                               const std::vector<EmbedPoint>& points);

}  // namespace troupe::bench
