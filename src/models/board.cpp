#include "models/board.hpp"

#include <fmt/format.h>

#include <algorithm>

#include "util/prometheus.hpp"

namespace troupe::models {

namespace prom = util::prometheus;

void add_stats(engine::BackendStats& a, const engine::BackendStats& b) {
  a.requests_running += b.requests_running;
  a.requests_queued += b.requests_queued;
  a.prompt_tokens_total += b.prompt_tokens_total;
  a.generation_tokens_total += b.generation_tokens_total;
  a.prefix_cache_hits_total += b.prefix_cache_hits_total;
  a.prefix_cache_queries_total += b.prefix_cache_queries_total;
  a.decode_steps_total += b.decode_steps_total;
  a.decode_us_total += b.decode_us_total;
  a.sample_us_total += b.sample_us_total;
  a.cancelled_total += b.cancelled_total;
  a.kv_cache_usage_ratio = std::max(a.kv_cache_usage_ratio, b.kv_cache_usage_ratio);
  a.kv_preemptions_total += b.kv_preemptions_total;
  a.pad_rows_total += b.pad_rows_total;
  a.host_cache_stores_total += b.host_cache_stores_total;
  a.host_cache_restores_total += b.host_cache_restores_total;
  a.host_cache_hits_total += b.host_cache_hits_total;
  a.host_cache_bytes += b.host_cache_bytes;
  a.host_cache_entries += b.host_cache_entries;
  a.checkpoint_restores_total += b.checkpoint_restores_total;
  a.checkpoint_bytes += b.checkpoint_bytes;
  a.cache_reuse_tokens_total += b.cache_reuse_tokens_total;
  a.spec_draft_tokens_total += b.spec_draft_tokens_total;
  a.spec_accepted_tokens_total += b.spec_accepted_tokens_total;
  if (a.sequences_per_step.size() < b.sequences_per_step.size())
    a.sequences_per_step.resize(b.sequences_per_step.size());
  for (std::size_t i = 0; i < b.sequences_per_step.size(); ++i)
    a.sequences_per_step[i] += b.sequences_per_step[i];
}

ModelBoard::ModelBoard(std::vector<engine::ModelInfo> models)
    : infos_(std::move(models)), backends_(infos_.size()), counters_(infos_.size()) {}

std::vector<engine::ModelInfo> ModelBoard::models() const {
  std::lock_guard lock(mu_);
  return infos_;
}

engine::BackendStats ModelBoard::stats() const {
  std::lock_guard lock(mu_);
  engine::BackendStats s = retired_;
  // Gauges of the retired backends are stale: only their counters count.
  s.requests_running = 0;
  s.requests_queued = waiting_;
  s.kv_cache_usage_ratio = 0;
  for (const auto* b : backends_) {
    if (b != nullptr)
      add_stats(s, b->stats());
  }
  return s;
}

std::string ModelBoard::metrics() const {
  std::lock_guard lock(mu_);
  std::string out;
  auto each = [&](std::string_view name, std::string_view type, std::string_view help,
                  auto value_of) {
    prom::family(out, name, type, help);
    for (std::size_t i = 0; i < infos_.size(); ++i) {
      prom::sample(out, name, fmt::format("model=\"{}\"", prom::label_value(infos_[i].id)),
                   value_of(i));
    }
  };
  each("troupe_model_loaded", "gauge", "1 while the model is loaded, else 0.",
       [&](std::size_t i) { return std::int64_t{infos_[i].state == "loaded"}; });
  each("troupe_model_loads_total", "counter", "Loads of the model that succeeded.",
       [&](std::size_t i) { return counters_[i].loads; });
  each("troupe_model_load_failures_total", "counter", "Loads of the model that failed.",
       [&](std::size_t i) { return counters_[i].failures; });
  each("troupe_model_unloads_total", "counter",
       "Unloads of the model (idle, least recently used, keep_alive, POST /models/unload).",
       [&](std::size_t i) { return counters_[i].unloads; });
  each("troupe_model_load_seconds_total", "counter",
       "Seconds spent in the model's successful loads (divide by troupe_model_loads_total for "
       "the mean load time).",
       [&](std::size_t i) { return counters_[i].load_seconds; });
  return out;
}

void ModelBoard::set_info(std::size_t i, engine::ModelInfo info) {
  std::lock_guard lock(mu_);
  infos_[i] = std::move(info);
}

void ModelBoard::set_backend(std::size_t i, engine::Backend* b) {
  std::lock_guard lock(mu_);
  if (b == nullptr && backends_[i] != nullptr)
    add_stats(retired_, backends_[i]->stats());
  backends_[i] = b;
}

void ModelBoard::count_load(std::size_t i, double seconds, bool ok) {
  std::lock_guard lock(mu_);
  if (ok) {
    ++counters_[i].loads;
    counters_[i].load_seconds += seconds;
  } else {
    ++counters_[i].failures;
  }
}

void ModelBoard::count_unload(std::size_t i) {
  std::lock_guard lock(mu_);
  ++counters_[i].unloads;
}

void ModelBoard::set_progress(std::size_t i, float fraction) {
  std::lock_guard lock(mu_);
  if (infos_[i].state == "loading")
    infos_[i].state_message = fmt::format("{:.0f}% loaded", fraction * 100.0f);
}

void ModelBoard::set_waiting(std::int64_t requests) {
  std::lock_guard lock(mu_);
  waiting_ = requests;
}

}  // namespace troupe::models
