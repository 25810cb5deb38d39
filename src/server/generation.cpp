// The generation endpoints: POST /v1/chat/completions and /v1/completions, streaming (SSE)
// and not. Each request awaits its TokenStream beside two interruptions: the client closing
// its socket, and the server's shutdown deadline.

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/write.hpp>
#include <chrono>

#include "api/request.hpp"
#include "api/response.hpp"
#include "server/connection.hpp"
#include "server/job.hpp"

namespace troupe::server::detail {
namespace {

using net::use_awaitable;
using tcp = net::ip::tcp;
constexpr auto as_tuple_awaitable = net::as_tuple(net::use_awaitable);

enum class Interrupt { none, client_closed, deadline };

struct Next {
  std::optional<engine::StreamEvent> event;
  Interrupt interrupt = Interrupt::none;
};

double seconds_since(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

// The socket became readable while no request is due: EOF (or an error) means the client is
// gone; bytes mean a pipelined request, which stays unread (and ends the watching).
Interrupt check_socket(Connection& c) {
  char byte = 0;
  boost::system::error_code ec;
  auto& sock = c.stream.socket();
  sock.non_blocking(true, ec);
  const std::size_t n = sock.receive(net::buffer(&byte, 1), tcp::socket::message_peek, ec);
  if (ec == net::error::would_block || ec == net::error::try_again)
    return Interrupt::none;
  if (ec || n == 0)
    return Interrupt::client_closed;
  c.watch_socket = false;
  return Interrupt::none;
}

// The next event of `stream`, unless the client leaves or the shutdown deadline passes first.
net::awaitable<Next> next_event(Connection& c, engine::TokenStream& stream) {
  using namespace net::experimental::awaitable_operators;
  for (;;) {
    if (auto ev = stream.try_next())
      co_return Next{std::move(ev)};
    std::size_t which = 0;
    std::optional<engine::StreamEvent> ev;
    boost::system::error_code ec;
    if (c.watch_socket) {
      auto r = co_await (stream.next() ||
                         c.stream.socket().async_wait(tcp::socket::wait_read, as_tuple_awaitable) ||
                         c.deadline.async_wait(as_tuple_awaitable));
      which = r.index();
      if (which == 0)
        ev = std::move(std::get<0>(r));
      if (which == 1)
        ec = std::get<0>(std::get<1>(r));
    } else {
      auto r = co_await (stream.next() || c.deadline.async_wait(as_tuple_awaitable));
      which = r.index() == 0 ? 0 : 2;
      if (which == 0)
        ev = std::move(std::get<0>(r));
    }
    if (which == 0)
      co_return Next{std::move(ev)};
    if (which == 1) {
      const Interrupt i = ec ? Interrupt::client_closed : check_socket(c);
      if (i != Interrupt::none)
        co_return Next{std::nullopt, i};
    } else if (Clock::now() >= c.deadline.expiry()) {
      co_return Next{std::nullopt, Interrupt::deadline};
    }
  }
}

std::vector<api::TokenLogprob> to_api_logprobs(const engine::Delta& d) {
  std::vector<api::TokenLogprob> out;
  out.reserve(d.logprobs.size());
  for (std::size_t i = 0; i < d.logprobs.size(); ++i) {
    api::TokenLogprob lp{d.logprobs[i].text, d.logprobs[i].logprob, {}};
    if (i < d.top.size()) {
      for (const auto& alt : d.top[i])
        lp.top.emplace_back(alt.text, alt.logprob);
    }
    out.push_back(std::move(lp));
  }
  return out;
}

std::string_view finish_reason_name(engine::FinishReason r) {
  return r == engine::FinishReason::length ? "length" : "stop";
}

api::Usage to_api_usage(const engine::Usage& u) {
  return {u.prompt_tokens, u.completion_tokens, u.cached_tokens};
}

// Appends one SSE event as one HTTP chunk: "<hex>\r\ndata: <payload>\n\n\r\n".
void append_event(std::string& out, std::string_view payload) {
  fmt::format_to(std::back_inserter(out), "{:x}\r\ndata: ", payload.size() + 8);
  out += payload;
  out += "\n\n\r\n";
}

Error shutdown_error() {
  return Error{Errc::unavailable, "The server is shutting down"};
}

// One generation request from its parsed job to its last byte.
class Generation {
 public:
  Generation(Connection& c, GenerationJob job)
      : c_(c),
        job_(std::move(job)),
        head_{c.ctx.make_id(job_.kind == api::CompletionKind::chat ? "chatcmpl-" : "cmpl-"),
              job_.model,
              std::chrono::duration_cast<std::chrono::seconds>(
                  std::chrono::system_clock::now().time_since_epoch())
                  .count()} {
    job_.task.request_id = head_.id;
  }

  net::awaitable<bool> run();

 private:
  net::awaitable<bool> run_plain(engine::TokenStream& stream);
  net::awaitable<bool> run_streaming(engine::TokenStream& stream);
  net::awaitable<bool> fail(const Error& e) {
    return write_response(
        c_, error_response(c_, api::to_http_error(e, c_.ctx.config.retry_after_seconds)));
  }
  net::awaitable<bool> write_sse_header();
  net::awaitable<bool> send(std::string data);
  void observe_tokens(std::size_t n);

  Connection& c_;
  GenerationJob job_;
  api::ResponseHead head_;
  Clock::time_point last_token_{};
  bool first_token_ = true;
};

void Generation::observe_tokens(std::size_t n) {
  if (n == 0)
    return;
  auto& m = c_.ctx.metrics;
  const auto now = Clock::now();
  if (first_token_) {
    m.time_to_first_token.observe(seconds_since(c_.request_start));
    first_token_ = false;
  } else {
    const double gap = std::chrono::duration<double>(now - last_token_).count();
    for (std::size_t i = 0; i < n; ++i)
      m.inter_token_latency.observe(gap / static_cast<double>(n));
  }
  last_token_ = now;
}

net::awaitable<bool> Generation::run() {
  engine::TokenStream stream = co_await c_.ctx.backend.generate(std::move(job_.task));
  Next first = co_await next_event(c_, stream);
  if (first.interrupt == Interrupt::client_closed) {
    c_.ctx.metrics.count_disconnect();
    co_return false;
  }
  if (first.interrupt == Interrupt::deadline)
    co_return co_await fail(shutdown_error());
  if (first.event) {
    if (const auto* f = std::get_if<engine::Failed>(&*first.event))
      co_return co_await fail(f->error);
  }
  if (!first.event || !std::holds_alternative<engine::Started>(*first.event)) {
    co_return co_await fail(Error{Errc::internal, "The generation did not start"});
  }
  c_.ctx.metrics.request_queue_time.observe(seconds_since(c_.request_start));
  // Not a conditional expression: GCC 12 evaluates both co_await operands of ?: .
  if (job_.stream)
    co_return co_await run_streaming(stream);
  co_return co_await run_plain(stream);
}

net::awaitable<bool> Generation::run_plain(engine::TokenStream& stream) {
  api::CompletionResult result;
  if (job_.logprobs)
    result.logprobs.emplace();
  for (;;) {
    Next n = co_await next_event(c_, stream);
    if (n.interrupt == Interrupt::client_closed) {
      c_.ctx.metrics.count_disconnect();
      co_return false;
    }
    if (n.interrupt == Interrupt::deadline)
      co_return co_await fail(shutdown_error());
    if (!n.event)
      co_return co_await fail(Error{Errc::internal, "The generation ended early"});
    if (auto* d = std::get_if<engine::Delta>(&*n.event)) {
      observe_tokens(d->tokens.size());
      result.text += d->text;
      if (result.logprobs) {
        for (auto& lp : to_api_logprobs(*d))
          result.logprobs->push_back(std::move(lp));
      }
    } else if (auto* f = std::get_if<engine::Finished>(&*n.event)) {
      c_.ctx.metrics.e2e_request_latency.observe(seconds_since(c_.request_start));
      result.finish_reason = finish_reason_name(f->reason);
      result.usage = to_api_usage(f->usage);
      std::string body = job_.kind == api::CompletionKind::chat
                             ? api::chat_completion_json(head_, result)
                             : api::text_completion_json(head_, result);
      co_return co_await write_response(c_, make_response(c_, http::status::ok, std::move(body)));
    } else if (auto* e = std::get_if<engine::Failed>(&*n.event)) {
      co_return co_await fail(e->error);
    }
  }
}

net::awaitable<bool> Generation::write_sse_header() {
  http::response<http::empty_body> res{http::status::ok, 11};
  res.set(http::field::server, "troupe");
  res.set(http::field::content_type, "text/event-stream");
  res.set(http::field::cache_control, "no-cache");
  add_cors(c_, res);
  res.keep_alive(c_.keep_alive && !c_.draining);
  res.chunked(true);
  http::response_serializer<http::empty_body> sr{res};
  c_.stream.expires_after(c_.ctx.config.write_timeout);
  auto [ec, n] = co_await http::async_write_header(c_.stream, sr, as_tuple_awaitable);
  c_.ctx.metrics.count_request(endpoint_name(c_.endpoint), 200);
  c_.response_started = true;
  co_return !ec;
}

net::awaitable<bool> Generation::send(std::string data) {
  c_.stream.expires_after(c_.ctx.config.write_timeout);
  auto [ec, n] = co_await net::async_write(c_.stream, net::buffer(data), as_tuple_awaitable);
  if (ec)
    c_.ctx.metrics.count_disconnect();
  co_return !ec;
}

net::awaitable<bool> Generation::run_streaming(engine::TokenStream& stream) {
  if (!co_await write_sse_header())
    co_return false;
  api::ChunkWriter writer(job_.kind, head_, job_.include_usage);
  std::string out;
  if (job_.kind == api::CompletionKind::chat)
    append_event(out, writer.role_chunk());
  for (;;) {
    if (!out.empty() && !co_await send(std::exchange(out, {})))
      co_return false;
    Next n = co_await next_event(c_, stream);
    if (n.interrupt == Interrupt::client_closed) {
      c_.ctx.metrics.count_disconnect();
      co_return false;
    }
    const engine::StreamEvent ev =
        n.event ? std::move(*n.event)
                : engine::StreamEvent(engine::Failed{n.interrupt == Interrupt::deadline
                                                         ? shutdown_error()
                                                         : Error{Errc::internal, "ended early"}});
    if (const auto* d = std::get_if<engine::Delta>(&ev)) {
      observe_tokens(d->tokens.size());
      if (d->text.empty() && !(job_.logprobs && !d->logprobs.empty()))
        continue;
      std::vector<api::TokenLogprob> lps;
      if (job_.logprobs)
        lps = to_api_logprobs(*d);
      append_event(out, writer.delta_chunk(d->text, job_.logprobs ? &lps : nullptr));
    } else if (const auto* f = std::get_if<engine::Finished>(&ev)) {
      c_.ctx.metrics.e2e_request_latency.observe(seconds_since(c_.request_start));
      append_event(out, writer.finish_chunk(finish_reason_name(f->reason)));
      if (job_.include_usage)
        append_event(out, writer.usage_chunk(to_api_usage(f->usage)));
      append_event(out, "[DONE]");
      out += "0\r\n\r\n";
      co_return co_await send(std::move(out)) && !c_.draining && c_.keep_alive;
    } else if (const auto* e = std::get_if<engine::Failed>(&ev)) {
      append_event(out, api::to_json(api::to_http_error(e->error)));
      out += "0\r\n\r\n";
      co_await send(std::move(out));
      co_return false;
    }
  }
}

Result<GenerationJob> parse_job(const Connection& c, const Request& req) {
  auto models = c.ctx.backend.models();
  if (c.endpoint == Endpoint::chat_completions) {
    auto parsed = api::parse_chat_request(req.body());
    if (!parsed)
      return parsed.error();
    return make_chat_job(std::move(parsed).value(), models);
  }
  auto parsed = api::parse_completion_request(req.body());
  if (!parsed)
    return parsed.error();
  return make_completion_job(std::move(parsed).value(), models);
}

}  // namespace

net::awaitable<bool> handle_generation(Connection& c, Request& req) {
  auto job = parse_job(c, req);
  if (!job) {
    co_return co_await write_response(
        c, error_response(c, api::to_http_error(job.error(), c.ctx.config.retry_after_seconds)));
  }
  Generation g(c, std::move(job).value());
  co_return co_await g.run();
}

}  // namespace troupe::server::detail
