#pragma once
// Ollama's API: POST /api/chat and /api/generate read into troupe's own chat and completion
// requests, POST /api/embed and /api/embeddings, and the answers Ollama's clients parse
// (newline-delimited JSON when streamed, the default), GET /api/tags, /api/ps, /api/version
// and POST /api/show. Ollama's shapes stay in this file.
//
// Parsing never throws for bad input: a malformed body or a field troupe cannot honour is an
// Error{invalid_request} (400, written as Ollama's {"error": "..."}). Unknown fields and unknown
// `options` are ignored, as Ollama does.
//
// Pure functions, safe to call from any thread.

#include <chrono>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "api/request.hpp"
#include "api/response.hpp"
#include "chatfmt/types.hpp"
#include "util/result.hpp"

namespace troupe::api {

// What POST /api/chat or /api/generate asks for.
struct OllamaGenerationRequest {
  std::string model;  // required by Ollama; as the client wrote it ("name:latest" included)
  // /api/chat, and /api/generate's prompt as a user turn after its `system`: a chat. A raw
  // /api/generate (`raw`), or one with a `suffix` (fill in the middle): a text completion.
  // params.stream is Ollama's `stream` (true when absent).
  std::variant<ChatRequest, CompletionRequest> request;
  // No messages, or an empty prompt: Ollama only loads the model (and with keep_alive 0
  // unloads it) and answers done_reason "load" / "unload".
  bool load_only = false;

  const GenerationParams& params() const;
  GenerationParams& params();
};

Result<OllamaGenerationRequest> parse_ollama_chat_request(std::string_view body);
Result<OllamaGenerationRequest> parse_ollama_generate_request(std::string_view body);

// POST /api/embed ({"model", "input": text or texts, "truncate", "dimensions"}) and the legacy
// POST /api/embeddings ({"model", "prompt"}: one raw vector).
struct OllamaEmbedRequest {
  std::string model;
  std::vector<std::string> inputs;         // empty: only load the model
  bool truncate = true;                    // Ollama's default: cut an input longer than the limit
  std::optional<std::int32_t> dimensions;  // keep the first ones, normalised again
  std::optional<std::chrono::milliseconds> keep_alive;
  bool legacy = false;  // /api/embeddings: `prompt`, the raw (not normalised) vector
};

Result<OllamaEmbedRequest> parse_ollama_embed_request(std::string_view body);
Result<OllamaEmbedRequest> parse_ollama_embeddings_request(std::string_view body);

// POST /api/show's {"model": NAME}. Errors: invalid_request without a model.
Result<std::string> parse_ollama_show_request(std::string_view body);

// "2023-08-04T19:22:45.499127Z": RFC 3339 in UTC with nanoseconds, as Ollama writes times.
std::string ollama_time(std::chrono::system_clock::time_point t);

// An answer's counts and times (nanoseconds), in its last object.
struct OllamaMetrics {
  std::int64_t total_ns = 0;       // from the request's arrival to the last token
  std::int64_t load_ns = 0;        // loading the model (0: it was loaded)
  std::int32_t prompt_tokens = 0;  // prompt_eval_count
  std::int64_t prompt_ns = 0;      // to the first token
  std::int32_t output_tokens = 0;  // eval_count
  std::int64_t output_ns = 0;      // from the first token to the last
};

// One object of an answer. Streamed: one per token's text (done false), then the last one
// (done true) with `done_reason` ("stop", "length", "load", "unload") and the metrics; not
// streamed: one object with the whole answer and done true.
struct OllamaAnswer {
  bool chat = true;  // /api/chat's "message": {...}, else /api/generate's "response"
  std::string_view model;
  std::string_view created_at;
  std::string_view content;
  std::string_view thinking;
  std::span<const chatfmt::ToolCall> tool_calls;  // chat only; arguments are JSON text
  const std::vector<TokenLogprob>* logprobs = nullptr;
  bool done = false;
  std::string_view done_reason;
  const OllamaMetrics* metrics = nullptr;  // with done: the counts and times
};
std::string ollama_answer_json(const OllamaAnswer& a);

// {"error": message}: Ollama's error body (also a streamed line when an answer fails).
std::string ollama_error_json(std::string_view message);

// A model as /api/tags and /api/ps list it.
struct OllamaModel {
  std::string name;
  std::int64_t modified = 0;  // unix seconds
  std::uint64_t size = 0;     // bytes
  std::string family;         // the architecture
  std::string parameter_size;
  std::string quantization;
};
std::string ollama_tags_json(std::span<const OllamaModel> models);
// /api/ps: the loaded models. troupe does not report when an idle model will unload: every
// `expires_at` is the far future Ollama writes for a model kept loaded.
std::string ollama_ps_json(std::span<const OllamaModel> models);

struct OllamaShow {
  OllamaModel model;
  std::string path;
  std::string chat_template;  // the Jinja template chat requests are rendered with
  std::int32_t n_ctx = 0;     // the served context per sequence
  std::uint64_t parameters = 0;
  std::vector<std::string>
      capabilities;  // "completion", "embedding", "tools", "thinking", "insert"
};
std::string ollama_show_json(const OllamaShow& s);

std::string ollama_version_json(std::string_view version);

// /api/embed's answer: the vectors in input order and the inputs' tokens.
std::string ollama_embed_json(std::string_view model, std::span<const std::vector<float>> vectors,
                              std::int64_t total_ns, std::int64_t prompt_tokens);
// /api/embeddings' answer: {"embedding": [...]} (empty when the prompt was).
std::string ollama_embedding_json(std::span<const float> vector);

}  // namespace troupe::api
