#pragma once
// Router: which endpoint a request line names. Pure; no I/O, safe from any thread.

#include <string>
#include <string_view>

namespace troupe::server {

enum class Endpoint {
  chat_completions,
  completions,
  models,
  health,
  metrics,
  tokenize,
  detokenize,
  apply_template,
  embeddings,
  native_embeddings,  // llama-server's POST /embedding (its own answer shape)
  rerank,
  messages,               // Anthropic's POST /v1/messages
  count_tokens,           // Anthropic's POST /v1/messages/count_tokens
  responses,              // OpenAI's POST /v1/responses
  response_item,          // GET / DELETE /v1/responses/{id}
  response_input_tokens,  // OpenAI's POST /v1/responses/input_tokens
  chat_input_tokens,      // llama-server's POST /v1/chat/completions/input_tokens
  webui,                  // GET / HEAD of the chat page: "/" and "/webui/..." (webui/assets.hpp)
  model_load,             // POST /models/load {"model": ID}
  model_unload,           // POST /models/unload {"model": ID}
  infill,                 // llama-server's POST /infill (fill in the middle)
  native_completion,      // llama-server's POST /completion (its own answer shape)
  props,                  // llama-server's GET /props (?model=ID)
  slots,                  // llama-server's GET /slots (?model=ID, ?fail_on_no_slot=1)
  slot_action,            // llama-server's POST /slots/{id}?action=save|restore|erase
  // Ollama's routes, together from ollama_chat to ollama_version (is_ollama).
  ollama_chat,        // Ollama's POST /api/chat
  ollama_generate,    // Ollama's POST /api/generate
  ollama_embed,       // Ollama's POST /api/embed
  ollama_embeddings,  // Ollama's POST /api/embeddings (legacy)
  ollama_tags,        // Ollama's GET /api/tags
  ollama_ps,          // Ollama's GET /api/ps
  ollama_show,        // Ollama's POST /api/show
  ollama_version,     // Ollama's GET /api/version
  lora_adapters,      // llama-server's GET /lora-adapters (?model=ID)
  lora_adapters_set,  // llama-server's POST /lora-adapters (?model=ID)
  unknown,
};

enum class Method { get, post, options, del, head, other };

struct RouteMatch {
  Endpoint endpoint = Endpoint::unknown;
  bool method_allowed = false;     // false with a known endpoint: 405
  Method allowed = Method::other;  // the one method the endpoint takes (for the Allow header)
};

// Resolves a request target (path, query ignored) and method; a path two endpoints share
// (GET and POST /lora-adapters) resolves by the method. The OpenAI routes answer with
// and without the /v1 prefix, like llama-server. "/" and every path under "/webui/" are the
// chat page's (GET and HEAD; whether the file exists is the page handler's question).
RouteMatch resolve(Method method, std::string_view target);

// The label used in metrics and logs: "chat_completions", ..., "unknown".
std::string_view endpoint_name(Endpoint e);

// The value of the query parameter `name` in `target` ("/props?model=a%20b" -> "a b"),
// percent-decoded, '+' read as a space; empty when absent.
std::string query_param(std::string_view target, std::string_view name);

// The id of a /v1/responses/{id} target (empty for other targets).
std::string_view response_id(std::string_view target);

// The id of a /slots/{id} target, as written (empty for other targets).
std::string_view slot_id(std::string_view target);

// "GET" or "POST" for the Allow header.
std::string_view method_name(Method m);

// True for endpoints that need the API key when one is configured (all but health, metrics
// and the chat page, which asks for the key itself).
bool needs_auth(Endpoint e);

// Compares a presented "Authorization" header value with "Bearer <key>" in constant time.
bool authorized(std::string_view authorization_header, std::string_view api_key);

// Compares a presented "x-api-key" header value (Anthropic's clients) with the key in constant
// time.
bool authorized_api_key(std::string_view x_api_key_header, std::string_view api_key);

// True for the endpoints that answer in Anthropic's shapes (errors included).
bool is_anthropic(Endpoint e);
// Ollama's /api/ routes: errors in Ollama's shape ({"error": "..."}).
bool is_ollama(Endpoint e);

}  // namespace troupe::server
