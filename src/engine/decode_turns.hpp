#pragma once
// DecodeTurns: the engines of one process take turns at llama_decode.
//
// Each engine's graph already runs on every thread it was given (-t), on the same cores as any
// other engine's. Two decodes at once put twice as many threads on those cores, and ggml's own
// threadpool waits at its barriers by spinning: a thread that lost its core holds the others
// up until the scheduler gives it back (two busy models on 2 cores got a quarter as much done
// at once as in turns). So an engine holds a turn for one llama_decode, and the sampling and
// bookkeeping around it overlap the other engine's decode. An engine that has to wait pauses
// its threadpool first: its workers would otherwise poll beside the other engine's graph.
//
// Splitting the cores between the busy engines (CoreShare, engine/core_share.hpp) gets more done
// than turns or than decodes at once on all threads, and is the default for models on the CPU;
// BatchEngineConfig::cpu_share says which engines take turns (by default those wholly on a GPU,
// where ggml has no OpenMP).
//
// Thread-safety: any thread; a Turn is released by the thread that took it.

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <mutex>

namespace troupe::engine {

class CpuThreadpool;

class DecodeTurns {
 public:
  // The turns shared by every engine of this process.
  static DecodeTurns& process();

  // One engine's turn, from take() to its destruction.
  class Turn {
   public:
    Turn(Turn&& other) noexcept;
    Turn& operator=(Turn&&) = delete;
    Turn(const Turn&) = delete;
    Turn& operator=(const Turn&) = delete;
    // Ends the turn; when another engine waits for it, pauses this engine's pool first.
    ~Turn();

   private:
    friend class DecodeTurns;
    Turn(DecodeTurns& turns, CpuThreadpool* pool) noexcept : turns_(&turns), pool_(pool) {}
    DecodeTurns* turns_;
    CpuThreadpool* pool_;
  };

  // Blocks until no other engine decodes; turns are served in the order they were asked for
  // (a ticket each), so an engine that ends a turn cannot take the next one before another that
  // waits. `pool` (may be null), the taking engine's, sleeps while it waits and when its turn
  // ends with another engine waiting.
  [[nodiscard]] Turn take(CpuThreadpool* pool);
  // Turns that had to wait for another engine's.
  std::uint64_t waits() const noexcept { return waits_.load(std::memory_order_relaxed); }

 private:
  void end_turn(CpuThreadpool* pool);

  std::mutex mutex_;
  std::condition_variable served_;
  std::uint64_t next_ticket_ = 0;  // under mutex_
  std::uint64_t serving_ = 0;      // under mutex_: the ticket whose turn it is
  std::atomic<std::uint64_t> waits_{0};
};

}  // namespace troupe::engine
