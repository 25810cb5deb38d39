#pragma once
// Plain value types of the OpenAI-compatible client: requests, stream events, errors.
// No Beast or Asio here; Boost.JSON only for the `extra` body members.

#include <boost/json/array.hpp>
#include <boost/json/object.hpp>
#include <cassert>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "util/error.hpp"
#include "util/result.hpp"

namespace troupe::client {

// Why a request failed. `code` is the coarse class (see util/error.hpp):
//   unavailable      connection refused/reset, DNS failure, server closed the connection early
//   timeout          the request's deadline (ClientOptions::timeout) passed
//   cancelled        Stream::cancel() or per-operation cancellation
//   invalid_request  HTTP 400/413/422, or a bad URL / unsupported scheme on our side
//   unauthorized     HTTP 401/403;  not_found: HTTP 404;  overloaded: HTTP 429/503
//   internal         HTTP 5xx other than 503, a malformed response, an error inside a stream
struct ClientError {
  Errc code = Errc::internal;
  int http_status = 0;  // the HTTP status when the server answered with one, else 0
  std::string message;  // one line for people: the server's OpenAI error message when it sent one
  std::string type;     // the OpenAI `error.type` when the server sent one

  // Stable short key for grouping errors: "http_429", "timeout", "unavailable", ...
  std::string key() const;
  friend bool operator==(const ClientError&, const ClientError&) = default;
};

// A value or a ClientError.
template <class T>
using ClientResult = Result<T, ClientError>;

// One function call an assistant made (OpenAI `tool_calls[i]`).
struct ToolCall {
  std::string id;
  std::string name;
  std::string arguments;  // JSON text of the arguments, as the model wrote it
  friend bool operator==(const ToolCall&, const ToolCall&) = default;
};

struct Message {
  std::string role;  // "system", "user", "assistant", "tool"
  std::string content;
  // An assistant's calls. Sent as `tool_calls`; an empty content is then sent as null.
  std::vector<ToolCall> tool_calls;
  // Role "tool": the id of the call this message answers (sent as `tool_call_id`).
  std::string tool_call_id;
  friend bool operator==(const Message&, const Message&) = default;
};

// Sampling and length options shared by both endpoints; unset members are not sent.
struct Sampling {
  std::optional<std::int32_t> max_tokens;
  std::optional<double> temperature;
  std::optional<double> top_p;
  std::optional<std::int64_t> seed;
  std::vector<std::string> stop;
};

// POST /v1/chat/completions.
struct ChatRequest {
  std::string model;  // may be empty: servers with one model accept that
  std::vector<Message> messages;
  Sampling sampling;
  // Ask for a final usage chunk when streaming (stream_options.include_usage).
  bool include_usage = true;
  // Functions the model may call: an OpenAI `tools` array, sent as given unless empty.
  boost::json::array tools;
  // `tool_choice`, sent as this string unless empty ("auto", "none", "required").
  std::string tool_choice;
  // Further body members sent as given (e.g. ignore_eos, min_tokens); they override the above.
  boost::json::object extra;
};

// POST /v1/completions.
struct CompletionRequest {
  std::string model;
  std::string prompt;
  Sampling sampling;
  bool include_usage = true;
  boost::json::object extra;
};

struct Usage {
  std::int32_t prompt_tokens = 0;
  std::int32_t completion_tokens = 0;
};

using Clock = std::chrono::steady_clock;

// A piece of a tool call in a streamed chat answer (OpenAI `delta.tool_calls[i]`). The first
// piece of a call carries its id and name, later ones fragments of its arguments (servers may
// also put arguments in the first piece). ToolCallAssembler (client/tools.hpp) joins them.
struct ToolCallDelta {
  std::size_t index = 0;  // which call of the answer: 0, 1, ... (< kMaxToolCalls)
  std::string id;         // empty after the call's first piece
  std::string name;       // empty after the call's first piece
  std::string arguments;  // a fragment of the arguments' JSON text, possibly empty
  friend bool operator==(const ToolCallDelta&, const ToolCallDelta&) = default;
};

// The most tool calls one answer may make; a stream naming a higher index is malformed.
inline constexpr std::size_t kMaxToolCalls = 256;

// New output of a streamed answer (choice 0). Chunks with no content, reasoning or tool-call
// piece (e.g. the first chunk carrying only the role) are not delivered.
// The views stay valid until the next call on the same Stream.
struct Delta {
  std::string_view content;    // chat `delta.content` or completions `text`
  std::string_view reasoning;  // chat `delta.reasoning_content`, when the server sends it
  std::span<const ToolCallDelta> tool_calls;  // chat `delta.tool_calls`, in the chunk's order
  // When the bytes carrying this event were read from the socket (events read together share
  // it). This, not the time the consumer wakes up, is what latency metrics should use.
  Clock::time_point received_at;
};

// The stream ended normally (`data: [DONE]`, or the body ended after a finish_reason).
struct Done {
  std::string finish_reason;   // "stop", "length", ... (empty if the server sent none)
  std::optional<Usage> usage;  // from the usage chunk, when the server sent one
  Clock::time_point received_at;
};

// What Stream::next() yields: text, the normal end, or a failure (connection lost, timeout,
// an `error` object inside the stream, a server closing mid-event). Done and ClientError are
// final: after them next() returns ClientError{internal, "stream finished"}.
using StreamEvent = std::variant<Delta, Done, ClientError>;

// A non-streamed answer.
struct Answer {
  std::string content;
  std::string reasoning;
  std::vector<ToolCall> tool_calls;  // chat `message.tool_calls`
  std::string finish_reason;         // "stop", "length", "tool_calls", ...
  std::optional<Usage> usage;
};

struct ModelInfo {
  std::string id;
  std::string owned_by;
};

// An HTTP response, for requests without a typed wrapper (e.g. GET /health, /metrics).
struct HttpResponse {
  int status = 0;
  std::string content_type;
  std::string body;
};

}  // namespace troupe::client
