#pragma once
// The memory a model needs once loaded, estimated from its GGUF file before loading it, so
// that a load that cannot fit is refused instead of ending in an out-of-memory kill.
//
// Thread-safety: pure functions (they read the file); any thread.

#include <cstdint>
#include <string>

#include "util/result.hpp"

namespace troupe::models {

struct MemoryEstimate {
  std::uint64_t weights = 0;   // the file's size: the tensors are mapped or read whole
  std::uint64_t kv_cache = 0;  // the context's KV cells (and recurrent states)
  std::uint64_t compute = 0;   // the context's compute buffers (0: not estimated)
  std::uint64_t total() const { return weights + kv_cache + compute; }
};

// The estimate from the GGUF's shape alone (where llama.cpp's own count is not in the build,
// engine/memory_use.hpp; local_loader's estimate prefers that) for `path` served with a
// context of `n_ctx` cells in all (0: the model's trained context) and the KV cache types
// `cache_type_k`/`cache_type_v` (ggml's names: f16, q8_0, ...). The KV cache is n_layer * n_ctx *
// (n_embd_k_gqa * size(K) + n_embd_v_gqa * size(V)), read from the GGUF's {arch}.block_count,
// embedding_length, attention.head_count(_kv) and attention.key_length/value_length. Compute
// buffers are not counted. Errors: invalid_request when the file is not a GGUF or lacks those keys,
// or a type is unknown.
Result<MemoryEstimate> estimate_memory(const std::string& path, std::int32_t n_ctx,
                                       const std::string& cache_type_k,
                                       const std::string& cache_type_v);

// Parses a byte count: a number with an optional unit (B, KB, MB, GB, TB: powers of 1000;
// KiB, MiB, GiB, TiB: powers of 1024; case-insensitive), e.g. "8GiB", "512MB", "1000000".
// Errors: invalid_request.
Result<std::uint64_t> parse_bytes(const std::string& text);

// "1.5 GiB", "300 MiB", "12 KiB" or "100 B".
std::string format_bytes(std::uint64_t bytes);

}  // namespace troupe::models
