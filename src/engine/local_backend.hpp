#pragma once
// The local inference backend: a llama.cpp model served by a Coordinator, a BatchEngine and
// one SequenceActor per request. This is the factory the CLI uses.

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "engine/backend.hpp"
#include "engine/engine_config.hpp"
#include "engine/lora.hpp"

namespace troupe::engine {

struct EngineOptions {
  std::string model_path;
  // A draft model for speculative decoding (--spec-draft-model; engine/draft_model.hpp), loaded
  // with the same placement; empty: none.
  std::string draft_model_path;
  std::string model_id;  // the name clients use; empty: the file name without .gguf
  // LoRA adapters loaded with the model (--lora, --lora-scaled): engine/lora.hpp.
  std::vector<LoraSpec> lora;
  std::vector<std::string> aliases;  // more names accepted for this model
  // The BatchEngine's shape: context, batch, threads, placement, embeddings
  // (engine/engine_config.hpp). n_ctx 0 is the model's trained context, which the Coordinator
  // resolves before starting the engine. Long prompts beside generating streams are paced
  // (prefill_stretch 3, where the bare BatchEngineConfig keeps it off for exact tests), and
  // prompts displaced from their slot keep their KV state in up to 8 GiB of host memory.
  BatchEngineConfig engine = {.prefill_stretch = 3.0, .host_cache_bytes = std::int64_t{8} << 30};
  std::int32_t max_queue = 64;  // requests waiting for a slot; more: Errc::overloaded
  // The chat template: empty for the model's own (tokenizer.chat_template); Jinja source
  // text; "chatml" (llama.cpp's ChatML); or the name of another template in the GGUF
  // (tokenizer.chat_template.NAME, e.g. "tool_use"). One that cannot render fails the load.
  std::string chat_template;
  SamplingDefaults defaults;  // what requests leave unset (llama-server's values)
  // Fill in the middle with the suffix first (llama-server's --spm-infill): engine/infill.hpp.
  bool spm_infill = false;
  // A conversation's reasoning budget when the request sets none (llama-server's
  // --reasoning-budget and --reasoning-budget-message; Task::reasoning_budget): -1 none.
  std::int32_t reasoning_budget = -1;
  std::string reasoning_budget_message;
  // Called while the model loads with the fraction done (0 to 1), on the loader thread; may
  // be empty (models::ModelSet shows it in /v1/models and the log).
  std::function<void(float)> on_load_progress;
};

// Starts loading the model in the background and returns at once: health() says loading,
// then ready or failed (with the reason); generate() during loading fails with
// Errc::unavailable. Destroy the backend after every TokenStream it returned.
std::unique_ptr<Backend> make_local_backend(EngineOptions options);

}  // namespace troupe::engine
