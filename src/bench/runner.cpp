#include "bench/runner.hpp"

#include <sys/resource.h>
#include <unistd.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <deque>
#include <fstream>
#include <sstream>

#include "bench/progress.hpp"
#include "bench/tokenizer.hpp"
#include "bench/workload.hpp"

namespace troupe::bench {

namespace asio = boost::asio;
using client::Clock;
constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);

std::string PointSpec::label() const {
  std::ostringstream o;
  if (open_loop) {
    o << "rate=" << rate;
  } else {
    o << "c=" << concurrency;
  }
  o << ' ' << scenario.text;
  if (!tools.empty())
    o << " tools=" << tools;
  return o.str();
}

std::uint64_t raise_fd_limit() {
  rlimit lim{};
  if (getrlimit(RLIMIT_NOFILE, &lim) != 0)
    return 0;
  if (lim.rlim_cur < lim.rlim_max) {
    lim.rlim_cur = lim.rlim_max;
    setrlimit(RLIMIT_NOFILE, &lim);
    getrlimit(RLIMIT_NOFILE, &lim);
  }
  return lim.rlim_cur;
}

namespace {

double cpu_seconds() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return static_cast<double>(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
         static_cast<double>(u.ru_utime.tv_usec + u.ru_stime.tv_usec) * 1e-6;
}

// A re-armable wake-up: waiters sleep until notify(). Single-threaded.
class Signal {
 public:
  explicit Signal(const asio::any_io_executor& ex) : timer_(ex) {}
  asio::awaitable<void> wait() {
    timer_.expires_at(asio::steady_timer::time_point::max());
    co_await timer_.async_wait(use_tuple);
  }
  void notify() { timer_.cancel(); }

 private:
  asio::steady_timer timer_;
};

// The state of one running point. Lives in run_point's frame; everything runs on one thread.
struct Point {
  Point(const asio::any_io_executor& ex, client::Client& c, const BenchConfig& cfg)
      : client(c), config(cfg), changed(ex), slot_free(ex) {}
  client::Client& client;
  const BenchConfig& config;
  PointSpec spec;
  std::vector<BenchRequest> requests;  // request i uses requests[i % size]
  std::deque<RequestRecord> records;   // stable references while requests run
  Clock::time_point t0;
  std::int64_t total = 0;  // requests to send (0: until max_duration)
  std::int64_t next = 0;   // next index to send
  std::int64_t in_flight = 0, max_in_flight = 0, done = 0, errors = 0;
  std::int64_t late_sends = 0;
  double max_late_s = 0;
  bool sending_done = false;
  Signal changed;    // a request finished or sending stopped
  Signal slot_free;  // open loop with max_concurrency: a request finished

  double now_s() const { return std::chrono::duration<double>(Clock::now() - t0).count(); }
  double secs(Clock::time_point t) const { return std::chrono::duration<double>(t - t0).count(); }
  bool may_send() const {
    if (total > 0 && next >= total)
      return false;
    return config.max_duration_s <= 0 || now_s() < config.max_duration_s;
  }
};

template <class Request>
void fill_common(Request& r, const BenchConfig& cfg, const BenchRequest& b) {
  r.model = cfg.model;
  r.sampling.max_tokens = b.target.output;
  r.sampling.temperature = cfg.temperature;
  r.include_usage = true;
  if (cfg.ignore_eos) {
    r.extra["ignore_eos"] = true;
    r.extra["min_tokens"] = b.target.output;
  }
  for (const auto& [key, value] : cfg.extra_body)
    r.extra[key] = value;
}

asio::awaitable<client::ClientResult<client::Stream>> open_stream(Point& p, const BenchRequest& b) {
  if (p.config.chat) {
    client::ChatRequest r;
    fill_common(r, p.config, b);
    if (b.messages.empty()) {
      r.messages.push_back({"user", b.prompt});
    } else {
      r.messages = b.messages;
    }
    if (!p.config.tool_sets.empty()) {
      r.tools = p.config.tool_sets[p.spec.tool_set].tools;
      if (!r.tools.empty())
        r.tool_choice = p.config.tool_choice;
    }
    if (p.config.messages)
      co_return co_await p.client.stream_messages(r);
    if (p.config.responses)
      co_return co_await p.client.stream_responses(r);
    co_return co_await p.client.stream_chat(r);
  }
  client::CompletionRequest r;
  fill_common(r, p.config, b);
  r.prompt = b.prompt;
  co_return co_await p.client.stream_completion(r);
}

asio::awaitable<void> consume(Point& p, client::Stream& s, RequestTimer& timer) {
  for (;;) {
    auto ev = co_await s.next();
    if (auto* d = std::get_if<client::Delta>(&ev)) {
      timer.on_delta(p.secs(d->received_at), !d->tool_calls.empty());
    } else if (auto* done = std::get_if<client::Done>(&ev)) {
      std::optional<std::int32_t> in, out;
      if (done->usage) {
        in = done->usage->prompt_tokens;
        out = done->usage->completion_tokens;
      }
      timer.on_done(p.secs(done->received_at), in, out);
      co_return;
    } else {
      const auto& e = std::get<client::ClientError>(ev);
      timer.on_error(p.now_s(), e.key(), e.message);
      co_return;
    }
  }
}

// Sends request `index` and records it.
asio::awaitable<void> execute(Point& p, std::int64_t index, double scheduled_s) {
  const auto& b = p.requests[static_cast<std::size_t>(index) % p.requests.size()];
  auto& rec = p.records.emplace_back();
  rec.index = index;
  rec.scheduled_s = scheduled_s;
  rec.target_input = b.target.input;
  rec.target_output = b.target.output;
  rec.itl_s.reserve(static_cast<std::size_t>(b.target.output));
  p.max_in_flight = std::max(p.max_in_flight, ++p.in_flight);
  RequestTimer timer(rec, p.now_s());
  auto s = co_await open_stream(p, b);
  if (!s) {
    timer.on_error(p.now_s(), s.error().key(), s.error().message);
  } else {
    co_await consume(p, s.value(), timer);
  }
  --p.in_flight;
  ++p.done;
  p.errors += rec.ok() ? 0 : 1;
  p.slot_free.notify();
  p.changed.notify();
}

asio::awaitable<void> closed_worker(Point& p) {
  while (p.may_send()) {
    auto i = p.next++;
    co_await execute(p, i, p.now_s());
  }
}

asio::awaitable<void> run_closed(Point& p) {
  auto ex = co_await asio::this_coro::executor;
  for (int w = 0; w < p.spec.concurrency; ++w)
    asio::co_spawn(ex, closed_worker(p), asio::detached);
  while (p.in_flight > 0 || p.may_send())
    co_await p.changed.wait();
}

asio::awaitable<void> run_open(Point& p) {
  auto ex = co_await asio::this_coro::executor;
  ArrivalProcess arrivals(p.config.arrival, p.spec.rate, p.config.burstiness,
                          p.config.seed ^ 0x9e3779b97f4a7c15ULL);
  asio::steady_timer timer(ex);
  double t = 0;
  while (p.may_send()) {
    if (p.next > 0)
      t += arrivals.next_gap();
    if (p.config.max_duration_s > 0 && t >= p.config.max_duration_s)
      break;
    timer.expires_at(p.t0 +
                     std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(t)));
    co_await timer.async_wait(use_tuple);
    while (p.config.max_concurrency > 0 && p.in_flight >= p.config.max_concurrency) {
      co_await p.slot_free.wait();
    }
    double late = p.now_s() - t;
    p.late_sends += late > 0.010 ? 1 : 0;
    p.max_late_s = std::max(p.max_late_s, late);
    asio::co_spawn(ex, execute(p, p.next++, t), asio::detached);
  }
  while (p.in_flight > 0)
    co_await p.changed.wait();
}

// Reports progress until cancelled (by run_point's `||` when the point ends).
asio::awaitable<void> tick(Point& p, Progress& progress) {
  asio::steady_timer timer(co_await asio::this_coro::executor);
  for (;;) {
    timer.expires_after(progress.interval());
    auto [ec] = co_await timer.async_wait(use_tuple);
    if (ec)
      co_return;
    progress.update(p.done, p.errors, p.in_flight, p.now_s());
  }
}

asio::awaitable<void> drive(Point& p) {
  if (p.spec.open_loop) {
    co_await run_open(p);
  } else {
    co_await run_closed(p);
  }
}

void mark_unmeasured(std::vector<RequestRecord>& records, const BenchConfig& cfg) {
  auto sent = static_cast<std::int64_t>(records.size());
  for (auto& r : records) {
    r.measured = r.index >= cfg.warmup && r.index < sent - cfg.cooldown;
  }
}

PointResult finish_point(Point& p, double cpu0) {
  PointResult out;
  out.spec = p.spec;
  out.records.assign(std::make_move_iterator(p.records.begin()),
                     std::make_move_iterator(p.records.end()));
  std::sort(out.records.begin(), out.records.end(),
            [](const auto& a, const auto& b) { return a.index < b.index; });
  mark_unmeasured(out.records, p.config);
  out.stats = aggregate(out.records, p.config.slo);
  out.wall_s = p.now_s();
  out.client_cpu = out.wall_s > 0 ? (cpu_seconds() - cpu0) / out.wall_s : 0;
  out.late_sends = p.late_sends;
  out.max_late_s = p.max_late_s;
  out.max_in_flight = p.max_in_flight;
  for (const auto& r : out.records) {
    bool mismatch = r.measured && r.ok() && r.output_tokens != r.target_output;
    out.output_len_mismatch += mismatch ? 1 : 0;
    out.tool_call_answers += r.measured && r.tool_call ? 1 : 0;
  }
  return out;
}

asio::awaitable<PointResult> run_point(Point& p, Progress& progress) {
  progress.start(p.spec.label(), p.total, p.config.max_duration_s);
  double cpu0 = cpu_seconds();
  p.t0 = Clock::now();
  if (progress.enabled()) {
    using namespace asio::experimental::awaitable_operators;
    co_await (drive(p) || tick(p, progress));
  } else {
    co_await drive(p);
  }
  p.sending_done = true;
  auto result = finish_point(p, cpu0);
  progress.finish(p.done, p.errors, p.now_s());
  co_return result;
}

std::string utc_now() {
  std::time_t t = std::time(nullptr);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&t));
  return buf;
}

// Every (scenario, tool set, load), in that nesting order.
std::vector<PointSpec> point_specs(const BenchConfig& cfg) {
  std::vector<PointSpec> out;
  const std::size_t sets = std::max<std::size_t>(cfg.tool_sets.size(), 1);
  for (const auto& sc : cfg.scenarios) {
    for (std::size_t t = 0; t < sets; ++t) {
      PointSpec base{sc};
      if (!cfg.tool_sets.empty()) {
        base.tool_set = t;
        base.tools = cfg.tool_sets[t].name;
        base.tool_count = cfg.tool_sets[t].tools.size();
      }
      if (!cfg.rates.empty()) {
        for (double r : cfg.rates) {
          out.push_back(base);
          out.back().open_loop = true;
          out.back().rate = r;
        }
      } else {
        for (int c : cfg.concurrency) {
          out.push_back(base);
          out.back().concurrency = c;
        }
      }
    }
  }
  return out;
}

// Requests to prepare for a point: all of them when counted, else enough for the duration.
std::int64_t prepared_count(const BenchConfig& cfg, const PointSpec& spec, std::int64_t total) {
  if (total > 0)
    return std::min<std::int64_t>(total, 2000);
  double expected = spec.open_loop ? spec.rate * cfg.max_duration_s * 1.2 + 16 : 2000;
  return std::clamp<std::int64_t>(static_cast<std::int64_t>(expected), 1, 2000);
}

}  // namespace

namespace {

// Checks the server and learns the model name. An unreachable server is an error.
asio::awaitable<Result<void>> probe_server(client::Client& c, RunResult& out) {
  auto models = co_await c.models();
  if (!models) {
    const auto& e = models.error();
    if (e.code == Errc::unavailable || e.code == Errc::timeout || e.code == Errc::invalid_request ||
        e.code == Errc::unauthorized) {
      co_return Error{Errc::unavailable, "cannot use " + c.options().base_url + ": " + e.message};
    }
    out.warnings.push_back("GET /v1/models failed (" + e.message + "); model name not checked");
    co_return Result<void>{};
  }
  for (const auto& m : models.value())
    out.server_models.push_back(m.id);
  if (out.model.empty() && !out.server_models.empty())
    out.model = out.server_models.front();
  co_return Result<void>{};
}

// `local`: the --tokenizer vocabulary, or null for the server's /tokenize.
asio::awaitable<Result<void>> run_all(client::Client& c, Tokenizer* local, const BenchConfig& cfg,
                                      RunResult& out, std::FILE* progress_out) {
  out.config = cfg;
  out.model = cfg.model;
  out.started_at = utc_now();
  if (auto r = co_await probe_server(c, out); !r)
    co_return r;
  std::vector<DatasetEntry> dataset;
  if (!cfg.dataset.empty()) {
    auto d = load_dataset(cfg.dataset);
    if (!d)
      co_return d.error();
    dataset = std::move(d.value());
  }
  std::string corpus = builtin_corpus();
  if (!cfg.corpus.empty()) {
    std::ifstream in(cfg.corpus);
    if (!in)
      co_return Error{Errc::invalid_request, "cannot read corpus " + cfg.corpus, "corpus"};
    corpus.assign(std::istreambuf_iterator<char>(in), {});
  }
  auto server_tokenizer = make_server_tokenizer(c);
  Tokenizer* tokenizer = local ? local : server_tokenizer.get();
  // A dataset's prompts are sent as given: nothing to tokenize.
  auto builder =
      co_await PromptBuilder::create(dataset.empty() ? tokenizer : nullptr, std::move(corpus));
  out.exact_prompts = builder.exact() || !dataset.empty();
  out.tokenizer = !dataset.empty() ? "dataset" : builder.exact() ? tokenizer->describe() : "none";
  if (!out.exact_prompts) {
    out.warnings.push_back(
        tokenizer->describe() + " tokenizer unusable (" + builder.inexact_reason() +
        "): prompt lengths are approximate" +
        (local ? "" : "; pass --tokenizer model.gguf (the served model's file) for exact lengths"));
  }
  BenchConfig effective = cfg;
  effective.model = out.model;
  Progress progress(progress_out, cfg.progress);
  auto specs = point_specs(cfg);
  for (std::size_t i = 0; i < specs.size(); ++i) {
    Point p(c.executor(), c, effective);
    p.spec = specs[i];
    p.total = cfg.max_requests > 0 ? cfg.warmup + cfg.max_requests + cfg.cooldown : 0;
    WorkloadSpec w{specs[i].scenario,         prepared_count(cfg, specs[i], p.total),
                   cfg.seed + 1000003ULL * i, cfg.prefix_len,
                   cfg.prefix_ratio,          dataset.empty() ? nullptr : &dataset};
    p.requests = co_await build_workload(builder, w);
    out.points.push_back(co_await run_point(p, progress));
  }
  out.inexact_prompts = builder.inexact();
  co_return Result<void>{};
}

}  // namespace

std::vector<std::string> point_warnings(const PointResult& p) {
  std::vector<std::string> out;
  auto label = p.spec.label();
  if (p.client_cpu > 0.9) {
    out.push_back(label + ": the client used " + std::to_string(int(p.client_cpu * 100)) +
                  "% of its core: it may be the bottleneck");
  }
  if (p.late_sends > 0) {
    out.push_back(label + ": " + std::to_string(p.late_sends) +
                  " sends were more than 10 ms late (client saturated or capped)");
  }
  if (p.output_len_mismatch > 0 && p.tool_call_answers > 0) {
    out.push_back(label + ": " + std::to_string(p.output_len_mismatch) +
                  " requests did not get their target output length; " +
                  std::to_string(p.tool_call_answers) +
                  " answers were tool calls, which end at the call");
  } else if (p.output_len_mismatch > 0) {
    out.push_back(label + ": " + std::to_string(p.output_len_mismatch) +
                  " requests did not get their target output length (server ignores "
                  "ignore_eos/min_tokens?)");
  }
  if (p.stats.usage_missing > 0) {
    out.push_back(label + ": " + std::to_string(p.stats.usage_missing) +
                  " responses had no usage; output tokens were counted from deltas");
  }
  return out;
}

Result<RunResult> run_benchmark(const BenchConfig& config, std::FILE* progress_out) {
  raise_fd_limit();
  asio::io_context io(1);
  auto options = config.client;
  int widest = config.max_concurrency;
  for (int c : config.concurrency)
    widest = std::max(widest, c);
  options.max_idle_connections = static_cast<std::size_t>(std::max(widest, 64));
  std::unique_ptr<Tokenizer> local;
  if (!config.tokenizer.empty()) {
    auto t = make_local_tokenizer(config.tokenizer);
    if (!t)
      return t.error();
    local = std::move(t).value();
  }
  client::Client c(io.get_executor(), options);
  RunResult out;
  Result<void> status = Error{Errc::internal, "the benchmark did not finish"};
  asio::co_spawn(io, run_all(c, local.get(), config, out, progress_out),
                 [&](const std::exception_ptr& e, Result<void> r) {
                   if (e) {
                     try {
                       std::rethrow_exception(e);
                     } catch (const std::exception& ex) {
                       r = Error{Errc::internal, ex.what()};
                     }
                   }
                   status = std::move(r);
                 });
  io.run();
  if (!status)
    return status.error();
  for (const auto& p : out.points) {
    auto w = point_warnings(p);
    out.warnings.insert(out.warnings.end(), w.begin(), w.end());
  }
  return out;
}

}  // namespace troupe::bench
