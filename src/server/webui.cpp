// GET and HEAD of the chat page's embedded files (webui/assets.hpp). Every answer revalidates
// (Cache-Control: no-cache with a strong ETag, so a new binary's page is never stale and an
// unchanged one costs a 304), and carries a Content-Security-Policy that lets the page talk to
// this server only: nothing else is loaded or fetched.

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/http/write.hpp>

#include "server/connection.hpp"
#include "webui/assets.hpp"

namespace troupe::server::detail {
namespace {

constexpr std::string_view kPolicy =
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

Response asset_response(const Connection& c, const webui::Asset& a, bool current) {
  auto res = current ? make_response(c, http::status::not_modified, {}, {})
                     : make_response(c, http::status::ok, std::string(a.body), a.content_type);
  res.set(http::field::etag, a.etag);
  res.set(http::field::cache_control, "no-cache");
  res.set("Content-Security-Policy", kPolicy);
  res.set("X-Content-Type-Options", "nosniff");
  res.set("Referrer-Policy", "no-referrer");
  return res;
}

// HEAD: the header GET would send (its Content-Length too), without the body.
net::awaitable<bool> write_header_only(Connection& c, Response res) {
  res.keep_alive(c.keep_alive && !c.draining);
  res.prepare_payload();
  c.response_started = true;
  c.access.status = static_cast<int>(res.result_int());
  c.ctx.metrics.count_request(endpoint_name(c.endpoint), c.access.status);
  http::response_serializer<http::string_body> sr(res);
  c.stream.expires_after(c.ctx.config.write_timeout);
  auto [ec, n] = co_await http::async_write_header(c.stream, sr, net::as_tuple(net::use_awaitable));
  c.stream.expires_never();
  co_return !ec && res.keep_alive();
}

}  // namespace

net::awaitable<bool> handle_webui(Connection& c, Request& req) {
  const webui::Asset* a = webui::find_asset(req.target());
  if (a == nullptr) {
    co_return co_await write_response(
        c, error_response(c, api::route_not_found(req.method_string(), req.target())));
  }
  const bool current = webui::etag_matches(req[http::field::if_none_match], a->etag);
  auto res = asset_response(c, *a, current);
  if (req.method() == http::verb::head)
    co_return co_await write_header_only(c, std::move(res));
  co_return co_await write_response(c, std::move(res));
}

}  // namespace troupe::server::detail
