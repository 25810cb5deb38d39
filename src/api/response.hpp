#pragma once
// OpenAI response bodies (and llama-server's tokenize shapes), written as JSON text.
//
// Streaming chunks are built from a per-request prefix computed once, so the per-token cost
// is one string with the escaped delta. Every function returns complete JSON without the SSE
// framing ("data: ...\n\n" is the HTTP layer's job).
//
// Thread-safety: free functions are pure; a ChunkWriter belongs to one request (one thread at
// a time).

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "chatfmt/types.hpp"

namespace troupe::api {

enum class CompletionKind { chat, text };

// What identifies a response: "chatcmpl-..." / "cmpl-..." id, the model name, unix seconds.
struct ResponseHead {
  std::string id;
  std::string model;
  std::int64_t created = 0;
};

struct Usage {
  std::int32_t prompt_tokens = 0;
  std::int32_t completion_tokens = 0;
  std::int32_t cached_tokens = 0;
  std::int32_t reasoning_tokens = 0;  // completion_tokens_details.reasoning_tokens
  // completion_tokens_details.accepted_prediction_tokens / rejected_prediction_tokens
  std::int32_t accepted_prediction_tokens = 0;
  std::int32_t rejected_prediction_tokens = 0;
};

// One generated token's log-probability, with the top alternatives when asked for. `token`
// is the raw piece; it may be part of a UTF-8 character (it is written with U+FFFD for the
// broken bytes, and its exact bytes in "bytes").
struct TokenLogprob {
  std::string token;
  float logprob = 0.0f;
  std::vector<std::pair<std::string, float>> top;
};

// A finished non-streaming completion. Chat answers may carry reasoning_content and
// tool_calls (then content may be empty: it is written as null).
struct CompletionResult {
  std::string text;
  std::string finish_reason;  // "stop" | "length" | "tool_calls"
  Usage usage;
  std::optional<std::vector<TokenLogprob>> logprobs;  // set when logprobs were requested
  std::string reasoning_content;
  std::vector<chatfmt::ToolCall> tool_calls;
};

std::string chat_completion_json(const ResponseHead& head, const CompletionResult& result);
std::string text_completion_json(const ResponseHead& head, const CompletionResult& result);
// A request's n choices (n > 1), each with its own text and finish_reason, and the usage of
// them all.
std::string completions_json(CompletionKind kind, const ResponseHead& head,
                             std::span<const CompletionResult> choices, const Usage& usage);

// Builds the chunks of one streaming response in order: role_chunk (chat only), delta_chunk
// per piece of text, finish_chunk, then usage_chunk when include_usage was requested. With n
// choices, one writer per choice (`index`), their chunks interleaved.
class ChunkWriter {
 public:
  ChunkWriter(CompletionKind kind, const ResponseHead& head, bool include_usage,
              std::size_t index = 0);

  // {"delta": {"role": "assistant", "content": ""}}. Chat only.
  std::string role_chunk() const;
  // A piece of text; `logprobs` (may be null) covers the tokens behind it.
  std::string delta_chunk(std::string_view text, const std::vector<TokenLogprob>* logprobs);
  // Chat only: a delta with reasoning_content and tool_calls besides the content (each
  // written only when it has something). Tool calls in OpenAI's shape: the first delta of a
  // call has index, id, type and function.name; later ones index and function.arguments.
  std::string chat_delta_chunk(std::string_view content, std::string_view reasoning,
                               const std::vector<chatfmt::ToolCallDelta>& tool_calls,
                               const std::vector<TokenLogprob>* logprobs);
  // Empty delta with finish_reason.
  std::string finish_chunk(std::string_view finish_reason) const;
  // "choices": [] and the usage.
  std::string usage_chunk(const Usage& usage) const;

 private:
  std::string begin_choice() const;
  std::string end_choice(std::string_view finish_reason) const;

  CompletionKind kind_;
  bool include_usage_;
  std::size_t index_;            // the choice
  std::string prefix_;           // {"id":..,"object":..,"created":..,"model":..,"choices":[
  std::size_t text_offset_ = 0;  // text completions: offset of the next token in the output
};

struct ModelEntry {
  std::string id;
  std::int64_t created = 0;
  std::string owned_by;
  std::int32_t n_ctx = 0;
  // A loadable model's state ("loaded", "loading", "unloaded", "unloading", "failed") and why
  // it failed; empty for a fixed model (no "status" is written then).
  std::string state;
  std::string state_message;
  std::vector<std::string> aliases;  // written as "aliases" when there are any
};

// {"id", "object": "model", "created", "owned_by", "meta": {"n_ctx"}} and, for a loadable
// model, "status": {"value": STATE} with "failed": true and "message" for a failed one.
std::string model_json(const ModelEntry& model);

// {"object": "list", "data": [model_json...]}
std::string models_json(const std::vector<ModelEntry>& models);

// llama-server's /tokenize answer: {"tokens": [1, 2]} or, with pieces,
// {"tokens": [{"id": 1, "piece": "ab"}]} (a piece that is not valid UTF-8 is written as its
// byte values).
std::string tokenize_json(const std::vector<std::int32_t>& tokens,
                          const std::vector<std::string>* pieces);

// {"content": "..."}
std::string detokenize_json(std::string_view content);

// POST /apply-template's answer: {"prompt": "..."}
std::string apply_template_json(std::string_view prompt);

// `s` with every invalid UTF-8 sequence replaced by U+FFFD.
std::string sanitize_utf8(std::string_view s);

// JSON pieces the answer shapes share: a log-probability as a JSON float (-inf, which JSON
// lacks, as -9999.0), and a text's bytes as an array of numbers.
void append_number(std::string& out, float x);
void append_bytes(std::string& out, std::string_view s);

}  // namespace troupe::api
