#pragma once
// BatchEngine: continuous batching over one llama_context, on one dedicated thread.
//
// Each step: take every queued message (admissions, releases), build one llama_batch with one
// decode token for every generating sequence plus prompt chunks up to the per-step token
// budget (oldest admission first: chunked prefill; while sequences generate, at most
// `n_seq_chunk` per sequence, and of a prompt longer than one chunk as many as the StepPacer
// allows, so that a long prompt arriving holds each running stream's next token up by a
// bounded stretch of one step; a shorter prompt whole, but past the first one of a step only
// within that budget too; with none generating a prompt may fill the whole budget: the rule
// is plan_prompt_tokens in step_pacer.hpp), one llama_decode (on this engine's share of the
// threads while the process's other models are busy too: engine/core_share.hpp; or in turn
// with them: engine/decode_turns.hpp), then sample
// every sequence that produced logits in place with its own sampler and send its
// SequenceActor the token (token ids only, never logits), all of a step's tokens in one burst.
// With nothing to do the thread blocks on its mailbox: no polling, no timers, no wake-ups; the
// context's persistent ggml threadpool (its workers poll briefly between the graphs of a
// running engine) is paused first, so its workers sleep too.
//
// Slots: sequence ids are the slot indices 0..n_parallel-1, one KV stream each
// (n_ctx / n_parallel cells). A new sequence takes the lowest free id, so a batch's attention
// never spans idle streams. A finished sequence's cells stay cached until the slot is reused:
// an admission reuses the longest cached prefix of its prompt from its own slot, or copies it
// from another slot (live or idle) when that prefix is at least `min_copy_prefix` tokens. The
// cells a new prompt displaces from a slot go to host memory first (engine/host_cache.hpp),
// and a prompt that shares more with one of those states than with any slot restores it.
//
// LoRA (LlamaModel::lora_adapters, AdmitSequence::lora): llama.cpp applies adapters to the
// whole context, so a step decodes only the sequences of one set of scales; when several sets
// have work they take turns, a step each, and a cached prefix (a slot's, host memory's) is
// reused only within its set.
//
// Failure: a decode error is fatal and sticky: every running sequence gets SequenceFailed,
// later admissions are refused with the same error, the admission actor is told EngineFailed
// once.
//
// Runtime: the loop is an actor (src/actor) with Execution::dedicated_thread, spawned on the
// caller's ActorSystem: its messages are EngineMessage, has_work() says whether sequences are
// running and do_work() is one step. It tells its admission actor SequenceReleased once per
// admission and EngineFailed once; InspectEngine is an ask.
//
// Per token in steady state the engine thread allocates nothing outside llama.cpp: the batch,
// the slots' token buffers and the sampler scratch are sized once, SampledToken holds its
// alternatives inline, and a sink that tells a SequenceActor uses the mailbox's node pool
// (tests/engine/engine_alloc_test.cpp counts it).
//
// Thread-safety: the facade's members from any thread; everything else is the engine thread's.
// The decode probe runs on the engine thread and must be quick.

#include <array>
#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <thread>
#include <vector>

#include "actor/actor_system.hpp"
#include "engine/admission_protocol.hpp"
#include "engine/engine_config.hpp"
#include "engine/engine_protocol.hpp"
#include "engine/llama_handles.hpp"
#include "engine/memory_use.hpp"
#include "engine/model.hpp"
#include "engine/sampler.hpp"
#include "engine/threadpool.hpp"
#include "util/result.hpp"

namespace troupe::engine {

enum class DecodeEdge : std::uint8_t { begin, end };

// Optional, for tests and tracing: called right before and right after each llama_decode, so
// that what the engine does around decode (sampling, sending, batching) can be told apart from
// llama.cpp's own work. Must not block or allocate.
using DecodeHook = std::function<void(DecodeEdge)>;

// Counters readable from any thread (relaxed atomics: monotonic values for /metrics).
struct EngineCounters {
  static constexpr std::size_t histogram_size = 64;
  std::atomic<std::int64_t> loop_iterations{0};  // messages handled plus steps run
  std::atomic<std::int64_t> decode_steps{0};
  std::atomic<std::int64_t> prompt_tokens{0};
  std::atomic<std::int64_t> generated_tokens{0};
  std::atomic<std::int64_t> prefix_hits{0};     // prompt tokens served from the KV cache
  std::atomic<std::int64_t> prefix_queries{0};  // prompt tokens looked up
  std::atomic<std::int64_t> cells_live{0};      // KV cells held by running sequences
  std::atomic<std::int64_t> decode_us{0};       // time inside llama_decode
  std::atomic<std::int64_t> sample_us{0};       // wall time sampling the steps' sequences
  std::atomic<std::int64_t> prefill_steps{0};   // steps that carried prompt tokens
  // kv_unified: sequences that gave their cells back to be recomputed later, and idle
  // slots' cached prefixes dropped to make room.
  std::atomic<std::int64_t> preemptions{0};
  std::atomic<std::int64_t> cache_evictions{0};
  // Steps llama.cpp refused for want of cells although the accounting had room (then undone
  // and retried after a preemption): 0 unless the model's cache counts cells otherwise.
  std::atomic<std::int64_t> refused_steps{0};
  // Steps whose sampling the engine thread shared with its helpers (sampling_threads).
  std::atomic<std::int64_t> shared_sampling_steps{0};
  // Discarded tokens added to steps so that each is one pass over the weights (pad_rows).
  std::atomic<std::int64_t> pad_rows{0};
  // The host-memory cache of displaced slots' KV states (BatchEngineConfig::host_cache_bytes):
  // states stored and restored, the prompt tokens restores served (also in prefix_hits), and
  // its size now.
  std::atomic<std::int64_t> host_cache_stores{0};
  std::atomic<std::int64_t> host_cache_restores{0};
  std::atomic<std::int64_t> host_cache_hits{0};
  std::atomic<std::int64_t> host_cache_bytes{0};
  std::atomic<std::int64_t> host_cache_entries{0};
  // Sliding-window models' checkpoints of their slots' windows (ctx_checkpoints): prompts whose
  // cached prefix was served with a checkpoint's window, and the checkpoints' bytes now.
  std::atomic<std::int64_t> checkpoint_restores{0};
  std::atomic<std::int64_t> checkpoint_bytes{0};
  // Cached tokens reused by moving their cells into place (AdmitSequence::cache_reuse; also
  // in prefix_hits).
  std::atomic<std::int64_t> cache_reuse_tokens{0};
  // Speculative decoding (BatchEngineConfig::spec): tokens drafted, and those the sampler drew
  // (each saved a step).
  std::atomic<std::int64_t> spec_drafted{0};
  std::atomic<std::int64_t> spec_accepted{0};
  // Threads the last decode used: fewer than n_threads while the process's other busy engines
  // have their share (BatchEngineConfig::cpu_share split).
  std::atomic<std::int32_t> decode_threads{0};
  std::array<std::atomic<std::int64_t>, histogram_size> sequences_per_step{};
};

class EngineLoop;

class BatchEngine {
 public:
  // Creates the llama_context and spawns the engine on `system` as a dedicated-thread actor
  // named "batch-engine" that reports to `admission`. `model` (and `draft`, a draft model for
  // speculative decoding: engine/draft_model.hpp) must outlive the actor (the system's
  // shutdown, or its stop, joins its thread and frees the contexts). Errors: invalid_request
  // for a bad config or a draft model that cannot draft for `model`, engine_failed when
  // llama.cpp refuses a context.
  static Result<std::unique_ptr<BatchEngine>> start(actor::ActorSystem& system,
                                                    const LlamaModel& model,
                                                    BatchEngineConfig config,
                                                    actor::ActorRef<AdmissionMessage> admission,
                                                    DecodeHook on_decode = {},
                                                    const LlamaModel* draft = nullptr);
  BatchEngine(const BatchEngine&) = delete;
  BatchEngine& operator=(const BatchEngine&) = delete;
  // Asks the actor to stop (running sequences are dropped without further messages); its
  // system joins the thread.
  ~BatchEngine();

  // Queues a message for the engine. Never blocks. Any thread.
  void tell(EngineMessage msg) const { ref_.tell(std::move(msg)); }
  const actor::ActorRef<EngineMessage>& ref() const noexcept { return ref_; }

  const EngineCounters& counters() const noexcept { return *counters_; }
  // The longest sequence (prompt plus generated tokens) one request may hold.
  std::int32_t n_ctx_seq() const noexcept { return n_ctx_seq_; }
  // KV cells in all (n_ctx_seq * n_parallel with a stream per sequence).
  std::int32_t n_cells() const noexcept { return n_cells_; }
  bool kv_unified() const noexcept { return kv_unified_; }
  std::int32_t n_parallel() const noexcept { return n_parallel_; }
  // Embeddings: whether the context serves them, its pooling (never Pooling::model), the
  // vector's length, and the longest embedding prompt (it must fit one step and, for position
  // tables, the trained context).
  bool embeddings() const noexcept { return embed_.enabled; }
  Pooling pooling() const noexcept { return embed_.pooling; }
  std::int32_t n_embd() const noexcept { return embed_.n_embd; }
  std::int32_t embed_limit() const noexcept { return embed_.limit; }
  // What llama.cpp allocated for the model and this context, by its own account (nullopt in a
  // build without it: memory_use.hpp).
  const std::optional<MemoryUse>& memory_use() const noexcept { return memory_use_; }

 private:
  struct EmbedInfo {
    bool enabled = false;
    Pooling pooling = Pooling::none;
    std::int32_t n_embd = 0;
    std::int32_t limit = 0;
  };
  BatchEngine(std::int32_t n_ctx_seq, std::int32_t n_cells, bool kv_unified,
              std::int32_t n_parallel, EmbedInfo embed);

  std::int32_t n_ctx_seq_;
  std::int32_t n_cells_;
  bool kv_unified_;
  std::int32_t n_parallel_;
  EmbedInfo embed_;
  std::optional<MemoryUse> memory_use_;
  // Shared with the actor's behavior, which may outlive this facade.
  std::shared_ptr<EngineCounters> counters_ = std::make_shared<EngineCounters>();
  actor::ActorRef<EngineMessage> ref_;
};

}  // namespace troupe::engine
