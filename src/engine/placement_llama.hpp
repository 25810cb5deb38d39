#pragma once
// PlacementOptions into llama.cpp's parameter structs (engine/*.cpp only: llama.h).

#include <llama.h>

#include <optional>
#include <vector>

#include "engine/engine_config.hpp"
#include "engine/memory_use.hpp"
#include "engine/placement.hpp"

namespace troupe::engine {

// The devices list llama_model_params points into; must outlive the model load.
using DeviceList = std::vector<ggml_backend_dev_t>;

// Fills the model parameters (layers, devices, split, mmap, mlock). Errors as check_placement.
Result<void> apply_model_placement(const PlacementOptions& p, llama_model_params& params,
                                   DeviceList& devices, std::vector<float>& split);

// Fills the context parameters (flash attention, KV types).
Result<void> apply_context_placement(const PlacementOptions& p, llama_context_params& params);

// The context parameters of an engine shaped as `config` (resolved: n_ctx, n_threads): its
// cells, sequences, one physical batch for a whole step, threads, KV layout and the
// placement's part. The draft model's context takes the same.
Result<llama_context_params> engine_context_params(const BatchEngineConfig& config);

// An engine's config checked and resolved as BatchEngine::start takes it (the context's cells
// padded to llama.cpp's multiples, threads, step budget; embeddings for an embedding-only
// model), and its context parameters. log: say what was padded. Errors: invalid_request naming
// the field, as check_placement.
Result<llama_context_params> resolve_engine_context(bool embedding_only, BatchEngineConfig& config,
                                                    bool log);

// llama.cpp's account of what `ctx` and its model allocate (memory_use.hpp); nullopt in a build
// without it.
std::optional<MemoryUse> memory_use_of(const llama_context* ctx);

// The report for a loaded model and its context's size in cells.
PlacementReport placement_report(const PlacementOptions& p, const llama_model* model,
                                 std::int32_t n_ctx);

}  // namespace troupe::engine
