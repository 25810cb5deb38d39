#pragma once
// Errors as values, shared by every layer. A layer maps `Errc` to its own outward form
// (the HTTP server to a status code and an OpenAI error object, the remote layer to a frame).

#include <string>
#include <string_view>
#include <utility>

namespace troupe {

// What went wrong, coarse enough to map onto HTTP statuses and OpenAI error types.
enum class Errc {
  invalid_request,  // the caller's input is wrong (400)
  prompt_too_long,  // the prompt does not fit the context (400)
  unauthorized,     // missing or wrong credentials (401)
  not_found,        // unknown model, route or actor (404)
  overloaded,       // a bounded queue is full; retry later (503)
  unavailable,      // not ready yet, shutting down, or a peer is gone (503)
  cancelled,        // the caller cancelled
  timeout,          // a deadline passed
  engine_failed,    // the inference engine hit a fatal error (500)
  internal,         // a bug or an unexpected condition (500)
};

// Short stable name of an error class ("invalid_request", ...).
std::string_view errc_name(Errc e) noexcept;

// An error with a human-readable message and, for request errors, the offending parameter.
struct Error {
  Errc code = Errc::internal;
  std::string message;
  std::string param;  // e.g. "temperature"; empty when not about one parameter

  Error() = default;
  Error(Errc c, std::string msg, std::string p = {})
      : code(c), message(std::move(msg)), param(std::move(p)) {}
  friend bool operator==(const Error&, const Error&) = default;
};

}  // namespace troupe
