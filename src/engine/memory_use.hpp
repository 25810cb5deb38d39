#pragma once
// What llama.cpp allocates for a model and its context, by its own account
// (llama_get_memory_breakdown, summed over devices and host): the weights, the context's memory
// (KV cells as the model's layers hold them: a sliding window's, a hybrid's attention layers
// and its recurrent state) and the compute buffers. Of a live context, or of a dry run: the
// model loaded with no_alloc and a context made as BatchEngine::start makes it, where llama.cpp
// reserves nothing (what llama-server's --fit measures). A llama.cpp without the staging header
// that declares the account (a TROUPE_LLAMA=package build without it) gives none: nullopt.
//
// Thread-safety: any thread; a dry run loads through llama.cpp's loader as a model load does.

#include <cstdint>
#include <optional>
#include <string>

#include "engine/engine_config.hpp"
#include "util/result.hpp"

namespace troupe::engine {

struct MemoryUse {
  std::uint64_t weights = 0;
  std::uint64_t context = 0;  // KV cells and recurrent states
  std::uint64_t compute = 0;  // the compute buffers reserved for the largest step
  std::uint64_t total() const { return weights + context + compute; }
};

// Whether this build has llama.cpp's account.
bool memory_use_known();

// A dry run for the model at `path` served as `config` (its placement, context, slots, KV
// types, sliding window...). nullopt: no account in this build. Errors: not_found (no file),
// engine_failed (llama.cpp could not read the model or make the context), and the config's,
// as BatchEngine::start gives them.
Result<std::optional<MemoryUse>> planned_memory_use(const std::string& path,
                                                    const BatchEngineConfig& config);

}  // namespace troupe::engine
