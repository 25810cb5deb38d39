#include "bench_peers.hpp"

#include <zmq.h>

#include <algorithm>
#include <atomic>
#include <caf/all.hpp>
#include <caf/io/all.hpp>
#include <chrono>
#include <cstring>
#include <future>
#include <stdexcept>
#include <thread>

namespace troupe::remote::bench {

namespace {
using Clock = std::chrono::steady_clock;
double seconds_since(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}
}  // namespace

double percentile(std::vector<double>& v, double p) {
  if (v.empty())
    return 0;
  std::sort(v.begin(), v.end());
  auto i = static_cast<std::size_t>(p / 100.0 * static_cast<double>(v.size() - 1));
  return v[i];
}

// --- ZeroMQ --------------------------------------------------------------------------------

namespace {

// PUSH -> PULL of `n` messages of `size` bytes; returns seconds until the last one arrived.
double zmq_push_pull(void* ctx, std::uint64_t n, std::size_t size, int port) {
  std::string ep = "tcp://127.0.0.1:" + std::to_string(port);
  void* pull = zmq_socket(ctx, ZMQ_PULL);
  int hwm = 100000;
  zmq_setsockopt(pull, ZMQ_RCVHWM, &hwm, sizeof hwm);
  if (zmq_bind(pull, ep.c_str()) != 0)
    throw std::runtime_error("zmq bind failed");
  std::promise<Clock::time_point> done;
  std::thread receiver([&] {
    std::vector<char> buf(size + 16);
    for (std::uint64_t got = 0; got < n; ++got)
      zmq_recv(pull, buf.data(), buf.size(), 0);
    done.set_value(Clock::now());
  });
  void* push = zmq_socket(ctx, ZMQ_PUSH);
  zmq_setsockopt(push, ZMQ_SNDHWM, &hwm, sizeof hwm);
  zmq_connect(push, ep.c_str());
  std::vector<char> msg(size, 'x');
  auto t0 = Clock::now();
  for (std::uint64_t i = 0; i < n; ++i)
    zmq_send(push, msg.data(), msg.size(), 0);
  double s = std::chrono::duration<double>(done.get_future().get() - t0).count();
  receiver.join();
  zmq_close(push);
  zmq_close(pull);
  return s;
}

std::vector<double> zmq_req_rep(void* ctx, std::uint64_t n, int port) {
  std::string ep = "tcp://127.0.0.1:" + std::to_string(port);
  void* rep = zmq_socket(ctx, ZMQ_REP);
  zmq_bind(rep, ep.c_str());
  std::thread server([&] {
    char buf[64];
    for (std::uint64_t i = 0; i < n; ++i) {
      int len = zmq_recv(rep, buf, sizeof buf, 0);
      zmq_send(rep, buf, static_cast<std::size_t>(len), 0);
    }
  });
  void* req = zmq_socket(ctx, ZMQ_REQ);
  zmq_connect(req, ep.c_str());
  std::vector<double> rtt;
  rtt.reserve(n);
  char msg[64] = {};
  for (std::uint64_t i = 0; i < n; ++i) {
    auto t = Clock::now();
    zmq_send(req, msg, sizeof msg, 0);
    zmq_recv(req, msg, sizeof msg, 0);
    rtt.push_back(seconds_since(t) * 1e6);
  }
  server.join();
  zmq_close(req);
  zmq_close(rep);
  return rtt;
}

}  // namespace

Outcome run_zeromq(const Scenario& s) {
  void* ctx = zmq_ctx_new();
  Outcome o{"ZeroMQ 4 (PUSH/PULL, REQ/REP)"};
  if (s.ask_only) {
    auto rtt = zmq_req_rep(ctx, s.asks, 47312);
    o.ask_p50_us = percentile(rtt, 50);
    o.ask_p99_us = percentile(rtt, 99);
    zmq_ctx_term(ctx);
    return o;
  }
  o.tell_msgs_per_s =
      static_cast<double>(s.small_messages) / zmq_push_pull(ctx, s.small_messages, 64, 47311);
  auto rtt = zmq_req_rep(ctx, s.asks, 47312);
  o.ask_p50_us = percentile(rtt, 50);
  o.ask_p99_us = percentile(rtt, 99);
  double secs = zmq_push_pull(ctx, s.big_messages, 1 << 20, 47313);
  o.big_mib_per_s = static_cast<double>(s.big_messages) / secs;
  zmq_ctx_term(ctx);
  return o;
}

// --- CAF 0.17 ------------------------------------------------------------------------------

namespace {

using count_atom = caf::atom_constant<caf::atom("count")>;

// Counts strings; answers count_atom with the number seen so far (after earlier messages
// from the same sender, which arrive in order).
caf::behavior counter(caf::event_based_actor*, std::shared_ptr<std::uint64_t> seen) {
  return {
      [seen](const std::string&) { ++*seen; },
      [seen](count_atom) { return *seen; },
      [](int x) { return x; },
  };
}

}  // namespace

Outcome run_caf(const Scenario& s) {
  Outcome o{"CAF 0.17 (middleman remote actors)"};
  caf::actor_system_config server_cfg;
  server_cfg.load<caf::io::middleman>();
  caf::actor_system server{server_cfg};
  auto recv = server.spawn(counter, std::make_shared<std::uint64_t>(0));
  auto port = server.middleman().publish(recv, 0, "127.0.0.1");
  if (!port)
    throw std::runtime_error("CAF publish failed");

  caf::actor_system_config client_cfg;
  client_cfg.load<caf::io::middleman>();
  caf::actor_system client{client_cfg};
  auto remote = client.middleman().remote_actor("127.0.0.1", *port);
  if (!remote)
    throw std::runtime_error("CAF remote_actor failed");
  caf::scoped_actor self{client};

  auto wait_count = [&](std::uint64_t want) {
    for (;;) {
      std::uint64_t got = 0;
      self->request(*remote, caf::infinite, count_atom::value)
          .receive([&](std::uint64_t n) { got = n; }, [](caf::error&) {});
      if (got >= want)
        return;
    }
  };
  std::string small(64, 'x');
  auto t0 = Clock::now();
  if (!s.ask_only) {
    for (std::uint64_t i = 0; i < s.small_messages; ++i)
      self->send(*remote, small);
    wait_count(s.small_messages);
    o.tell_msgs_per_s = static_cast<double>(s.small_messages) / seconds_since(t0);
  }

  std::vector<double> rtt;
  for (std::uint64_t i = 0; i < s.asks; ++i) {
    auto t = Clock::now();
    self->request(*remote, caf::infinite, 1).receive([](int) {}, [](caf::error&) {});
    rtt.push_back(seconds_since(t) * 1e6);
  }
  o.ask_p50_us = percentile(rtt, 50);
  o.ask_p99_us = percentile(rtt, 99);
  if (s.ask_only) {
    caf::anon_send_exit(recv, caf::exit_reason::user_shutdown);
    return o;
  }

  std::string big(1 << 20, 'y');
  t0 = Clock::now();
  for (std::uint64_t i = 0; i < s.big_messages; ++i)
    self->send(*remote, big);
  wait_count(s.small_messages + s.big_messages);
  o.big_mib_per_s = static_cast<double>(s.big_messages) / seconds_since(t0);
  caf::anon_send_exit(recv, caf::exit_reason::user_shutdown);
  return o;
}

}  // namespace troupe::remote::bench
