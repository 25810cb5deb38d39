// remote_bench: tell throughput (64-byte payloads, one connection), ask round trip p50/p99
// and 1 MiB payload throughput over loopback, for troupe's remote actors, CAF 0.17 remote
// actors and raw ZeroMQ, in the same run. Prints a Markdown table (docs/BENCHMARKS.md).
//
//   remote_bench [--quick] [--only troupe|zeromq|caf[,...]] [--tls] [--ask-only] [--asks N]
//                [--repeat N] [--spin-us N]
//
// --tls adds a row for troupe with mutual TLS on both links (certificates made at start in
// a temporary directory, as in tests/remote/tls_test.cpp). --ask-only runs only the ask
// round trips (--asks of them, 20,000 by default). --repeat N runs the selected systems N
// times, alternating them (troupe, ZeroMQ, troupe, ZeroMQ...), prints every round and then
// the median of each column and the ask p50 ratio troupe / ZeroMQ. --spin-us sets troupe's
// NodeOptions::spin_before_block (0: readers never spin; without it, the library's default,
// 50 us).
#include <spdlog/spdlog.h>

#include <algorithm>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/use_future.hpp>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string_view>
#include <thread>

#include "bench_peers.hpp"
#include "remote/node.hpp"
#include "support/alloc_counter.hpp"
#include "test_certs.hpp"

namespace troupe::remote::bench {
namespace {

namespace asio = boost::asio;
using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

struct Runner {  // a node on its own io_context and thread
  asio::io_context io;
  asio::executor_work_guard<asio::io_context::executor_type> work{io.get_executor()};
  std::unique_ptr<Node> node;
  std::thread thread;
  explicit Runner(NodeOptions opt) {
    node = std::move(Node::start(io, std::move(opt)).value());
    thread = std::thread([this] { io.run(); });
  }
  ~Runner() {
    node.reset();
    work.reset();
    io.stop();
    thread.join();
  }
};

struct Counter {
  std::mutex mu;
  std::condition_variable cv;
  std::atomic<std::uint64_t> seen{0};
  void add() {
    seen.fetch_add(1, std::memory_order_relaxed);
    std::lock_guard lock(mu);
    cv.notify_all();
  }
  void wait_for(std::uint64_t n) {
    std::unique_lock lock(mu);
    cv.wait(lock, [&] { return seen.load() >= n; });
  }
};

template <class Payload>
void tell_all(const RemoteRef& ref, const Payload& p, std::uint64_t n) {
  for (std::uint64_t i = 0; i < n;) {
    if (ref.tell_raw(std::span<const std::byte>(p)).ok())
      ++i;
    else
      std::this_thread::yield();  // queue full: the receiver is the bottleneck
  }
}

std::vector<double> ask_rtts(Runner& client, const RemoteRef& echo, std::uint64_t n) {
  auto fut = asio::co_spawn(
      client.io,
      [echo, n]() -> asio::awaitable<std::vector<double>> {
        std::vector<double> rtt;
        rtt.reserve(n);
        std::array<std::byte, 64> p{};
        for (std::uint64_t i = 0; i < n; ++i) {
          auto t = Clock::now();
          auto r = co_await echo.async_ask_raw(0, p, 5s, asio::use_awaitable);
          if (!r)
            throw std::runtime_error(r.error().message);
          rtt.push_back(std::chrono::duration<double, std::micro>(Clock::now() - t).count());
        }
        co_return rtt;
      },
      asio::use_future);
  return fut.get();
}

long g_spin_us = -1;  // --spin-us: NodeOptions::spin_before_block (-1: the default)

Outcome run_troupe(const Scenario& s, bool tls) {
  NodeOptions opt;
  if (g_spin_us >= 0)
    opt.spin_before_block = std::chrono::microseconds(g_spin_us);
  opt.cluster_secret = "bench";
  opt.send_queue_capacity = 16384;
  std::filesystem::path cert_dir;
  test::TestCa ca;
  if (tls) {
    cert_dir = test::make_temp_dir("bench-tls");
    ca = test::make_ca(cert_dir, "ca");
    opt.tls = test::make_node_cert(ca, cert_dir, "server");
  }
  struct RemoveDir {
    std::filesystem::path dir;
    ~RemoveDir() {
      std::error_code ec;
      if (!dir.empty())
        std::filesystem::remove_all(dir, ec);
    }
  } remove_dir{cert_dir};
  Counter counter;
  Runner server(opt);
  server.node->publish("sink", [&](Envelope&) { counter.add(); });
  server.node->publish("echo", [](Envelope& e) { e.reply.send(e.type, e.payload); });
  opt.seeds = {server.node->address()};
  if (tls)  // same CA, a certificate of its own
    opt.tls = test::make_node_cert(ca, cert_dir, "client");
  Runner client(opt);
  while (!client.node->lookup("sink").ok() || !client.node->lookup("echo").ok()) {
    std::this_thread::sleep_for(10ms);  // setup only, not measured
  }
  RemoteRef sink = client.node->lookup("sink").value();
  RemoteRef echo = client.node->lookup("echo").value();
  Outcome o{tls ? "troupe remote, mutual TLS" : "troupe remote"};
  if (s.ask_only) {
    ask_rtts(client, echo, 1000);  // warm-up
    auto rtt = ask_rtts(client, echo, s.asks);
    o.ask_p50_us = percentile(rtt, 50);
    o.ask_p99_us = percentile(rtt, 99);
    return o;
  }

  std::array<std::byte, 64> small{};
  tell_all(sink, small, 10000);  // warm-up
  counter.wait_for(10000);
  auto t0 = Clock::now();
  // The sending thread's operator new calls (the 0-allocation target).
  std::uint64_t allocs_before = ::troupe::test::thread_allocation_count();
  tell_all(sink, small, s.small_messages);
  std::uint64_t t_allocations = ::troupe::test::thread_allocation_count() - allocs_before;
  counter.wait_for(10000 + s.small_messages);
  o.tell_msgs_per_s = static_cast<double>(s.small_messages) /
                      std::chrono::duration<double>(Clock::now() - t0).count();
  o.allocs_per_tell = static_cast<double>(t_allocations) / static_cast<double>(s.small_messages);

  ask_rtts(client, echo, 1000);  // warm-up
  auto rtt = ask_rtts(client, echo, s.asks);
  o.ask_p50_us = percentile(rtt, 50);
  o.ask_p99_us = percentile(rtt, 99);

  std::vector<std::byte> big(1 << 20, std::byte{7});
  std::uint64_t before = counter.seen.load();
  t0 = Clock::now();
  tell_all(sink, big, s.big_messages);
  counter.wait_for(before + s.big_messages);
  o.big_mib_per_s = static_cast<double>(s.big_messages) /
                    std::chrono::duration<double>(Clock::now() - t0).count();
  return o;
}

void print(const std::vector<Outcome>& rows) {
  std::printf(
      "| system | tell 64 B (msg/s) | ask RTT p50 (us) | ask RTT p99 (us) | 1 MiB tells (MiB/s) | "
      "allocs per tell |\n");
  std::printf("|---|---:|---:|---:|---:|---:|\n");
  for (const auto& r : rows) {
    char allocs[32] = "n/a", tell[32] = "-", big[32] = "-";  // "-": not run (--ask-only)
    if (r.allocs_per_tell >= 0)
      std::snprintf(allocs, sizeof allocs, "%.4f", r.allocs_per_tell);
    if (r.tell_msgs_per_s > 0)
      std::snprintf(tell, sizeof tell, "%.0f", r.tell_msgs_per_s);
    if (r.big_mib_per_s > 0)
      std::snprintf(big, sizeof big, "%.0f", r.big_mib_per_s);
    std::printf("| %s | %s | %.1f | %.1f | %s | %s |\n", r.system.c_str(), tell, r.ask_p50_us,
                r.ask_p99_us, big, allocs);
  }
}

// The median of every column per system over the rounds, and troupe's ask p50 against
// ZeroMQ's.
void print_medians(const std::vector<Outcome>& rows) {
  std::vector<std::string> systems;
  for (const auto& r : rows) {
    if (std::find(systems.begin(), systems.end(), r.system) == systems.end())
      systems.push_back(r.system);
  }
  std::vector<Outcome> med;
  for (const auto& name : systems) {
    std::vector<double> tell, p50, p99, big;
    Outcome m{name};
    for (const auto& r : rows) {
      if (r.system != name)
        continue;
      tell.push_back(r.tell_msgs_per_s);
      p50.push_back(r.ask_p50_us);
      p99.push_back(r.ask_p99_us);
      big.push_back(r.big_mib_per_s);
      m.allocs_per_tell = r.allocs_per_tell;
    }
    m.system += " (median of " + std::to_string(p50.size()) + ")";
    m.tell_msgs_per_s = percentile(tell, 50);
    m.ask_p50_us = percentile(p50, 50);
    m.ask_p99_us = percentile(p99, 50);
    m.big_mib_per_s = percentile(big, 50);
    med.push_back(m);
  }
  std::printf("\n");
  print(med);
  auto find = [&](std::string_view prefix) -> const Outcome* {
    for (const auto& m : med) {
      if (m.system.starts_with(prefix) && m.system.find("TLS") == std::string::npos)
        return &m;
    }
    return nullptr;
  };
  const Outcome* t = find("troupe remote");
  const Outcome* z = find("ZeroMQ");
  if (t && z && z->ask_p50_us > 0)
    std::printf("\nask p50 troupe / ZeroMQ: %.2f\n", t->ask_p50_us / z->ask_p50_us);
}

}  // namespace
}  // namespace troupe::remote::bench

int main(int argc, char** argv) {
  using namespace troupe::remote::bench;
  Scenario s;
  std::string only;
  bool tls = false;
  int repeat = 1;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--quick")
      s = Scenario{200'000, 5'000, 50};
    else if (a == "--only" && i + 1 < argc)
      only = argv[++i];
    else if (a == "--tls")
      tls = true;
    else if (a == "--ask-only")
      s.ask_only = true;
    else if (a == "--asks" && i + 1 < argc)
      s.asks = std::strtoull(argv[++i], nullptr, 10);
    else if (a == "--spin-us" && i + 1 < argc)
      g_spin_us = std::atol(argv[++i]);
    else if (a == "--repeat" && i + 1 < argc)
      repeat = std::max(1, std::atoi(argv[++i]));
    else {
      std::fprintf(stderr,
                   "usage: remote_bench [--quick] [--only troupe|zeromq|caf[,...]] [--tls] "
                   "[--ask-only] [--asks N] [--repeat N] [--spin-us N]\n");
      return 2;
    }
  }
  // --only takes one system or a comma-separated list ("troupe,zeromq").
  auto want = [&](std::string_view system) {
    if (only.empty())
      return true;
    std::string list = "," + only + ",";
    return list.find("," + std::string(system) + ",") != std::string::npos;
  };
  spdlog::set_level(spdlog::level::err);  // membership chatter would interleave the table
  std::vector<Outcome> rows;
  try {
    for (int round = 0; round < repeat; ++round) {
      if (want("troupe")) {
        rows.push_back(run_troupe(s, false));
        if (tls)
          rows.push_back(run_troupe(s, true));
      }
      if (want("zeromq"))
        rows.push_back(run_zeromq(s));
      if (want("caf"))
        rows.push_back(run_caf(s));
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "remote_bench: %s\n", e.what());
    print(rows);
    return 1;
  }
  print(rows);
  if (repeat > 1)
    print_medians(rows);
}
