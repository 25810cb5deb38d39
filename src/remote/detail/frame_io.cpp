#include "remote/detail/frame_io.hpp"

#include <sched.h>
#include <sys/socket.h>

#include <array>
#include <boost/asio/buffer.hpp>
#include <boost/asio/defer.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <cerrno>
#include <charconv>

namespace troupe::remote {

namespace asio = boost::asio;
using boost::system::error_code;

namespace {

template <class Stream>
asio::awaitable<Result<FrameView>> read_frame_on(Stream& s, FrameDecoder& dec) {
  for (;;) {
    auto next = dec.next();
    if (!next)
      co_return next.error();
    if (next->has)
      co_return next->frame;
    auto buf = dec.prepare(dec.missing());
    error_code ec;
    std::size_t n = co_await s.async_read_some(asio::buffer(buf.data(), buf.size()),
                                               asio::redirect_error(asio::use_awaitable, ec));
    if (ec)
      co_return Error{Errc::unavailable, ec.message()};
    dec.commit(n);
  }
}

template <class Stream>
asio::awaitable<Result<void>> write_frame_on(Stream& s, FrameHeader h,
                                             std::span<const std::byte> payload) {
  h.length = static_cast<std::uint32_t>(payload.size());
  HeaderBytes hb = encode_header(h);
  std::array<asio::const_buffer, 2> bufs{asio::buffer(hb),
                                         asio::buffer(payload.data(), payload.size())};
  error_code ec;
  co_await asio::async_write(s, bufs, asio::redirect_error(asio::use_awaitable, ec));
  if (ec)
    co_return Error{Errc::unavailable, ec.message()};
  co_return Result<void>{};
}

template <class Stream>
asio::awaitable<Result<Hello>> exchange(Stream& s, Handshake& hs, FrameDecoder& dec) {
  auto hello = hs.hello_payload();
  if (auto w = co_await write_frame(s, {FrameKind::hello}, hello); !w)
    co_return w.error();
  auto f = co_await read_frame(s, dec);
  if (!f)
    co_return f.error();
  if (f->header.kind != FrameKind::hello)
    co_return Error{Errc::invalid_request, "expected hello"};
  auto proof = hs.on_hello(f->payload);
  if (!proof)
    co_return proof.error();
  if (auto w = co_await write_frame(s, {FrameKind::proof}, *proof); !w)
    co_return w.error();
  f = co_await read_frame(s, dec);
  if (!f)
    co_return f.error();
  if (f->header.kind != FrameKind::proof)
    co_return Error{Errc::invalid_request, "expected proof"};
  if (auto ok = hs.on_proof(f->payload); !ok)
    co_return ok.error();
  co_return hs.peer();
}

asio::awaitable<Result<Hello>> tls_exchange(TlsStream& s, Handshake& hs, FrameDecoder& dec,
                                            Role role) {
  error_code ec;
  co_await s.async_handshake(
      role == Role::dialer ? asio::ssl::stream_base::client : asio::ssl::stream_base::server,
      asio::redirect_error(asio::use_awaitable, ec));
  if (ec)
    co_return Error{Errc::unauthorized, "TLS handshake failed: " + ec.message()};
  co_return co_await exchange(s, hs, dec);
}

template <class Exchange>
asio::awaitable<Result<Hello>> within(Exchange ex, std::chrono::steady_clock::duration timeout) {
  using namespace asio::experimental::awaitable_operators;
  asio::steady_timer timer(co_await asio::this_coro::executor, timeout);
  error_code timer_ec;
  auto r = co_await (std::move(ex) ||
                     timer.async_wait(asio::redirect_error(asio::use_awaitable, timer_ec)));
  if (r.index() == 1)
    co_return Error{Errc::timeout, "handshake timed out"};
  co_return std::get<0>(std::move(r));
}

}  // namespace

asio::awaitable<Result<FrameView>> read_frame(asio::ip::tcp::socket& s, FrameDecoder& dec) {
  return read_frame_on(s, dec);
}
asio::awaitable<Result<FrameView>> read_frame(TlsStream& s, FrameDecoder& dec) {
  return read_frame_on(s, dec);
}

asio::awaitable<Result<void>> write_frame(asio::ip::tcp::socket& s, FrameHeader h,
                                          std::span<const std::byte> payload) {
  return write_frame_on(s, h, payload);
}
asio::awaitable<Result<void>> write_frame(TlsStream& s, FrameHeader h,
                                          std::span<const std::byte> payload) {
  return write_frame_on(s, h, payload);
}

asio::awaitable<Result<Hello>> run_handshake(asio::ip::tcp::socket& s, Handshake& hs,
                                             FrameDecoder& dec,
                                             std::chrono::steady_clock::duration timeout) {
  return within(exchange(s, hs, dec), timeout);
}

asio::awaitable<Result<Hello>> run_handshake(TlsStream& s, Handshake& hs, FrameDecoder& dec,
                                             std::chrono::steady_clock::duration timeout) {
  return within(tls_exchange(s, hs, dec, hs.role()), timeout);
}

asio::awaitable<std::size_t> spin_read(int fd, std::span<std::byte> buf,
                                       std::chrono::steady_clock::time_point until) {
  auto ex = co_await asio::this_coro::executor;
  while (std::chrono::steady_clock::now() < until) {
    ssize_t r = ::recv(fd, buf.data(), buf.size(), MSG_DONTWAIT);
    if (r > 0)
      co_return static_cast<std::size_t>(r);
    if (r == 0 || (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR))
      co_return 0;
    ::sched_yield();
    co_await asio::defer(ex, asio::use_awaitable);  // the thread's other work, then poll again
  }
  co_return 0;
}

bool split_address(std::string_view address, std::string& host, std::uint16_t& port) {
  auto colon = address.rfind(':');
  if (colon == std::string_view::npos || colon == 0)
    return false;
  auto p = address.substr(colon + 1);
  auto [ptr, ec] = std::from_chars(p.data(), p.data() + p.size(), port);
  if (ec != std::errc{} || ptr != p.data() + p.size())
    return false;
  host = std::string(address.substr(0, colon));
  return true;
}

}  // namespace troupe::remote
