#pragma once
// The local inference backend: a llama.cpp model served by a Coordinator, a BatchEngine and
// one SequenceActor per request. This is the factory the CLI uses.

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "engine/backend.hpp"
#include "engine/engine_config.hpp"

namespace troupe::engine {

// The engine's shape is its BatchEngineConfig part (n_ctx, n_parallel, n_batch, n_seq_chunk,
// n_threads, min_copy_prefix, persistent_threads, thread_poll, placement, embeddings,
// pooling), handed to the BatchEngine as it is; n_ctx 0 is the model's trained context.
// `embeddings` (`troupe serve --embeddings`) serves Task::embedding requests; generation still
// works on a generative model (steps take turns); an embedding-only model (BERT) implies it and
// refuses generation.
struct EngineOptions : BatchEngineConfig {
  std::string model_path;
  std::string model_id;              // the name clients use; empty: the file name without .gguf
  std::vector<std::string> aliases;  // more names accepted for this model
  std::int32_t max_queue = 64;       // requests waiting for a slot; more: Errc::overloaded
  // The chat template: empty for the model's own (tokenizer.chat_template); Jinja source
  // text; "chatml" (llama.cpp's ChatML); or the name of another template in the GGUF
  // (tokenizer.chat_template.NAME, e.g. "tool_use"). One that cannot render fails the load.
  std::string chat_template;
  SamplingDefaults defaults;  // what requests leave unset (llama-server's values)
};

// Starts loading the model in the background and returns at once: health() says loading,
// then ready or failed (with the reason); generate() during loading fails with
// Errc::unavailable. Destroy the backend after every TokenStream it returned.
std::unique_ptr<Backend> make_local_backend(EngineOptions options);

}  // namespace troupe::engine
