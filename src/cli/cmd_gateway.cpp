// troupe gateway: the OpenAI-compatible HTTP server in front of a cluster of workers.

#include <spdlog/spdlog.h>

#include <boost/asio/io_context.hpp>
#include <future>
#include <memory>

#include "cli/command.hpp"
#include "cli/duration_option.hpp"
#include "cli/http_flags.hpp"
#include "cli/node_flags.hpp"
#include "cluster/gateway.hpp"
#include "server/server.hpp"

namespace troupe::cli {
namespace {

struct GatewayFlags {
  cluster::NodeFlags node;
  cluster::GatewayOptions gateway;
  HttpFlags http;
};

// Stops accepting and lets streams finish within the grace period.
void drain(server::Server& http, cluster::Gateway& gateway, std::chrono::milliseconds grace) {
  auto drained = std::make_shared<std::promise<void>>();
  auto fut = drained->get_future();
  http.shutdown([drained] { drained->set_value(); });
  fut.wait_for(grace + std::chrono::seconds(5));
  gateway.stop();
}

int run_gateway(const GatewayFlags& f) {
  const auto config = http_config(f.http);
  auto p = NodeProcess::start(f.node, f.http.io_threads, "gateway");
  if (!p)
    return p.error_code;
  cluster::Gateway gateway(p->node(), f.gateway);
  gateway.start();
  server::Server http(p->io().get_executor(), gateway, config);
  auto port = http.listen();
  if (!port) {
    spdlog::error("{}", port.error().message);
    return 1;
  }
  p->run_threads();
  spdlog::info("gateway: listening on http://{}:{}, cluster node {:016x} at {}", config.host, *port,
               p->node().id(), p->node().address());
  p->wait_for_signal();
  spdlog::info("gateway: draining (grace {} ms)", config.shutdown_grace.count());
  drain(http, gateway, config.shutdown_grace);
  p->leave_and_join();
  spdlog::info("gateway: stopped");
  return 0;
}

std::function<int()> setup(CLI::App& app) {
  auto f = std::make_shared<GatewayFlags>();
  f->http.config.port = 8080;
  add_node_flags(app, f->node);
  app.add_option("--host", f->http.config.host, "HTTP address")->capture_default_str();
  app.add_option("--port", f->http.config.port, "HTTP port (0: any free port)")
      ->capture_default_str();
  add_hidden_alias(app, "--http-port", f->http.config.port);
  add_http_flags(app, f->http);
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
