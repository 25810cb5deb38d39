#pragma once
// llama-server's own completion shapes (its /completion and /infill answers, not OpenAI's): one
// JSON object per answer, or per streamed piece, with the text in `content` and `stop` saying
// whether it is the last. A stream has no "[DONE]": its last event is the whole answer's
// object with an empty `content` (the text came in the pieces before it).
//
// Pure functions.

#include <cstdint>
#include <span>
#include <string>
#include <string_view>

namespace troupe::api {

// llama-server's `timings`, from the server's clock: `prompt_ms` from the request's arrival
// to its first token (queueing included), `predicted_ms` from there to the last token.
struct NativeTimings {
  std::int32_t cache_n = 0;   // prompt tokens reused from the cache
  std::int32_t prompt_n = 0;  // prompt tokens computed
  double prompt_ms = 0.0;
  std::int32_t predicted_n = 0;
  double predicted_ms = 0.0;
};

struct NativeCompletion {
  std::string content;
  std::string model;
  std::int32_t tokens_predicted = 0;
  std::int32_t tokens_evaluated = 0;  // the prompt's tokens
  std::int32_t tokens_cached = 0;     // of them, reused from the cache
  bool has_new_line = false;          // the answer holds a line break
  bool truncated = false;             // the request's text was cut to fit (an infill's parts)
  std::string_view stop_type;         // "eos", "word" (a stop string), "limit" (max tokens)
  std::string stopping_word;          // the stop string that ended it, with "word"
  NativeTimings timings;
};

// The whole answer: "stop": true. With `fields` (llama-server's response_fields) only those,
// each a path of keys ("timings/prompt_n") naming its value as a key of its own; a path that
// names nothing is left out.
std::string native_completion_json(const NativeCompletion& c,
                                   std::span<const std::string> fields = {});
// A streamed piece: "stop": false.
std::string native_chunk_json(std::string_view content, std::int32_t tokens_predicted,
                              std::int32_t tokens_evaluated);

}  // namespace troupe::api
