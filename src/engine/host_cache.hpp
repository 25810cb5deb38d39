#pragma once
// HostCache: the KV states of sequences that had to leave their slot, kept in host memory so
// that a later prompt beginning with the same tokens restores them instead of computing them
// again (llama-server's --cache-ram). An agent's second conversation, a title request or any
// other prompt that takes the only slot no longer costs the first conversation its whole
// prefill when it comes back.
//
// Entries are (tokens, state bytes from llama_state_seq_get_data) pairs: the state holds the
// cells of those tokens, at positions 0..n-1 (a sliding window's last ones, a recurrent state
// that of all of them: such a state serves only its whole tokens, and the sequence's context
// checkpoints, stored with it, serve the prompts of its earlier turns). An entry whose tokens
// begin another's is dropped when the longer one comes and serves every prompt the shorter
// would, and the least recently used go when the bytes exceed the budget. Lookups scan every
// entry: they are few (each is a whole sequence's state) and a lookup happens once per
// admission.
//
// Thread-safety: none; the engine thread owns it.

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <utility>
#include <vector>

#include "engine/task.hpp"

namespace troupe::engine {

// Whether a state's memory asks for transparent huge pages. Which pages populate faster
// depends on the host: on one VM taking 4 KiB pages one fault at a time cost 40 times the copy
// and huge pages next to nothing; on another (a hypervisor that backs guest memory lazily)
// huge pages took 3 times as long as 4 KiB ones. So both are measured: huge pages first, then
// 4 KiB pages, then the cheaper per byte (a moving average), the other tried again every
// kProbe-th allocation. Allocations under kMinBytes are not measured (a few syscalls' fixed
// cost would be their whole time). Pure arithmetic: HostCache::allocate times and records.
class PageChoice {
 public:
  static constexpr std::uint32_t kProbe = 16;
  static constexpr std::size_t kMinBytes = std::size_t{1} << 20;

  // Whether the next allocation asks for huge pages.
  bool next_huge();
  void record(bool huge, std::size_t bytes, double us);
  // The learned cost in ns per byte (0: not measured yet), for tests and logs.
  double ns_per_byte(bool huge) const { return cost_[huge ? 1 : 0]; }

 private:
  std::array<double, 2> cost_{};  // [small, huge]
  std::uint32_t count_ = 0;
};

// The part of a sequence's memory that cannot be cut back to an earlier token, as it was when
// its first n_tokens tokens had been computed (llama-server's context checkpoints): a
// sliding-window model's windowed layers' cells, a recurrent or hybrid model's recurrent state
// (llama_state_seq_get_data_ext with LLAMA_STATE_SEQ_FLAGS_PARTIAL_ONLY). Written back over the
// state of a sequence that began with those tokens and went on, it serves their prefixes of
// min_keep to n_tokens tokens (a window's cells start later, a recurrent state is that of all
// of them): the previous turn of a conversation whose answer comes back rendered otherwise.
struct ContextCheckpoint {
  std::int32_t n_tokens = 0;
  std::int32_t min_keep = 0;
  std::vector<std::uint8_t> state;
  bool serves(std::int32_t keep) const { return keep >= min_keep && keep <= n_tokens; }
};

// Of `checkpoints`, the one serving the longest prefix of `n` shared tokens: that prefix's
// length and its index; {0, -1}: none.
struct CheckpointServing {
  std::int32_t keep = 0;
  std::int32_t index = -1;
};
CheckpointServing serving_checkpoint(std::span<const ContextCheckpoint> checkpoints,
                                     std::int32_t n);

class HostCache {
 public:
  // A sequence's state: `size` bytes of anonymous memory of its own, mapped on a huge page
  // boundary and populated by the kernel in one call: a long sequence's state is hundreds of
  // MiB, and taking its 4 KiB pages one fault at a time cost 40 times the copy itself (117 ms
  // against 2.8 ms for 44 MiB with huge pages on the 2-core zen4 VM). Whether it asks for huge
  // pages is PageChoice's.
  class State {
   public:
    // n bytes, uninitialised; none (size 0) when the memory cannot be had. huge: asks for
    // transparent huge pages (HostCache::allocate chooses).
    explicit State(std::size_t n = 0, bool huge = true);
    State(State&& o) noexcept
        : data_(std::exchange(o.data_, nullptr)), size_(std::exchange(o.size_, 0)) {}
    State& operator=(State&& o) noexcept;
    State(const State&) = delete;
    State& operator=(const State&) = delete;
    ~State();
    std::uint8_t* data() const { return data_; }
    std::size_t size() const { return size_; }

   private:
    std::uint8_t* data_ = nullptr;
    std::size_t size_ = 0;
  };
  struct Entry {
    std::vector<Token> tokens;
    State state;
    std::uint64_t used = 0;  // the cache's clock when last stored or restored
    // The LoRA scales its cells were computed with (AdmitSequence::lora): only a prompt with
    // the same scales may use it.
    std::vector<float> lora;
    // The shortest prefix of `tokens` its state serves: 0 (any) for a KV cache that can be cut
    // at any token; more where it cannot (a sliding window's cells start later, a recurrent
    // state is that of all the tokens: EngineLoop::min_keep).
    std::int32_t min_keep = 0;
    // The checkpoints its sequence had taken (oldest first): each serves shorter prefixes of
    // `tokens` than min_keep, written over `state`.
    std::vector<ContextCheckpoint> checkpoints;
    std::size_t bytes() const;
  };
  struct Match {
    std::size_t index = 0;    // of the entry
    std::int32_t length = 0;  // tokens it serves of the prompt
    // The entry's checkpoint (an index into its checkpoints) that serving them needs; -1: its
    // state alone serves them.
    std::int32_t checkpoint = -1;
  };

  // budget_bytes 0: the cache is off (stores nothing).
  explicit HostCache(std::size_t budget_bytes = 0) : budget_(budget_bytes) {}

  // Memory for a state of n bytes, with the pages that have populated fastest here (PageChoice).
  State allocate(std::size_t n);

  bool enabled() const { return budget_ > 0; }

  // The entry with LoRA scales `lora` serving the longest prefix of `prompt` (with its state,
  // from its min_keep on, or with one of its checkpoints; the most recently used among equals);
  // nullopt when none.
  std::optional<Match> find(std::span<const Token> prompt, std::span<const float> lora = {}) const;
  // Whether `tokens` (with scales `lora`; a state serving its prefixes from `min_keep`, and
  // `checkpoints`) are already held: they begin (or are) an entry's that serves every prefix
  // they serve.
  bool covers(std::span<const Token> tokens, std::span<const float> lora = {},
              std::int32_t min_keep = 0, std::span<const ContextCheckpoint> checkpoints = {}) const;
  // Stores an entry, drops those (with the same scales) whose tokens begin `tokens` and whose
  // every prefix it serves too, then the least recently used others until the bytes fit the
  // budget. False (nothing stored or dropped) when the entry alone exceeds the budget or the
  // cache is off.
  bool store(std::vector<Token> tokens, State state, std::vector<float> lora = {},
             std::int32_t min_keep = 0, std::vector<ContextCheckpoint> checkpoints = {});
  // Marks an entry used now (it is the last to go); drops one that failed to restore.
  void touch(std::size_t index) { entries_[index].used = ++clock_; }
  void erase(std::size_t index);

  const Entry& at(std::size_t index) const { return entries_[index]; }
  std::size_t size() const { return entries_.size(); }
  std::size_t bytes() const { return bytes_; }
  std::size_t budget() const { return budget_; }

 private:
  std::size_t budget_;
  PageChoice pages_;
  std::size_t bytes_ = 0;
  std::uint64_t clock_ = 0;
  std::vector<Entry> entries_;
};

}  // namespace troupe::engine
