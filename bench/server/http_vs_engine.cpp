// Drives one backend two ways with the same closed-loop load: engine-only (awaiting the
// Backend's TokenStreams directly) and through the HTTP server (streaming /v1/completions over
// loopback, one connection per request), then prints throughput, TTFT and inter-token latency
// for each and the HTTP/engine ratio.
//
//   http_vs_engine --model small.gguf --clients 1,4,16 --requests 4 --max-tokens 128
//                  --prompt-tokens 128 --repeat 3
//   http_vs_engine --sim --clients 1,16,64 --requests 50 --max-tokens 64   (HTTP overhead)
//
// Every request has its own prompt (token ids drawn from the run, client and request number),
// so no request reuses another's cached prefix, and both modes see the same prompts' shapes.
// With --repeat N the two modes alternate N times per client count (engine, http, engine,
// http, ...) and the ratio reported is the median of the N pairs: neighbouring processes on a
// shared machine move single runs by several per cent.

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/connect.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <chrono>
#include <mutex>
#include <thread>

#include "engine/local_backend.hpp"
#include "engine/sim_backend.hpp"
#include "server/server.hpp"

namespace {

namespace net = boost::asio;
using tcp = net::ip::tcp;
using Clock = std::chrono::steady_clock;

struct Options {
  std::string model;
  bool sim = false;
  std::vector<int> clients{1, 4, 16};
  int requests = 4;  // per client
  int max_tokens = 128;
  int prompt_words = 100;
  int prompt_tokens = 0;  // > 0: token-id prompts of exactly this length
  int repeat = 1;
  int parallel = 16;
  int threads = 2;
  int io_threads = 2;
  double sim_decode_tps = 1e6;
};

// What one run measured.
struct Sample {
  std::mutex mu;
  std::vector<double> ttft, itl;  // seconds
  std::int64_t tokens = 0;
  std::int64_t requests = 0;
  void add(double first, const std::vector<double>& gaps, std::int64_t n) {
    std::lock_guard lock(mu);
    ttft.push_back(first);
    itl.insert(itl.end(), gaps.begin(), gaps.end());
    tokens += n;
    ++requests;
  }
};

double pct(std::vector<double> v, double p) {
  if (v.empty())
    return 0;
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, static_cast<std::size_t>(p * static_cast<double>(v.size())))];
}

std::string prompt_text(const Options& o) {
  std::string s;
  for (int i = 0; i < o.prompt_words; ++i)
    s += "hello ";
  return s;
}

// The prompt tokens of one request: ids in [256, 4352) from a small LCG seeded by the run,
// client and request numbers (distinct prompts, reproducible).
std::vector<troupe::engine::Token> prompt_tokens(const Options& o, int run, int client,
                                                 int request) {
  std::uint64_t x = (static_cast<std::uint64_t>(run) << 40) ^
                    (static_cast<std::uint64_t>(client) << 20) ^
                    static_cast<std::uint64_t>(request) ^ 0x9e3779b97f4a7c15ull;
  std::vector<troupe::engine::Token> out(static_cast<std::size_t>(o.prompt_tokens));
  for (auto& t : out) {
    x = x * 6364136223846793005ull + 1442695040888963407ull;
    t = static_cast<troupe::engine::Token>(256 + ((x >> 33) % 4096));
  }
  return out;
}

troupe::engine::Prompt make_prompt(const Options& o, int run, int client, int request) {
  if (o.prompt_tokens > 0)
    return prompt_tokens(o, run, client, request);
  return prompt_text(o);
}

std::string prompt_json(const troupe::engine::Prompt& p) {
  if (const auto* text = std::get_if<std::string>(&p))
    return fmt::format("\"{}\"", *text);
  return fmt::format("[{}]", fmt::join(std::get<std::vector<troupe::engine::Token>>(p), ","));
}

// Engine-only: one coroutine per client, sequential requests.
net::awaitable<void> engine_client(troupe::engine::Backend& b, const Options& o, int run,
                                   int client, Sample& out) {
  for (int r = 0; r < o.requests; ++r) {
    troupe::engine::Task t;
    t.prompt = make_prompt(o, run, client, r);
    t.sampling.temperature = 0;
    t.stop.max_tokens = o.max_tokens;
    t.stop.ignore_eos = true;
    const auto start = Clock::now();
    auto stream = co_await b.generate(std::move(t));
    std::optional<Clock::time_point> first, last;
    std::vector<double> gaps;
    std::int64_t n = 0;
    while (auto ev = co_await stream.next()) {
      if (auto* d = std::get_if<troupe::engine::Delta>(&*ev); d && !d->tokens.empty()) {
        const auto now = Clock::now();
        if (!first)
          first = now;
        else
          gaps.push_back(std::chrono::duration<double>(now - *last).count());
        last = now;
        n += static_cast<std::int64_t>(d->tokens.size());
      }
    }
    out.add(first ? std::chrono::duration<double>(*first - start).count() : 0, gaps, n);
  }
}

// HTTP: the same requests as streaming completions; one SSE content event is one token.
net::awaitable<void> http_client(std::uint16_t port, const Options& o, int run, int client,
                                 Sample& out) {
  auto ex = co_await net::this_coro::executor;
  for (int r = 0; r < o.requests; ++r) {
    const std::string body = fmt::format(
        R"({{"prompt":{},"max_tokens":{},"temperature":0,"ignore_eos":true,"stream":true}})",
        prompt_json(make_prompt(o, run, client, r)), o.max_tokens);
    const std::string req = fmt::format(
        "POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        "Connection: close\r\nContent-Length: {}\r\n\r\n{}",
        body.size(), body);
    tcp::socket s(ex);
    const auto start = Clock::now();
    co_await s.async_connect({net::ip::make_address("127.0.0.1"), port}, net::use_awaitable);
    s.set_option(tcp::no_delay(true));
    co_await net::async_write(s, net::buffer(req), net::use_awaitable);
    std::string buf;
    std::size_t scanned = 0;
    std::optional<Clock::time_point> first, last;
    std::vector<double> gaps;
    std::int64_t n = 0;
    char chunk[16384];
    for (;;) {
      auto [ec, got] =
          co_await s.async_read_some(net::buffer(chunk), net::as_tuple(net::use_awaitable));
      if (ec)
        break;
      buf.append(chunk, got);
      const auto now = Clock::now();
      for (std::size_t p; (p = buf.find("\"text\":\"", scanned)) != std::string::npos;) {
        scanned = p + 8;
        if (buf.compare(p + 8, 1, "\"") == 0)
          continue;  // the empty finish chunk
        if (!first)
          first = now;
        else
          gaps.push_back(std::chrono::duration<double>(now - *last).count());
        last = now;
        ++n;
      }
    }
    out.add(first ? std::chrono::duration<double>(*first - start).count() : 0, gaps, n);
  }
}

template <class Client>
void run(const char* mode, int clients, Client make, double* tps_out) {
  Sample s;
  net::io_context ioc;
  for (int c = 0; c < clients; ++c)
    net::co_spawn(ioc, make(c, s), net::detached);
  const auto start = Clock::now();
  ioc.run();
  const double wall = std::chrono::duration<double>(Clock::now() - start).count();
  const double tps = static_cast<double>(s.tokens) / wall;
  *tps_out = tps;
  fmt::print("| {} | {} | {} | {:.1f} | {:.1f} | {:.0f} / {:.0f} | {:.1f} / {:.1f} |\n", mode,
             clients, s.tokens, tps, static_cast<double>(s.requests) / wall, pct(s.ttft, 0.5) * 1e3,
             pct(s.ttft, 0.99) * 1e3, pct(s.itl, 0.5) * 1e3, pct(s.itl, 0.99) * 1e3);
}

std::unique_ptr<troupe::engine::Backend> make_backend(const Options& o) {
  if (o.sim) {
    troupe::engine::SimOptions so;
    so.decode_tokens_per_s = o.sim_decode_tps;
    so.prefill_tokens_per_s = 1e9;
    so.n_parallel = 4096;
    return troupe::engine::make_sim_backend(so);
  }
  troupe::engine::EngineOptions eo;
  eo.model_path = o.model;
  eo.engine.n_parallel = o.parallel;
  eo.engine.n_ctx = o.parallel * ((o.prompt_tokens > 0 ? o.prompt_tokens : o.prompt_words * 2) +
                                  o.max_tokens + 64);
  eo.engine.n_threads = o.threads;
  eo.max_queue = 1024;
  return troupe::engine::make_local_backend(eo);
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  CLI::App app{"HTTP server vs engine-only throughput and latency"};
  app.add_option("--model", o.model, "GGUF model");
  app.add_flag("--sim", o.sim, "use the simulated engine (measures the HTTP layer)");
  app.add_option("--clients", o.clients, "concurrent closed-loop clients")->delimiter(',');
  app.add_option("--requests", o.requests, "requests per client");
  app.add_option("--max-tokens", o.max_tokens, "tokens per request");
  app.add_option("--prompt-words", o.prompt_words, "prompt length in words (text prompts)");
  app.add_option("--prompt-tokens", o.prompt_tokens,
                 "prompt length in tokens (distinct token-id prompts); overrides --prompt-words");
  app.add_option("--repeat", o.repeat, "alternate engine/http this many times per point")
      ->check(CLI::PositiveNumber);
  app.add_option("--parallel", o.parallel, "engine sequences");
  app.add_option("--threads", o.threads, "llama.cpp threads");
  app.add_option("--io-threads", o.io_threads, "HTTP I/O threads");
  app.add_option("--sim-decode-tps", o.sim_decode_tps, "sim: tokens/s per sequence");
  CLI11_PARSE(app, argc, argv);
  auto backend = make_backend(o);
  while (backend->health().state == troupe::engine::HealthState::loading) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  if (backend->health().state != troupe::engine::HealthState::ready) {
    fmt::print(stderr, "backend failed: {}\n", backend->health().message);
    return 1;
  }
  net::io_context server_ioc;
  troupe::server::ServerConfig cfg;
  cfg.port = 0;
  troupe::server::Server server(server_ioc.get_executor(), *backend, cfg);
  const std::uint16_t port = server.listen().value();
  auto guard = net::make_work_guard(server_ioc);
  std::vector<std::thread> io;
  for (int i = 0; i < o.io_threads; ++i)
    io.emplace_back([&] { server_ioc.run(); });
  fmt::print(
      "| mode | clients | tokens | tok/s | req/s | TTFT p50 / p99 ms | ITL p50 / p99 ms |\n"
      "|---|---|---|---|---|---|---|\n");
  std::vector<std::string> ratios;
  int run_no = 0;
  for (int c : o.clients) {
    std::vector<double> rs;
    for (int rep = 0; rep < o.repeat; ++rep) {
      double engine_tps = 0, http_tps = 0;
      const int er = run_no++, hr = run_no++;
      run(
          "engine", c,
          [&](int client, Sample& s) { return engine_client(*backend, o, er, client, s); },
          &engine_tps);
      run(
          "http", c, [&](int client, Sample& s) { return http_client(port, o, hr, client, s); },
          &http_tps);
      rs.push_back(http_tps / engine_tps);
    }
    std::vector<double> sorted = rs;
    std::sort(sorted.begin(), sorted.end());
    const std::size_t n = sorted.size();
    const double median = n % 2 ? sorted[n / 2] : (sorted[n / 2 - 1] + sorted[n / 2]) / 2;
    ratios.push_back(fmt::format("{} clients: HTTP/engine median {:.3f} (runs: {:.3f})", c, median,
                                 fmt::join(rs, ", ")));
  }
  for (const auto& r : ratios)
    fmt::print("{}\n", r);
  server_ioc.stop();
  for (auto& t : io)
    t.join();
  return 0;
}
