#pragma once
// The simulated engine: a Backend with the same behaviour as the local one (queueing, stop
// strings, max_tokens, cancellation, usage) that produces made-up tokens at a configured
// prefill and decode speed without any model. For load-testing the server and the gateway at
// scales a CPU cannot decode: one thread, one timer per stream, thousands of streams.
//
// Its vocabulary is synthetic: a prompt counts one token per 4 bytes (plus 4 per chat
// message) and is never tokenized; generated token k of a request is the word
// "w<id>" followed by a space. tokenize() splits text on whitespace into such words.

#include <cstdint>
#include <memory>
#include <string>

#include "engine/backend.hpp"

namespace troupe::engine {

struct SimOptions {
  std::string model_id = "sim";
  std::int32_t n_ctx = 4096;             // per sequence
  std::int32_t n_parallel = 256;         // sequences generating at once
  std::int32_t max_queue = 4096;         // waiting requests; more: Errc::overloaded
  double prefill_tokens_per_s = 5000.0;  // per sequence
  double decode_tokens_per_s = 50.0;     // per sequence
  std::int32_t n_vocab = 32000;
};

// Ready at once. Destroy it after every TokenStream it returned.
std::unique_ptr<Backend> make_sim_backend(SimOptions options);

}  // namespace troupe::engine
