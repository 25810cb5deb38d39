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

#include "client/types.hpp"

namespace troupe::client::wire {

// The sampling options that are set, as request-body members (unset ones are left out).
boost::json::object sampling_json(const Sampling& s);

// Request bodies (stream=true adds stream_options.include_usage when asked for).
std::string chat_body(const ChatRequest& r, bool stream);
std::string completion_body(const CompletionRequest& r, bool stream);

// The error a non-2xx response stands for: its code from the status, its message from an
// OpenAI-style body ({"error": {"message", "type"}} or {"error": "text"}) or the body itself.
ClientError error_from_response(int status, std::string_view body);

// Parses a non-streamed chat (or completions, when !chat) response body.
ClientResult<Answer> parse_answer(std::string_view body, bool chat);

// What one `data:` payload of a stream carried.
struct Chunk {
  bool has_text = false;             // content or reasoning was non-empty
  bool has_finish = false;           // a finish_reason was set
  std::optional<Usage> usage;        // a usage object was present
  std::optional<ClientError> error;  // {"error": ...} inside the stream, or malformed JSON
};

// Decodes stream chunks with a reused parser and a fixed scratch arena, so that decoding a
// typical chunk allocates nothing. Text is appended to caller-owned strings.
class ChunkDecoder {
 public:
  ChunkDecoder();
  ChunkDecoder(const ChunkDecoder&) = delete;
  ChunkDecoder& operator=(const ChunkDecoder&) = delete;

  // Decodes one payload. Replaces `content`, `reasoning` and, when set, `finish_reason`.
  Chunk decode(std::string_view data, bool chat, std::string& content, std::string& reasoning,
               std::string& finish_reason);

 private:
  unsigned char scratch_[4096];
  boost::json::monotonic_resource arena_;
  boost::json::parser parser_;
};

}  // namespace troupe::client::wire
