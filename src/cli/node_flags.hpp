#pragma once
// What `troupe gateway` and `troupe worker` share as cluster nodes: the node's flags (address,
// seeds, secret, membership timings), starting the node on its own io_context, and the
// signal-driven shutdown (wait for SIGINT/SIGTERM, the command drains, the node leaves).
//
//   auto p = NodeProcess::start(flags, io_threads, "worker");
//   if (!p) return p.error_code;
//   ... build the role on p->node() / p->io() ...
//   p->run_threads();
//   int sig = p->wait_for_signal();
//   ... drain the role ...
//   p->leave_and_join();
//
// Thread-safety: a NodeProcess is driven from the command's main thread.

#include <CLI/CLI.hpp>
#include <boost/asio/io_context.hpp>
#include <memory>
#include <optional>
#include <string>

#include "cluster/process.hpp"
#include "remote/node.hpp"

namespace troupe::cli {

// Adds --listen, --advertise, --join, --cluster-secret, --tls-cert/--tls-key/--tls-ca and the
// durations --probe-interval, --probe-timeout, --suspect-timeout, --rejoin-interval (bare
// numbers: milliseconds) and --reader-spin (bare numbers: microseconds).
void add_node_flags(CLI::App& app, cluster::NodeFlags& f);

class NodeProcess {
 public:
  // A started node, or the exit code after logging why not: 2 for bad flags, 1 when the node
  // cannot start (address in use...).
  struct Started {
    std::unique_ptr<NodeProcess> process;
    int error_code = 0;
    explicit operator bool() const noexcept { return process != nullptr; }
    NodeProcess* operator->() const noexcept { return process.get(); }
  };
  static Started start(const cluster::NodeFlags& flags, int io_threads, std::string role);
  ~NodeProcess();
  NodeProcess(const NodeProcess&) = delete;
  NodeProcess& operator=(const NodeProcess&) = delete;

  boost::asio::io_context& io() noexcept { return io_; }
  remote::Node& node() noexcept { return *node_; }

  // Starts running the io_context on the I/O threads.
  void run_threads();
  // Blocks until SIGINT or SIGTERM; logs it and returns the signal number.
  int wait_for_signal();
  // Leaves the cluster (the others see it gone at once) and stops and joins the I/O threads.
  void leave_and_join();

 private:
  NodeProcess(int io_threads, std::string role);
  int io_threads_;
  std::string role_;
  boost::asio::io_context io_;
  std::unique_ptr<remote::Node> node_;
  std::optional<cluster::IoThreads> threads_;
  std::optional<cluster::TerminationSignals> signals_;  // caught from start() on
};

}  // namespace troupe::cli
