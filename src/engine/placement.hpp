#pragma once
// Where a model's weights and KV cache live and in what form: llama.cpp's GPU offload and
// memory options, as plain values (llama.h stays inside engine/*.cpp). The names and values
// are llama-server's: layers to offload, devices, split mode, tensor split, main GPU, flash
// attention, KV cache types, mmap and mlock.
//
// Thread-safety: plain values and pure functions (check_placement reads the ggml device list,
// which is fixed once the runtime is initialised).

#include <cstdint>
#include <string>
#include <vector>

#include "util/result.hpp"

namespace troupe::engine {

struct PlacementOptions {
  static constexpr std::int32_t kAuto = -2;  // every layer when a GPU device is present, else 0
  static constexpr std::int32_t kAll = -1;
  std::int32_t n_gpu_layers = kAuto;  // kAuto, kAll, or a count
  std::vector<std::string> devices;   // ggml device names to offload to; empty: all; {"none"}
  std::string split_mode = "layer";   // none | layer | row
  std::vector<float> tensor_split;    // proportion per device; empty: by free memory
  std::int32_t main_gpu = 0;          // the device of split_mode none
  std::string flash_attn = "auto";    // on | off | auto
  std::string cache_type_k = "f16";   // f32 f16 bf16 q8_0 q4_0 q4_1 iq4_nl q5_0 q5_1
  std::string cache_type_v = "f16";
  bool mmap = true;
  bool mlock = false;
};

// The KV cache types llama.cpp takes, in the order --help lists them.
const std::vector<std::string>& kv_cache_types();

// "auto", "all" or a non-negative count. Errors: invalid_request naming -ngl.
Result<std::int32_t> parse_gpu_layers(const std::string& text);

// Checks names and ranges without loading anything: modes, types, tensor-split values, and
// that every named device exists. Errors: invalid_request naming the option (llama-server's
// spelling) and the values it takes.
Result<void> check_placement(const PlacementOptions& p);

// What the start-up log says about the placement: layers offloaded and where, flash
// attention, KV types and an estimate of the KV cache's size.
struct PlacementReport {
  std::int32_t layers_offloaded = 0;
  std::int32_t layers_total = 0;     // repeating layers + the output layer
  std::vector<std::string> devices;  // the GPU devices used
  std::string flash_attn;
  std::string cache_type_k, cache_type_v;
  double kv_mib = 0;  // -1: not estimated (a recurrent or hybrid model's layers differ)
  // kv_mib is llama.cpp's own count of the context's memory (memory_use.hpp), and compute_mib
  // its compute buffers'; else kv_mib is estimated from the first layer's shape.
  bool measured = false;
  double compute_mib = 0;
  // The figures of llama.cpp's own count (MiB).
  void measure(double context_mib, double compute) {
    measured = true;
    kv_mib = context_mib;
    compute_mib = compute;
  }
  std::string summary() const;
};

}  // namespace troupe::engine
