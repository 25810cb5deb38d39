#pragma once
// A small blocking HTTP/1.1 GET for the hub: http and https (OpenSSL, certificates verified
// against the system's trust store, which SSL_CERT_FILE / SSL_CERT_DIR can replace, and the
// host name checked), redirects followed, a bearer token sent only to the origin it was meant
// for, an optional Range, and the body handed over in pieces as it arrives.
//
// Redirects: 301, 302, 303, 307 and 308 are followed (at most `max_redirects`), relative
// locations against the URL that answered. The token goes with a request only while every hop
// so far stayed on the first URL's origin (scheme, host and port), as huggingface_hub's HTTP
// stack does: Hugging Face's /resolve/ URLs redirect to a CDN on another host, which must not
// see it. A redirect from https to http is refused.
//
// Each call runs its own io_context on the calling thread and returns when the exchange ends;
// every connect, handshake, write and read is bounded by `timeout`.
//
// Thread-safety: http_get may be called from any thread; the callbacks run on the calling
// thread.

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include "util/result.hpp"

namespace troupe::hub {

// An absolute http(s) URL split for a connection.
struct Url {
  std::string scheme;  // "http" or "https"
  std::string host;
  std::string port;            // "80"/"443" when the URL gives none
  std::string target;          // path and query, at least "/"
  std::string origin() const;  // "scheme://host:port"
  std::string str() const;     // the URL again (port only when not the default)
};

// Errors: invalid_request for anything but an absolute http or https URL with a host.
Result<Url> parse_url(std::string_view text);

// `location` (absolute or relative) resolved against `base`. Errors: invalid_request.
Result<Url> resolve_location(const Url& base, std::string_view location);

struct HttpOptions {
  std::string token;  // sent as "Authorization: Bearer <token>" (see above); empty: none
  std::string user_agent = "troupe";
  std::chrono::milliseconds timeout{std::chrono::seconds(60)};
  int max_redirects = 10;
};

// The final answer's status and the headers the hub uses.
struct ResponseHead {
  int status = 0;
  Url url;  // the URL that gave this answer (after redirects)
  std::optional<std::uint64_t> content_length;
  std::string content_range;  // "bytes 100-199/200" of a 206
  std::string link;           // the Link header (pagination)
  std::string commit;         // X-Repo-Commit, from any hop
  std::string error_message;  // X-Error-Message, from the answering hop
  std::string body;           // the body of a status >= 300 (at most 64 KiB); else empty
};

// Called once with the head of a 2xx answer before its body; an error stops the transfer.
using HeadHandler = std::function<Result<void>(const ResponseHead&)>;
// Called with each piece of a 2xx answer's body as it arrives; an error stops the transfer.
using BodyHandler = std::function<Result<void>(std::string_view)>;

// GET `url` (with "Range: bytes=<range_from>-" when range_from > 0). For a 2xx answer calls
// `on_head` then `on_body` per piece and returns the head once the body is complete; any other
// final status is returned as a head with its (bounded) body and no callback runs. Errors:
// unavailable for a connection, TLS or protocol failure (the message says which, and for a
// body cut short how many of its bytes arrived), timeout, invalid_request for a bad redirect,
// or whatever a callback returned.
Result<ResponseHead> http_get(const Url& url, const HttpOptions& options, std::uint64_t range_from,
                              const HeadHandler& on_head, const BodyHandler& on_body);

// GET `url` and return the whole body of a 2xx answer (at most `limit` bytes, else
// invalid_request) in `head.body`; other statuses as http_get returns them.
Result<ResponseHead> http_get_text(const Url& url, const HttpOptions& options,
                                   std::size_t limit = 64 << 20);

}  // namespace troupe::hub
