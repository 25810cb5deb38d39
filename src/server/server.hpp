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
  std::size_t max_body_bytes = 8u << 20;
  std::size_t max_header_bytes = 16u << 10;
  std::size_t max_connections = 1024;  // beyond it new connections get 503 and are closed
  std::chrono::milliseconds header_timeout{10'000};      // first request line + headers
  std::chrono::milliseconds body_timeout{30'000};        // the body, once headers are in
  std::chrono::milliseconds keep_alive_timeout{30'000};  // idle between requests
  std::chrono::milliseconds write_timeout{30'000};   // one write to a client that stopped reading
  std::chrono::milliseconds shutdown_grace{10'000};  // in-flight requests may finish this long
  int retry_after_seconds = 1;                       // Retry-After of 503 answers
  // Anthropic streams: a `ping` event after this long without other events (a long prefill).
  std::chrono::milliseconds ping_interval{10'000};
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
int run_until_signal(engine::Backend& backend, const ServerConfig& config, int io_threads,
                     const std::function<void(std::uint16_t)>& on_listening = {});

}  // namespace troupe::server
