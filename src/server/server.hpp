#pragma once
// Server: the OpenAI-compatible HTTP/1.1 server over a Backend (see docs/ARCHITECTURE.md).
//
// One acceptor, one coroutine per connection on its own strand, all on the io_context the
// caller runs (a small thread pool). Generation never runs on these threads: sessions only
// await the Backend's streams. Each connection reads its request header and body under
// timeouts and size limits, answers, and keeps the connection alive (HTTP/1.1).
//
// Lifetime: the Server, the Backend and the io_context must outlive every session; call
// shutdown() and wait for its callback (or stop the io_context and join its threads) before
// destroying the Server.
//
// Thread-safety: listen() once from one thread; shutdown(), port() and metrics() from any
// thread.

#include <boost/asio/any_io_executor.hpp>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "engine/backend.hpp"
#include "server/metrics.hpp"
#include "util/result.hpp"

namespace troupe::server {

struct ServerConfig {
  std::string host = "127.0.0.1";
  std::uint16_t port = 8080;  // 0: an ephemeral port (see Server::port)
  std::string api_key;        // empty: no authentication
  std::string cors_origin;    // empty: no CORS headers; "*" or an origin
  bool webui = true;          // serve the chat page at "/" (false: 404 there)
  bool slots = true;          // serve GET /slots (false: 404 there), as llama-server's --no-slots
  // llama-server's --slot-save-path: the directory POST /slots/ID?action=save|restore writes
  // and reads slots' states in (made when first written to). Empty: those actions are a 501.
  std::string slot_save_path;
  std::size_t max_body_bytes = 8u << 20;
  std::size_t max_header_bytes = 16u << 10;
  // Admission (admission.hpp): beyond max_connections the oldest idle or header-sending
  // connection is closed to make room, or, with none, the new one gets a 503. Per client
  // address (loopback included), a new connection gets a 503 when max_connections_per_ip are
  // open, or max_pending_per_ip have no complete request yet. 0: no per-address limit.
  std::size_t max_connections = 1024;
  std::size_t max_connections_per_ip = 256;
  std::size_t max_pending_per_ip = 128;
  std::chrono::milliseconds header_timeout{10'000};      // first request line + headers
  std::chrono::milliseconds body_timeout{30'000};        // the body, once headers are in
  std::chrono::milliseconds keep_alive_timeout{30'000};  // idle between requests
  // Under pressure (three quarters of max_connections open) the three timeouts above are
  // multiplied by this when a wait starts.
  double pressure_timeout_scale = 0.25;
  // The send timeout: one write to a client that stopped reading; a stream's write that
  // runs out of it ends the request and cancels its generation.
  std::chrono::milliseconds write_timeout{10'000};
  // After an answer that closes the connection early (a refusal, 413, a malformed request):
  // what the client still sends is read and dropped for up to this long (and 64 MiB), so
  // that closing does not reset the connection before the client has read the answer.
  std::chrono::milliseconds linger_timeout{1'000};
  std::chrono::milliseconds shutdown_grace{10'000};  // in-flight requests may finish this long
  int retry_after_seconds = 1;                       // Retry-After of 503 answers
  // Anthropic streams: a `ping` event after this long without other events (a long prefill).
  std::chrono::milliseconds ping_interval{10'000};
  // The other event streams (OpenAI's, Responses', llama-server's own): an SSE comment after
  // this long without other events, so that proxies and clients that give up on a silent
  // connection keep it during a long prefill (llama-server's --sse-ping-interval, 30 s); a
  // request's sse_ping_interval overrides it. 0: none.
  std::chrono::milliseconds sse_ping_interval{30'000};
};

class Server {
 public:
  Server(boost::asio::any_io_executor executor, engine::Backend& backend, ServerConfig config);
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Binds, listens and starts accepting. Returns the bound port. Errors: unavailable when
  // the address cannot be bound (in use, no permission, bad host).
  Result<std::uint16_t> listen();

  // Graceful shutdown: stops accepting, closes idle connections, lets in-flight requests
  // run until the grace period ends, then cancels them (streams get a final error event,
  // others a 503). `on_done` runs once, on an I/O thread, when every connection is closed.
  void shutdown(std::function<void()> on_done);

  std::uint16_t port() const;
  const Metrics& metrics() const;

 private:
  struct Impl;
  std::shared_ptr<Impl> impl_;
};

// Runs `backend` behind a Server on `io_threads` threads until SIGINT or SIGTERM, then shuts
// down gracefully. `on_listening` (optional) runs with the bound port once accepting.
// Returns the exit code: 0 after a clean shutdown, 1 when the server could not start.
// The backend is destroyed before the io_context: its threads answer asks by posting there,
// and a post still under way on one of them must not find the io_context gone.
int run_until_signal(std::unique_ptr<engine::Backend> backend, const ServerConfig& config,
                     int io_threads, const std::function<void(std::uint16_t)>& on_listening = {});

}  // namespace troupe::server
