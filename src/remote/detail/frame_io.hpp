#pragma once
// Coroutine helpers that move whole frames over a socket or a TLS stream, and the handshake
// exchange built on them. Used by outbound links and inbound sessions alike.
//
// Thread-safety: each call uses its socket and decoder exclusively until it completes.

#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <chrono>
#include <span>

#include "remote/detail/frame.hpp"
#include "remote/detail/handshake.hpp"
#include "remote/detail/tls_stream.hpp"

namespace troupe::remote {

// Reads until `dec` yields a frame; the view points into `dec`. Errors: the socket's (as
// Errc::unavailable) or a malformed frame (Errc::invalid_request).
boost::asio::awaitable<Result<FrameView>> read_frame(boost::asio::ip::tcp::socket& s,
                                                     FrameDecoder& dec);
boost::asio::awaitable<Result<FrameView>> read_frame(TlsStream& s, FrameDecoder& dec);

// Writes one frame (header and payload as two buffers). Errors: Errc::unavailable.
boost::asio::awaitable<Result<void>> write_frame(boost::asio::ip::tcp::socket& s, FrameHeader h,
                                                 std::span<const std::byte> payload);
boost::asio::awaitable<Result<void>> write_frame(TlsStream& s, FrameHeader h,
                                                 std::span<const std::byte> payload);

// Runs both halves of the handshake (see handshake.hpp) within `timeout`; returns the peer's
// hello. `dec` must have a small max payload (handshake frames are < 300 bytes) and keeps any
// bytes that arrived after the proof. Errors: unauthorized, invalid_request, timeout,
// unavailable. The TLS overload first runs the TLS handshake (client for Role::dialer,
// server for Role::acceptor; a failure, e.g. a plaintext or untrusted peer, is unauthorized)
// and then the same exchange inside it, all within `timeout`.
boost::asio::awaitable<Result<Hello>> run_handshake(boost::asio::ip::tcp::socket& s, Handshake& hs,
                                                    FrameDecoder& dec,
                                                    std::chrono::steady_clock::duration timeout);
boost::asio::awaitable<Result<Hello>> run_handshake(TlsStream& s, Handshake& hs, FrameDecoder& dec,
                                                    std::chrono::steady_clock::duration timeout);

// The bounded spin before a reader sleeps: polls `fd` with non-blocking recv into `buf`
// until bytes arrive or `until` passes, letting the calling thread's other handlers run
// between polls (each poll is followed by a deferral to the executor, so the io_context runs
// its ready handlers and polls its reactor without blocking) and offering the CPU to other
// runnable threads (sched_yield: when the peer that must answer was woken onto this CPU, a
// spin that did not yield would hold it off until the window ends). Returns the bytes read, or 0
// when the time ran out or the socket has an error or its end (the caller's blocking read
// then reports it). The thread never sleeps while it spins, so a message that arrives
// within the window is picked up without a sleeping thread's wake-up; the cost is CPU for at
// most `until - now`.
boost::asio::awaitable<std::size_t> spin_read(int fd, std::span<std::byte> buf,
                                              std::chrono::steady_clock::time_point until);

// Splits "host:port"; false when malformed.
bool split_address(std::string_view address, std::string& host, std::uint16_t& port);

}  // namespace troupe::remote
