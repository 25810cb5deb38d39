#pragma once
// LoRA adapters (llama-server's --lora, --lora-scaled, /lora-adapters and a request's `lora`):
// adapters loaded with the model, their server-wide scales, and a request's choice of scales.
//
// llama.cpp applies adapters to a whole context, so the BatchEngine decodes together only the
// sequences that asked for the same scales (a step per set, taking turns) and reuses a cached
// prefix only when it was computed with the same scales (engine/batch_engine.hpp).
//
// Thread-safety: plain values; LoraTable's members lock.

#include <cstdint>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "engine/task.hpp"
#include "util/result.hpp"

struct llama_adapter_lora;
struct llama_model;

namespace troupe::engine {

// One adapter to load: --lora FILE (scale 1), --lora-scaled FILE:SCALE.
struct LoraSpec {
  std::string path;
  float scale = 1.0f;
  friend bool operator==(const LoraSpec&, const LoraSpec&) = default;
};

// "FILE:SCALE" (--lora-scaled); the scale after the last ':'. Errors name the flag.
Result<LoraSpec> parse_lora_scaled(std::string_view text);

// An adapter as GET /lora-adapters lists it (its id: its index).
struct LoraAdapterInfo {
  std::string path;
  float scale = 1.0f;         // its scale for requests that name no adapters
  std::string task_name;      // the GGUF's adapter.lora.task_name, if any
  std::string prompt_prefix;  // adapter.lora.prompt_prefix
};

// A loaded adapter; `handle` is freed with its model.
struct LoraAdapter : LoraAdapterInfo {
  llama_adapter_lora* handle = nullptr;
};

// Loads every adapter for `model`. Errors: not_found for a missing file, invalid_request for a
// file llama.cpp refuses (another base model, not a LoRA) or an activated LoRA (its
// invocation tokens are not supported).
Result<std::vector<LoraAdapter>> load_lora_adapters(llama_model* model,
                                                    std::span<const LoraSpec> specs);

// The adapters of a served model and their server-wide scales (POST /lora-adapters changes
// them; running requests keep theirs).
class LoraTable {
 public:
  LoraTable() = default;
  // Once, when the model is loaded (before requests arrive).
  void assign(std::vector<LoraAdapter> adapters);

  std::size_t size() const noexcept { return adapters_.size(); }
  // Handles in id order (the engine's), immutable.
  std::vector<llama_adapter_lora*> handles() const;
  // The adapters with today's scales.
  std::vector<LoraAdapterInfo> list() const;
  // A request's scales, one per adapter: `request` as llama-server reads it (ids it leaves
  // out: 0), or the server-wide scales when it has none. Errors (invalid_request, param
  // "lora"): an unknown id, a scale that is not finite.
  Result<std::vector<float>> scales_for(const std::optional<LoraRequest>& request) const;
  // Sets the server-wide scales as `request` says (ids left out: 0). Errors as scales_for's.
  Result<void> set_scales(const LoraRequest& request);

 private:
  Result<std::vector<float>> resolve(const LoraRequest& request) const;

  std::vector<LoraAdapter> adapters_;
  mutable std::mutex mu_;  // guards the scales in adapters_
};

}  // namespace troupe::engine
