#include "server/metrics.hpp"

#include <fmt/format.h>

#include <iterator>

#include "util/prometheus.hpp"

namespace troupe::server {
namespace {

namespace prom = util::prometheus;

std::vector<double> latency_bounds() {
  return {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.075, 0.1,  0.25, 0.5,
          0.75,  1.0,    2.5,   5.0,  7.5,   10.0, 20.0,  40.0, 80.0};
}

// This file's argument order (help before type), written by the shared writer.
void header(std::string& out, std::string_view name, std::string_view help, std::string_view type) {
  prom::family(out, name, type, help);
}

void scalar(std::string& out, std::string_view name, std::string_view help, std::string_view type,
            double value) {
  prom::scalar(out, name, type, help, value);
}

// One family with one sample per label value: name{label="names[i]"} values[i].
template <std::size_t N>
void labelled(std::string& out, std::string_view name, std::string_view help, std::string_view type,
              std::string_view label, const std::array<std::string_view, N>& names,
              const std::array<std::atomic<std::int64_t>, N>& values) {
  header(out, name, help, type);
  for (std::size_t i = 0; i < N; ++i) {
    fmt::format_to(std::back_inserter(out), "{}{{{}=\"{}\"}} {}\n", name, label, names[i],
                   values[i].load(std::memory_order_relaxed));
  }
}

// Steps with i sequences are counted in counts[i]; buckets at powers of two.
Histogram::Snapshot sequences_snapshot(const std::vector<std::int64_t>& counts) {
  Histogram::Snapshot s;
  s.bounds = {1, 2, 4, 8, 16, 32, 64};
  s.cumulative.assign(s.bounds.size() + 1, 0);
  for (std::size_t i = 0; i < counts.size(); ++i) {
    for (std::size_t b = 0; b < s.bounds.size(); ++b) {
      if (static_cast<double>(i) <= s.bounds[b])
        s.cumulative[b] += counts[i];
    }
    s.cumulative.back() += counts[i];
    s.sum += static_cast<double>(i) * static_cast<double>(counts[i]);
    s.count += counts[i];
  }
  return s;
}

}  // namespace

Histogram::Histogram(std::vector<double> bounds)
    : bounds_(std::move(bounds)),
      counts_(std::make_unique<std::atomic<std::int64_t>[]>(bounds_.size() + 1)) {}

void Histogram::observe(double value) noexcept {
  std::size_t i = 0;
  while (i < bounds_.size() && value > bounds_[i])
    ++i;
  counts_[i].fetch_add(1, std::memory_order_relaxed);
  sum_.fetch_add(value, std::memory_order_relaxed);
  count_.fetch_add(1, std::memory_order_relaxed);
}

Histogram::Snapshot Histogram::snapshot() const {
  Snapshot s;
  s.bounds = bounds_;
  std::int64_t running = 0;
  for (std::size_t i = 0; i <= bounds_.size(); ++i) {
    running += counts_[i].load(std::memory_order_relaxed);
    s.cumulative.push_back(running);
  }
  s.sum = sum_.load(std::memory_order_relaxed);
  // Read separately from the buckets: keep +Inf == count, as the format requires.
  s.count = running;
  return s;
}

Metrics::Metrics()
    : time_to_first_token(latency_bounds()),
      inter_token_latency({0.0005, 0.001, 0.0025, 0.005, 0.0075, 0.01, 0.015, 0.02, 0.03, 0.04,
                           0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.5, 1.0, 2.5}),
      e2e_request_latency(latency_bounds()),
      request_queue_time(latency_bounds()) {}

void Metrics::count_request(std::string_view endpoint, int status) {
  std::lock_guard lock(mu_);
  ++requests_[{std::string(endpoint), status}];
}

void render_histogram(std::string& out, std::string_view name, std::string_view help,
                      const Histogram::Snapshot& s) {
  header(out, name, help, "histogram");
  const std::string bucket = fmt::format("{}_bucket", name);
  for (std::size_t i = 0; i < s.bounds.size(); ++i)
    prom::sample(out, bucket, fmt::format("le=\"{}\"", s.bounds[i]), s.cumulative[i]);
  prom::sample(out, bucket, "le=\"+Inf\"", s.cumulative.back());
  prom::sample(out, fmt::format("{}_sum", name), {}, s.sum);
  prom::sample(out, fmt::format("{}_count", name), {}, s.count);
}

void Metrics::render_server(std::string& out) const {
  header(out, "troupe_requests_total", "HTTP requests by endpoint and status code.", "counter");
  {
    std::lock_guard lock(mu_);
    for (const auto& [key, n] : requests_) {
      prom::sample(out, "troupe_requests_total",
                   fmt::format("endpoint=\"{}\",code=\"{}\"", key.first, key.second), n);
    }
  }
  scalar(out, "troupe_client_disconnects_total",
         "Generations cancelled because the client went away.", "counter",
         static_cast<double>(disconnects_.load()));
  scalar(out, "troupe_http_connections", "Open HTTP connections.", "gauge",
         static_cast<double>(connections_.load()));
  scalar(out, "troupe_embedding_inputs_total",
         "Inputs embedded (and documents scored) by answered embeddings and rerank requests.",
         "counter", static_cast<double>(embedding_inputs_.load()));
  scalar(out, "troupe_embedding_tokens_total",
         "Tokens of the inputs of answered embeddings and rerank requests.", "counter",
         static_cast<double>(embedding_tokens_.load()));
  render_connections(out);
  render_histogram(
      out, "troupe_time_to_first_token_seconds",
      "Time from request received to first token sent; includes loading the model when the "
      "request had to wait for it (troupe serve --models-dir).",
      time_to_first_token.snapshot());
  render_histogram(out, "troupe_inter_token_latency_seconds",
                   "Time between consecutive tokens of one request.",
                   inter_token_latency.snapshot());
  render_histogram(out, "troupe_e2e_request_latency_seconds",
                   "Time from request received to its last token.", e2e_request_latency.snapshot());
  render_histogram(
      out, "troupe_request_queue_time_seconds",
      "Time from request received to admission by the engine; includes loading the model "
      "when the request had to wait for it.",
      request_queue_time.snapshot());
}

void Metrics::render_connections(std::string& out) const {
  labelled(out, "troupe_http_connections_by_state", "Open HTTP connections by what they are doing.",
           "gauge", "state", kConnStateNames, states_);
  labelled(out, "troupe_http_connections_refused_total",
           "New connections answered 503 and closed, by cause.", "counter", "cause",
           kRefusalCauseNames, refusals_);
  labelled(out, "troupe_http_connections_reclaimed_total",
           "Idle or header-sending connections closed to admit a new one, by cause.", "counter",
           "cause", kReclaimCauseNames, reclaims_);
  scalar(out, "troupe_http_refusals_unlingered_total",
         "Refusals closed without lingering (too many refusals lingering at once).", "counter",
         static_cast<double>(refusals_unlingered_.load()));
  scalar(out, "troupe_http_send_timeouts_total",
         "Writes to a client that stopped reading, abandoned after the send timeout.", "counter",
         static_cast<double>(send_timeouts_.load()));
}

std::string Metrics::render(const engine::BackendStats& b) const {
  std::string out;
  out.reserve(8192);
  render_server(out);
  const auto d = [](std::int64_t v) { return static_cast<double>(v); };
  scalar(out, "troupe_requests_running", "Requests admitted and generating.", "gauge",
         d(b.requests_running));
  scalar(out, "troupe_requests_queued", "Requests waiting for a sequence slot.", "gauge",
         d(b.requests_queued));
  scalar(out, "troupe_requests_cancelled_total", "Generations cancelled before their end.",
         "counter", d(b.cancelled_total));
  scalar(out, "troupe_prompt_tokens_total", "Prompt tokens processed.", "counter",
         d(b.prompt_tokens_total));
  scalar(out, "troupe_generation_tokens_total", "Tokens generated.", "counter",
         d(b.generation_tokens_total));
  scalar(out, "troupe_prefix_cache_hits_total", "Prompt tokens served from the KV cache.",
         "counter", d(b.prefix_cache_hits_total));
  scalar(out, "troupe_prefix_cache_queries_total", "Prompt tokens looked up in the KV cache.",
         "counter", d(b.prefix_cache_queries_total));
  scalar(out, "troupe_decode_steps_total", "Engine decode steps.", "counter",
         d(b.decode_steps_total));
  scalar(out, "troupe_decode_seconds_total", "Time inside llama.cpp's decode calls.", "counter",
         static_cast<double>(b.decode_us_total) / 1e6);
  scalar(out, "troupe_sampling_seconds_total",
         "Wall time sampling each step's sequences (grammar checks included).", "counter",
         static_cast<double>(b.sample_us_total) / 1e6);
  render_histogram(out, "troupe_sequences_per_step", "Sequences in each decode step.",
                   sequences_snapshot(b.sequences_per_step));
  scalar(out, "troupe_kv_cache_usage_ratio", "Used fraction of the KV cache cells.", "gauge",
         b.kv_cache_usage_ratio);
  scalar(out, "troupe_kv_preemptions_total",
         "Sequences that gave their KV cells back to be recomputed (--kv-unified).", "counter",
         d(b.kv_preemptions_total));
  scalar(out, "troupe_pad_rows_total",
         "Discarded tokens added to decode steps so that each is one pass over the weights.",
         "counter", d(b.pad_rows_total));
  scalar(out, "troupe_host_cache_stores_total",
         "KV states of displaced slots stored in host memory (--cache-ram).", "counter",
         d(b.host_cache_stores_total));
  scalar(out, "troupe_host_cache_restores_total",
         "Prompts that restored a KV state from host memory (--cache-ram).", "counter",
         d(b.host_cache_restores_total));
  scalar(out, "troupe_host_cache_hits_total",
         "Prompt tokens served by states restored from host memory (also in "
         "troupe_prefix_cache_hits_total).",
         "counter", d(b.host_cache_hits_total));
  scalar(out, "troupe_host_cache_bytes", "Host memory held by stored KV states.", "gauge",
         d(b.host_cache_bytes));
  scalar(out, "troupe_host_cache_entries", "KV states stored in host memory.", "gauge",
         d(b.host_cache_entries));
  scalar(out, "troupe_context_checkpoint_restores_total",
         "Prompts whose cached prefix was served with a checkpoint of memory that cannot be cut "
         "back (sliding-window, recurrent or hybrid models; --ctx-checkpoints).",
         "counter", d(b.checkpoint_restores_total));
  scalar(out, "troupe_context_checkpoint_bytes",
         "Host memory held by checkpoints of memory that cannot be cut back.", "gauge",
         d(b.checkpoint_bytes));
  scalar(out, "troupe_cache_reuse_tokens_total",
         "Cached prompt tokens reused by moving their cells into place (--cache-reuse; also in "
         "troupe_prefix_cache_hits_total).",
         "counter", d(b.cache_reuse_tokens_total));
  scalar(out, "troupe_spec_draft_tokens_total",
         "Tokens drafted for speculative decoding (a request's prediction, --spec-type "
         "ngram-simple or a draft model).",
         "counter", d(b.spec_draft_tokens_total));
  scalar(out, "troupe_spec_accepted_tokens_total",
         "Drafted tokens the sampler drew: each saved a decode step.", "counter",
         d(b.spec_accepted_tokens_total));
  return out;
}

}  // namespace troupe::server
