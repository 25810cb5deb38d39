#pragma once
// OpenAI-style error objects and the HTTP status of each error class.
//
//   {"error": {"message": "...", "type": "invalid_request_error", "param": "top_p", "code": null}}
//
// Pure functions, safe to call from any thread.

#include <string>
#include <string_view>

#include "util/error.hpp"

namespace troupe::api {

// An error as an HTTP client sees it. Empty `param` / `code` are written as JSON null.
struct HttpError {
  int status = 500;
  std::string message;
  std::string type = "server_error";  // OpenAI's error "type"
  std::string param;
  std::string code;
  int retry_after_seconds = 0;  // > 0: the response carries Retry-After
};

// Maps an error value to its HTTP form: invalid_request/prompt_too_long 400, unauthorized 401,
// not_found 404 ("model_not_found" when about the model), overloaded 503 with Retry-After,
// unavailable 503, timeout 504, cancelled 499, engine_failed/internal 500.
HttpError to_http_error(const Error& error, int retry_after_seconds = 1);

// Shorthands for errors the HTTP layer finds itself.
HttpError invalid_request(std::string message, std::string param = {});
HttpError route_not_found(std::string_view method, std::string_view target);
HttpError method_not_allowed(std::string_view method, std::string_view target);
HttpError payload_too_large(std::size_t limit_bytes);
HttpError unauthorized_error();
// 501 "not_supported_error": a feature the server was not started with (llama-server's type).
HttpError not_supported(std::string message);

// The JSON body of an error response.
std::string to_json(const HttpError& error);

// Appends `s` to `out` as a JSON string literal (with quotes). `s` must be valid UTF-8.
void append_json_string(std::string& out, std::string_view s);

}  // namespace troupe::api
