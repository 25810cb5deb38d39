#pragma once
// Cluster roles in one test process, each on its own node, io_context and thread (as if in
// separate processes), over loopback: a worker node serving a backend, a gateway node, and
// run_sync for the gateway's coroutines.

#include <gtest/gtest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <future>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "cluster/gateway.hpp"
#include "cluster/worker.hpp"
#include "engine/backend.hpp"
#include "remote/test_node.hpp"

namespace troupe::cluster::test_nodes {

// A worker process: node + backend + Worker, started (and its models published) on
// construction.
struct WorkerNode {
  WorkerNode(std::vector<std::string> seeds, remote::test::Signal& sig,
             std::unique_ptr<engine::Backend> b, WorkerOptions options)
      : node(remote::test::fast_options(std::move(seeds)), &sig),
        backend(std::move(b)),
        worker(*node, *backend, node.io().get_executor(), options) {
    std::promise<bool> ready;
    worker.start([&](Result<std::vector<std::string>> r) { ready.set_value(r.ok()); });
    EXPECT_TRUE(ready.get_future().get());
  }
  ~WorkerNode() {
    worker.stop();
    node.shutdown();
  }
  remote::test::TestNode node;
  std::unique_ptr<engine::Backend> backend;
  Worker worker;
};

struct GatewayNode {
  explicit GatewayNode(remote::test::Signal& sig)
      : node(remote::test::fast_options(), &sig), gateway(*node) {
    gateway.start([&sig](const remote::MemberEvent&) { sig.notify(); });
  }
  ~GatewayNode() {
    gateway.stop();
    node.shutdown();
  }
  std::string address() { return node->address(); }
  remote::test::TestNode node;
  Gateway gateway;
};

// Runs a coroutine to completion on a fresh io_context kept running until it is done (an
// ask in flight is not work the io_context knows of).
template <class T>
T run_sync(boost::asio::awaitable<T> a) {
  boost::asio::io_context io;
  auto guard = boost::asio::make_work_guard(io);
  std::optional<T> out;
  boost::asio::co_spawn(io, std::move(a), [&](std::exception_ptr e, T v) {
    EXPECT_FALSE(e);
    out = std::move(v);
    guard.reset();
  });
  io.run();
  return std::move(*out);
}

}  // namespace troupe::cluster::test_nodes
