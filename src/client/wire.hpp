#pragma once
// JSON of the OpenAI wire format as the client needs it: request bodies out, stream chunks,
// answers and error bodies in. Internal to the client module.
//
// Thread-safety: the free functions are reentrant; a ChunkDecoder has one owner.

#include <boost/json/monotonic_resource.hpp>
#include <boost/json/object.hpp>
#include <boost/json/parser.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "client/types.hpp"

namespace troupe::client::wire {

// The sampling options that are set, as request-body members (unset ones are left out).
boost::json::object sampling_json(const Sampling& s);

// One chat message as the OpenAI wire format has it: role and content, an assistant's
// `tool_calls` (its empty content then null), a tool message's `tool_call_id`.
boost::json::object message_json(const Message& m);

// Request bodies (stream=true adds stream_options.include_usage when asked for).
std::string chat_body(const ChatRequest& r, bool stream);
std::string completion_body(const CompletionRequest& r, bool stream);

// Anthropic's Messages body for the same conversation (stream=true streams): system messages
// become `system`, tool messages `tool_result` blocks of a user message, an assistant's calls
// `tool_use` blocks; OpenAI `tools` become {name, description, input_schema}, tool_choice
// "auto"/"required"/"none" {"type": "auto"/"any"/"none"}; `stop` is `stop_sequences`;
// max_tokens (required by the API) defaults to 4096. `extra` members are sent as given.
std::string messages_body(const ChatRequest& r, bool stream);

// OpenAI's Responses body for the same conversation: system messages become `instructions`,
// the others input items (messages, function_call, function_call_output); OpenAI `tools` are
// flattened to {type, name, description, parameters}; max_tokens is max_output_tokens; `stop`
// cannot be sent (the API has none) and is left out. store is false.
std::string responses_body(const ChatRequest& r, bool stream);

// The error a non-2xx response stands for: its code from the status, its message from an
// OpenAI-style body ({"error": {"message", "type"}} or {"error": "text"}) or the body itself.
ClientError error_from_response(int status, std::string_view body);

// Parses a non-streamed chat (or completions, when !chat) response body.
ClientResult<Answer> parse_answer(std::string_view body, bool chat);

// Where ChunkDecoder::decode() puts a chunk's output: owned by one stream and reused for
// every chunk (each decode replaces the text and the tool-call pieces).
struct ChunkText {
  std::string content;
  std::string reasoning;
  std::vector<ToolCallDelta> tool_calls;
  std::string finish_reason;  // replaced only by a chunk that sets one
};

// What one `data:` payload of a stream carried.
struct Chunk {
  bool has_text = false;             // content, reasoning or a tool-call piece
  bool has_finish = false;           // a finish_reason was set
  std::optional<Usage> usage;        // a usage object was present
  std::optional<ClientError> error;  // {"error": ...} inside the stream, or malformed JSON
};

// Decodes stream chunks with a reused parser and a fixed scratch arena, so that decoding a
// typical chunk (text only) allocates nothing. Output goes to a caller-owned ChunkText.
class ChunkDecoder {
 public:
  ChunkDecoder();
  ChunkDecoder(const ChunkDecoder&) = delete;
  ChunkDecoder& operator=(const ChunkDecoder&) = delete;

  // Decodes one payload into `out`. A tool-call index >= kMaxToolCalls is an error.
  Chunk decode(std::string_view data, bool chat, ChunkText& out);

 private:
  unsigned char scratch_[4096];
  boost::json::monotonic_resource arena_;
  boost::json::parser parser_;
};

// Decodes the events of an Anthropic Messages stream into the same ChunkText / Chunk as chat
// chunks: text_delta is content, thinking_delta reasoning, a tool_use block's start the first
// piece of a call (id, name) and its input_json_delta argument fragments; message_delta sets
// the finish reason (Anthropic's stop_reason) and the usage. One per stream.
class ResponsesDecoder {
 public:
  Chunk decode(std::string_view data, ChunkText& out);

 private:
  std::size_t tools_ = 0;  // function_call items so far
};

class AnthropicDecoder {
 public:
  Chunk decode(std::string_view event, std::string_view data, ChunkText& out);

 private:
  std::int32_t input_tokens_ = 0;
  std::size_t tools_ = 0;  // tool_use blocks so far
};

}  // namespace troupe::client::wire
