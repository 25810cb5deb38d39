#pragma once
// The TLS stream of one connection, and what the outbound writer needs to write through it
// from any thread. Internal to the remote module (includes OpenSSL through asio::ssl).
//
// Thread-safety: a TlsStream is used by one connection's coroutine; after
// write_records_to_socket, its SSL object is written by whichever thread holds the link's
// writer role (link.hpp), one at a time, and never read.

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/ssl/stream.hpp>

#include "remote/tls.hpp"

namespace troupe::remote {

using TlsStream = boost::asio::ssl::stream<boost::asio::ip::tcp::socket&>;

// After both handshakes of an outbound connection: makes SSL_write on `s` send its records
// straight to the socket `fd` with non-blocking send(MSG_NOSIGNAL) instead of through
// asio's in-memory BIO pair, so the writer role holder can call SSL_write on any thread
// (SSL_ERROR_WANT_WRITE when the socket is full). Also keeps OpenSSL's buffers between
// writes (no allocation per burst). Nothing may be read from `s` afterwards.
void write_records_to_socket(TlsStream& s, int fd);

// Keeps the stream's read buffer between reads (no allocation per read).
void keep_tls_buffers(TlsStream& s);

}  // namespace troupe::remote
