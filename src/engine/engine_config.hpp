#pragma once
// BatchEngineConfig: the shape of one BatchEngine (context, batch, threads, placement,
// embeddings). Plain values without llama.cpp types, so that local_backend.hpp can name it
// without llama.h (EngineOptions::engine holds one).

#include <cstdint>

#include "engine/placement.hpp"
#include "engine/pooling.hpp"

namespace troupe::engine {

// How an engine shares the CPU with the process's other engines while several are busy
// (BatchEngineConfig::cpu_share).
enum class CpuShare : std::uint8_t { automatic, split, turns, off };

// Pad rows (BatchEngineConfig::pad_rows).
enum class PadRows : std::uint8_t { off, measured, always };

// Speculative decoding (BatchEngineConfig::spec): none, or drafts by n-gram lookup in the
// sequence's own tokens (engine/ngram_draft.hpp; llama-server's `--spec-type ngram-simple`).
enum class SpecType : std::uint8_t { none, ngram_simple };

struct BatchEngineConfig {
  // KV cells in all; each sequence gets n_ctx / n_parallel, or with kv_unified up to all of
  // them. (EngineOptions: 0 is the model's trained context, which the Coordinator resolves
  // before starting the engine.)
  std::int32_t n_ctx = 4096;
  std::int32_t n_parallel = 4;  // sequences decoded together (1..64)
  // Token budget per step, decode tokens included (> n_parallel); a step where no sequence
  // generates may go past it to take a short prompt whole (plan_prompt_tokens). llama.cpp
  // computes a step in passes (ubatches) of at most n_batch + n_parallel tokens.
  std::int32_t n_batch = 512;
  std::int32_t n_seq_chunk = 256;  // prompt tokens one sequence may add per step
  // While sequences generate, a step that also carries tokens of a prompt longer than one
  // chunk is sized to take about this many times a generation-only step
  // (engine/step_pacer.hpp). 0: off (token budgets only, as for a deterministic test);
  // otherwise >= 1.
  double prefill_stretch = 0.0;
  std::int32_t n_threads = 0;         // 0: std::thread::hardware_concurrency()
  std::int32_t min_copy_prefix = 16;  // shortest prefix worth copying from another slot
  // A persistent ggml threadpool attached to the context (engine/threadpool.hpp) instead of
  // llama.cpp creating and joining n_threads - 1 workers in every llama_decode. Paused
  // whenever the engine goes idle, so idle workers sleep.
  bool persistent_threads = true;
  std::uint32_t thread_poll = 50;  // its workers' polling level between graphs (ggml: 0..100)
  // How the graphs of the process's busy engines share the cores. split: each decodes on its
  // share of n_threads (engine/core_share.hpp); turns: one llama_decode at a time
  // (engine/decode_turns.hpp); off: each on all its threads at once. automatic: split for a
  // model computed on the CPU (not every layer on a GPU); for a model wholly on a GPU, turns
  // where ggml has no OpenMP (as the npm GPU builds), else off.
  CpuShare cpu_share = CpuShare::automatic;
  // GPU offload, flash attention, KV types, mmap, mlock. The engine applies the context's
  // part (flash attention, KV cache types); the Coordinator loads the model with the rest.
  PlacementOptions placement;
  // Serve embedding sequences (AdmitSequence::embed): the context is created with
  // embeddings on and `pooling`. A step is either all embedding sequences (whole prompts,
  // embeddings on) or all generation (embeddings off, llama_set_embeddings toggled), taking
  // turns when both wait, as llama-server does. For a model with a KV cache the cache is
  // unified (one stream): a sequence's pooled vector needs all its tokens in one ubatch,
  // which llama.cpp's per-stream split does not promise for sequences of unequal lengths.
  // The per-sequence context stays n_ctx / n_parallel unless kv_unified. An embedding-only model
  // (LlamaModel::embedding_only) implies it.
  bool embeddings = false;
  Pooling pooling = Pooling::model;
  // An embedding step packs whole prompts until it holds this many tokens (a longer prompt
  // goes alone, up to n_batch): every token of a step attends over the whole step (masked by
  // sequence), so packing far beyond what keeps the matrix products efficient only adds
  // attention. llama-server packs up to its physical batch, 512 by default. 0: up to n_batch.
  std::int32_t embed_pack = 512;
  // One pool of n_ctx cells shared by all sequences (llama.cpp's kv_unified) instead of one
  // stream of n_ctx / n_parallel cells per sequence: one request may use the whole context
  // (up to the model's trained context) while the others are short. The engine keeps the
  // pool's accounting: a prompt starts when its tokens fit (with room left for the running
  // sequences to grow for a few steps), idle slots' cached prefixes are
  // evicted oldest first when cells run short, and when the running sequences' next tokens do
  // not fit, the youngest sequence gives its cells back and is recomputed later (its prompt
  // and the tokens it generated), as vLLM preempts.
  bool kv_unified = false;
  // A model with sliding-window attention (Gemma 2-4, gpt-oss, Cohere 2...): false keeps its
  // windowed layers' cells for the window and a step's tokens only, as llama-server does (a
  // fraction of the memory at long contexts); a cached prefix then serves a new prompt only
  // where the window's view from its end is still there (BatchEngine's cached_prefix), and
  // the rest is computed again. true (--swa-full): those layers keep every cell, as for any
  // other layer.
  bool swa_full = false;
  // Memory that cannot be cut back to any token (the window without swa_full, a recurrent or
  // hybrid model's state): a checkpoint of it is taken when a slot's prompt has been computed,
  // up to this many a slot (the oldest dropped; llama-server's --ctx-checkpoints), so that a
  // later prompt that shares that prompt but not what the slot went on to compute (the answer
  // rendered otherwise, its reasoning dropped) reuses the prompt's cells. 0: none.
  std::int32_t ctx_checkpoints = 8;
  // Without kv_unified: idle slots take a discarded token where that makes a step one pass
  // over the weights, or a pass of a multiple of four rows that costs less than the rows alone
  // (step_rows.hpp): as the steps' measured costs say, always (tests), or never. Never for
  // models whose memory cannot drop a token again (recurrent, hybrid) or keeps a sliding
  // window.
  PadRows pad_rows = PadRows::measured;
  // Threads that sample a step's sequences (the engine thread and sampling_threads - 1
  // helpers, which sleep between steps); 0: n_threads, at most 8. A step's sampling is shared
  // out only when it is expected (from the steps before) to take at least share_sampling_us
  // on one thread: a grammar or a large vocabulary, many sequences. 0: whenever two or more
  // sequences sample (tests).
  std::int32_t sampling_threads = 0;
  std::int32_t share_sampling_us = 300;
  // Host memory for the KV states of slots' cached sequences that a new prompt displaces
  // (engine/host_cache.hpp; llama-server's --cache-ram): a later prompt that shares more of
  // its beginning with one of them than with any slot restores it instead of computing it.
  // 0: off (the bare config, for exact tests); the server's default is 8 GiB.
  std::int64_t host_cache_bytes = 0;
  // Chunk reuse for requests that do not say (AdmitSequence::cache_reuse; llama-server's
  // --cache-reuse N): the shortest run of a slot's cached tokens, after the prefix it shares
  // with a new prompt, that is kept by moving its cells into place. 0: off.
  std::int32_t cache_reuse = 0;
  // Speculative decoding: a generating sequence whose last spec_ngram_n tokens occurred
  // before in it decodes, beside its next token, up to spec_ngram_m tokens that followed them
  // there, and keeps those its sampler draws itself (engine/ngram_draft.hpp): its output is
  // unchanged, several tokens a step where it repeats its context. Drafts take what the
  // step's token budget (n_batch) leaves after prompts. With a KV stream per sequence
  // (kv_unified off) only a sequence generating alone drafts: llama.cpp splits a step whose
  // sequences have unequal token counts into one pass over the weights per count. Off for
  // models whose memory cannot drop tokens again (recurrent, hybrid, sliding window).
  SpecType spec = SpecType::none;
  std::int32_t spec_ngram_n = 12;
  std::int32_t spec_ngram_m = 48;
  // How many of a draft's tokens a step decodes: as the steps' measured costs and the
  // sequence's recent acceptance say (choose_drafts), or all of them (tests).
  bool spec_measured = true;
  // With a draft model (BatchEngine::start's `draft`; engine/draft_model.hpp, llama-server's
  // --spec-draft-model): a generating sequence that no prediction or n-gram lookup drafts for
  // has the draft model guess up to spec_draft_max tokens (as many as the policy above takes),
  // greedily, each while the draft model gives it at least spec_draft_p_min; a draft shorter
  // than spec_draft_min is dropped. llama-server's --spec-draft-n-max, -n-min, -p-min and
  // their defaults.
  std::int32_t spec_draft_max = 3;
  std::int32_t spec_draft_min = 0;
  float spec_draft_p_min = 0.0f;
};

// The most tokens one decode step carries: the budget, a short prompt taken whole past it
// (less than a chunk), and a discarded pad token in each idle slot (step_rows.hpp).
inline std::int32_t step_capacity(const BatchEngineConfig& config) {
  return config.n_batch + config.n_seq_chunk + config.n_parallel;
}

}  // namespace troupe::engine
