#pragma once
// The simulated engine: a Backend with the same behaviour as the local one (queueing, stop
// strings, max_tokens, cancellation, usage) that produces made-up tokens at a configured
// prefill and decode speed without any model. For load-testing the server and the gateway at
// scales a CPU cannot decode: one thread, one timer per stream, thousands of streams.
//
// Its vocabulary is synthetic. One tokenizer rule serves both tokenize() and the prompt count
// in usage: text is split on whitespace; a word "w<t>" (how token t reads: detokenize() writes
// "w<t> ") is one token, token t when 0 < t < n_vocab, so detokenized text tokenizes back to
// the same ids; any other word is cut into pieces of at most 4 bytes, one token each (a chat
// prompt adds 4 tokens per message and 3 for the template).
//
// Pacing: each stream's tokens are one decode interval apart. A stream whose token came late
// (the thread was busy, the machine loaded) does not catch up with a burst of tokens: its next
// token is due one interval after the late one. With `step_aligned`, every due time is moved
// up to the next tick of one backend-wide step clock (one tick per decode interval), so the
// tokens of all running sequences come out together, as a batching engine's decode step emits
// them; without it each stream keeps its own phase (the worst case for the layers above: every
// token travels alone).

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "engine/backend.hpp"

namespace troupe::engine {

struct SimOptions {
  std::string model_id = "sim";
  std::int32_t n_ctx = 4096;             // per sequence
  std::int32_t n_parallel = 256;         // sequences generating at once
  std::int32_t max_queue = 4096;         // waiting requests; more: Errc::overloaded
  double prefill_tokens_per_s = 5000.0;  // per sequence
  double decode_tokens_per_s = 50.0;     // per sequence
  bool step_aligned = false;             // all sequences' tokens on one step clock (see above)
  std::int32_t n_vocab = 32000;
  // What requests leave unset. Only n_predict changes what the simulation does (its tokens
  // are made up, not sampled); the sampling fields are still validated.
  SamplingDefaults defaults;
};

// Ready at once. Destroy it after every TokenStream it returned.
std::unique_ptr<Backend> make_sim_backend(SimOptions options);

// The simulated tokenizer (see above). Token ids are 1..n_vocab-1.
std::vector<Token> sim_tokenize(std::string_view text, std::int32_t n_vocab);
// The number of tokens sim_tokenize would return, without building them.
std::int64_t sim_token_count(std::string_view text);

// When the token after one due at `due` is due, given that it was emitted at `now`: one
// `interval` later, or, when it was emitted more than half an interval late, one interval
// after `now` (no catch-up burst).
std::chrono::steady_clock::time_point sim_next_due(std::chrono::steady_clock::time_point due,
                                                   std::chrono::steady_clock::time_point now,
                                                   std::chrono::steady_clock::duration interval);

// The first tick of a step clock started at `epoch` with period `interval` at or after `t`.
std::chrono::steady_clock::time_point sim_step_align(std::chrono::steady_clock::time_point t,
                                                     std::chrono::steady_clock::time_point epoch,
                                                     std::chrono::steady_clock::duration interval);

}  // namespace troupe::engine
