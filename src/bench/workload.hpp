#pragma once
// The requests of one load point: their prompts (built to exact token lengths, or taken from a
// dataset) and their target output lengths. Deterministic for a given seed.
//
// Exact lengths: the corpus is tokenized once (bench/tokenizer.hpp: the server's /tokenize or a
// local vocabulary); a prompt of n tokens is a random slice of those tokens turned back into
// text and checked (and adjusted) by tokenizing it again. Without a working tokenizer prompts
// are approximate (one corpus word per token), and PromptBuilder::exact() says so.
//
// Thread-safety: a PromptBuilder lives on the executor its tokenizer needs (the Client's).

#include <boost/asio/awaitable.hpp>
#include <cstdint>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "bench/scenario.hpp"
#include "bench/tokenizer.hpp"
#include "client/client.hpp"
#include "util/result.hpp"

namespace troupe::bench {

struct BenchRequest {
  std::int64_t index = 0;
  TokenCounts target;                     // input: requested prompt length (0 for datasets)
  std::string prompt;                     // completions prompt, or the user message for chat
  std::vector<client::Message> messages;  // when the dataset gives whole conversations
};

// One dataset entry: a prompt, or a conversation.
struct DatasetEntry {
  std::string prompt;
  std::vector<client::Message> messages;
};

// Loads a dataset: *.jsonl (objects with "prompt" or "messages"), anything else one prompt per
// non-empty line. Errors: unreadable file, malformed JSON line (with its line number), empty.
Result<std::vector<DatasetEntry>> load_dataset(const std::string& path);

// A built-in English-like corpus (deterministic, generated from a word list).
std::string builtin_corpus();

class PromptBuilder {
 public:
  // Tokenizes `corpus` with `tokenizer` (which must outlive the builder). Never fails: when
  // the tokenizer is null or does not work (a server without /tokenize), it is approximate.
  static boost::asio::awaitable<PromptBuilder> create(Tokenizer* tokenizer, std::string corpus);

  // A prompt of exactly `tokens` tokens (when exact()) whose first `prefix` tokens are the
  // same for every prompt (prefix-cache probing). Precondition: prefix <= tokens.
  boost::asio::awaitable<std::string> build(std::int32_t tokens, std::int32_t prefix,
                                            std::mt19937_64& rng);

  bool exact() const { return exact_; }
  // Why not exact() (the tokenizer's error), empty when exact.
  const std::string& inexact_reason() const { return inexact_reason_; }
  // Prompts whose length could not be made exact (the closest was used).
  std::int64_t inexact() const { return inexact_; }

 private:
  PromptBuilder(Tokenizer* tokenizer, std::string corpus)
      : tokenizer_(tokenizer), corpus_(std::move(corpus)) {}
  std::vector<std::int32_t> slice(std::int32_t tokens, std::int32_t prefix, std::mt19937_64& rng);
  std::string approximate(std::int32_t tokens, std::int32_t prefix, std::mt19937_64& rng);

  Tokenizer* tokenizer_;
  std::string corpus_;
  std::string inexact_reason_;
  std::vector<std::string> words_;
  std::vector<std::int32_t> tokens_;
  bool exact_ = false;
  std::int64_t inexact_ = 0;
};

struct WorkloadSpec {
  Scenario scenario;
  std::int64_t count = 0;  // requests to prepare
  std::uint64_t seed = 0;
  std::int32_t prefix_len = 0;  // shared prefix tokens (capped at each prompt's length)
  double prefix_ratio = 0;      // or: this fraction of each prompt's tokens
  const std::vector<DatasetEntry>* dataset = nullptr;  // prompts from here when set
  std::int32_t distinct_prompts = 2000;  // beyond this many, prompts are reused in order
};

// Builds the requests of one point.
boost::asio::awaitable<std::vector<BenchRequest>> build_workload(PromptBuilder& builder,
                                                                 const WorkloadSpec& spec);

}  // namespace troupe::bench
