// remote_bench: tell throughput (64-byte payloads, one connection), ask round trip p50/p99
// and 1 MiB payload throughput over loopback, for troupe's remote actors, CAF 0.17 remote
// actors and raw ZeroMQ, in the same run. Prints a Markdown table (docs/BENCHMARKS.md).
//
//   remote_bench [--quick] [--only troupe|zeromq|caf] [--tls]
//
// --tls adds a row for troupe with mutual TLS on both links (certificates made at start in
// a temporary directory, as in tests/remote/tls_test.cpp).
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/use_future.hpp>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
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

Outcome run_troupe(const Scenario& s, bool tls) {
  NodeOptions opt;
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
    char allocs[32] = "n/a";
    if (r.allocs_per_tell >= 0)
      std::snprintf(allocs, sizeof allocs, "%.4f", r.allocs_per_tell);
    std::printf("| %s | %.0f | %.1f | %.1f | %.0f | %s |\n", r.system.c_str(), r.tell_msgs_per_s,
                r.ask_p50_us, r.ask_p99_us, r.big_mib_per_s, allocs);
  }
}

}  // namespace
}  // namespace troupe::remote::bench

int main(int argc, char** argv) {
  using namespace troupe::remote::bench;
  Scenario s;
  std::string only;
  bool tls = false;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--quick")
      s = Scenario{200'000, 5'000, 50};
    if (a == "--only" && i + 1 < argc)
      only = argv[++i];
    if (a == "--tls")
      tls = true;
  }
  std::vector<Outcome> rows;
  try {
    if (only.empty() || only == "troupe") {
      rows.push_back(run_troupe(s, false));
      if (tls)
        rows.push_back(run_troupe(s, true));
    }
    if (only.empty() || only == "zeromq")
      rows.push_back(run_zeromq(s));
    if (only.empty() || only == "caf")
      rows.push_back(run_caf(s));
  } catch (const std::exception& e) {
    std::fprintf(stderr, "remote_bench: %s\n", e.what());
    print(rows);
    return 1;
  }
  print(rows);
}
