#include "api/error.hpp"

#include <fmt/format.h>

namespace troupe::api {
namespace {

HttpError make(int status, std::string message, std::string type, std::string param = {},
               std::string code = {}) {
  HttpError e;
  e.status = status;
  e.message = std::move(message);
  e.type = std::move(type);
  e.param = std::move(param);
  e.code = std::move(code);
  return e;
}

void append_nullable(std::string& out, std::string_view s) {
  if (s.empty()) {
    out += "null";
  } else {
    append_json_string(out, s);
  }
}

}  // namespace

HttpError to_http_error(const Error& error, int retry_after_seconds) {
  switch (error.code) {
    case Errc::invalid_request:
      return make(400, error.message, "invalid_request_error", error.param);
    case Errc::prompt_too_long:
      return make(400, error.message, "invalid_request_error",
                  error.param.empty() ? "messages" : error.param, "context_length_exceeded");
    case Errc::unauthorized:
      return make(401, error.message, "invalid_request_error", {}, "invalid_api_key");
    case Errc::not_found: {
      const bool model = error.param == "model";
      return make(404, error.message, "invalid_request_error", error.param,
                  model ? "model_not_found" : "not_found");
    }
    case Errc::overloaded: {
      auto e = make(503, error.message, "server_error", {}, "overloaded");
      e.retry_after_seconds = retry_after_seconds;
      return e;
    }
    case Errc::unavailable:
      return make(503, error.message, "server_error", {}, "unavailable");
    case Errc::timeout:
      return make(504, error.message, "server_error", {}, "timeout");
    case Errc::cancelled:
      return make(499, error.message, "server_error", {}, "cancelled");
    case Errc::engine_failed:
      return make(500, error.message, "server_error", {}, "engine_failed");
    case Errc::internal:
      break;
  }
  return make(500, error.message, "server_error", {}, "internal_error");
}

HttpError invalid_request(std::string message, std::string param) {
  return make(400, std::move(message), "invalid_request_error", std::move(param));
}

HttpError not_supported(std::string message) {
  return make(501, std::move(message), "not_supported_error", {});
}

HttpError route_not_found(std::string_view method, std::string_view target) {
  return make(404, fmt::format("Unknown route: {} {}", method, target), "invalid_request_error", {},
              "not_found");
}

HttpError method_not_allowed(std::string_view method, std::string_view target) {
  return make(405, fmt::format("Method {} is not allowed on {}", method, target),
              "invalid_request_error", {}, "method_not_allowed");
}

HttpError payload_too_large(std::size_t limit_bytes) {
  return make(413, fmt::format("Request body is larger than the limit of {} bytes", limit_bytes),
              "invalid_request_error", {}, "payload_too_large");
}

HttpError unauthorized_error() {
  return make(
      401, "Missing or incorrect API key: send 'Authorization: Bearer <key>' or 'x-api-key: <key>'",
      "invalid_request_error", {}, "invalid_api_key");
}

std::string to_json(const HttpError& error) {
  std::string out = "{\"error\":{\"message\":";
  append_json_string(out, error.message);
  out += ",\"type\":";
  append_json_string(out, error.type);
  out += ",\"param\":";
  append_nullable(out, error.param);
  out += ",\"code\":";
  append_nullable(out, error.code);
  out += "}}";
  return out;
}

void append_json_string(std::string& out, std::string_view s) {
  static constexpr char hex[] = "0123456789abcdef";
  out.reserve(out.size() + s.size() + 2);
  out += '"';
  for (char c : s) {
    const auto u = static_cast<unsigned char>(c);
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (u < 0x20) {
          out += "\\u00";
          out += hex[u >> 4];
          out += hex[u & 0xf];
        } else {
          out += c;
        }
    }
  }
  out += '"';
}

}  // namespace troupe::api
