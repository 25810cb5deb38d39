#pragma once
// Directory: the workers of a cluster as read from a registry snapshot (remote/registry.hpp):
// who publishes "engine/<model>", with the capacity and load they gossip (cluster_protocol.hpp
// metadata keys). Pure functions over a snapshot.
//
// Thread-safety: pure functions; a snapshot is immutable.

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "engine/backend.hpp"
#include "remote/registry.hpp"

namespace troupe::cluster {

struct WorkerLoad {
  std::int64_t running = 0;
  std::int64_t queued = 0;
  double kv_usage = 0.0;
};

// Parses the "load" metadata value; zeros when absent or malformed.
WorkerLoad parse_load(std::string_view text);

// What a worker gossips in its member metadata (cluster_protocol.hpp's meta keys), parsed in
// this one place: an absent or malformed value reads as the default below.
struct WorkerMeta {
  std::string model;  // empty: none
  // The models it has loaded (meta::loaded), or nullopt when it does not say: all of them.
  std::optional<std::vector<std::string>> loaded;
  std::int64_t capacity = 1;  // at least 1
  std::int32_t n_ctx = 0;
  std::int32_t n_vocab = 0;
  WorkerLoad load;
};
WorkerMeta parse_worker_meta(const std::map<std::string, std::string>& meta);

struct WorkerEntry {
  remote::ActorAddress engine;  // where "engine/<model>" lives
  std::string model;
  std::int64_t capacity = 1;
  WorkerLoad load;
  bool loaded = true;  // the model is loaded there (or the worker's models are fixed)
};

// The live workers publishing `model`, in node id order.
std::vector<WorkerEntry> workers_for(const remote::RegistrySnapshot& s, std::string_view model);

// Every live worker with its model (one entry per published engine), in node id order.
std::vector<WorkerEntry> all_workers(const remote::RegistrySnapshot& s);

// The union of the published models, sorted by id; n_ctx and n_vocab from the first worker
// (lowest node id) that gossips them.
std::vector<engine::ModelInfo> models_of(const remote::RegistrySnapshot& s);

}  // namespace troupe::cluster
