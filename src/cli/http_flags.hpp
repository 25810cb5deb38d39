#pragma once
// The HTTP server options `troupe serve` and `troupe gateway` share (each adds its own host
// and port flags), and the ServerConfig built from them.
//
// Thread-safety: plain values and functions, used on the main thread before serving.

#include <CLI/CLI.hpp>

#include "server/server.hpp"

namespace troupe::cli {

struct HttpFlags {
  server::ServerConfig config;  // host and port are set by the command's own flags
  int io_threads = 2;
  double header_timeout_s = 10;
  double body_timeout_s = 30;
  double send_timeout_s = 10;
  double shutdown_grace_s = 10;
  double sse_ping_s = 30;
};

// Adds --api-key, --cors-origin, --no-webui, --max-body, --max-connections,
// --max-connections-per-ip, --max-pending-per-ip, --io-threads, and the durations
// --header-timeout, --body-timeout, --send-timeout, --shutdown-grace and --sse-ping-interval
// (bare numbers: seconds; for the last, llama-server's -1 is 0: off).
void add_http_flags(CLI::App& app, HttpFlags& f);

// f.config with the timeouts set, and the API key from TROUPE_API_KEY when none was given.
server::ServerConfig http_config(const HttpFlags& f);

}  // namespace troupe::cli
