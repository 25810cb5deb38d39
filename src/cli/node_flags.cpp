#include "cli/node_flags.hpp"

#include <spdlog/spdlog.h>

namespace troupe::cli {

void add_node_flags(CLI::App& app, cluster::NodeFlags& f) {
  app.add_option("--listen", f.listen, "cluster address to listen on (ip:port)")
      ->capture_default_str();
  app.add_option("--advertise", f.advertise, "cluster address peers dial (default: --listen)");
  app.add_option("--join", f.join, "seed nodes host:port (repeat or comma-separate)");
  app.add_option("--cluster-secret", f.cluster_secret,
                 "shared secret of the cluster (or env TROUPE_CLUSTER_SECRET)");
  app.add_option("--probe-interval", f.probe_interval_ms,
                 "ms between failure-detection probes of one peer")
      ->capture_default_str();
  app.add_option("--probe-timeout", f.probe_timeout_ms,
                 "ms a probe waits for its answer before asking others to probe")
      ->capture_default_str();
  app.add_option("--suspect-timeout", f.suspect_timeout_ms,
                 "ms a suspected node has to answer before it is declared dead")
      ->capture_default_str();
  app.add_option("--rejoin-interval", f.rejoin_interval_ms,
                 "ms between retries of the seeds and of dead members")
      ->capture_default_str();
  app.add_option("--reader-spin", f.reader_spin_us,
                 "us a link's reader polls after an ask or reply before sleeping (default 50; 0 "
                 "on cores saturated by other work)")
      ->check(CLI::Range(0, 1000));
  app.add_option("--tls-cert", f.tls_cert,
                 "PEM certificate of this node, signed by the cluster CA (turns on mutual TLS)");
  app.add_option("--tls-key", f.tls_key, "PEM private key of --tls-cert");
  app.add_option("--tls-ca", f.tls_ca, "PEM CA certificate every peer's certificate must chain to");
}

NodeProcess::NodeProcess(int io_threads, std::string role)
    : io_threads_(std::max(1, io_threads)), role_(std::move(role)), io_(io_threads_) {}

NodeProcess::~NodeProcess() {
  if (threads_)
    leave_and_join();
}

NodeProcess::Started NodeProcess::start(const cluster::NodeFlags& flags, int io_threads,
                                        std::string role) {
  auto options = cluster::node_options(flags);
  if (!options) {
    spdlog::error("{}", options.error().message);
    return {nullptr, 2};
  }
  std::unique_ptr<NodeProcess> p(new NodeProcess(io_threads, std::move(role)));
  auto node = remote::Node::start(p->io_, std::move(*options));
  if (!node) {
    spdlog::error("{}: cannot start the cluster node: {}", p->role_, node.error().message);
    return {nullptr, 1};
  }
  p->node_ = std::move(node).value();
  return {std::move(p), 0};
}

void NodeProcess::run_threads() {
  if (!threads_)
    threads_.emplace(io_, io_threads_);
}

int NodeProcess::wait_for_signal() {
  const int sig = cluster::wait_for_signal(io_);
  spdlog::info("{}: signal {}: shutting down", role_, sig);
  return sig;
}

void NodeProcess::leave_and_join() {
  if (node_)
    node_->leave();
  if (threads_) {
    threads_->join(true);
    threads_.reset();
  }
}

}  // namespace troupe::cli
