#pragma once
// What `troupe worker` and `troupe gateway` share as processes: running an io_context on a
// few threads, waiting for a termination signal, and building the node's options from flags.
//
// Thread-safety: IoThreads' members from the thread that owns it; TerminationSignals::wait()
// from a thread that does not run the io_context.

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "remote/node.hpp"
#include "util/result.hpp"

namespace troupe::cluster {

// Runs an io_context on `n` threads from construction until join() (or destruction), which
// lets pending work finish and joins them.
class IoThreads {
 public:
  IoThreads(boost::asio::io_context& io, int n);
  ~IoThreads();
  IoThreads(const IoThreads&) = delete;
  IoThreads& operator=(const IoThreads&) = delete;

  // Drops the work guard and joins; when `force`, stops the io_context first.
  void join(bool force = false);

 private:
  boost::asio::io_context& io_;
  boost::asio::executor_work_guard<boost::asio::io_context::executor_type> guard_;
  std::vector<std::thread> threads_;
};

// SIGINT and SIGTERM, caught from construction on: a signal that arrives before wait() (say,
// right after the process logged that it is ready) is kept, not lost to the default action.
class TerminationSignals {
 public:
  explicit TerminationSignals(boost::asio::io_context& io);
  // Blocks until SIGINT or SIGTERM (handled on the io_context, which must be running on other
  // threads) and returns the signal number. A second signal later ends the process at once
  // (exit 130).
  int wait();

 private:
  std::shared_ptr<boost::asio::signal_set> signals_;
};

// Node flags as the commands take them.
struct NodeFlags {
  std::string listen = "0.0.0.0:7946";
  std::string advertise;
  std::vector<std::string> join;  // "host:port", each may hold a comma-separated list
  std::string cluster_secret;     // default: env TROUPE_CLUSTER_SECRET
  // Failure detection (remote::MembershipOptions), in milliseconds. A crashed node is suspected
  // after a probe round without an answer and declared dead suspect_timeout later: with these
  // defaults 2 to 2.5 s after it stopped answering.
  int probe_interval_ms = 500;
  int probe_timeout_ms = 200;  // less than probe_interval_ms
  int suspect_timeout_ms = 1500;
  int rejoin_interval_ms = 2000;  // retry of the seeds and of dead members
  // How long a link's reader polls after an ask or a reply before sleeping
  // (remote::NodeOptions::spin_before_block); -1: the machine's default.
  int reader_spin_us = -1;
  // Mutual TLS on every cluster link (remote::TlsOptions): all three PEM files, or none.
  std::string tls_cert, tls_key, tls_ca;
};

// Host names in --join and --advertise are resolved to IPv4 addresses here (once, at start).
// Errors (invalid_request): no cluster secret, an address that is not host:port or does not
// resolve, a timing that is not positive or a probe timeout not below the probe interval, a
// reader spin above 1000 us,
// some but not all of the TLS files.
Result<remote::NodeOptions> node_options(const NodeFlags& flags);

}  // namespace troupe::cluster
