#include "bench/embed_bench.hpp"

#include <fmt/format.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/json/serialize.hpp>
#include <chrono>
#include <memory>
#include <random>

#include "bench/tokenizer.hpp"
#include "bench/workload.hpp"
#include "client/client.hpp"

namespace troupe::bench {
namespace {

namespace asio = boost::asio;
using Clock = std::chrono::steady_clock;

struct PointRun {
  client::Client& client;
  const std::vector<std::string>& bodies;  // one per request, warmup first
  std::int64_t warmup = 0;
  std::int64_t total = 0;  // requests to send (0: until the deadline)
  Clock::time_point deadline = Clock::time_point::max();
  std::int64_t next = 0;
  std::vector<double> latencies;
  std::int64_t failed = 0;
  std::string first_error;
  Clock::time_point first_measured = Clock::time_point::max();
  Clock::time_point last_done{};
  std::int64_t measured = 0;
};

// One closed-loop client: sends the next request as soon as its previous one was answered.
asio::awaitable<void> worker(PointRun& p) {
  while ((p.total == 0 || p.next < p.total) && Clock::now() < p.deadline) {
    const std::int64_t i = p.next++;
    const std::string& body = p.bodies[static_cast<std::size_t>(i) % p.bodies.size()];
    const auto t0 = Clock::now();
    auto r = co_await p.client.request("POST", "/v1/embeddings", body);
    const auto t1 = Clock::now();
    if (i < p.warmup)
      continue;
    p.first_measured = std::min(p.first_measured, t0);
    p.last_done = std::max(p.last_done, t1);
    ++p.measured;
    std::string error;
    if (!r)
      error = r.error().message;
    else if (r->status != 200)
      error = fmt::format("HTTP {}: {}", r->status, r->body.substr(0, 200));
    if (!error.empty()) {
      if (p.failed++ == 0)
        p.first_error = error;
      continue;
    }
    p.latencies.push_back(std::chrono::duration<double>(t1 - t0).count());
  }
}

// `count` request bodies of `inputs` token windows each.
std::vector<std::string> make_bodies(const std::vector<std::int32_t>& corpus,
                                     const std::string& model, int inputs, std::int32_t len,
                                     std::size_t count, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_int_distribution<std::size_t> offset(0,
                                                    corpus.size() - static_cast<std::size_t>(len));
  std::vector<std::string> bodies;
  bodies.reserve(count);
  for (std::size_t b = 0; b < count; ++b) {
    std::string s = "{\"model\":" + boost::json::serialize(boost::json::string(model)) +
                    ",\"encoding_format\":\"base64\",\"input\":[";
    for (int k = 0; k < inputs; ++k) {
      const std::size_t at = offset(rng);
      s += k ? ",[" : "[";
      for (std::int32_t t = 0; t < len; ++t)
        fmt::format_to(std::back_inserter(s), "{}{}", t ? "," : "",
                       corpus[at + static_cast<std::size_t>(t)]);
      s += ']';
    }
    s += "]}";
    bodies.push_back(std::move(s));
  }
  return bodies;
}

asio::awaitable<EmbedPoint> run_point(client::Client& c, const EmbedBenchConfig& cfg,
                                      const std::vector<std::string>& bodies, int inputs,
                                      int concurrency) {
  PointRun p{c, bodies};
  p.warmup = cfg.base.warmup;
  p.total = cfg.base.max_requests > 0 ? cfg.base.warmup + cfg.base.max_requests : 0;
  if (cfg.base.max_duration_s > 0) {
    p.deadline = Clock::now() + std::chrono::duration_cast<Clock::duration>(
                                    std::chrono::duration<double>(cfg.base.max_duration_s));
  }
  auto ex = co_await asio::this_coro::executor;
  auto remaining = std::make_shared<int>(concurrency);
  asio::steady_timer done(ex, Clock::time_point::max());
  for (int w = 0; w < concurrency; ++w) {
    asio::co_spawn(ex, worker(p), [remaining, &done](const std::exception_ptr&) {
      if (--*remaining == 0)
        done.cancel();
    });
  }
  boost::system::error_code ec;
  co_await done.async_wait(asio::redirect_error(asio::use_awaitable, ec));
  EmbedPoint out;
  out.inputs = inputs;
  out.concurrency = concurrency;
  out.requests = p.measured;
  out.failed = p.failed;
  out.first_error = p.first_error;
  out.duration_s =
      p.measured > 0 ? std::chrono::duration<double>(p.last_done - p.first_measured).count() : 0;
  const auto ok = static_cast<double>(p.latencies.size());
  out.latency_s = summarize(p.latencies);
  if (out.duration_s > 0) {
    out.requests_per_s = ok / out.duration_s;
    out.embeddings_per_s = ok * inputs / out.duration_s;
    out.tokens_per_s = out.embeddings_per_s * cfg.input_tokens;
  }
  co_return out;
}

asio::awaitable<Result<std::vector<EmbedPoint>>> run_all(client::Client& c, Tokenizer* local,
                                                         EmbedBenchConfig cfg, std::FILE* log) {
  if (cfg.base.model.empty()) {
    auto models = co_await c.models();
    if (!models)
      co_return Error{Errc::unavailable,
                      "cannot list the server's models: " + models.error().message};
    if (models->empty())
      co_return Error{Errc::unavailable, "the server lists no model"};
    cfg.base.model = models->front().id;
  }
  auto server = make_server_tokenizer(c);
  Tokenizer* tokenizer = local != nullptr ? local : server.get();
  const std::string corpus = builtin_corpus();
  auto tokens = co_await tokenizer->tokenize(corpus);
  if (!tokens) {
    co_return Error{Errc::invalid_request, "cannot tokenize the corpus (" + tokens.error().message +
                                               "): pass --tokenizer model.gguf"};
  }
  if (tokens->size() < static_cast<std::size_t>(cfg.input_tokens) + 1)
    co_return Error{Errc::invalid_request, "the corpus is shorter than --input-tokens"};
  std::vector<EmbedPoint> points;
  std::uint64_t seed = cfg.base.seed;
  for (int inputs : cfg.inputs) {
    for (int conc : cfg.base.concurrency) {
      const auto count = static_cast<std::size_t>(std::clamp<std::int64_t>(
          cfg.base.warmup + std::max<std::int64_t>(cfg.base.max_requests, 1), 1, 256));
      const auto bodies =
          make_bodies(*tokens, cfg.base.model, inputs, cfg.input_tokens, count, seed++);
      if (log)
        fmt::print(log, "embeddings: {} inputs x {} tokens, concurrency {}...\n", inputs,
                   cfg.input_tokens, conc);
      points.push_back(co_await run_point(c, cfg, bodies, inputs, conc));
    }
  }
  co_return points;
}

}  // namespace

Result<std::vector<EmbedPoint>> run_embed_benchmark(const EmbedBenchConfig& config,
                                                    std::FILE* progress) {
  asio::io_context io(1);
  auto options = config.base.client;
  int widest = 1;
  for (int c : config.base.concurrency)
    widest = std::max(widest, c);
  options.max_idle_connections = static_cast<std::size_t>(std::max(widest, 64));
  std::unique_ptr<Tokenizer> local;
  if (!config.base.tokenizer.empty()) {
    auto t = make_local_tokenizer(config.base.tokenizer);
    if (!t)
      return t.error();
    local = std::move(t).value();
  }
  client::Client c(io.get_executor(), options);
  Result<std::vector<EmbedPoint>> out = Error{Errc::internal, "the benchmark did not finish"};
  asio::co_spawn(io, run_all(c, local.get(), config, progress),
                 [&](const std::exception_ptr& e, Result<std::vector<EmbedPoint>> r) {
                   if (e) {
                     try {
                       std::rethrow_exception(e);
                     } catch (const std::exception& ex) {
                       r = Error{Errc::internal, ex.what()};
                     }
                   }
                   out = std::move(r);
                 });
  io.run();
  return out;
}

void print_embed_table(const std::vector<EmbedPoint>& points, std::FILE* out) {
  fmt::print(out, "{:>7} {:>5} {:>6} {:>6} {:>10} {:>10} {:>8} {:>9} {:>9} {:>9}\n", "inputs",
             "conc", "reqs", "failed", "embed/s", "tokens/s", "req/s", "p50 ms", "p90 ms",
             "p99 ms");
  for (const auto& p : points) {
    fmt::print(
        out, "{:>7} {:>5} {:>6} {:>6} {:>10.1f} {:>10.0f} {:>8.2f} {:>9.1f} {:>9.1f} {:>9.1f}\n",
        p.inputs, p.concurrency, p.requests, p.failed, p.embeddings_per_s, p.tokens_per_s,
        p.requests_per_s, p.latency_s.p50 * 1e3, p.latency_s.p90 * 1e3, p.latency_s.p99 * 1e3);
    if (!p.first_error.empty())
      fmt::print(out, "        first error: {}\n", p.first_error);
  }
}

std::string embed_results_json(const EmbedBenchConfig& config,
                               const std::vector<EmbedPoint>& points) {
  boost::json::array arr;
  for (const auto& p : points) {
    arr.push_back({{"inputs", p.inputs},
                   {"concurrency", p.concurrency},
                   {"requests", p.requests},
                   {"failed", p.failed},
                   {"duration_s", p.duration_s},
                   {"embeddings_per_s", p.embeddings_per_s},
                   {"tokens_per_s", p.tokens_per_s},
                   {"requests_per_s", p.requests_per_s},
                   {"latency_p50_s", p.latency_s.p50},
                   {"latency_p90_s", p.latency_s.p90},
                   {"latency_p99_s", p.latency_s.p99},
                   {"latency_mean_s", p.latency_s.mean}});
  }
  boost::json::object o{{"endpoint", "embeddings"},
                        {"url", config.base.client.base_url},
                        {"model", config.base.model},
                        {"input_tokens", config.input_tokens},
                        {"points", std::move(arr)}};
  return boost::json::serialize(o);
}

}  // namespace troupe::bench
