#pragma once
// Internals of the client shared by client.cpp and stream.cpp: connections, their pool, one
// HTTP exchange (request out, response header in, body read in pieces). Not a public API.
//
// Thread-safety: none; everything here lives on the Client's single-threaded executor.

#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/buffer_body.hpp>
#include <boost/beast/http/parser.hpp>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "client/client.hpp"
#include "client/sse_parser.hpp"
#include "client/wire.hpp"

namespace troupe::client::detail {

namespace beast = boost::beast;
namespace http = boost::beast::http;
using tcp = boost::asio::ip::tcp;

// One TCP connection and its read buffer (which may hold bytes read past a header).
struct Connection {
  explicit Connection(const boost::asio::any_io_executor& ex);
  beast::tcp_stream stream;
  beast::flat_buffer buffer;
};

// One request/response on a connection. The parser is single-use, so one Exchange per request.
struct Exchange {
  std::unique_ptr<Connection> conn;
  http::response_parser<http::buffer_body> parser;
  std::optional<Clock::time_point> deadline;
  bool cancelled = false;  // set by Stream::cancel() so that the abort reads as cancelled

  int status() const { return static_cast<int>(parser.get().result_int()); }
  // Re-arms the connection's timer for the next operation (no timer when no deadline).
  void arm();
  // Maps a failed operation to a ClientError (timeout, cancelled, refused, closed, ...).
  ClientError error_from(const boost::system::error_code& ec, std::string_view what) const;
  // One read from the socket; body bytes go to `into` (at most its size). Returns the count of
  // body bytes written. Precondition: the header was read and !parser.is_done().
  boost::asio::awaitable<boost::system::error_code> read_some(std::span<char> into,
                                                              std::size_t& written);
  // Feeds buffered bytes to the parser (body bytes land in the body span).
  boost::system::error_code parse_buffered();
  // Reads the rest of the body into `out` (failing beyond `limit` bytes).
  boost::asio::awaitable<ClientResult<bool>> read_all(std::string& out, std::size_t limit);
};

}  // namespace troupe::client::detail

namespace troupe::client {

// Idle connections for reuse, the resolved server address and the shared chunk decoder.
struct Client::Pool {
  std::vector<std::unique_ptr<detail::Connection>> idle;
  std::optional<detail::tcp::resolver::results_type> resolved;
  wire::ChunkDecoder decoder;
  std::string fixed_headers;  // Host, auth, custom headers: "Name: value\r\n" each
  std::size_t max_idle = 64;

  // Returns a finished exchange's connection for reuse when the response allows it.
  void release(detail::Exchange& ex);
};

namespace detail {

// State of one Stream, heap-allocated so that a Stream moves cheaply.
struct StreamState {
  StreamState(Client& c, bool is_chat, bool is_anthropic = false, bool is_responses = false)
      : client(&c), chat(is_chat), anthropic(is_anthropic), responses(is_responses) {}
  Client* client;
  Client::Pool* pool = nullptr;
  Exchange ex;
  SseParser sse;
  bool chat;
  bool anthropic;  // an Anthropic Messages stream (event names matter)
  wire::AnthropicDecoder anthropic_decoder;
  bool responses;  // an OpenAI Responses stream (ends with response.completed)
  wire::ResponsesDecoder responses_decoder;
  bool finished = false;
  bool saw_finish = false;
  wire::ChunkText text;  // the last chunk's output, which a Delta views
  std::optional<Usage> usage;
  Clock::time_point received_at{};
};

}  // namespace detail
}  // namespace troupe::client
