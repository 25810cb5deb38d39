#include "cli/http_flags.hpp"

#include <algorithm>
#include <cstdlib>

#include "cli/duration_option.hpp"

namespace troupe::cli {

namespace {
std::chrono::milliseconds millis(double seconds) {
  return std::chrono::milliseconds(static_cast<std::int64_t>(seconds * 1000.0));
}
}  // namespace

void add_http_flags(CLI::App& app, HttpFlags& f) {
  app.add_option("--api-key", f.config.api_key,
                 "require 'Authorization: Bearer <key>' (or env TROUPE_API_KEY)");
  app.add_option("--cors-origin", f.config.cors_origin,
                 "send CORS headers for this origin ('*' for any)");
  app.add_flag("--no-webui{false}", f.config.webui, "do not serve the web chat page at /");
  app.add_flag("--no-slots{false}", f.config.slots,
               "do not serve GET /slots (the slots' state) or POST /slots/ID");
  app.add_option("--slot-save-path", f.config.slot_save_path,
                 "directory for POST /slots/ID?action=save|restore (a slot's KV cache in a file)");
  app.add_option("--max-body", f.config.max_body_bytes, "largest request body in bytes")
      ->capture_default_str();
  app.add_option("--max-connections", f.config.max_connections,
                 "open connections; beyond it the oldest idle one is closed, or 503")
      ->capture_default_str();
  app.add_option("--max-connections-per-ip", f.config.max_connections_per_ip,
                 "open connections per client address, loopback included (0: no limit)")
      ->capture_default_str();
  app.add_option("--max-pending-per-ip", f.config.max_pending_per_ip,
                 "connections per client address without a complete request before 503 "
                 "(0: no limit)")
      ->capture_default_str();
  app.add_option("--io-threads", f.io_threads, "I/O threads")->capture_default_str();
  auto seconds = [](double& target) {
    return [&target](std::chrono::nanoseconds d) {
      target = std::chrono::duration<double>(d).count();
    };
  };
  auto as_ns = [](double s) {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::duration<double>(s));
  };
  add_duration_option(app, "--header-timeout", seconds(f.header_timeout_s),
                      as_ns(f.header_timeout_s), util::DurationUnit::seconds,
                      "time to receive request headers");
  add_duration_option(app, "--body-timeout", seconds(f.body_timeout_s), as_ns(f.body_timeout_s),
                      util::DurationUnit::seconds, "time to receive a request body");
  add_duration_option(app, "--send-timeout", seconds(f.send_timeout_s), as_ns(f.send_timeout_s),
                      util::DurationUnit::seconds,
                      "time one write to a client may take; a stream whose client stopped "
                      "reading ends and its generation is cancelled");
  add_duration_option(app, "--sse-ping-interval", seconds(f.sse_ping_s), as_ns(f.sse_ping_s),
                      util::DurationUnit::seconds,
                      "silence on an event stream (a long prompt) before a keep-alive comment, "
                      "for proxies and clients that drop a quiet connection (Anthropic streams: "
                      "a ping event every 10 s); a request's sse_ping_interval overrides it; 0 "
                      "(or llama-server's -1): none")
      ->transform(CLI::Validator(
          [](std::string& v) {
            if (v == "-1")
              v = "0";
            return std::string{};
          },
          "", "llama-server's off"));
  add_duration_option(app, "--shutdown-grace", seconds(f.shutdown_grace_s),
                      as_ns(f.shutdown_grace_s), util::DurationUnit::seconds,
                      "time in-flight requests get at shutdown");
}

server::ServerConfig http_config(const HttpFlags& f) {
  server::ServerConfig c = f.config;
  if (c.api_key.empty()) {
    if (const char* key = std::getenv("TROUPE_API_KEY"))
      c.api_key = key;
  }
  c.header_timeout = millis(f.header_timeout_s);
  c.keep_alive_timeout = millis(std::max(f.header_timeout_s, 30.0));
  c.body_timeout = millis(f.body_timeout_s);
  c.write_timeout = millis(f.send_timeout_s);
  c.sse_ping_interval = millis(f.sse_ping_s);
  c.shutdown_grace = millis(f.shutdown_grace_s);
  return c;
}

}  // namespace troupe::cli
