// troupe gateway: the OpenAI-compatible HTTP server in front of a cluster of workers.

#include <spdlog/spdlog.h>

#include <boost/asio/io_context.hpp>
#include <future>
#include <memory>

#include "cli/command.hpp"
#include "cli/node_flags.hpp"
#include "cluster/gateway.hpp"
#include "server/server.hpp"

namespace troupe::cli {
namespace {

struct GatewayFlags {
  cluster::NodeFlags node;
  cluster::GatewayOptions gateway;
  server::ServerConfig http;
  int io_threads = 2;
  double header_timeout_s = 10;
  double body_timeout_s = 30;
  double shutdown_grace_s = 10;
};

std::chrono::milliseconds millis(double seconds) {
  return std::chrono::milliseconds(static_cast<std::int64_t>(seconds * 1000.0));
}

// Stops accepting and lets streams finish within the grace period.
void drain(server::Server& http, cluster::Gateway& gateway, std::chrono::milliseconds grace) {
  auto drained = std::make_shared<std::promise<void>>();
  auto fut = drained->get_future();
  http.shutdown([drained] { drained->set_value(); });
  fut.wait_for(grace + std::chrono::seconds(5));
  gateway.stop();
}

int run_gateway(GatewayFlags f) {
  if (f.http.api_key.empty()) {
    if (const char* key = std::getenv("TROUPE_API_KEY"))
      f.http.api_key = key;
  }
  f.http.header_timeout = millis(f.header_timeout_s);
  f.http.keep_alive_timeout = millis(std::max(f.header_timeout_s, 30.0));
  f.http.body_timeout = millis(f.body_timeout_s);
  f.http.shutdown_grace = millis(f.shutdown_grace_s);
  auto p = NodeProcess::start(f.node, f.io_threads, "gateway");
  if (!p)
    return p.error_code;
  cluster::Gateway gateway(p->node(), f.gateway);
  gateway.start();
  server::Server http(p->io().get_executor(), gateway, f.http);
  auto port = http.listen();
  if (!port) {
    spdlog::error("{}", port.error().message);
    return 1;
  }
  p->run_threads();
  spdlog::info("gateway: listening on http://{}:{}, cluster node {:016x} at {}", f.http.host, *port,
               p->node().id(), p->node().address());
  p->wait_for_signal();
  spdlog::info("gateway: draining (grace {} ms)", f.http.shutdown_grace.count());
  drain(http, gateway, f.http.shutdown_grace);
  p->leave_and_join();
  spdlog::info("gateway: stopped");
  return 0;
}

std::function<int()> setup(CLI::App& app) {
  auto f = std::make_shared<GatewayFlags>();
  f->http.port = 8080;
  add_node_flags(app, f->node);
  app.add_option("--host", f->http.host, "HTTP address")->capture_default_str();
  app.add_option("--http-port", f->http.port, "HTTP port (0: any free port)")
      ->capture_default_str();
  app.add_option("--api-key", f->http.api_key,
                 "require 'Authorization: Bearer <key>' (or env TROUPE_API_KEY)");
  app.add_option("--cors-origin", f->http.cors_origin, "send CORS headers for this origin");
  app.add_option("--max-connections", f->http.max_connections, "open connections before 503")
      ->capture_default_str();
  app.add_option("--io-threads", f->io_threads, "I/O threads")->capture_default_str();
  app.add_option("--header-timeout", f->header_timeout_s, "seconds to receive request headers")
      ->capture_default_str();
  app.add_option("--body-timeout", f->body_timeout_s, "seconds to receive a request body")
      ->capture_default_str();
  app.add_option("--shutdown-grace", f->shutdown_grace_s, "seconds in-flight requests get")
      ->capture_default_str();
  app.add_option("--affinity-block", f->gateway.router.block, "prompt bytes per affinity block")
      ->capture_default_str();
  app.add_option("--affinity-slack", f->gateway.router.slack,
                 "extra outstanding requests prefix affinity may cost")
      ->capture_default_str();
  app.add_option("--max-attempts", f->gateway.max_attempts,
                 "workers a not-yet-started request may be sent to")
      ->capture_default_str();
  return [f] { return run_gateway(*f); };
}

const CommandRegistration registration{"gateway", "HTTP front door of a cluster of workers", 40,
                                       setup};

}  // namespace
}  // namespace troupe::cli
