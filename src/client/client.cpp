#include "client/client.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <boost/url/parse.hpp>

#include "client/connection.hpp"

namespace troupe::client {

namespace asio = boost::asio;
namespace json = boost::json;
namespace beast = boost::beast;
namespace http = boost::beast::http;
using detail::Connection;
using detail::Exchange;
using detail::tcp;
constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);

std::string ClientError::key() const {
  if (http_status != 0)
    return "http_" + std::to_string(http_status);
  return std::string(errc_name(code));
}

ClientResult<Endpoint> parse_base_url(std::string_view url) {
  // "host:port" as llama.cpp's and ollama's tools take it: http is the only scheme anyway.
  std::string with_scheme;
  if (url.find("://") == std::string_view::npos) {
    with_scheme = "http://" + std::string(url);
    url = with_scheme;
  }
  auto u = boost::urls::parse_uri(url);
  if (!u) {
    return ClientError{Errc::invalid_request,
                       0,
                       "not a URL: '" + std::string(url) + "' (expected http://host[:port])",
                       {}};
  }
  if (u->scheme() != "http") {
    return ClientError{Errc::invalid_request,
                       0,
                       "unsupported scheme '" + std::string(u->scheme()) +
                           "': only http:// is supported (put a TLS proxy in front for https)",
                       {}};
  }
  Endpoint e{std::string(u->encoded_host()), u->has_port() ? std::string(u->port()) : "80",
             std::string(u->encoded_path())};
  if (e.host.empty())
    return ClientError{Errc::invalid_request, 0, "URL without a host", {}};
  if (e.host.size() > 2 && e.host.front() == '[')
    e.host = e.host.substr(1, e.host.size() - 2);
  while (!e.prefix.empty() && e.prefix.back() == '/')
    e.prefix.pop_back();
  if (e.prefix.ends_with("/v1"))
    e.prefix.resize(e.prefix.size() - 3);
  return e;
}

namespace detail {

Connection::Connection(const asio::any_io_executor& ex) : stream(ex), buffer(1 << 16) {
  buffer.reserve(4096);  // reads of 4 KiB; grows only for larger headers
}

void Exchange::arm() {
  if (deadline) {
    conn->stream.expires_at(*deadline);
  } else {
    conn->stream.expires_never();
  }
}

ClientError Exchange::error_from(const boost::system::error_code& ec, std::string_view what) const {
  std::string where = std::string(what) + ": ";
  if (ec == beast::error::timeout)
    return {Errc::timeout, 0, where + "deadline passed", {}};
  if (cancelled || ec == asio::error::operation_aborted) {
    return {Errc::cancelled, 0, where + "cancelled", {}};
  }
  if (ec == asio::error::connection_refused) {
    return {Errc::unavailable, 0, where + "connection refused", {}};
  }
  if (ec == asio::error::eof || ec == asio::error::connection_reset ||
      ec == http::error::end_of_stream || ec == http::error::partial_message) {
    return {Errc::unavailable, 0, where + "server closed the connection", {}};
  }
  if (ec.category() == http::make_error_code(http::error::end_of_stream).category()) {
    return {Errc::internal, 0, where + "malformed HTTP response (" + ec.message() + ")", {}};
  }
  return {Errc::unavailable, 0, where + ec.message(), {}};
}

// Parses buffered bytes into the body span until it is full, the message is done or more
// bytes are needed. Returns a parse error, if any.
boost::system::error_code Exchange::parse_buffered() {
  auto& body = parser.get().body();
  while (conn->buffer.size() > 0 && !parser.is_done() && body.size > 0) {
    boost::system::error_code ec;
    auto used = parser.put(conn->buffer.data(), ec);
    conn->buffer.consume(used);
    if (ec == http::error::need_more || ec == http::error::need_buffer) {
      if (used == 0)
        break;
      continue;
    }
    if (ec)
      return ec;
  }
  return {};
}

// Beast's http::async_read_some is not used here: after parsing a chunk it keeps reading the
// socket until it sees the next chunk's header, which would hold each event back until the
// next one arrives. This completes as soon as any body bytes are available.
asio::awaitable<boost::system::error_code> Exchange::read_some(std::span<char> into,
                                                               std::size_t& written) {
  auto& body = parser.get().body();
  body.data = into.data();
  body.size = into.size();
  for (;;) {
    if (auto ec = parse_buffered())
      co_return ec;
    written = into.size() - body.size;
    if (written > 0 || parser.is_done())
      co_return boost::system::error_code{};
    std::size_t room = conn->buffer.max_size() - conn->buffer.size();
    if (room == 0)
      co_return http::make_error_code(http::error::buffer_overflow);
    arm();
    auto space = conn->buffer.prepare(std::min<std::size_t>(room, 4096));
    auto [ec, n] = co_await conn->stream.async_read_some(space, use_tuple);
    conn->buffer.commit(n);
    if (ec == asio::error::eof && parser.got_some()) {
      parser.put_eof(ec);  // completes a body delimited by the end of the connection
      if (!ec)
        continue;
    }
    if (ec)
      co_return ec;
  }
}

asio::awaitable<ClientResult<bool>> Exchange::read_all(std::string& out, std::size_t limit) {
  while (!parser.is_done()) {
    std::size_t old = out.size();
    if (old >= limit) {
      co_return ClientError{Errc::internal, 0, "response body larger than the limit", {}};
    }
    out.resize(std::min(limit, std::max<std::size_t>(old * 2, 4096)));
    std::size_t n = 0;
    auto ec = co_await read_some({out.data() + old, out.size() - old}, n);
    out.resize(old + n);
    if (ec)
      co_return error_from(ec, "reading the response");
  }
  co_return true;
}

}  // namespace detail

void Client::Pool::release(Exchange& ex) {
  if (!ex.conn || !ex.parser.is_done() || !ex.parser.keep_alive())
    return;
  if (ex.conn->buffer.size() != 0 || idle.size() >= max_idle)
    return;
  ex.conn->stream.expires_never();
  idle.push_back(std::move(ex.conn));
}

namespace {

using Pool = Client::Pool;

std::optional<Clock::time_point> deadline_from(const ClientOptions& o) {
  if (o.timeout.count() <= 0)
    return std::nullopt;
  return Clock::now() + o.timeout;
}

bool header_safe(std::string_view s) {
  return s.find_first_of("\r\n") == std::string_view::npos;
}

ClientResult<std::string> fixed_headers(const ClientOptions& o, const Endpoint& e) {
  std::string h = "Host: " + e.host + (e.port == "80" ? "" : ":" + e.port) + "\r\n";
  h += "User-Agent: troupe-client/" + std::string(TROUPE_CLIENT_VERSION) + "\r\n";
  if (!o.api_key.empty())
    h += "Authorization: Bearer " + o.api_key + "\r\n";
  for (const auto& [name, value] : o.headers) {
    if (name.empty() || !header_safe(name) || !header_safe(value) ||
        name.find(':') != std::string::npos) {
      return ClientError{Errc::invalid_request, 0, "invalid header '" + name + "'", {}};
    }
    h.append(name).append(": ").append(value).append("\r\n");
  }
  if (!header_safe(o.api_key))
    return ClientError{Errc::invalid_request, 0, "invalid API key", {}};
  return h;
}

std::string build_request(std::string_view method, std::string_view target, std::string_view body,
                          bool sse, const std::string& fixed) {
  std::string s;
  s.reserve(128 + fixed.size() + body.size());
  s.append(method).append(" ").append(target).append(" HTTP/1.1\r\n").append(fixed);
  if (sse)
    s.append("Accept: text/event-stream\r\n");
  if (method != "GET") {
    if (!body.empty())
      s.append("Content-Type: application/json\r\n");
    s.append("Content-Length: ").append(std::to_string(body.size())).append("\r\n");
  }
  s.append("\r\n").append(body);
  return s;
}

asio::awaitable<ClientResult<bool>> connect(Pool& pool, const Endpoint& ep,
                                            const asio::any_io_executor& ex, Exchange& x) {
  std::string where = "connecting to " + ep.host + ":" + ep.port;
  if (!pool.resolved) {
    tcp::resolver resolver(ex);
    auto [ec, res] = co_await resolver.async_resolve(ep.host, ep.port, use_tuple);
    if (ec)
      co_return ClientError{Errc::unavailable, 0, where + ": " + ec.message(), {}};
    pool.resolved = std::move(res);
  }
  x.conn = std::make_unique<Connection>(ex);
  x.arm();
  auto [ec, endpoint] = co_await x.conn->stream.async_connect(*pool.resolved, use_tuple);
  if (ec)
    co_return x.error_from(ec, where);
  x.conn->stream.socket().set_option(tcp::no_delay(true), ec);
  co_return true;
}

// Sends `bytes` and reads the response header, on an idle pooled connection when there is one.
// A reused connection the server closed meanwhile (before answering any byte) is dropped and the
// request retried: on the next idle one, or on a fresh connection. Servers close idle keep-alive
// connections at will (llama-server after a few requests per connection), so several pooled
// connections can be stale at once; a fresh connection's failure is final.
asio::awaitable<ClientResult<bool>> start_exchange(Pool& pool, const Endpoint& ep,
                                                   const asio::any_io_executor& ex, Exchange& x,
                                                   const std::string& bytes) {
  x.parser.body_limit(boost::none);
  for (;;) {
    bool reused = !pool.idle.empty();
    if (reused) {
      x.conn = std::move(pool.idle.back());
      pool.idle.pop_back();
    } else if (auto r = co_await connect(pool, ep, ex, x); !r) {
      co_return r.error();
    }
    x.arm();
    auto [ec, n] = co_await asio::async_write(x.conn->stream, asio::buffer(bytes), use_tuple);
    if (!ec) {
      x.arm();
      std::tie(ec, n) =
          co_await http::async_read_header(x.conn->stream, x.conn->buffer, x.parser, use_tuple);
    }
    if (!ec)
      co_return true;
    bool retry = reused && !x.parser.got_some() && ec != beast::error::timeout && !x.cancelled;
    if (!retry)
      co_return x.error_from(ec, "sending the request");
    x.conn.reset();
  }
}

bool is_success(int status) {
  return status >= 200 && status < 300;
}

std::string content_type(const Exchange& x) {
  return std::string(x.parser.get()[http::field::content_type]);
}

// The error a response that cannot be a stream stands for (non-2xx status, or not SSE).
asio::awaitable<ClientError> refused_stream(Exchange& x) {
  std::string body;
  if (auto r = co_await x.read_all(body, 1 << 20); !r)
    co_return r.error();
  if (!is_success(x.status()))
    co_return wire::error_from_response(x.status(), body);
  co_return ClientError{Errc::internal,
                        0,
                        "expected a text/event-stream response, got '" + content_type(x) + "'",
                        {}};
}

ClientResult<std::vector<std::int32_t>> parse_tokens(std::string_view body) {
  json::error_code ec;
  auto v = json::parse(body, ec);
  const json::value* t = (!ec && v.is_object()) ? v.as_object().if_contains("tokens") : nullptr;
  if (!t || !t->is_array()) {
    return ClientError{Errc::internal, 0, "malformed /tokenize response (no \"tokens\" array)", {}};
  }
  std::vector<std::int32_t> out;
  out.reserve(t->as_array().size());
  for (const auto& e : t->as_array()) {
    const json::value* id = e.is_object() ? e.as_object().if_contains("id") : &e;
    if (!id || !id->is_number())
      return ClientError{Errc::internal, 0, "malformed token", {}};
    out.push_back(static_cast<std::int32_t>(id->to_number<double>()));
  }
  return out;
}

ClientResult<std::vector<ModelInfo>> parse_models(std::string_view body) {
  json::error_code ec;
  auto v = json::parse(body, ec);
  const json::value* d = (!ec && v.is_object()) ? v.as_object().if_contains("data") : nullptr;
  if (!d || !d->is_array()) {
    return ClientError{Errc::internal, 0, "malformed /v1/models response (no \"data\" array)", {}};
  }
  std::vector<ModelInfo> out;
  for (const auto& m : d->as_array()) {
    const auto* o = m.if_object();
    if (!o)
      continue;
    ModelInfo info;
    if (const auto* id = o->if_contains("id"); id && id->is_string())
      info.id = id->as_string();
    if (const auto* ow = o->if_contains("owned_by"); ow && ow->is_string())
      info.owned_by = ow->as_string();
    out.push_back(std::move(info));
  }
  return out;
}

}  // namespace

Client::Client(asio::any_io_executor ex, ClientOptions options)
    : ex_(std::move(ex)),
      options_(std::move(options)),
      endpoint_(parse_base_url(options_.base_url)),
      pool_(std::make_unique<Pool>()) {
  pool_->max_idle = options_.max_idle_connections;
  if (!endpoint_)
    return;
  auto headers = fixed_headers(options_, endpoint_.value());
  if (!headers) {
    endpoint_ = headers.error();
  } else {
    pool_->fixed_headers = std::move(headers.value());
  }
}

Client::~Client() = default;

asio::awaitable<ClientResult<HttpResponse>> Client::request(std::string_view method,
                                                            std::string_view target,
                                                            std::string body) {
  if (!endpoint_)
    co_return endpoint_.error();
  Exchange x;
  x.deadline = deadline_from(options_);
  auto bytes = build_request(method, endpoint_->prefix + std::string(target), body, false,
                             pool_->fixed_headers);
  if (auto r = co_await start_exchange(*pool_, *endpoint_, ex_, x, bytes); !r)
    co_return r.error();
  HttpResponse resp{x.status(), content_type(x), {}};
  if (auto r = co_await x.read_all(resp.body, std::size_t{64} << 20); !r)
    co_return r.error();
  pool_->release(x);
  co_return resp;
}

namespace {

// A non-streamed chat (`chat`) or completions answer.
asio::awaitable<ClientResult<Answer>> non_streamed(Client& c, std::string_view target,
                                                   std::string body, bool chat) {
  auto r = co_await c.request("POST", target, std::move(body));
  if (!r)
    co_return r.error();
  if (!is_success(r->status))
    co_return wire::error_from_response(r->status, r->body);
  co_return wire::parse_answer(r->body, chat);
}

}  // namespace

asio::awaitable<ClientResult<Answer>> Client::chat(const ChatRequest& request) {
  co_return co_await non_streamed(*this, "/v1/chat/completions", wire::chat_body(request, false),
                                  true);
}

asio::awaitable<ClientResult<Answer>> Client::complete(const CompletionRequest& request) {
  co_return co_await non_streamed(*this, "/v1/completions", wire::completion_body(request, false),
                                  false);
}

asio::awaitable<ClientResult<std::vector<std::int32_t>>> Client::tokenize(std::string_view text,
                                                                          bool add_special) {
  json::object o{{"content", text}, {"add_special", add_special}};
  auto r = co_await request("POST", "/tokenize", json::serialize(o));
  if (!r)
    co_return r.error();
  if (!is_success(r->status))
    co_return wire::error_from_response(r->status, r->body);
  co_return parse_tokens(r->body);
}

asio::awaitable<ClientResult<std::vector<ModelInfo>>> Client::models() {
  auto r = co_await request("GET", "/v1/models");
  if (!r)
    co_return r.error();
  if (!is_success(r->status))
    co_return wire::error_from_response(r->status, r->body);
  co_return parse_models(r->body);
}

asio::awaitable<ClientResult<Stream>> Client::open_stream(std::string target, std::string body,
                                                          bool chat, bool anthropic,
                                                          bool responses) {
  if (!endpoint_)
    co_return endpoint_.error();
  auto st = std::make_unique<detail::StreamState>(*this, chat, anthropic, responses);
  st->pool = pool_.get();
  st->ex.deadline = deadline_from(options_);
  auto bytes = build_request("POST", endpoint_->prefix + target, body, true, pool_->fixed_headers);
  auto& x = st->ex;
  if (auto r = co_await start_exchange(*pool_, *endpoint_, ex_, x, bytes); !r)
    co_return r.error();
  if (!is_success(x.status()) || !content_type(x).starts_with("text/event-stream")) {
    co_return co_await refused_stream(x);
  }
  x.parser.eager(true);
  co_return Stream(std::move(st));
}

asio::awaitable<ClientResult<Stream>> Client::stream_chat(const ChatRequest& request) {
  co_return co_await open_stream("/v1/chat/completions", wire::chat_body(request, true), true);
}

asio::awaitable<ClientResult<Stream>> Client::stream_messages(const ChatRequest& request) {
  co_return co_await open_stream("/v1/messages", wire::messages_body(request, true), true, true);
}

asio::awaitable<ClientResult<Stream>> Client::stream_responses(const ChatRequest& request) {
  co_return co_await open_stream("/v1/responses", wire::responses_body(request, true), true, false,
                                 true);
}

asio::awaitable<ClientResult<Stream>> Client::stream_completion(const CompletionRequest& request) {
  co_return co_await open_stream("/v1/completions", wire::completion_body(request, true), false);
}

}  // namespace troupe::client
