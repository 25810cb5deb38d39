#pragma once
// Anthropic's Messages API (POST /v1/messages, /v1/messages/count_tokens) as a translation to
// and from the chat request troupe already serves: a Messages body parses into the same
// ChatRequest as a chat completion (system prompt, messages, tools, tool_choice, thinking,
// sampling), and the answer is written back as Anthropic's message object, its stream of
// events, or its error object. Nothing here generates: the server runs the ChatRequest like
// any other.
//
// Parsing never throws for bad input: a malformed body or a field troupe cannot honour is an
// Error{invalid_request} naming the field (the server answers 400 invalid_request_error).
//
// Thread-safety: free functions are pure; a MessagesStreamWriter belongs to one request.

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "api/error.hpp"
#include "api/request.hpp"
#include "api/response.hpp"
#include "chatfmt/types.hpp"
#include "util/result.hpp"

namespace troupe::api {

// The smallest thinking budget Anthropic accepts.
inline constexpr std::int32_t min_thinking_budget = 1024;

// POST /v1/messages. max_tokens is required; `stream` is copied into params.stream.
Result<ChatRequest> parse_messages_request(std::string_view body);

// POST /v1/messages/count_tokens: the same fields, max_tokens optional (it changes nothing in
// a count), `stream` refused.
Result<ChatRequest> parse_count_tokens_request(std::string_view body);

// An Anthropic stop_reason for the way a generation ended: "end_turn", "max_tokens",
// "stop_sequence", "tool_use".
struct StopInfo {
  std::string reason;
  std::string sequence;  // the stop sequence that matched (reason "stop_sequence")
};

// The message object of a finished non-streaming answer: content blocks thinking, text,
// tool_use (input: the parsed arguments object), stop_reason, stop_sequence, usage.
std::string anthropic_message_json(const ResponseHead& head, const CompletionResult& result,
                                   const StopInfo& stop);

// {"input_tokens": n}
std::string count_tokens_json(std::int32_t input_tokens);

// The error body {"type":"error","error":{"type":...,"message":...}} and the status to send
// it with: invalid_request_error (400, 405, 431), authentication_error 401, permission_error
// 403, not_found_error 404, request_too_large 413, rate_limit_error 429, overloaded_error
// (529, for a full queue), api_error (other 5xx, with their status).
std::string anthropic_error_json(const HttpError& error);
int anthropic_error_status(const HttpError& error);

// One server-sent event: "event: <name>\ndata: <data>\n\n".
struct SseEvent {
  std::string_view name;  // a literal
  std::string data;
};

// Builds the events of one streaming answer in Anthropic's order:
//   message_start, ping, then per content block content_block_start, content_block_delta*
//   (thinking_delta / text_delta / input_json_delta), content_block_stop, and at the end
//   message_delta (stop_reason, usage) and message_stop. `ping` may come at any point.
// Blocks follow the output: reasoning opens a thinking block, text a text block, each tool
// call a tool_use block; a change of kind closes the open block first.
class MessagesStreamWriter {
 public:
  explicit MessagesStreamWriter(const ResponseHead& head);

  // message_start (usage: the prompt's tokens so far) and a first ping.
  void start(const Usage& usage, std::vector<SseEvent>& out);
  void delta(std::string_view text, std::string_view reasoning,
             const std::vector<chatfmt::ToolCallDelta>& tool_calls, std::vector<SseEvent>& out);
  // Closes the open block; message_delta and message_stop.
  void finish(const StopInfo& stop, const Usage& usage, std::vector<SseEvent>& out);
  static SseEvent ping();
  static SseEvent error(const HttpError& error);

 private:
  enum class Block { none, thinking, text, tool_use };
  void open(Block kind, std::vector<SseEvent>& out, std::string_view id = {},
            std::string_view name = {});
  void close(std::vector<SseEvent>& out);
  SseEvent block_delta(std::string_view type, std::string_view field, std::string_view value) const;

  std::string message_json_prefix_;  // {"id":..,"type":"message","role":..,"model":..
  Block open_ = Block::none;
  int index_ = -1;  // of the open (or last) block
  std::size_t tool_index_ = 0;
  bool tool_open_ = false;
};

// Appends `e` framed for the wire.
void append_sse(std::string& out, const SseEvent& e);

}  // namespace troupe::api
