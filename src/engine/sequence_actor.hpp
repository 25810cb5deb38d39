#pragma once
// SequenceActor: the policy of one generation request. It receives the request's sampled
// tokens (SequenceMessage) and turns them into the request's stream events: incremental
// UTF-8-safe text, stop strings matched across token boundaries (never emitted, not even
// partly), max_tokens, end-of-generation, a full context, usage counts and logprobs. When it
// ends the sequence itself (a stop string, a cancelled stream) it calls `release` once so that
// the engine frees the sequence.
//
// Thread-safety: none. Every member is called on the actor's one execution context (the
// engine's actor thread); the owner posts messages there. The StreamWriter it owns may be read
// from any consumer thread (that is the channel's job).

#include <functional>
#include <optional>
#include <string>

#include "engine/sequence_protocol.hpp"
#include "engine/stop_matcher.hpp"
#include "engine/token_stream.hpp"
#include "engine/token_text.hpp"
#include "engine/utf8.hpp"

namespace troupe::engine {

struct SequenceConfig {
  StopParams stop;
  bool logprobs = false;
  std::int32_t top_logprobs = 0;
  std::int32_t prompt_tokens = 0;
};

class SequenceActor {
 public:
  // Tells the engine to stop the sequence; `cancelled` says the consumer went away (its KV
  // cells are then freed rather than kept for prefix reuse).
  using Release = std::function<void(bool cancelled)>;

  // `text` must outlive the actor. `release` runs at most once, on the actor's context.
  // `writer` may be empty and attached later (before the first message).
  SequenceActor(SequenceConfig config, const TokenText& text, StreamWriter writer, Release release);
  SequenceActor(const SequenceActor&) = delete;
  SequenceActor& operator=(const SequenceActor&) = delete;

  void handle(SequenceMessage msg);

  void attach(StreamWriter writer) { writer_ = std::move(writer); }

  // The consumer went away: stop, release the sequence, push nothing more.
  void cancel();

  // The sequence never reached the engine: nothing to release.
  void detach_release() { release_ = nullptr; }

  // True once a final event was pushed or the request was cancelled.
  bool done() const noexcept { return done_; }
  std::int32_t generated() const noexcept { return generated_; }

 private:
  void on_started(const SequenceStarted& s);
  void on_token(const SampledToken& t);
  void on_failed(const SequenceFailed& f);

  // The reason generation ends with this token, if it does (not counting stop strings).
  std::optional<FinishReason> limit_reason(const SampledToken& t) const;
  Delta make_delta(const SampledToken& t) const;
  // Appends the token's text that is safe to emit; records a matched stop string.
  void append_text(Token token, std::string& out);
  // Appends the text held back at the end of generation.
  void flush_text(std::string& out);
  void finish(FinishReason reason, bool engine_ended);

  SequenceConfig config_;
  const TokenText& text_;
  StreamWriter writer_;
  Release release_;
  Utf8Assembler utf8_;
  StopMatcher stops_;
  std::string piece_;     // scratch: the current token's bytes
  std::string complete_;  // scratch: the current token's complete characters
  std::optional<std::string> matched_;
  std::int32_t generated_ = 0;
  std::int32_t cached_tokens_ = 0;
  bool done_ = false;
};

}  // namespace troupe::engine
