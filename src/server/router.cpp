#include "server/router.hpp"

#include <array>
#include <utility>

namespace troupe::server {
namespace {

struct RouteEntry {
  std::string_view path;
  Endpoint endpoint;
  Method method;
};

constexpr std::array routes = {
    RouteEntry{"/v1/chat/completions", Endpoint::chat_completions, Method::post},
    RouteEntry{"/chat/completions", Endpoint::chat_completions, Method::post},
    RouteEntry{"/v1/completions", Endpoint::completions, Method::post},
    RouteEntry{"/completions", Endpoint::completions, Method::post},
    RouteEntry{"/infill", Endpoint::infill, Method::post},
    RouteEntry{"/completion", Endpoint::native_completion, Method::post},
    RouteEntry{"/props", Endpoint::props, Method::get},
    RouteEntry{"/slots", Endpoint::slots, Method::get},
    RouteEntry{"/api/chat", Endpoint::ollama_chat, Method::post},
    RouteEntry{"/api/generate", Endpoint::ollama_generate, Method::post},
    RouteEntry{"/api/embed", Endpoint::ollama_embed, Method::post},
    RouteEntry{"/api/embeddings", Endpoint::ollama_embeddings, Method::post},
    RouteEntry{"/api/tags", Endpoint::ollama_tags, Method::get},
    RouteEntry{"/api/ps", Endpoint::ollama_ps, Method::get},
    RouteEntry{"/api/show", Endpoint::ollama_show, Method::post},
    RouteEntry{"/api/version", Endpoint::ollama_version, Method::get},
    RouteEntry{"/lora-adapters", Endpoint::lora_adapters, Method::get},
    RouteEntry{"/lora-adapters", Endpoint::lora_adapters_set, Method::post},
    RouteEntry{"/v1/models", Endpoint::models, Method::get},
    RouteEntry{"/models", Endpoint::models, Method::get},
    RouteEntry{"/health", Endpoint::health, Method::get},
    RouteEntry{"/v1/health", Endpoint::health, Method::get},
    RouteEntry{"/metrics", Endpoint::metrics, Method::get},
    RouteEntry{"/tokenize", Endpoint::tokenize, Method::post},
    RouteEntry{"/detokenize", Endpoint::detokenize, Method::post},
    RouteEntry{"/apply-template", Endpoint::apply_template, Method::post},
    RouteEntry{"/v1/embeddings", Endpoint::embeddings, Method::post},
    RouteEntry{"/embeddings", Endpoint::embeddings, Method::post},
    RouteEntry{"/embedding", Endpoint::native_embeddings, Method::post},
    RouteEntry{"/v1/rerank", Endpoint::rerank, Method::post},
    RouteEntry{"/rerank", Endpoint::rerank, Method::post},
    RouteEntry{"/v2/rerank", Endpoint::rerank, Method::post},
    RouteEntry{"/reranking", Endpoint::rerank, Method::post},
    RouteEntry{"/v1/reranking", Endpoint::rerank, Method::post},
    RouteEntry{"/v1/messages", Endpoint::messages, Method::post},
    RouteEntry{"/messages", Endpoint::messages, Method::post},
    RouteEntry{"/v1/messages/count_tokens", Endpoint::count_tokens, Method::post},
    RouteEntry{"/v1/responses", Endpoint::responses, Method::post},
    RouteEntry{"/responses", Endpoint::responses, Method::post},
    RouteEntry{"/v1/responses/input_tokens", Endpoint::response_input_tokens, Method::post},
    RouteEntry{"/responses/input_tokens", Endpoint::response_input_tokens, Method::post},
    RouteEntry{"/v1/chat/completions/input_tokens", Endpoint::chat_input_tokens, Method::post},
    RouteEntry{"/chat/completions/input_tokens", Endpoint::chat_input_tokens, Method::post},
    RouteEntry{"/messages/count_tokens", Endpoint::count_tokens, Method::post},
    RouteEntry{"/models/load", Endpoint::model_load, Method::post},
    RouteEntry{"/v1/models/load", Endpoint::model_load, Method::post},
    RouteEntry{"/models/unload", Endpoint::model_unload, Method::post},
    RouteEntry{"/v1/models/unload", Endpoint::model_unload, Method::post},
};

}  // namespace

RouteMatch resolve(Method method, std::string_view target) {
  const auto q = target.find('?');
  std::string_view path = target.substr(0, q);
  if (path.size() > 1 && path.back() == '/')
    path.remove_suffix(1);
  if (path == "/" || path.starts_with("/webui/")) {
    const bool ok = method == Method::get || method == Method::head || method == Method::options;
    return RouteMatch{Endpoint::webui, ok, Method::get};
  }
  // The fixed paths first: /v1/responses/input_tokens is not a stored response's id.
  const RouteEntry* first = nullptr;
  for (const auto& r : routes) {
    if (r.path != path)
      continue;
    if (method == r.method)
      return RouteMatch{r.endpoint, true, r.method};
    if (first == nullptr)
      first = &r;
  }
  if (first != nullptr)
    return RouteMatch{first->endpoint, method == Method::options, first->method};
  if (!slot_id(path).empty()) {
    const bool ok = method == Method::post || method == Method::options;
    return RouteMatch{Endpoint::slot_action, ok, Method::post};
  }
  if (!response_id(path).empty()) {
    const bool ok = method == Method::get || method == Method::del || method == Method::options;
    return RouteMatch{Endpoint::response_item, ok, Method::get};
  }
  return RouteMatch{};
}

std::string_view endpoint_name(Endpoint e) {
  switch (e) {
    case Endpoint::chat_completions:
      return "chat_completions";
    case Endpoint::completions:
      return "completions";
    case Endpoint::models:
      return "models";
    case Endpoint::health:
      return "health";
    case Endpoint::metrics:
      return "metrics";
    case Endpoint::tokenize:
      return "tokenize";
    case Endpoint::detokenize:
      return "detokenize";
    case Endpoint::apply_template:
      return "apply_template";
    case Endpoint::embeddings:
      return "embeddings";
    case Endpoint::native_embeddings:
      return "embedding";
    case Endpoint::rerank:
      return "rerank";
    case Endpoint::messages:
      return "messages";
    case Endpoint::count_tokens:
      return "count_tokens";
    case Endpoint::responses:
      return "responses";
    case Endpoint::response_item:
      return "response_item";
    case Endpoint::response_input_tokens:
      return "response_input_tokens";
    case Endpoint::chat_input_tokens:
      return "chat_input_tokens";
    case Endpoint::webui:
      return "webui";
    case Endpoint::model_load:
      return "model_load";
    case Endpoint::model_unload:
      return "model_unload";
    case Endpoint::infill:
      return "infill";
    case Endpoint::native_completion:
      return "completion";
    case Endpoint::lora_adapters:
      return "lora_adapters";
    case Endpoint::lora_adapters_set:
      return "lora_adapters_set";
    case Endpoint::props:
      return "props";
    case Endpoint::slots:
      return "slots";
    case Endpoint::slot_action:
      return "slot_action";
    case Endpoint::ollama_chat:
      return "ollama_chat";
    case Endpoint::ollama_generate:
      return "ollama_generate";
    case Endpoint::ollama_embed:
      return "ollama_embed";
    case Endpoint::ollama_embeddings:
      return "ollama_embeddings";
    case Endpoint::ollama_tags:
      return "ollama_tags";
    case Endpoint::ollama_ps:
      return "ollama_ps";
    case Endpoint::ollama_show:
      return "ollama_show";
    case Endpoint::ollama_version:
      return "ollama_version";
    case Endpoint::unknown:
      break;
  }
  return "unknown";
}

std::string query_param(std::string_view target, std::string_view name) {
  const auto q = target.find('?');
  if (q == std::string_view::npos)
    return {};
  std::string_view query = target.substr(q + 1);
  const auto hex = [](char c) -> int {
    if (c >= '0' && c <= '9')
      return c - '0';
    if (c >= 'a' && c <= 'f')
      return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
      return c - 'A' + 10;
    return -1;
  };
  while (!query.empty()) {
    const auto amp = query.find('&');
    const std::string_view pair = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view() : query.substr(amp + 1);
    const auto eq = pair.find('=');
    if (pair.substr(0, eq) != name)
      continue;
    const std::string_view raw =
        eq == std::string_view::npos ? std::string_view() : pair.substr(eq + 1);
    std::string out;
    out.reserve(raw.size());
    for (std::size_t i = 0; i < raw.size(); ++i) {
      if (raw[i] == '+') {
        out += ' ';
      } else if (raw[i] == '%' && i + 2 < raw.size() && hex(raw[i + 1]) >= 0 &&
                 hex(raw[i + 2]) >= 0) {
        out += static_cast<char>(hex(raw[i + 1]) * 16 + hex(raw[i + 2]));
        i += 2;
      } else {
        out += raw[i];
      }
    }
    return out;
  }
  return {};
}

std::string_view response_id(std::string_view target) {
  std::string_view path = target.substr(0, target.find('?'));
  for (std::string_view prefix : {"/v1/responses/", "/responses/"}) {
    if (path.starts_with(prefix)) {
      path.remove_prefix(prefix.size());
      if (!path.empty() && path.back() == '/')
        path.remove_suffix(1);
      return path.find('/') == std::string_view::npos ? path : std::string_view();
    }
  }
  return {};
}

std::string_view slot_id(std::string_view target) {
  std::string_view path = target.substr(0, target.find('?'));
  constexpr std::string_view prefix = "/slots/";
  if (!path.starts_with(prefix))
    return {};
  path.remove_prefix(prefix.size());
  if (!path.empty() && path.back() == '/')
    path.remove_suffix(1);
  return path.find('/') == std::string_view::npos ? path : std::string_view();
}

std::string_view method_name(Method m) {
  switch (m) {
    case Method::get:
      return "GET";
    case Method::post:
      return "POST";
    case Method::options:
      return "OPTIONS";
    case Method::del:
      return "DELETE";
    case Method::head:
      return "HEAD";
    case Method::other:
      break;
  }
  return "OTHER";
}

bool is_anthropic(Endpoint e) {
  return e == Endpoint::messages || e == Endpoint::count_tokens;
}

bool is_ollama(Endpoint e) {
  return e >= Endpoint::ollama_chat && e <= Endpoint::ollama_version;
}

bool needs_auth(Endpoint e) {
  return e != Endpoint::health && e != Endpoint::metrics && e != Endpoint::webui;
}

bool authorized(std::string_view header, std::string_view api_key) {
  constexpr std::string_view scheme = "Bearer ";
  if (header.size() < scheme.size())
    return false;
  // Scheme is case-insensitive (RFC 7235).
  for (std::size_t i = 0; i < scheme.size(); ++i) {
    if ((header[i] | 0x20) != (scheme[i] | 0x20))
      return false;
  }
  return authorized_api_key(header.substr(scheme.size()), api_key);
}

bool authorized_api_key(std::string_view key, std::string_view api_key) {
  // Length leaks; contents do not.
  if (key.empty() || key.size() != api_key.size())
    return false;
  unsigned char diff = 0;
  for (std::size_t i = 0; i < key.size(); ++i) {
    diff |= static_cast<unsigned char>(key[i] ^ api_key[i]);
  }
  return diff == 0;
}

}  // namespace troupe::server
