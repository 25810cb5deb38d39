#include "cli/node_flags.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cstdint>

#include "cli/duration_option.hpp"

namespace troupe::cli {

void add_node_flags(CLI::App& app, cluster::NodeFlags& f) {
  app.add_option("--listen", f.listen, "cluster address to listen on (ip:port)")
      ->capture_default_str();
  app.add_option("--advertise", f.advertise, "cluster address peers dial (default: --listen)");
  app.add_option("--join", f.join, "seed nodes host:port (repeat or comma-separate)");
  app.add_option("--cluster-secret", f.cluster_secret,
                 "shared secret of the cluster (or env TROUPE_CLUSTER_SECRET)");
  using util::DurationUnit;
  auto millis = [](int& target) {
    return [&target](std::chrono::nanoseconds d) {
      target = static_cast<int>(std::min<std::int64_t>(
          std::chrono::duration_cast<std::chrono::milliseconds>(d).count(), INT32_MAX));
    };
  };
  auto ms = [](int v) { return std::chrono::nanoseconds(std::chrono::milliseconds(v)); };
  add_duration_option(app, "--probe-interval", millis(f.probe_interval_ms), ms(f.probe_interval_ms),
                      DurationUnit::milliseconds,
                      "time between failure-detection probes of one peer");
  add_duration_option(app, "--probe-timeout", millis(f.probe_timeout_ms), ms(f.probe_timeout_ms),
                      DurationUnit::milliseconds,
                      "time a probe waits for its answer before asking others to probe");
  add_duration_option(app, "--suspect-timeout", millis(f.suspect_timeout_ms),
                      ms(f.suspect_timeout_ms), DurationUnit::milliseconds,
                      "time a suspected node has to answer before it is declared dead");
  add_duration_option(app, "--rejoin-interval", millis(f.rejoin_interval_ms),
                      ms(f.rejoin_interval_ms), DurationUnit::milliseconds,
                      "time between retries of the seeds and of dead members");
  add_duration_option(
      app, "--reader-spin",
      [&f](std::chrono::nanoseconds d) {
        if (d > std::chrono::milliseconds(1))
          throw CLI::ValidationError("--reader-spin", "at most 1ms");
        f.reader_spin_us =
            static_cast<int>(std::chrono::duration_cast<std::chrono::microseconds>(d).count());
      },
      std::chrono::microseconds(50), DurationUnit::microseconds,
      "time a link's reader polls after an ask or reply before sleeping (0 on cores saturated "
      "by other work; at most 1ms)");
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
  p->signals_.emplace(p->io_);
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
  const int sig = signals_->wait();
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
