#pragma once
// BatchEngine: continuous batching over one llama_context, on one dedicated thread.
//
// Each step: take every queued message (admissions, releases), build one llama_batch with one
// decode token for every generating sequence plus prompt chunks up to the per-step token
// budget (at most `n_seq_chunk` per sequence, oldest admission first: chunked prefill, so a
// long prompt delays running streams by at most one budget), one llama_decode, then sample
// every sequence that produced logits in place with its own sampler and send its
// SequenceActor the token (token ids only, never logits). With nothing to do the thread
// blocks on its mailbox: no polling, no timers, no wake-ups.
//
// Slots: sequence ids are the slot indices 0..n_parallel-1, one KV stream each
// (n_ctx / n_parallel cells). A new sequence takes the lowest free id, so a batch's attention
// never spans idle streams. A finished sequence's cells stay cached until the slot is reused:
// an admission reuses the longest cached prefix of its prompt from its own slot, or copies it
// from another slot (live or idle) when that prefix is at least `min_copy_prefix` tokens.
//
// Failure: a decode error is fatal and sticky: every running sequence gets SequenceFailed,
// later admissions are refused with the same error, `on_fatal` runs once.
//
// Thread-safety: tell() and counters() from any thread; everything else is the engine
// thread's. The callbacks run on the engine thread and must be quick (a post).

#include <array>
#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <thread>
#include <vector>

#include "engine/engine_protocol.hpp"
#include "engine/llama_handles.hpp"
#include "engine/mailbox.hpp"
#include "engine/model.hpp"
#include "engine/sampler.hpp"
#include "util/result.hpp"

namespace troupe::engine {

struct BatchEngineConfig {
  std::int32_t n_ctx = 4096;       // KV cells in all; each sequence gets n_ctx / n_parallel
  std::int32_t n_parallel = 4;     // sequences decoded together (1..64)
  std::int32_t n_batch = 512;      // token budget per step, decode tokens included (> n_parallel)
  std::int32_t n_seq_chunk = 256;  // prompt tokens one sequence may add per step
  std::int32_t n_threads = 0;      // 0: std::thread::hardware_concurrency()
  std::int32_t min_copy_prefix = 16;  // shortest prefix worth copying from another slot
};

struct EngineCallbacks {
  std::function<void(std::uint64_t ticket)> on_released;  // once per admission
  std::function<void(const Error&)> on_fatal;             // once, on the first fatal error
};

// Counters readable from any thread (relaxed atomics: monotonic values for /metrics).
struct EngineCounters {
  static constexpr std::size_t histogram_size = 64;
  std::atomic<std::int64_t> loop_iterations{0};  // passes of the engine loop (wake-ups)
  std::atomic<std::int64_t> decode_steps{0};
  std::atomic<std::int64_t> prompt_tokens{0};
  std::atomic<std::int64_t> generated_tokens{0};
  std::atomic<std::int64_t> prefix_hits{0};     // prompt tokens served from the KV cache
  std::atomic<std::int64_t> prefix_queries{0};  // prompt tokens looked up
  std::atomic<std::int64_t> cells_live{0};      // KV cells held by running sequences
  std::atomic<std::int64_t> decode_us{0};       // time inside llama_decode
  std::array<std::atomic<std::int64_t>, histogram_size> sequences_per_step{};
};

class BatchEngine {
 public:
  // Creates the llama_context and starts the engine thread. `model` must outlive the engine.
  // Errors: invalid_request for a bad config, engine_failed when llama.cpp refuses it.
  static Result<std::unique_ptr<BatchEngine>> start(const LlamaModel& model,
                                                    BatchEngineConfig config,
                                                    EngineCallbacks callbacks);
  BatchEngine(const BatchEngine&) = delete;
  BatchEngine& operator=(const BatchEngine&) = delete;
  // Stops the thread (running sequences are dropped without further messages) and frees the
  // context.
  ~BatchEngine();

  // Queues a message for the engine thread. Never blocks for long. Any thread.
  void tell(EngineMessage msg);

  const EngineCounters& counters() const noexcept { return counters_; }
  std::int32_t n_ctx_seq() const noexcept { return n_ctx_seq_; }
  std::int32_t n_parallel() const noexcept { return config_.n_parallel; }

 private:
  struct Slot;
  struct Stop {};
  using Inbox = std::variant<EngineMessage, Stop>;

  BatchEngine(const LlamaModel& model, BatchEngineConfig config, EngineCallbacks callbacks,
              ContextPtr ctx);

  void run();
  // Handles the drained messages; returns false when told to stop.
  bool handle_inbox();
  void handle(EngineMessage& msg);
  bool has_work() const noexcept { return active_ > 0 && !failed_; }
  void step();

  void admit(AdmitSequence& a);
  std::int32_t reuse_prefix(std::int32_t dest, const std::vector<Token>& prompt);
  void release(const ReleaseSequence& r);
  void inspect(const InspectEngine& m) const;
  void fail(const Error& error);

  void build_batch();
  void add_prompt_chunks();
  void after_decode();
  void sample(Slot& slot);
  void finish(std::int32_t id, bool drop_cache);
  std::int32_t lowest_free_slot() const;

  const LlamaModel& model_;
  BatchEngineConfig config_;
  EngineCallbacks callbacks_;
  ContextPtr ctx_;
  llama_memory_t mem_ = nullptr;
  std::int32_t n_ctx_seq_ = 0;
  Batch batch_;
  std::vector<Slot> slots_;
  std::vector<std::int32_t> prefill_order_;  // slots still prefilling, oldest admission first
  std::vector<llama_token_data> scratch_;    // sampler candidates, n_vocab, reused
  std::vector<Inbox> work_;                  // drained messages, reused
  std::int32_t active_ = 0;
  std::optional<Error> failed_;
  EngineCounters counters_;
  Mailbox<Inbox> mailbox_;
  std::thread thread_;
};

}  // namespace troupe::engine
