#pragma once
// ModelSet: the Backend of `troupe serve` with many models (--models-dir, several --model,
// --models-preset). It routes each request by its model name to that model's own local
// Backend (engine::make_local_backend: a Coordinator, its BatchEngine and SequenceActors),
// loading models on demand and unloading idle ones. The model table and its state machine
// belong to one actor, the ModelSupervisor (models/supervisor.hpp); see there for the rules.
//
// A request for a model that is not loaded waits (queued, up to the model's --max-queue)
// until the model is loaded, then runs: its queue time and time to first token include the
// load. A model that fails to load fails its own requests with the reason; the others keep
// serving, and a later request (or POST /models/load) tries the load again.
//
// Threads: the caller's (generate() asks the supervisor and awaits its answer), the
// supervisor's ("models": an ActorSystem of one io_context thread), and two "model-load"
// threads that load (make_local_backend, then wait until it is ready) and unload (destroy
// the backend) so that neither blocks the supervisor. Each model's Backend has its own
// threads (engine/coordinator.hpp).
//
// Thread-safety: the Backend members may be called from any thread concurrently. Destroy the
// ModelSet after every TokenStream it returned.

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "engine/backend.hpp"
#include "engine/local_backend.hpp"
#include "models/memory.hpp"

namespace troupe::models {

// One model of the set: its id (the name clients use; options.model_id), file
// (options.model_path), aliases (options.aliases) and engine options.
struct ModelConfig {
  engine::EngineOptions options;
  const std::string& id() const { return options.model_id; }
};

struct ModelSetOptions {
  std::vector<ModelConfig> models;  // at least one; the first is the default model
  std::size_t max_loaded = 0;       // --max-loaded: models loaded at once; 0: no limit
  // --idle-unload: how long an idle model stays loaded (a request's keep_alive overrides it
  // for the model it used); negative: for ever.
  std::chrono::milliseconds idle_unload{-1};
  // --models-memory-budget: bytes the loaded models may take by estimate (weights, KV cache
  // and compute buffers: local_loader); 0: no budget.
  std::uint64_t memory_budget = 0;
};

// How models are loaded and sized: the real way, or a test's.
struct ModelLoader {
  // Loads `config` and returns the ready backend, or why it could not. Blocks (runs on a
  // model-load thread).
  std::function<Result<std::unique_ptr<engine::Backend>>(const ModelConfig&)> load;
  // The memory the model will take (asked only with a memory budget). On the supervisor's
  // thread: it must be quick (reading the GGUF's metadata and planning a context is: no
  // tensor data is read).
  std::function<Result<MemoryEstimate>(const ModelConfig&)> estimate;
};

// make_local_backend + wait_loaded; the estimate is llama.cpp's own count of the model served
// as configured, from a dry run that allocates nothing (engine/memory_use.hpp; estimate_memory
// from the GGUF's shape in a build without it), with its draft model's
// (EngineOptions::draft_model_path) added.
ModelLoader local_loader();

// Errors: invalid_request for an empty model list or two models (or aliases) with one name.
Result<std::unique_ptr<engine::Backend>> make_model_set(ModelSetOptions options,
                                                        ModelLoader loader = local_loader());

}  // namespace troupe::models
