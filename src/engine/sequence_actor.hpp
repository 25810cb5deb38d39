#pragma once
// SequenceActor: the policy of one generation request. It receives the request's sampled
// tokens (SequenceMessage) and turns them into the request's stream events: incremental
// UTF-8-safe text, stop strings matched across token boundaries (never emitted, not even
// partly), the end the engine decided (SampledToken::end: end-of-generation, max_tokens, a
// full context; sequence_end() is that rule), usage counts and logprobs; for a
// conversation, the text parsed into content, reasoning and tool calls (chatfmt's
// OutputParser, here on the actors thread, never on the engine's). When it
// ends the sequence itself (a stop string, a cancelled stream) it calls `release` once so that
// the engine frees the sequence.
//
// Runtime: it is an actor of troupe's actor runtime (src/actor): the Coordinator and the
// simulated engine spawn one per request as a light actor (spawn_sequence in admission.hpp,
// one io thread shared by all of them) and the engine tells it SequenceMessages through its
// mailbox (pooled nodes: no allocation per token on the engine thread, see actor_sink()). It
// stops itself once its request has ended. Unit tests drive it without a runtime, through
// handle().
//
// Thread-safety: none. Every member is called on the actor's one execution context; the
// StreamWriter it owns may be read from any consumer thread (that is the channel's job).

#include <chrono>
#include <functional>
#include <optional>
#include <string>

#include "actor/actor.hpp"
#include "actor/actor_ref.hpp"
#include "chatfmt/chat_format.hpp"
#include "engine/engine_protocol.hpp"
#include "engine/indent_limit.hpp"
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
  // A conversation's output parser: the text after stop matching goes through it, and the
  // Deltas carry its content, reasoning and tool-call deltas. Null: the text as it is.
  std::unique_ptr<chatfmt::OutputParser> parser;
  bool prompt_truncated = false;  // Started::truncated
  // Special tokens whose text the answer shows (TokenText::append_special), sorted: the
  // template's markup the parser reads where it is one control token, which would otherwise
  // be written as nothing (llama-server's preserved_tokens).
  std::vector<Token> shown;
};

class SequenceActor final : public actor::Actor<SequenceMessage> {
 public:
  // Tells the engine to stop the sequence; `cancelled` says the consumer went away (its KV
  // cells are then freed rather than kept for prefix reuse).
  using Release = std::function<void(bool cancelled)>;

  // `text` must outlive the actor. `release` runs at most once, on the actor's context.
  SequenceActor(SequenceConfig config, const TokenText& text, StreamWriter writer, Release release);
  SequenceActor(const SequenceActor&) = delete;
  SequenceActor& operator=(const SequenceActor&) = delete;

  void handle(SequenceMessage msg);

  // The runtime's entry point: handle(), then stop the actor once the request has ended.
  void on_message(SequenceMessage& msg) override;

  // The consumer went away: stop, release the sequence (unless `release` is false: it never
  // reached the engine), push nothing more.
  void cancel(bool release = true);

  // True once a final event was pushed or the request was cancelled.
  bool done() const noexcept { return done_; }
  std::int32_t generated() const noexcept { return generated_; }

 private:
  void on_started(const SequenceStarted& s);
  void on_token(const SampledToken& t);
  void on_failed(const SequenceFailed& f);
  void on_embedded(SequenceEmbedded& e);

  // The reason the engine ended generation with this token, if it did (sequence_end(); stop
  // strings are matched here).
  static std::optional<FinishReason> limit_reason(const SampledToken& t);
  Delta make_delta(const SampledToken& t) const;
  // Appends the token's text that is safe to emit; records a matched stop string.
  void append_text(Token token, std::string& out);
  // Appends the text held back at the end of generation.
  void flush_text(std::string& out);
  // Appends text the stop matcher let through, as far as n_indent lets it (else: cut_).
  void emit(std::string_view text, std::string& out);
  // max_predict_ms passed and this token's text broke a line.
  bool out_of_time();
  // Feeds the Delta's text to the output parser and puts what it parsed in its place.
  void parse_output(Delta& d, bool final);
  void finish(FinishReason reason, bool engine_ended);

  SequenceConfig config_;
  const TokenText& text_;
  StreamWriter writer_;
  Release release_;
  Utf8Assembler utf8_;
  StopMatcher stops_;
  IndentLimit indent_;
  std::string piece_;     // scratch: the current token's bytes
  std::string complete_;  // scratch: the current token's complete characters
  std::optional<std::string> matched_;
  bool cut_ = false;  // ended by n_indent or max_predict_ms
  std::chrono::steady_clock::time_point first_token_at_{};
  std::int32_t generated_ = 0;
  std::int32_t cached_tokens_ = 0;
  std::int32_t reasoning_tokens_ = 0;
  std::int32_t prediction_kept_ = 0;
  std::int32_t prediction_rejected_ = 0;
  std::int32_t unparsed_tokens_ = 0;  // sampled since the parser last produced text
  bool done_ = false;
};

// The engine-side sink of a runtime SequenceActor: each message is a tell into its mailbox.
// Calling it allocates nothing once the mailbox's node pool is warm (after the first tokens);
// a message to a stopped actor is dropped.
SequenceSink actor_sink(actor::ActorRef<SequenceMessage> ref);

}  // namespace troupe::engine
