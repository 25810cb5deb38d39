#pragma once
// FakeServer: a scripted HTTP/1.1 server on a loopback port for client and bench tests. Each
// request is handed to a coroutine that writes whatever raw bytes the test wants, so tests can
// split events anywhere, close mid-event or hold the next event back until told to continue.
//
// Thread-safety: none; runs on the test's single-threaded io_context, like the client under
// test, which keeps every test deterministic without sleeps.

#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace troupe::test {

namespace asio = boost::asio;

struct FakeRequest {
  std::string method;
  std::string target;
  std::map<std::string, std::string> headers;  // names lower-cased
  std::string body;
};

// Writes the response for one request. Return true to keep the connection for another request.
using FakeHandler =
    std::function<asio::awaitable<bool>(const FakeRequest&, asio::ip::tcp::socket&)>;

// A gate a handler can wait on until the test opens it (an event, not a sleep).
class Gate {
 public:
  explicit Gate(asio::io_context& io);
  asio::awaitable<void> wait();
  void open();

 private:
  asio::steady_timer timer_;
  bool open_ = false;
};

class FakeServer {
 public:
  FakeServer(asio::io_context& io, FakeHandler handler);
  ~FakeServer();
  std::uint16_t port() const { return port_; }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }
  const std::vector<FakeRequest>& requests() const { return requests_; }
  int connections() const { return connections_; }
  // Connections whose peer has closed (seen by the server reading after its response).
  int closed_by_peer() const { return closed_by_peer_; }
  void stop();
  // A gate that handlers may wait on; lives as long as the server (so not beyond its
  // io_context).
  Gate& gate() { return *gate_; }

 private:
  asio::awaitable<void> accept_loop();
  asio::awaitable<void> session(asio::ip::tcp::socket sock);

  asio::ip::tcp::acceptor acceptor_;
  FakeHandler handler_;
  std::uint16_t port_ = 0;
  std::vector<FakeRequest> requests_;
  int connections_ = 0;
  int closed_by_peer_ = 0;
  std::unique_ptr<Gate> gate_;
};

// Writes all of `bytes`.
asio::awaitable<void> write_all(asio::ip::tcp::socket& s, std::string_view bytes);

// Response heads.
std::string sse_head_close();    // 200, text/event-stream, body until close
std::string sse_head_chunked();  // 200, text/event-stream, chunked, keep-alive
std::string json_response(int status, std::string_view body, bool keep_alive = true);
// One chunk of chunked transfer encoding; empty `data` gives the last chunk.
std::string http_chunk(std::string_view data);

// `data: <json>\n\n` events of an OpenAI chat stream.
std::string chat_chunk(std::string_view content, std::string_view finish_reason = {});
std::string usage_chunk(int prompt_tokens, int completion_tokens);

// A handler that streams `n` tokens "t0 ".."t{n-1} " for every chat or completions request
// (n from max_tokens, default 8; prompt tokens = words of the last message or prompt),
// with usage, chunked and keep-alive; /tokenize answers one token per byte (and
// /detokenize reverses it); /v1/models one
// model "fake". With `fail_every` > 0, every fail_every-th request gets HTTP 500.
FakeHandler openai_handler(int fail_every = 0);

// Runs `body(io, server)` (a coroutine) on a fresh single-threaded io_context with a
// FakeServer answering with `handler`, until it finishes; an exception from it is rethrown.
// Returns whether it finished.
template <class Body>
bool run_with_server(FakeHandler handler, Body body) {
  asio::io_context io;
  FakeServer server(io, std::move(handler));
  bool finished = false;
  asio::co_spawn(io, body(io, server), [&](std::exception_ptr e) {
    finished = true;
    server.stop();
    io.stop();
    if (e)
      std::rethrow_exception(e);
  });
  io.run();
  return finished;
}

}  // namespace troupe::test
