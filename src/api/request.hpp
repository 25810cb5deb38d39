#pragma once
// OpenAI request bodies as plain structs, parsed and validated from JSON.
//
// Parsing never throws for bad input: every malformed body, wrong type, out-of-range value or
// invalid UTF-8 is an Error{invalid_request} naming the offending parameter, so the HTTP layer
// answers 400. Unknown fields are ignored. Fields left unset keep "use the default" meaning
// (std::nullopt): the server fills them from the model (e.g. max_tokens from the context size).
//
// Pure functions, safe to call from any thread.

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "chatfmt/types.hpp"
#include "util/result.hpp"

namespace boost::json {
class value;
}

namespace troupe::api {

// A message of the conversation (chatfmt's plain type): role "system" ("developer" is read as
// "system"), "user", "assistant" (content may be null with tool_calls; reasoning_content) or
// "tool" (tool_call_id required). Text parts of an array content are joined with '\n'.
using Message = chatfmt::Message;

// Fields shared by chat and text completions.
// The most choices one request may ask for (n), OpenAI's bound. Every choice is a sequence of
// its own in the engine; the server keeps at most choices_at_once of one request's choices
// there (running or queued) and starts the next as one finishes, so that a large n neither
// fills the queue nor is refused by it.
inline constexpr std::int32_t max_choices = 128;
inline constexpr std::int32_t choices_at_once = 16;

struct GenerationParams {
  std::string model;                        // empty: the default model
  std::optional<std::int32_t> max_tokens;   // max_completion_tokens or max_tokens, >= 1
  std::optional<double> temperature;        // [0, 2]
  std::optional<double> top_p;              // (0, 1]
  std::optional<std::int32_t> top_k;        // >= 0 (-1 is read as 0: off)
  std::optional<double> min_p;              // [0, 1]
  std::optional<double> presence_penalty;   // [-2, 2]
  std::optional<double> frequency_penalty;  // [-2, 2]
  std::optional<double> repeat_penalty;     // (0, 10]
  std::optional<std::int64_t> seed;
  // logit_bias: an object {"<token id or text>": bias} or llama-server's array
  // [[id or text, bias], ...]; a bias is a number in [-100, 100] or false (never: -inf). A key
  // of digits is a token id; any other key (and an array's string) is a text whose every token
  // gets the bias, tokenized by the engine that serves the request.
  std::vector<std::pair<std::int32_t, float>> logit_bias;
  std::vector<std::pair<std::string, float>> logit_bias_text;
  // llama-server's samplers (unset: off, or llama-server's default value).
  std::optional<std::int32_t> repeat_last_n;                      // >= -1 (-1: the context)
  std::optional<double> typical_p;                                // (0, 1]
  std::optional<double> top_n_sigma;                              // any number; < 0 is off
  std::optional<double> dynatemp_range;                           // >= 0
  std::optional<double> dynatemp_exponent;                        // >= 0
  std::optional<double> dry_multiplier;                           // >= 0
  std::optional<double> dry_base;                                 // >= 1
  std::optional<std::int32_t> dry_allowed_length;                 // >= 0
  std::optional<std::int32_t> dry_penalty_last_n;                 // >= -1 (-1: the context)
  std::optional<std::vector<std::string>> dry_sequence_breakers;  // 1..32 non-empty strings
  std::optional<double> xtc_probability;                          // [0, 1]
  std::optional<double> xtc_threshold;                            // [0, 1]
  std::optional<std::int32_t> mirostat;                           // 0, 1 or 2
  std::optional<double> mirostat_tau;                             // >= 0
  std::optional<double> mirostat_eta;                             // >= 0
  // llama-server's `samplers`: the chain's stages in order, canonical names ("penalties",
  // "dry", "top_n_sigma", "top_k", "typ_p", "top_p", "min_p", "xtc", "temperature",
  // "infill"), each once. Empty: the default order.
  std::vector<std::string> samplers;
  std::vector<std::string> stop;  // at most 4, none empty
  // Choices to generate from the one prompt, 1..max_choices (OpenAI's n). Choice i > 0 samples
  // with seed + i when a seed is given, so that the choices differ.
  std::int32_t n = 1;
  bool stream = false;
  bool include_usage = false;  // stream_options.include_usage
  bool ignore_eos = false;
  std::int32_t min_tokens = 0;
  // llama-server's code-completion limits (engine::StopParams): 0 is off.
  std::int32_t n_indent = 0;
  std::int32_t max_predict_ms = 0;  // t_max_predict_ms
  std::string user;
  // Structured output, at most one of the two: the JSON text of a JSON schema the answer
  // must follow (from response_format json_object / json_schema, or llama-server's
  // `json_schema`; `schema_param` names the field, for errors about the schema itself), or a
  // GBNF grammar (llama-server's `grammar`).
  std::optional<std::string> json_schema;
  std::string schema_param;
  std::optional<std::string> grammar;
  // Ollama's keep_alive: seconds (a number) or a duration ("5m", "30s", "1h"); 0 unloads the
  // model once it is idle, a negative value keeps it loaded (stored as -1 ms).
  std::optional<std::chrono::milliseconds> keep_alive;
  // OpenAI's prediction {"type": "content", "content": text or text parts}: what the answer is
  // expected to repeat (engine::Task::prediction). Empty: none.
  std::string prediction;
  // llama-server's `lora`: [{"id": 0, "scale": 0.5}, ...] as (id, scale) pairs (adapters a
  // request leaves out run at scale 0); unset or [] (as in llama-server): the server-wide
  // scales.
  std::optional<std::vector<std::pair<std::int32_t, float>>> lora;
  // llama-server's `id_slot`: the sequence slot to run in (engine::Task::id_slot); -1 or unset:
  // any.
  std::optional<std::int32_t> id_slot;
  // llama-server's `n_cache_reuse` (engine::Task::n_cache_reuse); unset: the server's.
  std::optional<std::int32_t> n_cache_reuse;
  // A conversation's reasoning budget (engine::Task::reasoning_budget): llama-server's
  // `reasoning_budget_tokens` (or `thinking_budget_tokens`) and `reasoning_budget_message`,
  // Anthropic's `thinking.budget_tokens`; unset: the server's.
  std::optional<std::int32_t> reasoning_budget;
  std::optional<std::string> reasoning_budget_message;
  // llama-server's `sse_ping_interval`: seconds of silence before a stream's keep-alive
  // comment (-1 or 0: none); unset: the server's --sse-ping-interval.
  std::optional<std::int32_t> sse_ping_interval;
};

class JsonReader;

// llama-server's LoRA list, [{"id": 0, "scale": 0.5}, ...], as (id, scale) pairs (a request's
// `lora`, POST /lora-adapters' body). Errors: invalid_request, param "lora".
Result<std::vector<std::pair<std::int32_t, float>>> read_lora_entries(const boost::json::value& v);

// Reads keep_alive from `r` into `out` (see GenerationParams::keep_alive).
void read_keep_alive(JsonReader& r, std::optional<std::chrono::milliseconds>& out);

// OpenAI's `tools` ([{"type": "function", "function": {"name", "description", "parameters"}}],
// names unique; Ollama's have the same shape) into chat.tools.
std::optional<Error> read_function_tools(const JsonReader& r, chatfmt::ChatOptions& chat);

// llama-server's `lora` field (read_lora_entries) into `out`; [] leaves it unset (llama-server:
// the server-wide scales). Fails `r` with param "lora".
void read_lora(JsonReader& r, std::optional<std::vector<std::pair<std::int32_t, float>>>& out);

struct ChatRequest {
  GenerationParams params;
  std::vector<Message> messages;  // at least one
  bool logprobs = false;
  std::int32_t top_logprobs = 0;  // [0, 20]; > 0 requires logprobs
  // tools (unique names, parameters an object), tool_choice (naming one of the tools),
  // parallel_tool_calls, reasoning_format, reasoning_effort, chat_template_kwargs; `stream`
  // is copied from params. Tool parameter schemas are checked against what llama.cpp can turn
  // into a grammar by the server (chatfmt::check_tool_schema), not here.
  chatfmt::ChatOptions chat;
};

// A completion prompt: text, or token ids.
using CompletionPrompt = std::variant<std::string, std::vector<std::int32_t>>;

// The most answers (prompts times n) one completion request may ask for.
inline constexpr std::int32_t max_answers = 128;

struct CompletionRequest {
  GenerationParams params;
  // One or more prompts (OpenAI's list of prompts: a string, token ids, or a list of either);
  // each gets `params.n` answers, prompts.size() * n <= max_answers. Never empty once parsed.
  std::vector<CompletionPrompt> prompts;
  std::optional<std::int32_t> logprobs;  // [0, 5]: report the chosen token and this many more
  // OpenAI's `suffix`: the text after the insertion; each prompt (then a text) is the text
  // before it, and the model fills in the middle. Empty: none.
  std::string suffix;
};

// What llama-server's own answer shape (/completion, /infill) can carry beyond OpenAI's.
struct NativeOptions {
  // `response_fields`: the whole answer's object holds only these fields, each a path
  // ("timings/prompt_n") keyed by itself; <= 64. Empty: every field.
  std::vector<std::string> response_fields;
  // `n_probs` (0..20): each token's log-probability and this many alternatives
  // (`completion_probabilities`, llama-server's shape).
  std::int32_t n_probs = 0;
  bool return_tokens = false;      // the answer's token ids (`tokens`)
  bool timings_per_token = false;  // `timings` in every streamed piece
};

// llama-server's POST /completion: a text completion answered in llama-server's shape. Its
// `prompt` may hold several prompts, as /v1/completions'; `logprobs` is read as `n_probs`
// when that is absent and `n_cmpl` as `n` (llama-server's aliases); `suffix` is refused
// (/infill fills in the middle).
struct NativeCompletionRequest {
  CompletionRequest completion;
  NativeOptions native;
};

// llama-server's POST /infill: fill in the middle of a file with its other files as context.
// `completion.prompt` is the text llama-server calls `prompt` (the middle's start, optional);
// `completion.params` the generation fields /completions takes.
struct InfillRequest {
  CompletionRequest completion;
  std::string input_prefix;                                      // required
  std::string input_suffix;                                      // required
  std::vector<std::pair<std::string, std::string>> input_extra;  // (filename, text), <= 1024
  NativeOptions native;
};

// The body of POST /models/load and /models/unload: {"model": "ID"}. Returns the id.
// Errors: invalid_request (param "model") when it is not an object with a non-empty string.
Result<std::string> parse_model_action_request(std::string_view body);

// llama-server's POST /tokenize body.
struct TokenizeRequest {
  std::string model;
  std::string content;
  bool add_special = false;
  bool parse_special = true;
  bool with_pieces = false;
};

// llama-server's POST /detokenize body.
struct DetokenizeRequest {
  std::string model;
  std::vector<std::int32_t> tokens;
};

Result<ChatRequest> parse_chat_request(std::string_view body);

// Errors: a body that is not a JSON object, bad field values, more than max_answers answers,
// a prompt list mixing token ids with texts inside one prompt.
Result<CompletionRequest> parse_completion_request(std::string_view body);
// Errors as parse_completion_request's, and `suffix` (see NativeCompletionRequest).
Result<NativeCompletionRequest> parse_native_completion_request(std::string_view body);
// Errors as parse_completion_request's, and: input_prefix or input_suffix missing or not a
// string, input_extra not an array of {"text": string, "filename"?: string}.
Result<InfillRequest> parse_infill_request(std::string_view body);
Result<TokenizeRequest> parse_tokenize_request(std::string_view body);
Result<DetokenizeRequest> parse_detokenize_request(std::string_view body);

}  // namespace troupe::api
