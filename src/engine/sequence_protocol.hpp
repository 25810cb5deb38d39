#pragma once
// The messages a SequenceActor receives from whoever runs its sequence (the BatchEngine, the
// simulated engine, or a test's fake engine). They carry token ids and small numbers only:
// never logits.

#include <array>
#include <cstddef>
#include <cstdint>
#include <initializer_list>
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

// The one rule that ends a sequence at a sampled token, applied where tokens are sampled (the
// BatchEngine, the simulated engine, a test's fake engine): the SequenceActor takes
// SampledToken::end as given and adds only stop strings, which need the text. `generated`
// counts the sampled tokens, this one included; `eog`: the token ends generation (an EOG token
// that was not suppressed, or a grammar that allows nothing more); `context_full`: no room
// for another token. Unset max_tokens: the context is the only limit.
inline EngineEnd sequence_end(const StopParams& stop, std::int32_t generated, bool eog,
                              bool context_full) noexcept {
  if (eog)
    return EngineEnd::eog;
  if (stop.max_tokens && generated >= *stop.max_tokens)
    return EngineEnd::max_tokens;
  if (context_full)
    return EngineEnd::context_full;
  return EngineEnd::none;
}

// Whether the next token may not be an EOG token: ignore_eos, or fewer than min_tokens sampled.
inline bool eog_suppressed(const StopParams& stop, std::int32_t generated) noexcept {
  return stop.ignore_eos || generated < stop.min_tokens;
}

struct TopLogprob {
  Token token = 0;
  float logprob = 0.0f;
};

// Up to 20 alternatives, stored inline: a SampledToken never allocates, so the engine thread
// sends it without touching the heap.
class TopLogprobs {
 public:
  static constexpr std::size_t capacity = 20;
  TopLogprobs() = default;
  TopLogprobs(std::initializer_list<TopLogprob> init) {
    for (const auto& t : init)
      push_back(t);
  }
  // Ignores entries beyond the capacity.
  void push_back(const TopLogprob& t) noexcept {
    if (size_ < capacity)
      items_[size_++] = t;
  }
  void clear() noexcept { size_ = 0; }
  std::size_t size() const noexcept { return size_; }
  bool empty() const noexcept { return size_ == 0; }
  const TopLogprob* begin() const noexcept { return items_.data(); }
  const TopLogprob* end() const noexcept { return items_.data() + size_; }
  const TopLogprob& operator[](std::size_t i) const noexcept { return items_[i]; }

 private:
  std::array<TopLogprob, capacity> items_{};
  std::size_t size_ = 0;
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
  TopLogprobs top;
  EngineEnd end = EngineEnd::none;
  // On the first token of a step whose drafted tokens came from the request's prediction: how
  // many of them the sampler drew (kept) and how many not (usage's accepted / rejected
  // prediction tokens).
  std::uint16_t prediction_kept = 0;
  std::uint16_t prediction_rejected = 0;
};

// An embedding sequence's answer: the sequence is over (the engine freed it). `values`: its
// pooled vector, or with pooling none one vector per token (`rows` of them), one after another.
struct SequenceEmbedded {
  std::vector<float> values;
  std::int32_t rows = 1;
};

// The engine failed; the sequence is gone (no release needed).
struct SequenceFailed {
  Error error;
};

// The request's consumer went away (sent by the Coordinator, not the engine). `release`:
// tell the engine to free the sequence; false when it never reached the engine (it was
// still queued).
struct CancelSequence {
  bool release = true;
};

using SequenceMessage =
    std::variant<SequenceStarted, SampledToken, SequenceFailed, CancelSequence, SequenceEmbedded>;

}  // namespace troupe::engine
