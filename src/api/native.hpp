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
#include <utility>
#include <vector>

#include "util/result.hpp"

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

// One token's probability and its alternatives' (llama-server's `completion_probabilities`):
// log-probabilities over the whole vocabulary before sampling.
struct NativeTokenProb {
  std::int32_t id = 0;
  std::string text;  // the token's piece (may be part of a UTF-8 character)
  float logprob = 0.0f;
};
struct NativeProb {
  NativeTokenProb token;
  std::vector<NativeTokenProb> top;
};

struct NativeCompletion {
  std::int32_t index = 0;  // the answer's place in a request with several
  std::string content;
  std::string model;
  std::vector<std::int32_t> tokens;  // with return_tokens: the answer's token ids
  std::vector<NativeProb> probs;     // with n_probs: one per token
  std::int32_t tokens_predicted = 0;
  std::int32_t tokens_evaluated = 0;  // the prompt's tokens
  std::int32_t tokens_cached = 0;     // of them, reused from the cache
  bool has_new_line = false;          // the answer holds a line break
  bool truncated = false;             // the request's text was cut to fit (an infill's parts)
  std::string_view stop_type;         // "eos", "word" (a stop string), "limit" (max tokens)
  std::string stopping_word;          // the stop string that ended it, with "word"
  NativeTimings timings;
};

// A streamed piece: its text, the tokens and probabilities it came from (when asked), and the
// timings so far with timings_per_token.
struct NativeChunk {
  std::int32_t index = 0;
  std::string_view content;
  std::span<const std::int32_t> tokens;
  std::span<const NativeProb> probs;
  std::int32_t tokens_predicted = 0;
  std::int32_t tokens_evaluated = 0;
  const NativeTimings* timings = nullptr;
};

// The whole answer: "stop": true. With `fields` (llama-server's response_fields) only those,
// each a path of keys ("timings/prompt_n") naming its value as a key of its own; a path that
// names nothing is left out.
std::string native_completion_json(const NativeCompletion& c,
                                   std::span<const std::string> fields = {});
// A streamed piece: "stop": false.
std::string native_chunk_json(const NativeChunk& c);

// llama-server's GET /props: the model's context, the server's slots and request defaults,
// the chat template and special tokens. Texts are written as valid UTF-8 (U+FFFD for bytes
// that are not).
struct NativeProps {
  std::string model_alias;
  std::string model_path;
  std::int32_t n_ctx = 0;
  std::int32_t total_slots = 0;
  std::string chat_template;
  std::string bos_token;
  std::string eos_token;
  std::string build_info;
  // default_generation_settings.params: what a request leaves unset.
  float temperature = 0.0f;
  std::int32_t top_k = 0;
  float top_p = 0.0f;
  float min_p = 0.0f;
  float repeat_penalty = 0.0f;
  std::int64_t seed = -1;       // -1: random per request
  std::int32_t n_predict = -1;  // -1: up to the context
  bool embeddings = false;
  bool endpoint_slots = false;  // GET /slots is served (not --no-slots)
};
std::string props_json(const NativeProps& p);

// llama-server's GET /slots: each slot's id, context, whether it drafts and is busy; a busy
// one also its task, prompt tokens (processed so far, found cached) and `next_token`
// (`has_next_token`, `has_new_line`, `n_remain`: tokens left, -1 without a limit, and
// `n_decoded`). No prompt or answer text.
struct NativeSlot {
  std::int32_t id = 0;
  bool busy = false;
  bool generating = false;
  std::uint64_t task = 0;
  std::int32_t n_prompt = 0;
  std::int32_t n_processed = 0;
  std::int32_t n_cached = 0;
  std::int32_t n_decoded = 0;
  std::int32_t max_tokens = -1;
};
std::string slots_json(std::span<const NativeSlot> slots, std::int32_t n_ctx, bool speculative);

// llama-server's GET /lora-adapters: [{"id", "path", "scale", "task_name", "prompt_prefix"}],
// an adapter's id being its index.
struct NativeLoraAdapter {
  std::string path;
  float scale = 0.0f;
  std::string task_name;
  std::string prompt_prefix;
};
std::string lora_adapters_json(std::span<const NativeLoraAdapter> adapters);

// POST /lora-adapters' body: [{"id": 0, "scale": 0.5}, ...] (adapters left out: scale 0).
// Errors: invalid_request.
Result<std::vector<std::pair<std::int32_t, float>>> parse_lora_adapters_request(
    std::string_view body);

// llama-server's POST /slots/ID?action=save|restore: the body's "filename", a plain file name
// in the server's --slot-save-path (valid_slot_filename). Errors: invalid_request.
Result<std::string> parse_slot_file_request(std::string_view body);

// A file name without directories: 1 to 255 bytes, no control characters, none of
// / \ : * ? " < > |, not starting or ending with a dot or a space (so neither "." nor "..").
bool valid_slot_filename(std::string_view name);

// The answer to a slot action, llama-server's shapes: save {"id_slot", "filename", "n_saved",
// "n_written", "timings": {"save_ms"}}, restore {"id_slot", "filename", "n_restored", "n_read",
// "timings": {"restore_ms"}}, erase {"id_slot", "n_erased"}. `action`: "save", "restore" or
// "erase".
struct NativeSlotAction {
  std::string_view action;
  std::int32_t id = 0;
  std::string_view filename;
  std::int32_t n_tokens = 0;
  std::size_t n_bytes = 0;
  double ms = 0.0;
};
std::string slot_action_json(const NativeSlotAction& a);

}  // namespace troupe::api
