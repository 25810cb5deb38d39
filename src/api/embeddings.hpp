#pragma once
// The embeddings and rerank request bodies (POST /v1/embeddings, POST /v1/rerank) as plain
// structs, and their answers. Parsing never throws for bad input: every malformed body, wrong
// type or out-of-range value is an Error{invalid_request} naming the parameter (400).
//
// Pure functions, safe to call from any thread.

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "util/result.hpp"

namespace troupe::api {

// One input to embed: a text, or token ids.
using EmbeddingInput = std::variant<std::string, std::vector<std::int32_t>>;

enum class EncodingFormat { float_array, base64 };

// The most inputs one embeddings request may carry (OpenAI's limit).
inline constexpr std::size_t max_embedding_inputs = 2048;
// The largest p of a p-norm `embd_normalize` (higher powers overflow a double).
inline constexpr std::int32_t max_embd_normalize = 64;

struct EmbeddingsRequest {
  std::string model;  // empty: the default model
  // `input`: a string, an array of strings, an array of token ids (one input), or an array of
  // token arrays (and strings); 1..max_embedding_inputs, none of them empty.
  std::vector<EmbeddingInput> inputs;
  EncodingFormat encoding_format = EncodingFormat::float_array;  // "float" | "base64"
  // `dimensions`: refused (by the server) unless it equals the model's vector length.
  std::optional<std::int32_t> dimensions;
  bool truncate = false;  // inputs longer than the limit are cut instead of refused
  // llama-server's `embd_normalize`: 2 (Euclidean, default), -1 (none), 0 (largest magnitude
  // to 32760), 1 (taxicab), p > 2 (p-norm, up to max_embd_normalize).
  std::int32_t norm = 2;
  // The inputs came in llama-server's `content` instead of `input`: llama-server answers such a
  // request in its own shape (write_native_embeddings_response) on every embeddings path.
  bool content = false;
  // llama-server's `lora` (api::read_lora): the adapters' scales; unset: the server-wide ones.
  std::optional<std::vector<std::pair<std::int32_t, float>>> lora;
};

Result<EmbeddingsRequest> parse_embeddings_request(std::string_view body);

struct RerankRequest {
  std::string model;
  std::string query;                   // required, non-empty
  std::vector<std::string> documents;  // strings or {"text": ...}; 1..max_embedding_inputs
  std::optional<std::int32_t> top_n;   // >= 1; unset: all
  bool return_documents = false;       // echo each result's document text
  bool truncate = false;
  std::optional<std::vector<std::pair<std::int32_t, float>>> lora;  // as EmbeddingsRequest's
};

Result<RerankRequest> parse_rerank_request(std::string_view body);

// The answer to an embeddings request: one vector per input, in input order.
struct EmbeddingsAnswer {
  std::string model;
  std::vector<std::vector<float>> vectors;
  EncodingFormat encoding_format = EncodingFormat::float_array;
  std::int64_t prompt_tokens = 0;
};

// {"object":"list","data":[{"object":"embedding","embedding":[...] or "<base64>","index":i}],
//  "model":...,"usage":{"prompt_tokens":n,"total_tokens":n}}. base64: the little-endian
// float32 bytes, as OpenAI's clients decode them.
std::string write_embeddings_response(const EmbeddingsAnswer& a);

// llama-server's own answer (POST /embedding): [{"index": i, "embedding": [[...], ...]}], each
// input's vectors as rows: one pooled vector, or one per token (pooling none). `values[i]`
// holds input i's `rows[i]` rows one after another. No usage, no model: llama-server's shape.
std::string write_native_embeddings_response(const std::vector<std::vector<float>>& values,
                                             const std::vector<std::int32_t>& rows);

struct RerankAnswer {
  std::string model;
  std::vector<float> scores;                            // one per document, in document order
  const std::vector<std::string>* documents = nullptr;  // set: echo them
  std::optional<std::int32_t> top_n;
  std::int64_t prompt_tokens = 0;
};

// {"model":...,"object":"list","usage":{...},"results":[{"index","relevance_score",
//  "document":{"text"}?}]}: sorted by score, highest first (ties keep document order), cut to
// top_n.
std::string write_rerank_response(const RerankAnswer& a);

// Appends `[x,y,...]`: an embedding as JSON (a non-finite value, a random model's overflow,
// written 0: JSON has none).
void append_float_array(std::string& out, std::span<const float> v);

// Standard base64 (with padding) of `bytes`.
std::string base64_encode(std::string_view bytes);

}  // namespace troupe::api
