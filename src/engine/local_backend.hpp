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
#include "engine/placement.hpp"
#include "engine/pooling.hpp"

namespace troupe::engine {

struct EngineOptions {
  std::string model_path;
  std::string model_id;              // the name clients use; empty: the file name without .gguf
  std::vector<std::string> aliases;  // more names accepted for this model
  std::int32_t n_ctx = 4096;         // KV cells in all: each sequence gets n_ctx / n_parallel
  std::int32_t n_parallel = 4;       // sequences decoded together
  std::int32_t n_batch = 512;        // token budget of one decode step (chunked prefill)
  std::int32_t n_seq_chunk = 256;    // prompt tokens one sequence may add per step
  double prefill_stretch = 3.0;      // BatchEngineConfig::prefill_stretch (0: off)
  std::int32_t n_threads = 0;        // llama.cpp threads; 0: hardware threads
  std::int32_t max_queue = 64;       // requests waiting for a slot; more: Errc::overloaded
  PlacementOptions placement;        // GPU offload, flash attention, KV types, mmap, mlock
  // The chat template: empty for the model's own (tokenizer.chat_template); Jinja source
  // text; "chatml" (llama.cpp's ChatML); or the name of another template in the GGUF
  // (tokenizer.chat_template.NAME, e.g. "tool_use"). One that cannot render fails the load.
  std::string chat_template;
  std::int32_t min_copy_prefix = 16;  // shortest cached prefix copied from another slot
  bool persistent_threads = true;     // one ggml threadpool for the engine's life (paused idle)
  std::uint32_t thread_poll = 50;     // its workers' polling between decodes (ggml: 0..100)
  SamplingDefaults defaults;          // what requests leave unset (llama-server's values)
  // Serve embedding requests (Task::embedding): `troupe serve --embeddings`. The context is
  // created with embeddings on; generation still works on a generative model (steps take
  // turns). An embedding-only model (BERT) implies it and refuses generation.
  bool embeddings = false;
  Pooling pooling = Pooling::model;  // --pooling: overrides the model's
  // Called while the model loads with the fraction done (0 to 1), on the loader thread; may
  // be empty (models::ModelSet shows it in /v1/models and the log).
  std::function<void(float)> on_load_progress;
};

// The BatchEngine's part of the options, field by field by name. (EngineOptions stays a flat
// aggregate rather than extending BatchEngineConfig: callers build it with designated
// initializers.)
BatchEngineConfig engine_config(const EngineOptions& o);

// Starts loading the model in the background and returns at once: health() says loading,
// then ready or failed (with the reason); generate() during loading fails with
// Errc::unavailable. Destroy the backend after every TokenStream it returned.
std::unique_ptr<Backend> make_local_backend(EngineOptions options);

}  // namespace troupe::engine
