#include "hub/http.hpp"

#include <fmt/format.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/ssl/error.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/buffer_body.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/write.hpp>
#include <boost/url/parse.hpp>
#include <boost/url/url.hpp>
#include <cctype>
#include <limits>
#include <vector>

namespace troupe::hub {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = boost::beast::http;
namespace ssl = boost::asio::ssl;
using tcp = asio::ip::tcp;
using boost::system::error_code;
constexpr auto kTuple = asio::as_tuple(asio::use_awaitable);
constexpr std::size_t kErrorBodyLimit = 64 << 10;

Result<Url> url_from(const boost::urls::url_view& u, std::string_view text) {
  const std::string scheme = u.scheme();
  if (scheme != "http" && scheme != "https")
    return Error{Errc::invalid_request, fmt::format("'{}': only http and https URLs", text)};
  Url url;
  url.scheme = scheme;
  url.host = u.host_address();
  for (auto& c : url.host)  // host names compare without case (origins, certificates)
    c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (url.host.empty())
    return Error{Errc::invalid_request, fmt::format("'{}' has no host", text)};
  url.port = u.has_port() ? std::string(u.port()) : (scheme == "https" ? "443" : "80");
  url.target = std::string(u.encoded_path());
  if (url.target.empty())
    url.target = "/";
  if (u.has_query())
    url.target += "?" + std::string(u.encoded_query());
  return url;
}

bool default_port(const Url& u) {
  return (u.scheme == "https" && u.port == "443") || (u.scheme == "http" && u.port == "80");
}

std::string host_header(const Url& u) {
  const std::string host = u.host.find(':') != std::string::npos ? "[" + u.host + "]" : u.host;
  return default_port(u) ? host : host + ":" + u.port;
}

bool is_redirect(int status) {
  return status == 301 || status == 302 || status == 303 || status == 307 || status == 308;
}

// What one request on one connection gave: the head, and for a redirect where to.
struct Hop {
  ResponseHead head;
  std::string location;
};

// One http_get call: its options and callbacks, and the request loop over redirects.
class Getter {
 public:
  Getter(const HttpOptions& o, std::uint64_t range_from, const HeadHandler& on_head,
         const BodyHandler& on_body)
      : o_(o), range_from_(range_from), on_head_(on_head), on_body_(on_body) {}

  asio::awaitable<Result<ResponseHead>> run(Url url) {
    const std::string origin = url.origin();
    bool with_token = !o_.token.empty();
    std::string commit;
    for (int redirects = 0;; ++redirects) {
      with_token = with_token && url.origin() == origin;
      auto hop = co_await connect_and_get(url, with_token);
      if (!hop)
        co_return hop.error();
      if (!hop->head.commit.empty())
        commit = hop->head.commit;
      hop->head.commit = commit;
      if (hop->location.empty())
        co_return std::move(hop->head);
      if (redirects == o_.max_redirects)
        co_return Error{Errc::unavailable,
                        fmt::format("GET {}: more than {} redirects", url.str(), o_.max_redirects)};
      auto next = resolve_location(url, hop->location);
      if (!next)
        co_return next.error();
      if (url.scheme == "https" && next->scheme != "https")
        co_return Error{
            Errc::invalid_request,
            fmt::format("GET {}: refusing a redirect from https to {}", url.str(), next->str())};
      url = std::move(next).value();
    }
  }

 private:
  Error failed(const Url& url, std::string_view what, const error_code& ec) const {
    if (ec == beast::error::timeout)
      return Error{Errc::timeout, fmt::format("GET {}: {}: no answer within {} ms", url.str(), what,
                                              o_.timeout.count())};
    return Error{Errc::unavailable, fmt::format("GET {}: {}: {}", url.str(), what, ec.message())};
  }

  asio::awaitable<Result<Hop>> connect_and_get(const Url& url, bool with_token) {
    auto ex = co_await asio::this_coro::executor;
    tcp::resolver resolver(ex);
    beast::tcp_stream tcp(ex);
    tcp.expires_after(o_.timeout);
    auto [rec, endpoints] = co_await resolver.async_resolve(url.host, url.port, kTuple);
    if (rec)
      co_return failed(url, "cannot resolve the host", rec);
    auto [cec, ep] = co_await tcp.async_connect(endpoints, kTuple);
    if (cec)
      co_return failed(url, "cannot connect", cec);
    if (url.scheme == "http")
      co_return co_await exchange(tcp, tcp, url, with_token);
    ssl::context ctx(ssl::context::tls_client);
    ctx.set_default_verify_paths();
    ctx.set_verify_mode(ssl::verify_peer);
    ssl::stream<beast::tcp_stream&> tls(tcp, ctx);
    if (auto bad = verify_host(tls.native_handle(), url.host))
      co_return *bad;
    tcp.expires_after(o_.timeout);
    auto [hec] = co_await tls.async_handshake(ssl::stream_base::client, kTuple);
    if (hec) {
      const long v = SSL_get_verify_result(tls.native_handle());
      co_return failed(url,
                       v == X509_V_OK ? std::string("TLS handshake failed")
                                      : fmt::format("TLS certificate not trusted ({})",
                                                    X509_verify_cert_error_string(v)),
                       hec);
    }
    co_return co_await exchange(tls, tcp, url, with_token);
  }

  // SNI and the name (or address) the server's certificate must carry.
  static std::optional<Error> verify_host(SSL* ssl, const std::string& host) {
    error_code ec;
    const auto address = asio::ip::make_address(host, ec);
    X509_VERIFY_PARAM* param = SSL_get0_param(ssl);
    X509_VERIFY_PARAM_set_hostflags(param, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
    const bool ok = ec ? (SSL_set_tlsext_host_name(ssl, host.c_str()) == 1 &&
                          X509_VERIFY_PARAM_set1_host(param, host.c_str(), 0) == 1)
                       : X509_VERIFY_PARAM_set1_ip_asc(param, address.to_string().c_str()) == 1;
    if (!ok)
      return Error{Errc::internal, "TLS: cannot set the host name to verify: " + host};
    return std::nullopt;
  }

  template <class Stream>
  asio::awaitable<Result<Hop>> exchange(Stream& stream, beast::tcp_stream& tcp, const Url& url,
                                        bool with_token) {
    http::request<http::empty_body> req{http::verb::get, url.target, 11};
    req.set(http::field::host, host_header(url));
    req.set(http::field::user_agent, o_.user_agent);
    req.set(http::field::accept, "*/*");
    req.set(http::field::connection, "close");
    if (with_token)
      req.set(http::field::authorization, "Bearer " + o_.token);
    if (range_from_ > 0)
      req.set(http::field::range, fmt::format("bytes={}-", range_from_));
    tcp.expires_after(o_.timeout);
    if (auto [ec, n] = co_await http::async_write(stream, req, kTuple); ec)
      co_return failed(url, "cannot send the request", ec);
    beast::flat_buffer buffer;
    http::response_parser<http::buffer_body> parser;
    parser.body_limit(std::numeric_limits<std::uint64_t>::max());
    tcp.expires_after(o_.timeout);
    if (auto [ec, n] = co_await http::async_read_header(stream, buffer, parser, kTuple); ec)
      co_return failed(url, "no answer", ec);
    Hop hop;
    hop.head = head_of(parser.get(), url);
    if (const auto cl = parser.content_length())
      hop.head.content_length = *cl;
    if (is_redirect(hop.head.status)) {
      hop.location = std::string(parser.get()[http::field::location]);
      if (hop.location.empty())
        co_return Error{Errc::unavailable, fmt::format("GET {}: a {} redirect without Location",
                                                       url.str(), hop.head.status)};
      co_return hop;
    }
    const bool success = hop.head.status >= 200 && hop.head.status < 300;
    if (success && on_head_) {
      if (auto r = on_head_(hop.head); !r)
        co_return r.error();
    }
    if (auto r = co_await read_body(stream, tcp, buffer, parser, url, success, hop.head); !r)
      co_return r.error();
    co_return hop;
  }

  static ResponseHead head_of(const http::response_header<>& h, const Url& url) {
    ResponseHead head;
    head.status = static_cast<int>(h.result_int());
    head.url = url;
    head.content_range = std::string(h[http::field::content_range]);
    head.link = std::string(h[http::field::link]);
    head.commit = std::string(h["X-Repo-Commit"]);
    head.error_message = std::string(h["X-Error-Message"]);
    return head;
  }

  // The body: to on_body for a success, else into head.body (bounded).
  template <class Stream>
  asio::awaitable<Result<void>> read_body(Stream& stream, beast::tcp_stream& tcp,
                                          beast::flat_buffer& buffer,
                                          http::response_parser<http::buffer_body>& parser,
                                          const Url& url, bool success, ResponseHead& head) {
    std::vector<char> chunk(256 << 10);
    std::uint64_t received = 0;
    while (!parser.is_done()) {
      parser.get().body().data = chunk.data();
      parser.get().body().size = chunk.size();
      tcp.expires_after(o_.timeout);
      auto [ec, n] = co_await http::async_read(stream, buffer, parser, kTuple);
      const std::size_t got = chunk.size() - parser.get().body().size;
      received += got;
      const std::string_view piece(chunk.data(), got);
      if (got > 0 && success && on_body_) {
        if (auto r = on_body_(piece); !r)
          co_return r.error();
      } else if (got > 0 && !success) {
        head.body.append(
            piece.substr(0, kErrorBodyLimit - std::min(kErrorBodyLimit, head.body.size())));
        if (head.body.size() >= kErrorBodyLimit)
          co_return Result<void>{};
      }
      if (ec && ec != http::error::need_buffer) {
        co_return failed(url,
                         fmt::format("the connection ended after {} of {} body bytes", received,
                                     head.content_length ? std::to_string(*head.content_length)
                                                         : std::string("?")),
                         ec);
      }
    }
    co_return Result<void>{};
  }

  const HttpOptions& o_;
  std::uint64_t range_from_;
  const HeadHandler& on_head_;
  const BodyHandler& on_body_;
};

}  // namespace

std::string Url::origin() const {
  const std::string h = host.find(':') != std::string::npos ? "[" + host + "]" : host;
  return scheme + "://" + h + ":" + port;
}

std::string Url::str() const {
  return scheme + "://" + host_header(*this) + target;
}

Result<Url> parse_url(std::string_view text) {
  auto u = boost::urls::parse_absolute_uri(text);
  if (!u)
    return Error{Errc::invalid_request, fmt::format("'{}' is not an absolute URL", text)};
  return url_from(*u, text);
}

Result<Url> resolve_location(const Url& base, std::string_view location) {
  const std::string base_text = base.str();  // the views below point into it
  auto b = boost::urls::parse_absolute_uri(base_text);
  auto ref = boost::urls::parse_uri_reference(location);
  if (!b || !ref)
    return Error{
        Errc::invalid_request,
        fmt::format("GET {}: the redirect's Location '{}' is not a URL", base.str(), location)};
  boost::urls::url dest;
  if (auto r = boost::urls::resolve(*b, *ref, dest); !r)
    return Error{Errc::invalid_request,
                 fmt::format("GET {}: cannot resolve the redirect to '{}'", base.str(), location)};
  return url_from(dest, location);
}

Result<ResponseHead> http_get(const Url& url, const HttpOptions& options, std::uint64_t range_from,
                              const HeadHandler& on_head, const BodyHandler& on_body) {
  asio::io_context io;
  Getter getter(options, range_from, on_head, on_body);
  Result<ResponseHead> out;
  std::exception_ptr failure;
  asio::co_spawn(io, getter.run(url), [&](std::exception_ptr e, Result<ResponseHead> r) {
    failure = std::move(e);
    out = std::move(r);
  });
  io.run();
  if (failure)
    std::rethrow_exception(failure);
  return out;
}

Result<ResponseHead> http_get_text(const Url& url, const HttpOptions& options, std::size_t limit) {
  std::string body;
  auto head = http_get(url, options, 0, nullptr, [&](std::string_view piece) -> Result<void> {
    if (body.size() + piece.size() > limit)
      return Error{Errc::invalid_request,
                   fmt::format("GET {}: the answer is larger than {} bytes", url.str(), limit)};
    body.append(piece);
    return {};
  });
  if (head && head->status >= 200 && head->status < 300)
    head->body = std::move(body);
  return head;
}

}  // namespace troupe::hub
