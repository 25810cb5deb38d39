#pragma once
// A Node on its own io_context and thread (as if in its own process), with a condition
// variable that every membership event and every test handler can notify, so tests wait on
// events with a generous deadline instead of sleeping.

#include <spdlog/spdlog.h>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <future>
#include <mutex>
#include <thread>

#include "remote/node.hpp"

namespace troupe::remote::test {

using namespace std::chrono_literals;

#if defined(__SANITIZE_THREAD__) || defined(__SANITIZE_ADDRESS__)
inline constexpr int kSlowdown = 6;  // sanitizers on 2 busy cores: a node under load answers late
#else
inline constexpr int kSlowdown = 1;
#endif

// Short timings so failure detection takes well under a second (a few under sanitizers).
inline NodeOptions fast_options(std::vector<std::string> seeds = {}) {
  NodeOptions o;
  o.cluster_secret = "test-secret";
  o.seeds = std::move(seeds);
  o.membership.probe_interval = 100ms * kSlowdown;
  o.membership.probe_timeout = 50ms * kSlowdown;
  o.membership.suspect_timeout = 300ms * kSlowdown;
  o.membership.rejoin_interval = 300ms * kSlowdown;
  o.reconnect_max = 100ms;
  return o;
}

// Generous: sanitizers on 2 busy cores are slow.
inline constexpr auto kDeadline = 20s;

class Signal {
 public:
  void notify() {
    {
      std::lock_guard lock(mu_);
      ++gen_;
    }
    cv_.notify_all();
  }
  // Waits until pred() holds or the deadline passes. pred() is checked at every notify and,
  // for conditions no event announces (counters), every 10 ms.
  template <class Pred>
  bool wait(Pred pred, std::chrono::steady_clock::duration limit = kDeadline) {
    auto deadline = std::chrono::steady_clock::now() + limit;
    std::unique_lock lock(mu_);
    while (!pred()) {
      if (std::chrono::steady_clock::now() >= deadline)
        return false;
      cv_.wait_for(lock, 10ms);
    }
    return true;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::uint64_t gen_ = 0;
};

class TestNode {
 public:
  explicit TestNode(NodeOptions opt, Signal* signal = nullptr) : signal_(signal) {
    // spdlog (an uninstrumented shared library) creates its registry on first use; doing that
    // here, before the node's thread starts, gives ThreadSanitizer the ordering it cannot see
    // inside libspdlog (otherwise a node thread's first log line reads as a race).
    spdlog::default_logger_raw();
    auto n = Node::start(io_, std::move(opt));
    if (!n)
      throw std::runtime_error(n.error().message);
    node_ = std::move(n.value());
    if (signal_)
      node_->on_member_event([s = signal_](const MemberEvent&) { s->notify(); });
    thread_ = std::thread([this] { io_.run(); });
  }
  ~TestNode() { shutdown(); }

  // Stops the node, lets its coroutines finish (up to 5 s) and joins the thread.
  void shutdown() {
    if (!node_)
      return;
    node_.reset();
    work_.reset();
    auto done = std::async(std::launch::async, [this] { thread_.join(); });
    if (done.wait_for(5s) != std::future_status::ready) {
      std::fprintf(stderr, "test node: coroutines still running 5 s after stop\n");
      io_.stop();
      done.wait();
    }
  }

  Node& operator*() { return *node_; }
  Node* operator->() { return node_.get(); }
  boost::asio::io_context& io() { return io_; }

  // True once `name` resolves (this node's registry) to a node other than `not_on`.
  bool knows(std::string_view name) { return node_->lookup(name).ok(); }
  bool sees_alive(NodeId id) {
    auto snap = node_->snapshot();  // keep it alive for the loop
    for (const auto& m : snap->members) {
      if (m.id == id && m.state == MemberState::alive)
        return true;
    }
    return false;
  }
  bool sees(NodeId id) {
    auto snap = node_->snapshot();  // keep it alive for the loop
    for (const auto& m : snap->members) {
      if (m.id == id)
        return true;
    }
    return false;
  }

 private:
  boost::asio::io_context io_;
  boost::asio::executor_work_guard<boost::asio::io_context::executor_type> work_{
      io_.get_executor()};
  Signal* signal_;
  std::unique_ptr<Node> node_;
  std::thread thread_;
};

inline std::span<const std::byte> as_bytes(std::string_view s) {
  return {reinterpret_cast<const std::byte*>(s.data()), s.size()};
}
inline std::string as_string(std::span<const std::byte> b) {
  return {reinterpret_cast<const char*>(b.data()), b.size()};
}

}  // namespace troupe::remote::test
