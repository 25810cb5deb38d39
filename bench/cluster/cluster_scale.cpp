// cluster_scale: how the gateway scales, by simulation. Starts `troupe gateway` and N
// `troupe worker --engine sim` processes on loopback, streams S requests per worker through the
// gateway at once, and reports per N: streamed tokens/s, the gateway's CPU time per streamed
// token (from /proc/<pid>/stat), and inter-token latency percentiles; then the same load
// straight to one worker's own HTTP server, for the latency the gateway adds.
//
//   cluster_scale [--workers 1,2,4,8,16] [--streams 64] [--tokens 100] [--tps 50]
//                 [--troupe-dir DIR] [--gateway-io-threads 2] [--sim-steps on|off]
//
// The `troupe` binary it starts is DIR/troupe, where DIR is --troupe-dir, else
// $TROUPE_CLUSTER_SCALE_DIR, else cluster_scale's own folder when a `troupe` sits beside it
// (a copy of the two binaries), else the build tree it was built in.
//
// The load generator runs in this process on one thread, on the same machine: on a small
// machine it competes with the gateway for CPU, which the report must say.

#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <regex>
#include <sstream>
#include <string>
#include <vector>

#include "client/client.hpp"
#include "cluster/child_process.hpp"

namespace asio = boost::asio;
using troupe::cluster::test::ChildProcess;
using Clock = std::chrono::steady_clock;

namespace {

struct Options {
  std::vector<int> workers{1, 2, 4, 8, 16};
  int streams = 64;  // per worker
  int gateway_io_threads = 2;
  bool sim_steps = false;  // workers' sim tokens on one step clock (--sim-steps)
  int tokens = 100;        // per stream
  double tps = 50;         // sim decode speed per stream
  std::string troupe_dir;
};

struct Load {
  std::int64_t tokens = 0;
  std::int64_t errors = 0;
  double seconds = 0;
  std::vector<double> itl_ms;  // every gap between two deltas of one stream
};

double cpu_seconds(pid_t pid) {
  std::ifstream in(fmt::format("/proc/{}/stat", pid));
  std::string s((std::istreambuf_iterator<char>(in)), {});
  auto close = s.rfind(')');
  std::istringstream rest(s.substr(close + 2));
  std::string field;
  long long utime = 0, stime = 0;
  for (int i = 3; i <= 15 && rest >> field; ++i) {
    if (i == 14)
      utime = std::stoll(field);
    if (i == 15)
      stime = std::stoll(field);
  }
  return static_cast<double>(utime + stime) / static_cast<double>(sysconf(_SC_CLK_TCK));
}

double percentile(std::vector<double> v, double p) {
  if (v.empty())
    return 0;
  std::sort(v.begin(), v.end());
  return v[static_cast<std::size_t>(p * static_cast<double>(v.size() - 1))];
}

asio::awaitable<void> one_stream(troupe::client::Client& c, int tokens, Load& load, int i) {
  troupe::client::ChatRequest r;
  r.model = "sim";
  r.messages = {{"user", fmt::format("request {}", i)}};
  r.sampling.max_tokens = tokens;
  auto s = co_await c.stream_chat(r);
  if (!s) {
    ++load.errors;
    co_return;
  }
  std::optional<Clock::time_point> last;
  for (;;) {
    auto ev = co_await s->next();
    if (auto* d = std::get_if<troupe::client::Delta>(&ev)) {
      ++load.tokens;
      if (last)
        load.itl_ms.push_back(
            std::chrono::duration<double, std::milli>(d->received_at - *last).count());
      last = d->received_at;
      continue;
    }
    if (std::holds_alternative<troupe::client::ClientError>(ev))
      ++load.errors;
    break;
  }
}

Load run_load(const std::string& url, int streams, int tokens) {
  Load load;
  asio::io_context io;
  troupe::client::Client c(io.get_executor(), {.base_url = url, .max_idle_connections = 4096});
  for (int i = 0; i < streams; ++i)
    asio::co_spawn(io, one_stream(c, tokens, load, i), asio::detached);
  const auto t0 = Clock::now();
  io.run();
  load.seconds = std::chrono::duration<double>(Clock::now() - t0).count();
  return load;
}

std::unique_ptr<ChildProcess> start_worker(const std::string& seed, int i, const Options& o,
                                           std::string* url) {
  std::vector<std::string> args{"--log-level",
                                url ? "info" : "warn",  // info: its direct URL is logged
                                "worker",
                                "--engine",
                                "sim",
                                "--listen",
                                "127.0.0.1:0",
                                "--join",
                                seed,
                                "--cluster-secret",
                                "bench",
                                "--parallel",
                                std::to_string(o.streams),
                                "--max-queue",
                                "4096",
                                "--sim-decode-tps",
                                fmt::format("{}", o.tps),
                                "--io-threads",
                                "1",
                                "--http-port",
                                url ? "0" : "-1"};
  if (o.sim_steps)
    args.emplace_back("--sim-steps");
  auto w = std::make_unique<ChildProcess>(std::move(args), fmt::format("worker-{}", i));
  if (url) {
    auto m = w->wait_for(std::regex(R"(direct HTTP on (http://\S+))"));
    *url = m ? std::string((*m)[1]) : "";
  }
  return w;
}

void report_line(int n, int streams, const Load& l, double cpu) {
  fmt::print("| {} | {} | {:.0f} | {:.1f} | {:.2f} | {:.2f} | {} |\n", n, streams,
             static_cast<double>(l.tokens) / l.seconds,
             cpu * 1e6 / static_cast<double>(std::max<std::int64_t>(1, l.tokens)),
             percentile(l.itl_ms, 0.5), percentile(l.itl_ms, 0.99), l.errors);
}

void report_direct(const std::string& url, const Options& o) {
  auto direct = run_load(url, o.streams, o.tokens);
  fmt::print(
      "\ndirect to worker 0 ({} streams): {:.0f} tokens/s, ITL p50 {:.2f} ms, "
      "p99 {:.2f} ms, errors {}\n\n",
      o.streams, static_cast<double>(direct.tokens) / direct.seconds,
      percentile(direct.itl_ms, 0.5), percentile(direct.itl_ms, 0.99), direct.errors);
}

// One gateway and n workers; with `direct`, also the same per-worker load straight to
// worker 0, for comparison.
void run_size(int n, const Options& o, bool direct) {
  ChildProcess gw(
      {"gateway", "--listen", "127.0.0.1:0", "--http-port", "0", "--cluster-secret", "bench",
       "--max-connections", "8192", "--io-threads", std::to_string(o.gateway_io_threads)},
      "gateway");
  auto m =
      gw.wait_for(std::regex(R"(listening on (http://[0-9.]+:[0-9]+), cluster node \S+ at (\S+))"));
  if (!m) {
    fmt::print(stderr, "gateway did not start\n");
    std::exit(1);
  }
  const std::string url = (*m)[1], seed = (*m)[2];
  std::string direct_url;
  std::vector<std::unique_ptr<ChildProcess>> workers;
  for (int i = 0; i < n; ++i)
    workers.push_back(start_worker(seed, i, o, i == 0 && direct ? &direct_url : nullptr));
  if (!gw.wait_for(std::regex(fmt::format(R"(\({} workers\))", n)), 0, std::chrono::seconds(120))) {
    fmt::print(stderr, "workers did not all join\n");
    std::exit(1);
  }
  const double cpu0 = cpu_seconds(gw.pid());
  auto load = run_load(url, n * o.streams, o.tokens);
  report_line(n, n * o.streams, load, cpu_seconds(gw.pid()) - cpu0);
  if (direct)
    report_direct(direct_url, o);
}

// Where the `troupe` to start lives (see the top of the file).
std::string troupe_dir(const Options& o) {
  namespace fs = std::filesystem;
  if (!o.troupe_dir.empty())
    return o.troupe_dir;
  if (const char* env = std::getenv("TROUPE_CLUSTER_SCALE_DIR"); env != nullptr && *env != 0)
    return env;
  std::error_code ec;
  const fs::path self = fs::read_symlink("/proc/self/exe", ec).parent_path();
  if (!ec && fs::is_regular_file(self / "troupe", ec))
    return self.string();
  return TROUPE_BUILD_DIR;
}

std::vector<int> parse_list(const std::string& s) {
  std::vector<int> out;
  std::stringstream in(s);
  for (std::string part; std::getline(in, part, ',');)
    out.push_back(std::stoi(part));
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string k = argv[i], v = argv[i + 1];
    if (k == "--workers")
      o.workers = parse_list(v);
    else if (k == "--streams")
      o.streams = std::stoi(v);
    else if (k == "--tokens")
      o.tokens = std::stoi(v);
    else if (k == "--tps")
      o.tps = std::stod(v);
    else if (k == "--troupe-dir")
      o.troupe_dir = v;
    else if (k == "--gateway-io-threads")
      o.gateway_io_threads = std::stoi(v);
    else if (k == "--sim-steps")
      o.sim_steps = v == "on";
  }
  const std::string dir = troupe_dir(o);
  if (!std::filesystem::is_regular_file(std::filesystem::path(dir) / "troupe")) {
    fmt::print(stderr, "no troupe binary in {} (use --troupe-dir)\n", dir);
    return 1;
  }
  ::setenv("TROUPE_CLUSTER_SCALE_DIR", dir.c_str(), 1);  // read by ChildProcess
  fmt::print("troupe: {}/troupe\n", dir);
  fmt::print("streams per worker {}, {} tokens each, sim decode {} tokens/s per stream\n\n",
             o.streams, o.tokens, o.tps);
  fmt::print(
      "| workers | streams | tokens/s | gateway CPU us/token | ITL p50 ms | ITL p99 ms | "
      "errors |\n|---|---|---|---|---|---|---|\n");
  for (std::size_t k = 0; k < o.workers.size(); ++k)
    run_size(o.workers[k], o, k == 0);
  return 0;
}
