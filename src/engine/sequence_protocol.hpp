#pragma once
// The messages a SequenceActor receives from whoever runs its sequence (the BatchEngine, the
// simulated engine, or a test's fake engine). They carry token ids and small numbers only:
// never logits.

#include <cstdint>
#include <variant>
#include <vector>

#include "engine/task.hpp"
#include "util/error.hpp"

namespace troupe::engine {

// Why the engine itself ended the sequence with this token (it then needs no release).
enum class EngineEnd : std::uint8_t {
  none,          // the sequence goes on until the actor releases it
  eog,           // an end-of-generation token was sampled (and was not suppressed)
  max_tokens,    // the token was the request's max_tokens-th
  context_full,  // the sequence's context has no room for another token
};

struct TopLogprob {
  Token token = 0;
  float logprob = 0.0f;
};

// The sequence was admitted and its prompt will be (or was) computed.
struct SequenceStarted {
  std::int32_t prompt_tokens = 0;
  std::int32_t cached_tokens = 0;  // prompt tokens reused from the KV cache
};

// One sampled token. `logprob` and `top` are filled only when the request asked for them.
struct SampledToken {
  Token token = 0;
  float logprob = 0.0f;
  std::vector<TopLogprob> top;
  EngineEnd end = EngineEnd::none;
};

// The engine failed; the sequence is gone (no release needed).
struct SequenceFailed {
  Error error;
};

using SequenceMessage = std::variant<SequenceStarted, SampledToken, SequenceFailed>;

}  // namespace troupe::engine
