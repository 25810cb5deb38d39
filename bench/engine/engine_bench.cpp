// engine_bench: the engine's throughput against the raw decode ceiling, and its latencies.
//
//   engine_bench MODEL [--threads 2] [--parallel 1,2,4,8,16] [--prompt 128] [--gen 128]
//                      [--batch 512] [--chunk 256] [--repeat 1] [--warmup 1]
//                      [--threadpool on|off] [--poll 50] [--cpus 0-7] [--side both|ceiling|engine]
//                      [--no-throughput] [--no-ttft] [--idle] [--pairs-out FILE]
//   engine_bench --pooled FILE    (the pairs --pairs-out appended, over runs: medians, intervals)
//   engine_bench --make small|1b --type f16|q4_0 -o PATH    (writes a random-weight model)
//
// Throughput: for each parallelism P, P requests with distinct P-token prompts, greedy,
// ignore_eos, `gen` tokens each, through the whole local backend (Coordinator, BatchEngine,
// SequenceActors, TokenStreams read by a coroutine consumer), against a bare loop in this
// program that feeds llama_decode the same batch shapes (same scheduler: decode tokens
// first, prompt chunks under the same budget) with no actors, channels or sampling. Both sides
// use the same threads: a persistent ggml threadpool (--threadpool on, the engine's default) or
// llama.cpp's per-decode threads (off); each side decodes on a thread that lives for its run
// only (ceiling_run says why). After `warmup` discarded pairs, `repeat` pairs run with
// alternating order (ceiling-engine, engine-ceiling, ...), so that drift and a neighbour's load
// land on both sides alike; each row gives the median pair ratio, its quartiles and range, the
// ratio of the time inside llama_decode alone, and the time per step outside llama_decode on
// each side (the engine's own per-step work); the step-time ratio (median inter-token gaps);
// and, from the scheduler's per-thread times, how long the decoding threads sat pre-empted on
// each side and how much CPU the engine's other threads used. A summary gives a 95 %
// bootstrap interval of each median and says whether it clears 0.97. --cpus pins every
// thread of the process.
// TTFT: a 1000-token prompt arriving while 8 sequences generate, chunked prefill on and off;
// and the TTFT of a repeated 1000-token prompt (prefix reuse). --idle: the CPU time an idle
// engine uses in 2 s after serving a request.

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <llama.h>
#include <sched.h>
#include <sys/resource.h>
#include <sys/syscall.h>

#include <algorithm>
#include <array>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <chrono>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <random>
#include <sstream>
#include <string>
#include <string_view>
#include <thread>
#include <tuple>
#include <vector>

#include "engine/coordinator.hpp"
#include "engine/llama_runtime.hpp"
#include "engine/threadpool.hpp"
#include "mkmodel/model_spec.hpp"
#include "util/cpu_set.hpp"
#include "util/thread_name.hpp"

namespace {

namespace asio = boost::asio;
using namespace troupe;
using namespace troupe::engine;
using Clock = std::chrono::steady_clock;

struct Args {
  std::string model;
  int threads = 2, prompt = 128, gen = 128, batch = 512, chunk = 256, repeat = 1, warmup = 1;
  std::vector<int> parallel = {1, 2, 4, 8, 16};
  bool throughput = true, ttft = true, idle = false;
  bool threadpool = true;     // --threadpool on|off: a persistent ggml threadpool, both sides
  int poll = 50;              // --poll N: its workers' polling level between graphs (0..100)
  std::string cpus;           // --cpus 0-7: pin the whole process (every thread) to these CPUs
  std::string side = "both";  // --side ceiling|engine: run one side only (for perf, strace)
  std::string pairs_out;      // --pairs-out FILE: append every pair's ratios (CSV)
  std::string pooled;         // --pooled FILE: summarise the pairs such files hold, and exit
};

long self_tid() {
  return static_cast<long>(syscall(SYS_gettid));
}

double secs(Clock::duration d) {
  return std::chrono::duration<double>(d).count();
}

std::vector<Token> make_prompt(int seq, int len, int n_vocab) {
  std::vector<Token> p;
  for (int k = 0; k < len; ++k)
    p.push_back(100 + (seq * 7919 + k * 131) % (n_vocab - 100));
  return p;
}

struct Run {
  double seconds = 0;         // submit to last token
  double decode_seconds = 0;  // inside llama_decode
  std::int64_t steps = 0;
  // Every inter-token gap of every sequence, in ms: on the engine side as its consumer sees
  // the tokens arrive (a gap spanning one step), on the ceiling side between the ends of the
  // two steps that produced the tokens. Their median is the per-step time of the run, robust
  // to the odd slow step that moves a run's total.
  std::vector<double> gaps_ms;
  // From the scheduler (/proc/self/task/*/schedstat): the time the threads running
  // llama_decode (the decoding thread and ggml's workers) sat runnable but off a CPU, i.e.
  // pre-empted, and the CPU time of every other thread of the process during the run (on the
  // engine side: the SequenceActors' thread, the consumer, I/O). The second bounds how much
  // the engine's own threads can slow a decode down by taking its cores.
  double decode_wait_ms = 0;
  double other_cpu_ms = 0;
};

// Per thread of this process: its name and the scheduler's run and wait times (ms).
struct ThreadTime {
  std::string name;
  double run_ms = 0, wait_ms = 0;
};

std::map<long, ThreadTime> thread_times() {
  std::map<long, ThreadTime> out;
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator("/proc/self/task", ec)) {
    const long tid = std::atol(e.path().filename().c_str());
    ThreadTime t;
    std::ifstream(e.path() / "comm") >> t.name;
    double run_ns = 0, wait_ns = 0;
    if (std::ifstream(e.path() / "schedstat") >> run_ns >> wait_ns) {
      t.run_ms = run_ns * 1e-6;
      t.wait_ms = wait_ns * 1e-6;
      out.emplace(tid, std::move(t));
    }
  }
  return out;
}

// Splits what the threads did between two snapshots into the decoding threads' wait and
// the other threads' CPU. `decoder` is the thread that calls llama_decode; ggml's workers are
// named "ggml-worker" by its own threadpool, and with OpenMP carry their team master's name
// (a new thread starts with its creator's).
void account_threads(const std::map<long, ThreadTime>& before,
                     const std::map<long, ThreadTime>& after, long decoder, Run& r) {
  const auto d = after.find(decoder);
  const std::string decoder_name = d != after.end() ? d->second.name : std::string();
  for (const auto& [tid, t] : after) {
    const auto b = before.find(tid);
    const double run = t.run_ms - (b != before.end() ? b->second.run_ms : 0.0);
    const double wait = t.wait_ms - (b != before.end() ? b->second.wait_ms : 0.0);
    if (tid == decoder || t.name == "ggml-worker" || t.name == decoder_name)
      r.decode_wait_ms += wait;
    else if (t.name != "model-load")
      r.other_cpu_ms += run;
  }
}

// The ceiling: the engine's batch shapes, llama_decode only.
Run bare_loop(llama_model* model, const Args& a, int P) {
  auto cp = llama_context_default_params();
  cp.n_ctx = static_cast<uint32_t>(P * 512);
  cp.n_seq_max = static_cast<uint32_t>(P);
  cp.n_batch = cp.n_ubatch = static_cast<uint32_t>(a.batch + P);
  cp.n_threads = cp.n_threads_batch = a.threads;
  cp.kv_unified = false;
  cp.no_perf = true;
  // The engine's threads: the same persistent pool (or none) as BatchEngine uses.
  auto pool = a.threadpool && a.threads > 1
                  ? CpuThreadpool::create(a.threads, static_cast<std::uint32_t>(a.poll))
                  : nullptr;
  llama_context* ctx = llama_init_from_model(model, cp);
  if (pool)
    llama_attach_threadpool(ctx, pool->get(), pool->get());
  const int n_vocab = llama_vocab_n_tokens(llama_model_get_vocab(model));
  std::vector<std::vector<Token>> prompts;
  for (int s = 0; s < P; ++s)
    prompts.push_back(make_prompt(s, a.prompt, n_vocab));
  std::vector<int> n_past(P, 0), generated(P, 0);
  llama_batch batch = llama_batch_init(a.batch + P, 0, 1);
  auto add = [&](Token t, int pos, int seq, bool out) {
    const int i = batch.n_tokens++;
    batch.token[i] = t, batch.pos[i] = pos, batch.n_seq_id[i] = 1, batch.seq_id[i][0] = seq;
    batch.logits[i] = out;
  };
  Run r;
  std::vector<Clock::time_point> last_token(static_cast<std::size_t>(P));
  const auto threads0 = thread_times();
  const auto t0 = Clock::now();
  for (;;) {
    batch.n_tokens = 0;
    for (int s = 0; s < P; ++s) {
      if (generated[s] > 0 && generated[s] < a.gen)
        add(1000 + generated[s], n_past[s], s, true);
    }
    int budget = a.batch - batch.n_tokens;
    std::vector<int> chunk(P, 0);
    for (int s = 0; s < P && budget > 0; ++s) {
      if (generated[s] > 0)
        continue;
      const int take = std::min({a.prompt - n_past[s], budget, a.chunk});
      for (int k = 0; k < take; ++k) {
        add(prompts[s][n_past[s] + k], n_past[s] + k, s, n_past[s] + k == a.prompt - 1);
      }
      chunk[s] = take;
      budget -= take;
    }
    if (batch.n_tokens == 0)
      break;
    if (pool)
      pool->resume();  // as the engine does before each decode (a no-op when running)
    const auto d0 = Clock::now();
    if (llama_decode(ctx, batch) != 0)
      std::abort();
    const auto d1 = Clock::now();
    r.decode_seconds += secs(d1 - d0);
    ++r.steps;
    for (int s = 0; s < P; ++s) {
      if (chunk[s] > 0) {
        n_past[s] += chunk[s];
        if (n_past[s] == a.prompt) {
          generated[s] = 1;
          last_token[s] = d1;
        }
      } else if (generated[s] > 0 && generated[s] < a.gen) {
        ++n_past[s];
        ++generated[s];
        r.gaps_ms.push_back(1e3 * secs(d1 - last_token[s]));
        last_token[s] = d1;
      }
    }
  }
  r.seconds = secs(Clock::now() - t0);
  account_threads(threads0, thread_times(), self_tid(), r);
  llama_batch_free(batch);
  llama_free(ctx);
  return r;
}

EngineOptions options(const Args& a, int n_parallel, int n_ctx) {
  EngineOptions o;
  o.model_path = a.model;
  o.engine.n_parallel = n_parallel;
  o.engine.n_ctx = n_ctx;
  o.engine.n_batch = a.batch;
  o.engine.n_seq_chunk = a.chunk;
  o.engine.n_threads = a.threads;
  o.max_queue = 1024;
  o.engine.persistent_threads = a.threadpool;
  o.engine.thread_poll = static_cast<std::uint32_t>(a.poll);
  return o;
}

Task token_task(std::vector<Token> prompt, int max_tokens) {
  Task t;
  t.prompt = std::move(prompt);
  t.sampling.temperature = 0.0f;
  t.stop.max_tokens = max_tokens;
  t.stop.ignore_eos = true;
  return t;
}

// Per-request timing seen by the consumer.
struct Seen {
  Clock::time_point submit, first, last;
  double max_gap = 0;
  int tokens = 0;
  std::vector<double>* gaps_ms = nullptr;  // when set: each one-token gap, in ms
  bool done = false;
  bool stop = false;  // set by the driver: the consumer drops the stream at its next event
};

// Starts a request whose events a coroutine on `io` consumes into `seen`.
void spawn_request(asio::io_context& io, Coordinator& c, Task t, Seen& seen, int& live) {
  ++live;
  seen.submit = Clock::now();
  asio::co_spawn(
      io,
      [&c, t = std::move(t), &seen, &live]() mutable -> asio::awaitable<void> {
        auto s = co_await c.generate(std::move(t));
        while (auto ev = co_await s.next()) {
          if (auto* d = std::get_if<Delta>(&*ev)) {
            const auto now = Clock::now();
            if (seen.tokens == 0)
              seen.first = now;
            if (seen.tokens > 0) {
              seen.max_gap = std::max(seen.max_gap, secs(now - seen.last));
              // A delta of one token after another delta spans one step; one that carries
              // more (text held back for UTF-8, or a consumer that fell behind) does not.
              if (seen.gaps_ms != nullptr && d->tokens.size() == 1)
                seen.gaps_ms->push_back(1e3 * secs(now - seen.last));
            }
            seen.last = now;
            seen.tokens += static_cast<int>(d->tokens.size());
          }
          if (auto* f = std::get_if<Failed>(&*ev))
            fmt::print(stderr, "failed: {}\n", f->error.message);
          if (seen.stop)
            break;  // dropping the stream cancels the request
        }
        seen.done = true;
        --live;
      },
      asio::detached);
}

// The ceiling on a thread of its own that ends with the run, as the engine's decoding thread
// (its actor's) ends with its Coordinator. With llama.cpp built with OpenMP every thread that
// decodes keeps a team of workers for as long as it lives, and once libgomp manages more
// threads than there are CPUs its workers wait between parallel regions with a throttled spin
// (100 turns, as documented for GOMP_SPINCOUNT) before they sleep: a ceiling decoded on the
// main thread kept a second team alive through every engine run and so slowed the engine side
// alone, by 10-20 % on 2 cores, a cost troupe serve, with one decoding thread, never pays.
Run ceiling_run(llama_model* model, const Args& a, int P) {
  Run r;
  util::named_thread("ceiling", [&] { r = bare_loop(model, a, P); }).join();
  return r;
}

Run engine_run(const Args& a, int P, int n_vocab) {
  Coordinator c(options(a, P, P * 512));
  if (c.wait_loaded().state != HealthState::ready)
    std::abort();
  asio::io_context io;
  std::vector<Seen> seen(static_cast<std::size_t>(P));
  Run r;
  for (auto& sn : seen)
    sn.gaps_ms = &r.gaps_ms;
  int live = 0;
  const auto threads0 = thread_times();
  const auto t0 = Clock::now();
  for (int s = 0; s < P; ++s) {
    spawn_request(io, c, token_task(make_prompt(s, a.prompt, n_vocab), a.gen), seen[s], live);
  }
  auto guard = asio::make_work_guard(io);
  while (live > 0) {
    if (io.run_one_for(std::chrono::seconds(3)) == 0) {
      auto st = c.stats();
      fmt::print(stderr,
                 "stalled: live {} running {} queued {} generated {} steps {} seen0 {} done0 {}\n",
                 live, st.requests_running, st.requests_queued, st.generation_tokens_total,
                 st.decode_steps_total, seen[0].tokens, seen[0].done);
    }
  }
  r.seconds = secs(Clock::now() - t0);
  // The engine's decoding thread is its dedicated actor thread, named after the actor.
  long decoder = -1;
  const auto threads1 = thread_times();
  for (const auto& [tid, t] : threads1) {
    if (t.name == "batch-engine")
      decoder = tid;
  }
  account_threads(threads0, threads1, decoder, r);
  const auto st = c.stats();
  r.steps = st.decode_steps_total;
  r.decode_seconds = 1e-6 * static_cast<double>(st.decode_us_total);
  return r;
}

double load_average() {
  std::ifstream in("/proc/loadavg");
  double l = 0;
  in >> l;
  return l;
}

double quantile(std::vector<double> v, double q) {  // linear interpolation (R type 7)
  std::sort(v.begin(), v.end());
  const double h = q * static_cast<double>(v.size() - 1);
  const auto lo = static_cast<std::size_t>(h);
  const std::size_t hi = std::min(lo + 1, v.size() - 1);
  return v[lo] + (h - static_cast<double>(lo)) * (v[hi] - v[lo]);
}

double median(const std::vector<double>& v) {
  return quantile(v, 0.5);
}

double or_zero(const std::vector<double>& v, double q) {  // a quantile; 0 for no samples
  return v.empty() ? 0.0 : quantile(v, q);
}

// Percentile bootstrap of the median: 95 % interval from 4000 resamples (fixed seed, so the
// same ratios give the same interval).
std::pair<double, double> bootstrap_median_ci(const std::vector<double>& v) {
  if (v.size() < 3)
    return {*std::min_element(v.begin(), v.end()), *std::max_element(v.begin(), v.end())};
  std::mt19937_64 rng(12345);
  std::uniform_int_distribution<std::size_t> pick(0, v.size() - 1);
  std::vector<double> meds, sample(v.size());
  for (int b = 0; b < 4000; ++b) {
    for (auto& x : sample)
      x = v[pick(rng)];
    meds.push_back(median(sample));
  }
  return {quantile(meds, 0.025), quantile(meds, 0.975)};
}

struct Row {
  int P = 0;
  std::vector<double> ratio, ceil_tps, eng_tps, ceil_ms, eng_ms, ceil_out, eng_out, dec_ratio;
  std::vector<double> step_ratio;           // per pair: median inter-token gap, ceiling / engine
  std::vector<double> ceil_gap, eng_gap;    // per pair: the median gaps themselves (ms)
  std::vector<double> ceil_wait, eng_wait;  // per pair: decoding threads' wait, ms per step
  std::vector<double> eng_other;            // per pair: other threads' CPU, ms per step
  std::int64_t ceil_steps = 0, eng_steps = 0;
  double load0 = 0, load1 = 0;
};

void add_pair(Row& row, const Run& ceil, const Run& eng, double tokens) {
  const auto per_step = [](const Run& r, double s) {
    return 1e3 * s / static_cast<double>(r.steps);
  };
  row.ratio.push_back(ceil.seconds / eng.seconds);
  row.dec_ratio.push_back(ceil.decode_seconds / eng.decode_seconds);
  row.ceil_tps.push_back(tokens / ceil.seconds);
  row.eng_tps.push_back(tokens / eng.seconds);
  row.ceil_ms.push_back(per_step(ceil, ceil.seconds));
  row.eng_ms.push_back(per_step(eng, eng.seconds));
  row.ceil_out.push_back(per_step(ceil, ceil.seconds - ceil.decode_seconds));
  row.eng_out.push_back(per_step(eng, eng.seconds - eng.decode_seconds));
  row.ceil_steps = ceil.steps;
  row.eng_steps = eng.steps;
  row.ceil_wait.push_back(ceil.decode_wait_ms / static_cast<double>(ceil.steps));
  row.eng_wait.push_back(eng.decode_wait_ms / static_cast<double>(eng.steps));
  row.eng_other.push_back(eng.other_cpu_ms / static_cast<double>(eng.steps));
  if (!ceil.gaps_ms.empty() && !eng.gaps_ms.empty()) {
    row.ceil_gap.push_back(median(ceil.gaps_ms));
    row.eng_gap.push_back(median(eng.gaps_ms));
    row.step_ratio.push_back(row.ceil_gap.back() / row.eng_gap.back());
  }
}

// --side ceiling|engine: the one side alone (for perf or strace), `warmup` runs thrown away then
// `repeat` runs, each reported as measured; with nothing to pair it with there is no ratio.
void one_side(const Args& a, llama_model* model, int n_vocab) {
  const bool engine = a.side == "engine";
  fmt::print(
      "| P | side | tok/s per run | ms/step per run | inside llama_decode ms/step | median "
      "inter-token ms | decoding threads pre-empted ms/step | steps | load before-after |\n");
  fmt::print("|---|---|---|---|---|---|---|---|---|\n");
  for (int P : a.parallel) {
    const double load0 = load_average();
    const auto run = [&] { return engine ? engine_run(a, P, n_vocab) : ceiling_run(model, a, P); };
    for (int w = 0; w < a.warmup; ++w)
      run();
    std::vector<std::string> tps, ms, dec, gap, wait;
    std::int64_t steps = 0;
    for (int r = 0; r < std::max(a.repeat, 1); ++r) {
      const Run x = run();
      const double n = static_cast<double>(x.steps);
      tps.push_back(fmt::format("{:.1f}", static_cast<double>(P) * a.gen / x.seconds));
      ms.push_back(fmt::format("{:.2f}", 1e3 * x.seconds / n));
      dec.push_back(fmt::format("{:.2f}", 1e3 * x.decode_seconds / n));
      gap.push_back(x.gaps_ms.empty() ? "-" : fmt::format("{:.2f}", median(x.gaps_ms)));
      wait.push_back(fmt::format("{:.3f}", x.decode_wait_ms / n));
      steps = x.steps;
    }
    fmt::print("| {} | {} | {} | {} | {} | {} | {} | {} | {:.2f}-{:.2f} |\n", P, a.side,
               fmt::join(tps, ", "), fmt::join(ms, ", "), fmt::join(dec, ", "),
               fmt::join(gap, ", "), fmt::join(wait, ", "), steps, load0, load_average());
    std::fflush(stdout);
  }
}

// Per P: `warmup` pairs thrown away, then `repeat` pairs, alternating the order inside the pair
// (ceiling first, then engine first, ...: ABBA), so that a drift in machine speed or a
// neighbour's burst lands on both sides alike. Each pair gives one ratio; the row reports
// their median, quartiles and a bootstrap interval of the median.
void throughput(const Args& a, llama_model* model, int n_vocab) {
  fmt::print(
      "| P | ceiling tok/s | engine tok/s | ratio median | ratio IQR | ratio min-max | "
      "decode-only ratio | step-time ratio (IQR) | median inter-token ms ceiling/engine | "
      "ceiling ms/step | engine ms/step | outside decode ms/step "
      "ceiling/engine | decoding threads pre-empted ms/step ceiling/engine | engine's other "
      "threads CPU ms/step | steps engine/ceiling | load before-after |\n");
  fmt::print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n");
  std::vector<Row> rows;
  for (int P : a.parallel) {
    Row row;
    row.P = P;
    row.load0 = load_average();
    const double tokens = static_cast<double>(P) * a.gen;
    const auto ceiling = [&] { return ceiling_run(model, a, P); };
    const auto engine = [&] { return engine_run(a, P, n_vocab); };
    for (int w = 0; w < a.warmup; ++w) {
      ceiling();
      engine();
    }
    for (int r = 0; r < std::max(a.repeat, 1); ++r) {
      Run ceil, eng;
      if (r % 2 == 0) {
        ceil = ceiling();
        eng = engine();
      } else {
        eng = engine();
        ceil = ceiling();
      }
      add_pair(row, ceil, eng, tokens);
      if (!a.pairs_out.empty() && !row.step_ratio.empty()) {
        std::error_code ec;
        if (std::filesystem::file_size(a.pairs_out, ec) == 0 || ec) {
          std::ofstream(a.pairs_out, std::ios::app)
              << "unix_time,model,threads,P,ratio,decode_only_ratio,step_time_ratio\n";
        }
        std::ofstream(a.pairs_out, std::ios::app)
            << fmt::format("{},{},{},{},{:.5f},{:.5f},{:.5f}\n", std::time(nullptr),
                           std::filesystem::path(a.model).filename().string(), a.threads, P,
                           row.ratio.back(), row.dec_ratio.back(), row.step_ratio.back());
      }
    }
    row.load1 = load_average();
    fmt::print(
        "| {} | {:.1f} | {:.1f} | {:.3f} | {:.3f}-{:.3f} | {:.3f}-{:.3f} | {:.3f} | "
        "{:.3f} ({:.3f}-{:.3f}) | {:.2f}/{:.2f} | {:.2f} | "
        "{:.2f} | {:.3f}/{:.3f} | {:.3f}/{:.3f} | {:.3f} | {}/{} | {:.2f}-{:.2f} |\n",
        P, median(row.ceil_tps), median(row.eng_tps), median(row.ratio), quantile(row.ratio, 0.25),
        quantile(row.ratio, 0.75), *std::min_element(row.ratio.begin(), row.ratio.end()),
        *std::max_element(row.ratio.begin(), row.ratio.end()), median(row.dec_ratio),
        or_zero(row.step_ratio, 0.5), or_zero(row.step_ratio, 0.25), or_zero(row.step_ratio, 0.75),
        or_zero(row.ceil_gap, 0.5), or_zero(row.eng_gap, 0.5), median(row.ceil_ms),
        median(row.eng_ms), median(row.ceil_out), median(row.eng_out), median(row.ceil_wait),
        median(row.eng_wait), median(row.eng_other), row.eng_steps, row.ceil_steps, row.load0,
        row.load1);
    std::fflush(stdout);
    rows.push_back(std::move(row));
  }
  fmt::print(
      "\nsummary: engine/ceiling throughput, median of the pairs, 95 % bootstrap interval of "
      "that median (target >= 0.97); the same ratio of the time inside llama_decode alone; and "
      "the engine's own time per step outside llama_decode (batching, sampling, sending; set-up "
      "and the last hop spread over the steps) minus the ceiling's, as a share of a ceiling "
      "step. The last column moves little with machine noise: it is the engine's overhead; "
      "the other two also carry the noise of llama_decode itself. The step-time ratio is the "
      "ceiling's median inter-token gap over the engine's (as the engine's consumer sees its "
      "tokens arrive), per pair, then the median of the pairs with its own interval: the "
      "per-step time of a typical step, which a few slow steps (a neighbour's burst) do not "
      "move, where they do move a run's total. The engine's other threads' CPU (SequenceActors, "
      "consumer, I/O) per step and the extra time its decoding threads spent pre-empted, both "
      "as a share of a ceiling step, bound what those threads can take from a decode.\n\n");
  fmt::print(
      "| P | pairs | engine/ceiling | 95 % interval | verdict | step-time ratio | 95 % interval | "
      "verdict | decode-only ratio | engine overhead outside decode | engine's other threads' "
      "CPU | decoding threads pre-empted, engine minus ceiling | engine tok/s |\n");
  fmt::print("|---|---|---|---|---|---|---|---|---|---|---|---|---|\n");
  const auto verdict = [](double lo, double hi) {
    return lo >= 0.97 ? "meets" : hi < 0.97 ? "misses" : "undecided (noise)";
  };
  for (const Row& row : rows) {
    const auto [lo, hi] = bootstrap_median_ci(row.ratio);
    const auto [slo, shi] =
        row.step_ratio.empty() ? std::pair{0.0, 0.0} : bootstrap_median_ci(row.step_ratio);
    const double overhead =
        (median(row.eng_out) - median(row.ceil_out)) / median(row.ceil_ms) * 100.0;
    const double step = median(row.ceil_ms) / 100.0;  // 1 % of a ceiling step, in ms
    fmt::print(
        "| {} | {} | {:.3f} | {:.3f}-{:.3f} | {} | {:.3f} | {:.3f}-{:.3f} | {} | {:.3f} | "
        "{:.2f} % | {:.2f} % | {:+.2f} % | {:.1f} |\n",
        row.P, row.ratio.size(), median(row.ratio), lo, hi, verdict(lo, hi),
        or_zero(row.step_ratio, 0.5), slo, shi, verdict(slo, shi), median(row.dec_ratio), overhead,
        median(row.eng_other) / step, (median(row.eng_wait) - median(row.ceil_wait)) / step,
        median(row.eng_tps));
  }
  std::fflush(stdout);
}

// CPU time the whole process uses while an engine that has served a request sits idle.
void idle_cpu(const Args& a, int n_vocab) {
  Coordinator c(options(a, 2, 2 * 512));
  if (c.wait_loaded().state != HealthState::ready)
    std::abort();
  asio::io_context io;
  auto guard = asio::make_work_guard(io);
  Seen seen;
  int live = 0;
  spawn_request(io, c, token_task(make_prompt(1, a.prompt, n_vocab), 16), seen, live);
  while (live > 0)
    io.run_one();
  const auto cpu = [] {
    rusage u{};
    getrusage(RUSAGE_SELF, &u);
    return 1e3 * (static_cast<double>(u.ru_utime.tv_sec + u.ru_stime.tv_sec)) +
           1e-3 * static_cast<double>(u.ru_utime.tv_usec + u.ru_stime.tv_usec);
  };
  const double c0 = cpu();
  const auto steps0 = c.stats().decode_steps_total;
  std::this_thread::sleep_for(std::chrono::seconds(2));  // a benchmark may sleep: it measures idle
  fmt::print("idle engine ({} threads, threadpool {}, poll {}): {:.1f} ms CPU in 2 s, {} steps\n",
             a.threads, a.threadpool ? "on" : "off", a.poll, cpu() - c0,
             c.stats().decode_steps_total - steps0);
}

// --pooled: the pairs that --pairs-out appended, over any number of runs, per model, thread
// count and P: the median engine/ceiling and step-time ratios with their 95 % intervals.
int pooled(const std::string& path) {
  std::ifstream in(path);
  if (!in) {
    fmt::print(stderr, "--pooled {}: cannot read it\n", path);
    return 2;
  }
  struct Key {
    std::string model;
    int threads = 0, P = 0;
    bool operator<(const Key& o) const {
      return std::tie(model, threads, P) < std::tie(o.model, o.threads, o.P);
    }
  };
  std::map<Key, std::pair<std::vector<double>, std::vector<double>>> pairs;
  for (std::string line; std::getline(in, line);) {
    if (line.empty() || line[0] < '0' || line[0] > '9')
      continue;  // the header
    std::stringstream f(line);
    std::string time, model, threads, P, ratio, dec, step;
    if (std::getline(f, time, ',') && std::getline(f, model, ',') &&
        std::getline(f, threads, ',') && std::getline(f, P, ',') && std::getline(f, ratio, ',') &&
        std::getline(f, dec, ',') && std::getline(f, step, ',')) {
      auto& [r, s] = pairs[{model, std::atoi(threads.c_str()), std::atoi(P.c_str())}];
      r.push_back(std::atof(ratio.c_str()));
      s.push_back(std::atof(step.c_str()));
    }
  }
  fmt::print(
      "| model | threads | P | pairs | engine/ceiling | 95 % interval | step-time ratio | 95 % "
      "interval |\n|---|---|---|---|---|---|---|---|\n");
  for (const auto& [k, v] : pairs) {
    const auto [lo, hi] = bootstrap_median_ci(v.first);
    const auto [slo, shi] = bootstrap_median_ci(v.second);
    fmt::print("| {} | {} | {} | {} | {:.3f} | {:.3f}-{:.3f} | {:.3f} | {:.3f}-{:.3f} |\n", k.model,
               k.threads, k.P, v.first.size(), median(v.first), lo, hi, median(v.second), slo, shi);
  }
  return 0;
}

// TTFT of a long prompt arriving while 8 sequences generate.
void ttft_under_load(const Args& a, int n_vocab, bool chunked) {
  Args b = a;
  if (!chunked)
    b.batch = b.chunk = 1100;
  Coordinator c(options(b, 9, 9 * 2048));
  if (c.wait_loaded().state != HealthState::ready)
    std::abort();
  asio::io_context io;
  auto guard = asio::make_work_guard(io);
  std::vector<Seen> bg(8);
  Seen lng;
  int live = 0;
  for (int s = 0; s < 8; ++s) {
    spawn_request(io, c, token_task(make_prompt(s, a.prompt, n_vocab), 1000), bg[s], live);
  }
  auto all_started = [&] {
    for (auto& s : bg)
      if (s.tokens < 4)
        return false;
    return true;
  };
  while (!all_started())
    io.run_one();
  for (auto& s : bg)
    s.max_gap = 0;
  spawn_request(io, c, token_task(make_prompt(99, 1000, n_vocab), 1), lng, live);
  while (!lng.done)
    io.run_one();
  double gap = 0;
  for (auto& s : bg)
    gap = std::max(gap, s.max_gap);
  fmt::print("| {} (batch {}, chunk {}) | {:.0f} ms | {:.0f} ms |\n", chunked ? "on" : "off",
             b.batch, b.chunk, 1e3 * secs(lng.first - lng.submit), 1e3 * gap);
  for (auto& s : bg)
    s.stop = true;  // each consumer drops its stream at its next token: the 8 are cancelled
  while (live > 0)
    io.run_one();
}

void prefix_reuse(const Args& a, int n_vocab) {
  Coordinator c(options(a, 1, 2048));
  if (c.wait_loaded().state != HealthState::ready)
    std::abort();
  asio::io_context io;
  auto guard = asio::make_work_guard(io);
  Seen first, second;
  int live = 0;
  spawn_request(io, c, token_task(make_prompt(7, 1000, n_vocab), 1), first, live);
  while (live > 0)
    io.run_one();
  spawn_request(io, c, token_task(make_prompt(7, 1000, n_vocab), 1), second, live);
  while (live > 0)
    io.run_one();
  const double t1 = secs(first.first - first.submit), t2 = secs(second.first - second.submit);
  fmt::print("repeated 1000-token prompt: TTFT {:.1f} ms, then {:.1f} ms: {:.1f}x faster\n",
             1e3 * t1, 1e3 * t2, t1 / t2);
}

int make_model(int argc, char** argv) {
  std::string shape = "small", type = "f16", out;
  for (int i = 1; i + 1 < argc; ++i) {
    const std::string k = argv[i];
    if (k == "--make")
      shape = argv[++i];
    else if (k == "--type")
      type = argv[++i];
    else if (k == "-o")
      out = argv[++i];
  }
  auto s = mkmodel::shape_by_name(shape);
  auto t = mkmodel::parse_weight_type(type);
  if (!s || !t || out.empty())
    return 2;
  auto ok = mkmodel::write_model({*s, *t, 42}, out);
  if (!ok)
    fmt::print(stderr, "{}\n", ok.error().message);
  return ok ? 0 : 1;
}

constexpr const char* kUsage =
    "usage: engine_bench MODEL [--threads 2] [--parallel 1,2,4,8,16] [--prompt 128] [--gen 128]\n"
    "                          [--batch 512] [--chunk 256] [--repeat 1] [--warmup 1]\n"
    "                          [--threadpool on|off] [--poll 50] [--cpus 0-7]\n"
    "                          [--side both|ceiling|engine] [--no-throughput] [--no-ttft] "
    "[--idle]\n"
    "                          [--pairs-out FILE]\n"
    "       engine_bench --pooled FILE\n"
    "       engine_bench --make small|1b --type f16|q4_0 -o PATH\n";

// The arguments, or nullopt after printing why they are not usable (or the usage, for --help:
// then `help` is set).
std::optional<Args> parse(int argc, char** argv, bool& help) {
  Args a;
  for (int i = 1; i < argc; ++i) {
    const std::string k = argv[i];
    if (k == "-h" || k == "--help") {
      fmt::print("{}", kUsage);
      help = true;
      return std::nullopt;
    }
    static constexpr std::array<std::string_view, 14> with_value = {
        "--threads", "--prompt",     "--gen",  "--batch",     "--chunk",  "--repeat", "--warmup",
        "--poll",    "--threadpool", "--cpus", "--pairs-out", "--pooled", "--side",   "--parallel"};
    if (std::find(with_value.begin(), with_value.end(), k) != with_value.end() && i + 1 >= argc) {
      fmt::print(stderr, "engine_bench: {} needs a value\n{}", k, kUsage);
      return std::nullopt;
    }
    auto next = [&] { return std::atoi(argv[++i]); };
    if (k == "--threads")
      a.threads = next();
    else if (k == "--prompt")
      a.prompt = next();
    else if (k == "--gen")
      a.gen = next();
    else if (k == "--batch")
      a.batch = next();
    else if (k == "--chunk")
      a.chunk = next();
    else if (k == "--repeat")
      a.repeat = next();
    else if (k == "--warmup")
      a.warmup = next();
    else if (k == "--poll")
      a.poll = next();
    else if (k == "--threadpool")
      a.threadpool = std::string(argv[++i]) != "off";
    else if (k == "--cpus")
      a.cpus = argv[++i];
    else if (k == "--idle")
      a.idle = true;
    else if (k == "--pairs-out")
      a.pairs_out = argv[++i];
    else if (k == "--pooled")
      a.pooled = argv[++i];
    else if (k == "--side") {
      a.side = argv[++i];
      if (a.side != "both" && a.side != "ceiling" && a.side != "engine") {
        fmt::print(stderr, "engine_bench: --side takes both, ceiling or engine, not '{}'\n",
                   a.side);
        return std::nullopt;
      }
    } else if (k == "--no-throughput")
      a.throughput = false;
    else if (k == "--no-ttft")
      a.ttft = false;
    else if (k == "--parallel") {
      a.parallel.clear();
      for (std::string s = argv[++i]; !s.empty();) {
        a.parallel.push_back(std::atoi(s.c_str()));
        const auto comma = s.find(',');
        s = comma == std::string::npos ? "" : s.substr(comma + 1);
      }
    } else if (k.starts_with("-") || !a.model.empty()) {
      fmt::print(stderr, "engine_bench: unexpected argument '{}'\n{}", k, kUsage);
      return std::nullopt;
    } else {
      a.model = k;
    }
  }
  return a;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc > 1 && std::string(argv[1]) == "--make")
    return make_model(argc, argv);
  bool help = false;
  const std::optional<Args> parsed = parse(argc, argv, help);
  if (!parsed)
    return help ? 0 : 2;
  const Args& a = *parsed;
  if (!a.pooled.empty())
    return pooled(a.pooled);
  if (a.model.empty()) {
    fmt::print(stderr, "engine_bench: no model given\n{}", kUsage);
    return 2;
  }
  if (!a.cpus.empty()) {  // before any thread starts: they all inherit it
    auto set = util::parse_cpu_list(a.cpus);
    auto pinned = set ? util::pin_calling_thread(*set) : Result<void>(set.error());
    if (!pinned) {
      fmt::print(stderr, "--cpus: {}\n", pinned.error().message);
      return 2;
    }
  }
  init_llama_runtime();
  llama_model* model = llama_model_load_from_file(a.model.c_str(), llama_model_default_params());
  if (!model)
    return 1;
  const int n_vocab = llama_vocab_n_tokens(llama_model_get_vocab(model));
  fmt::print(
      "model {}, {} threads, threadpool {} (poll {}), cpus {}, prompt {}, gen {}, step budget {}, "
      "chunk {}, {} pairs per P after {} warm-up\n",
      a.model, a.threads, a.threadpool ? "on" : "off", a.poll, a.cpus.empty() ? "all" : a.cpus,
      a.prompt, a.gen, a.batch, a.chunk, a.repeat, a.warmup);
  if (a.idle)
    idle_cpu(a, n_vocab);
  if (a.throughput && a.side == "both")
    throughput(a, model, n_vocab);
  else if (a.throughput)
    one_side(a, model, n_vocab);
  if (a.ttft) {
    fmt::print(
        "\n| chunked prefill | TTFT of 1000-token prompt | max ITL of the 8 |\n|---|---|---|\n");
    ttft_under_load(a, n_vocab, true);
    ttft_under_load(a, n_vocab, false);
    prefix_reuse(a, n_vocab);
  }
  llama_model_free(model);
  return 0;
}
