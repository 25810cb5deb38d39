#pragma once
// OpenAI's Responses API (POST /v1/responses, GET/DELETE /v1/responses/{id}) as a translation
// to and from the chat request troupe already serves: `input` items and `instructions` become
// the conversation, `tools`, `tool_choice`, `text.format` and `reasoning.effort` the chat
// options, and the answer is written back as a response object with output items (reasoning,
// message, function_call), or as the Responses event stream. Nothing here generates or stores.
//
// Thread-safety: free functions are pure; a ResponsesStreamWriter belongs to one request.

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "api/anthropic.hpp"  // SseEvent
#include "api/error.hpp"
#include "api/request.hpp"
#include "api/response.hpp"
#include "util/result.hpp"

namespace troupe::api {

// What a response object echoes of its request's tool settings (OpenAI's defaults when the
// request gave none).
struct ResponsesTools {
  std::string tools = "[]";              // the request's tools array, as JSON
  std::string tool_choice = "\"auto\"";  // its tool_choice, as JSON
  bool parallel_tool_calls = true;
};

struct ResponsesRequest {
  ChatRequest chat;                  // the conversation of this request alone (no history)
  std::string previous_response_id;  // empty: none; else the server prepends that history
  bool store = true;
  std::string instructions;  // echoed in the response object
  ResponsesTools tools;      // echoed too
};

Result<ResponsesRequest> parse_responses_request(std::string_view body);

// What identifies a response and what it echoes.
struct ResponsesHead {
  std::string id;  // "resp_..."
  std::string model;
  std::int64_t created_at = 0;
  std::string instructions;
  std::string previous_response_id;
  bool store = true;
  ResponsesTools tools;
};

// The response object: `status` "completed" (or "incomplete" with incomplete_details
// {reason: "max_output_tokens"} when `length`), output items in order reasoning, message,
// function_call..., usage.
std::string response_json(const ResponsesHead& head, const CompletionResult& result, bool length);

// {"id": ..., "object": "response", "deleted": true}
std::string response_deleted_json(std::string_view id);

// POST /v1/responses/input_tokens: {"object": "response.input_tokens", "input_tokens": n}
std::string response_input_tokens_json(std::int32_t input_tokens);

// The output of `result` as the conversation messages a continuation (previous_response_id)
// replays: one assistant message with the reasoning, text and tool calls.
Message response_message(const CompletionResult& result);

// The events of one streaming response, each with its sequence_number:
//   response.created, response.in_progress, then per output item response.output_item.added,
//   its content (message: response.content_part.added, response.output_text.delta*,
//   response.output_text.done, response.content_part.done; function_call:
//   response.function_call_arguments.delta*, response.function_call_arguments.done;
//   reasoning: response.reasoning_text.delta*, response.reasoning_text.done) and
//   response.output_item.done; finally response.completed (or response.incomplete /
//   response.failed).
class ResponsesStreamWriter {
 public:
  explicit ResponsesStreamWriter(ResponsesHead head);

  void start(std::vector<SseEvent>& out);
  void delta(std::string_view text, std::string_view reasoning,
             const std::vector<chatfmt::ToolCallDelta>& tool_calls, std::vector<SseEvent>& out);
  // Closes the open item; response.completed (incomplete when `length`) with the whole answer.
  void finish(const CompletionResult& result, bool length, std::vector<SseEvent>& out);
  void fail(const HttpError& error, std::vector<SseEvent>& out);

 private:
  enum class Item { none, reasoning, message, function_call };
  void open(Item kind, std::vector<SseEvent>& out, std::string_view call_id = {},
            std::string_view name = {});
  void close(std::vector<SseEvent>& out);
  void emit(std::string_view type, std::string_view body, std::vector<SseEvent>& out);
  std::string item_json(bool done) const;
  std::string skeleton(std::string_view status) const;

  ResponsesHead head_;
  std::int64_t seq_ = 0;
  int output_index_ = -1;
  Item open_ = Item::none;
  std::string item_id_;
  std::string call_id_;
  std::string name_;
  std::string text_;  // the open item's text (message text, reasoning, or arguments)
  std::size_t tool_index_ = 0;
};

}  // namespace troupe::api
