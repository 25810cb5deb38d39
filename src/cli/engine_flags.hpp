#pragma once
// The engine options `troupe serve` and `troupe worker` share: which engine (llama.cpp or the
// simulated one), the model, and the batch/queue shape; and building the Backend from them.
//
// Thread-safety: plain values and functions, used on the main thread before serving.

#include <CLI/CLI.hpp>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "engine/backend.hpp"
#include "engine/local_backend.hpp"
#include "engine/placement.hpp"
#include "engine/sim_backend.hpp"
#include "util/result.hpp"

namespace troupe::cli {

struct EngineFlags {
  // GGUF files (--engine llama), one per -m: `troupe serve` serves several (cli/models_flags),
  // make_backend one.
  std::vector<std::string> models;
  // Or a model from Hugging Face (hub/): --hf-repo OWNER/NAME[:QUANT] (-hf), --hf-file FILE.
  std::string hf_repo;
  std::string hf_file;
  std::string alias;  // the model name clients use
  std::string engine = "llama";
  // The one place the engine flags land: --parallel, -c/--ctx-size, -t/--threads, --poll,
  // --no-threadpool, --cpu-share, -b/--batch, --max-queue and --embeddings write these
  // options directly;
  // make_backend() completes them (and gives the sim its share of them).
  engine::EngineOptions options;
  engine::SimOptions sim;          // --sim-decode-tps, --sim-prefill-tps, --sim-steps
  std::string chat_template;       // --chat-template NAME (or inline Jinja)
  std::string chat_template_file;  // --chat-template-file FILE
  // What requests leave unset: --temp, --top-k, --top-p, --min-p, --repeat-penalty (llama-
  // server's names and defaults), --seed (-1: random) and --n-predict (-1: up to the context).
  engine::SamplingDefaults defaults;
  std::int64_t seed = -1;
  int n_predict = -1;
  // GPU offload and memory (llama-server's names): -ngl auto|all|N, --device A,B|none,
  // --split-mode, --tensor-split 3,1, --main-gpu, -fa, -ctk/-ctv, --no-mmap, --mlock.
  std::string gpu_layers = "auto";
  std::string devices;       // comma-separated; empty: every device
  std::string tensor_split;  // comma-separated proportions
  engine::PlacementOptions placement;
  std::string pooling;  // --pooling none|mean|cls|last|rank; empty: the model's
  // --kv-unified / --no-kv-unified; unset: one shared pool unless --parallel was given, as
  // llama-server decides (its unified cache is on when it picks the slot count itself).
  std::optional<bool> kv_unified;
  bool parallel_given = false;
  // --cache-ram MiB of host memory for displaced slots' KV states (llama-server's flag and
  // default); -1: no limit, 0: off.
  std::int64_t cache_ram_mib = 8192;
  // --spec-type none|ngram-simple|draft-simple, or both kinds comma-separated (llama-server's
  // names); the sizes are --spec-ngram-simple-* and --spec-draft-n-max/-n-min/-p-min.
  std::string spec_type = "none";
  std::string spec_draft_policy = "measured";  // --spec-draft-policy measured|all
  // --spec-draft-model / -md / --model-draft FILE: a draft model (implies draft-simple).
  std::string spec_draft_model;
  // LoRA adapters (llama-server's flags), in command-line order (their ids): --lora FILE[,...]
  // (scale 1; `scaled` false), --lora-scaled FILE:SCALE[,...] (`scaled` true);
  // --lora-init-without-apply loads them at scale 0 until POST /lora-adapters sets one.
  struct LoraArg {
    std::string text;
    bool scaled = false;
  };
  std::vector<LoraArg> lora;
  bool lora_init_without_apply = false;
};

// Adds -m/--model (with `model_help`), --hf-repo, --hf-file, -a/--alias, --engine, --parallel,
// -c/--ctx-size, -t/--threads, --poll, --no-threadpool, --cpu-share, -b/--batch,
// --max-queue, --cache-ram, --spec-type, --spec-ngram-simple-size-n, --spec-ngram-simple-size-m,
// --spec-draft-policy, --spec-draft-model (-md), --spec-draft-n-max, --spec-draft-n-min,
// --spec-draft-p-min, --lora, --lora-scaled, --lora-init-without-apply, --sim-decode-tps,
// --sim-prefill-tps, --sim-steps, --chat-template, --chat-template-file, --embeddings,
// --pooling, the sampling defaults --temp, --top-k, --top-p, --min-p, --repeat-penalty,
// --seed, --n-predict, and the placement options --n-gpu-layers, --device, --split-mode,
// --tensor-split, --main-gpu, --flash-attn, --cache-type-k, --cache-type-v, --no-mmap and
// --mlock.
void add_engine_flags(CLI::App& app, EngineFlags& f, const std::string& model_help);

// The sampling defaults the flags give. Errors: invalid_request naming the flag for a value
// out of range (the ranges requests have).
Result<engine::SamplingDefaults> sampling_defaults(const EngineFlags& f);

// The placement the flags give. Errors: invalid_request naming the flag.
Result<engine::PlacementOptions> placement_options(const EngineFlags& f);

// The llama.cpp engine options the flags give for the model file `path` (model_id: --alias).
// Errors: invalid_request when the --chat-template-file cannot be read, a sampling default is
// out of range, or the placement is invalid.
Result<engine::EngineOptions> engine_options(const EngineFlags& f, const std::string& path);

// The sim engine, or llama.cpp on the one -m model or on the --hf-repo/--hf-file model (from
// the cache, else downloaded first: hub::resolve_model). invalid_request when there is no model,
// several, or as engine_options; the hub's errors.
Result<std::unique_ptr<engine::Backend>> make_backend(const EngineFlags& f);

}  // namespace troupe::cli
