#pragma once
// The events a TokenStream delivers, in order:
//   Started, then any number of Delta, then exactly one Finished or Failed.
// A stream whose request was refused before admission delivers only Failed.

#include <cstdint>
#include <string>
#include <variant>
#include <vector>

#include "engine/task.hpp"
#include "util/error.hpp"

namespace troupe::engine {

// tool_calls: the model stopped after calling tools (a conversation's output parsed into calls).
enum class FinishReason { stop, length, cancelled, tool_calls };

struct TokenLogprob {
  Token token = 0;
  std::string text;  // the token's piece (may be part of a UTF-8 character)
  float logprob = 0.0f;
};

// The request was admitted; its prompt is this many tokens long.
struct Started {
  std::int32_t prompt_tokens = 0;
  std::int32_t cached_tokens = 0;  // prompt tokens reused from the KV cache
  bool truncated = false;          // parts of the request were cut to fit (an infill's)
};

// New output. `text` is valid UTF-8 and may be empty when a token's text is held back
// (an incomplete UTF-8 character or a possible stop-string prefix): then no text is due yet.
// For a conversation whose output is parsed (Task::chat), `text` is the answer's content
// only; reasoning and tool calls come in their own fields (tool calls in OpenAI's streaming
// shape: id and name first, then argument fragments).
struct Delta {
  std::string text;
  std::vector<Token> tokens;                   // the tokens sampled since the last Delta
  std::vector<TokenLogprob> logprobs;          // one per token when requested
  std::vector<std::vector<TokenLogprob>> top;  // top alternatives per token when requested
  std::string reasoning;
  std::vector<chatfmt::ToolCallDelta> tool_calls;
};

struct Usage {
  std::int32_t prompt_tokens = 0;
  std::int32_t completion_tokens = 0;
  std::int32_t cached_tokens = 0;
  // Of completion_tokens, those the output parser read as reasoning (thinking families): the
  // tokens of each step whose parsed text was reasoning, a step with both split by bytes.
  std::int32_t reasoning_tokens = 0;
  // Of the tokens drafted from the request's prediction (OpenAI's Predicted Outputs), those
  // the answer kept and those it did not (the rejected ones cost rows, not answer tokens).
  std::int32_t accepted_prediction_tokens = 0;
  std::int32_t rejected_prediction_tokens = 0;
};

struct Finished {
  FinishReason reason = FinishReason::stop;
  Usage usage;
  std::string stop_string;  // the stop string that matched, if that was the reason
  // An embedding request's pooled vector (n_embd floats; a reranker's: its scores, the
  // first is the relevance), or with pooling none `embedding_rows` vectors, one per token,
  // one after another. Empty for generations.
  std::vector<float> embedding;
  std::int32_t embedding_rows = 1;
};

struct Failed {
  Error error;
};

using StreamEvent = std::variant<Started, Delta, Finished, Failed>;

// True for the events after which a stream delivers nothing more.
inline bool is_final(const StreamEvent& e) noexcept {
  return std::holds_alternative<Finished>(e) || std::holds_alternative<Failed>(e);
}

}  // namespace troupe::engine
