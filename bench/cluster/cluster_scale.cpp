// cluster_scale: how the gateway scales, by simulation. Starts `troupe gateway` and N
// `troupe worker --engine sim` processes on loopback, streams S requests per worker through the
// gateway at once, and reports per N (and per sim decode speed): streamed tokens/s, the
// gateway's CPU time per streamed token and its CPU use (from /proc/<pid>/stat), and
// inter-token latency percentiles; then the same streams straight to the N workers' own HTTP
// servers (S each), for the inter-token latency the gateway adds at that scale. With --direct
// mixed the direct streams run at the same time as the gateway's (each worker gets 2S slots),
// so that both sets see the same machine: on a machine with fewer cores than processes the
// scheduler's noise then lands on both alike instead of on one run and not the other.
//
//   cluster_scale [--workers 1,2,4,8,16] [--streams 64] [--tokens 100] [--tps 50[,100,...]]
//                 [--troupe-dir DIR] [--gateway-io-threads 2] [--sim-steps on|off]
//                 [--direct after|mixed|off] [--gateway-cpus LIST] [--others-cpus LIST]
//                 [--skip-gaps N]
//
// The `troupe` binary it starts is DIR/troupe, where DIR is --troupe-dir, else
// $TROUPE_CLUSTER_SCALE_DIR, else cluster_scale's own folder when a `troupe` sits beside it
// (a copy of the two binaries), else the build tree it was built in.
//
// The load generator runs in this process on one thread, on the same machine: on a small
// machine it competes with the gateway for CPU, which the report must say. --gateway-cpus and
// --others-cpus (e.g. `1` and `0`) pin the gateway to CPUs of its own and the workers and
// the load generator to the rest, so that "where the gateway's own core saturates" can be
// seen on a machine with fewer cores than processes: the gateway's CPU use column reaching
// 1.0 per core it has is that point.

#include <fmt/format.h>
#include <sched.h>
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
#include "util/cpu_set.hpp"

namespace asio = boost::asio;
namespace util = troupe::util;
using troupe::cluster::test::ChildProcess;
using Clock = std::chrono::steady_clock;

namespace {

struct Options {
  std::vector<int> workers{1, 2, 4, 8, 16};
  int streams = 64;  // per worker
  int gateway_io_threads = 2;
  bool sim_steps = false;       // workers' sim tokens on one step clock (--sim-steps)
  int tokens = 100;             // per stream
  int skip_gaps = 0;            // each stream's first gaps left out of the ITL figures
  std::vector<double> tps{50};  // sim decode speeds per stream to try
  // The comparison with streams straight to the workers: "after" the gateway's run, "mixed"
  // into it (as many streams again, at the same time, so both see the same machine), "off".
  std::string direct = "after";
  std::string gateway_cpus;  // pin the gateway here (empty: not pinned)
  std::string others_cpus;   // pin the workers and this process here
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

// `skip`: how many of the stream's first gaps to leave out of load.itl_ms (the start, while
// every stream is being opened at once).
asio::awaitable<void> one_stream(troupe::client::Client& c, int tokens, int skip, Load& load,
                                 int i) {
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
  int gaps = 0;
  for (;;) {
    auto ev = co_await s->next();
    if (auto* d = std::get_if<troupe::client::Delta>(&ev)) {
      ++load.tokens;
      if (last && gaps++ >= skip)
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

// Streams opened at once against one or more servers, each target's into its own Load.
struct Target {
  std::string url;
  int streams = 0;
  Load* load = nullptr;
};

void run_loads(const std::vector<Target>& targets, int tokens, int skip) {
  asio::io_context io;
  std::vector<std::unique_ptr<troupe::client::Client>> clients;
  int i = 0;
  for (const auto& t : targets) {
    clients.push_back(std::make_unique<troupe::client::Client>(
        io.get_executor(),
        troupe::client::ClientOptions{.base_url = t.url, .max_idle_connections = 4096}));
    for (int k = 0; k < t.streams; ++k)
      asio::co_spawn(io, one_stream(*clients.back(), tokens, skip, *t.load, i++), asio::detached);
  }
  const auto t0 = Clock::now();
  io.run();
  const double seconds = std::chrono::duration<double>(Clock::now() - t0).count();
  for (const auto& t : targets)
    t.load->seconds = seconds;
}

std::unique_ptr<ChildProcess> start_worker(const std::string& seed, int i, const Options& o,
                                           double tps, std::string* url) {
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
                                std::to_string(o.direct == "mixed" ? 2 * o.streams : o.streams),
                                "--max-queue",
                                "4096",
                                "--sim-decode-tps",
                                fmt::format("{}", tps),
                                "--io-threads",
                                "1",
                                "--port",
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

// The CPUs this process was started on: what an empty list means.
cpu_set_t& all_cpus() {
  static cpu_set_t set = [] {
    cpu_set_t s;
    CPU_ZERO(&s);
    sched_getaffinity(0, sizeof s, &s);
    return s;
  }();
  return set;
}

// Pins this thread, and so what it starts after, to "0-3,6"; "" for all of all_cpus().
void pin_or_exit(const std::string& list) {
  auto set = list.empty() ? troupe::Result<cpu_set_t>(all_cpus()) : util::parse_cpu_list(list);
  auto pinned = set ? util::pin_calling_thread(*set) : troupe::Result<void>(set.error());
  if (!pinned) {
    fmt::print(stderr, "{}\n", pinned.error().message);
    std::exit(2);
  }
}

// One gateway and n workers at one sim speed, S streams per worker through the gateway; and,
// unless --direct off, S streams per worker straight to the workers' own HTTP servers, after
// the gateway's run or at the same time (mixed: each worker then has 2S slots).
void run_size(int n, double tps, const Options& o) {
  // A child inherits the affinity of the thread that starts it.
  pin_or_exit(o.gateway_cpus);
  ChildProcess gw(
      {"gateway", "--listen", "127.0.0.1:0", "--port", "0", "--cluster-secret", "bench",
       "--max-connections", "8192", "--io-threads", std::to_string(o.gateway_io_threads)},
      "gateway");
  pin_or_exit(o.others_cpus);
  auto m =
      gw.wait_for(std::regex(R"(listening on (http://[0-9.]+:[0-9]+), cluster node \S+ at (\S+))"));
  if (!m) {
    fmt::print(stderr, "gateway did not start\n");
    std::exit(1);
  }
  const std::string url = (*m)[1], seed = (*m)[2];
  const bool direct = o.direct != "off", mixed = o.direct == "mixed";
  std::vector<std::string> direct_urls(direct ? static_cast<std::size_t>(n) : 0);
  std::vector<std::unique_ptr<ChildProcess>> workers;
  for (int i = 0; i < n; ++i) {
    workers.push_back(start_worker(seed, i, o, tps,
                                   direct ? &direct_urls[static_cast<std::size_t>(i)] : nullptr));
  }
  if (!gw.wait_for(std::regex(fmt::format(R"(\({} workers\))", n)), 0, std::chrono::seconds(120))) {
    fmt::print(stderr, "workers did not all join\n");
    std::exit(1);
  }
  Load load, straight;
  std::vector<Target> to_workers;
  for (const auto& u : direct_urls)
    to_workers.push_back({u, o.streams, &straight});
  std::vector<Target> targets{{url, n * o.streams, &load}};
  if (mixed)
    targets.insert(targets.end(), to_workers.begin(), to_workers.end());
  const double cpu0 = cpu_seconds(gw.pid());
  run_loads(targets, o.tokens, o.skip_gaps);
  const double cpu = cpu_seconds(gw.pid()) - cpu0;
  if (direct && !mixed)
    run_loads(to_workers, o.tokens, o.skip_gaps);
  const auto p = [](const Load& l, double q) { return percentile(l.itl_ms, q); };
  const auto ms = [&](double v) { return direct ? fmt::format("{:.2f}", v) : std::string("-"); };
  const auto added = [&](double v) {
    return direct ? fmt::format("{:+.2f}", v) : std::string("-");
  };
  fmt::print(
      "| {} | {} | {:g} | {:.0f} | {:.1f} | {:.2f} | {:.2f} | {:.2f} | {} | {} | {} | {} | {}/{} "
      "|\n",
      n, n * o.streams, tps, static_cast<double>(load.tokens) / load.seconds,
      cpu * 1e6 / static_cast<double>(std::max<std::int64_t>(1, load.tokens)), cpu / load.seconds,
      p(load, 0.5), p(load, 0.99), ms(p(straight, 0.5)), ms(p(straight, 0.99)),
      added(p(load, 0.5) - p(straight, 0.5)), added(p(load, 0.99) - p(straight, 0.99)), load.errors,
      straight.errors);
  std::fflush(stdout);
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
    else if (k == "--skip-gaps")
      o.skip_gaps = std::stoi(v);
    else if (k == "--tps") {
      o.tps.clear();
      std::stringstream in(v);
      for (std::string part; std::getline(in, part, ',');)
        o.tps.push_back(std::stod(part));
    } else if (k == "--direct")
      o.direct = v;
    else if (k == "--gateway-cpus")
      o.gateway_cpus = v;
    else if (k == "--others-cpus")
      o.others_cpus = v;
    else if (k == "--troupe-dir")
      o.troupe_dir = v;
    else if (k == "--gateway-io-threads")
      o.gateway_io_threads = std::stoi(v);
    else if (k == "--sim-steps")
      o.sim_steps = v == "on";
  }
  if (o.direct != "after" && o.direct != "mixed" && o.direct != "off") {
    fmt::print(stderr, "--direct takes after, mixed or off\n");
    return 2;
  }
  for (const std::string* cpus : {&o.gateway_cpus, &o.others_cpus}) {
    auto set = util::parse_cpu_list(*cpus);
    if (!cpus->empty() && !set) {
      fmt::print(stderr, "{}\n", set.error().message);
      return 2;
    }
  }
  const std::string dir = troupe_dir(o);
  if (!std::filesystem::is_regular_file(std::filesystem::path(dir) / "troupe")) {
    fmt::print(stderr, "no troupe binary in {} (use --troupe-dir)\n", dir);
    return 1;
  }
  all_cpus();                                            // remembered before any pinning
  ::setenv("TROUPE_CLUSTER_SCALE_DIR", dir.c_str(), 1);  // read by ChildProcess
  fmt::print("troupe: {}/troupe\n", dir);
  fmt::print(
      "streams per worker {}, {} tokens each (ITL without each stream's first {} gaps), sim {}, "
      "gateway {} I/O threads on CPUs {}, workers and load generator on CPUs {}, direct {}\n\n",
      o.streams, o.tokens, o.skip_gaps,
      o.sim_steps ? "on a step clock" : "each stream on its own phase", o.gateway_io_threads,
      o.gateway_cpus.empty() ? "any" : o.gateway_cpus,
      o.others_cpus.empty() ? "any" : o.others_cpus, o.direct);
  fmt::print(
      "| workers | streams | sim tokens/s per stream | tokens/s | gateway CPU us/token | "
      "gateway CPU use (cores) | ITL p50 ms | ITL p99 ms | direct ITL p50 ms | direct ITL p99 ms "
      "| ITL p50 added ms | ITL p99 added ms | errors (gateway/direct) |\n"
      "|---|---|---|---|---|---|---|---|---|---|---|---|---|\n");
  for (const int n : o.workers) {
    for (const double tps : o.tps)
      run_size(n, tps, o);
  }
  return 0;
}
