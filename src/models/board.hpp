#pragma once
// ModelBoard: what the rest of the server reads of the model table without asking the
// supervisor: each model's info and state for /v1/models, the loaded backends' stats, and the
// load/unload counters for /metrics.
//
// Thread-safety: one mutex, held for copies and for the loaded backends' stats() calls (which
// are quick reads of atomics). Shared mutable state by necessity: models(), stats() and
// /metrics are synchronous Backend members called on HTTP threads, and must not wait behind
// the supervisor's mailbox. Only the supervisor writes; a backend is taken off the board
// (set_backend nullptr) before it is destroyed, so a reader never sees a dead one.

#include <cstdint>
#include <mutex>
#include <string>
#include <vector>

#include "engine/backend.hpp"

namespace troupe::models {

class ModelBoard {
 public:
  explicit ModelBoard(std::vector<engine::ModelInfo> models);

  // Readers (any thread).
  std::vector<engine::ModelInfo> models() const;
  // The loaded models' stats summed (gauges and counters; kv_cache_usage_ratio is the
  // largest), plus what unloaded models had counted, plus the requests waiting for a load
  // in requests_queued.
  engine::BackendStats stats() const;
  // Prometheus families: troupe_model_loaded, troupe_model_loads_total,
  // troupe_model_load_failures_total, troupe_model_unloads_total,
  // troupe_model_load_seconds (sum and count), per model.
  std::string metrics() const;

  // Writers (the supervisor).
  void set_info(std::size_t i, engine::ModelInfo info);
  // `b` serves model i from now on; nullptr: it is being unloaded (its counters are kept).
  void set_backend(std::size_t i, engine::Backend* b);
  void count_load(std::size_t i, double seconds, bool ok);
  void count_unload(std::size_t i);
  void set_waiting(std::int64_t requests);
  // Model i's load is `fraction` done: its state message while it is loading. Called by the
  // loading thread.
  void set_progress(std::size_t i, float fraction);

 private:
  struct Counters {
    std::int64_t loads = 0;
    std::int64_t failures = 0;
    std::int64_t unloads = 0;
    double load_seconds = 0;  // of the loads that succeeded
  };

  mutable std::mutex mu_;
  std::vector<engine::ModelInfo> infos_;
  std::vector<engine::Backend*> backends_;
  std::vector<Counters> counters_;
  engine::BackendStats retired_;  // counters of backends since unloaded
  std::int64_t waiting_ = 0;
};

// a += b: counters and gauges summed, the KV usage the larger, histograms element-wise.
void add_stats(engine::BackendStats& a, const engine::BackendStats& b);

}  // namespace troupe::models
