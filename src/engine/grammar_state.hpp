#pragma once
// What a grammar allows, learned once per grammar state and shared by every sequence that
// samples with the same grammar (issue 18).
//
// llama.cpp's grammar decides whether a token may come next from two things only: its parse
// stacks (where in the rules the output may be) and the bytes of a character it is in the
// middle of. A JSON schema's grammar has a few hundred to a few thousand such states (each
// character of a field's name, each position of a pattern; a free string's characters one
// after another are one), and every sequence that answers with the schema walks through the
// same ones. Checking the candidates against the grammar costs about 0.2 ms a token, most of
// the sampling step at 16 streams; looking up the state's allowed set costs building its key
// and a map lookup.
//
// make_stateful_grammar() builds the grammar as a llama_sampler of troupe's own interface over
// llama.cpp's grammar (the same parse, checks and accepts as llama_sampler_init_grammar and
// llama_sampler_init_grammar_lazy_patterns: it calls the same functions), so it is cloned,
// accepted and applied through the llama_sampler API like any other; besides, it can say its
// state as a key (grammar_state_key) and carries the AllowedSets its clones share. The key
// names each stack's elements by rule and offset, so clones (each with its own copy of the
// rules) give the same key in the same state.
//
// That needs llama.cpp's internal grammar header (installed by scripts/bootstrap.sh beside the
// public ones) and the internal functions libllama exports. Where the build has neither
// (TROUPE_LLAMA=package without the header), make_stateful_grammar() returns llama.cpp's own
// grammar sampler and grammar_state_key() is always false: every check goes to the grammar.
//
// Thread-safety: AllowedSets is safe to share between threads (a shared mutex; a set, once
// stored, never moves or changes). A grammar sampler belongs to one thread at a time.

#include <llama.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <vector>

#include "engine/llama_handles.hpp"

namespace troupe::engine {

inline bool allowed_bit(const std::uint64_t* bits, std::int32_t token) noexcept {
  const auto t = static_cast<std::uint32_t>(token);
  return (bits[t >> 6] >> (t & 63u)) & 1u;
}

// One state's allowed tokens: a bit per token of the vocabulary (dense), or, for the many
// states that allow a few tokens only (a field name's next character), their list.
struct AllowedSet {
  const std::uint64_t* bits = nullptr;  // dense: a bit per token; null when sparse
  std::vector<std::int32_t> tokens;     // sparse: ascending
  std::unique_ptr<std::uint64_t[]> storage;

  bool contains(std::int32_t token) const {
    return bits ? allowed_bit(bits, token)
                : std::binary_search(tokens.begin(), tokens.end(), token);
  }
};

class AllowedSets {
 public:
  // At most about `max_bytes` of sets; past that, nothing more is stored. A set of at most
  // kSparseMost tokens is stored as their list.
  static constexpr std::size_t kDefaultBytes = std::size_t{8} << 20;
  static constexpr std::size_t kSparseMost = 256;
  explicit AllowedSets(std::int32_t n_vocab, std::size_t max_bytes = kDefaultBytes);

  // Words (64 bits each) of a dense set.
  std::size_t words() const noexcept { return words_; }
  // The set stored for `key`, or null. Valid as long as this AllowedSets.
  const AllowedSet* find(std::string_view key) const;
  // Stores the set of `bits` (words() of them) for `key`; returns the stored set (the one
  // stored before, when another thread was first), or null when the budget is spent.
  const AllowedSet* insert(std::string_view key, const std::uint64_t* bits);
  // Whether the budget is spent: insert() stores nothing more.
  bool full() const noexcept { return full_.load(std::memory_order_relaxed); }
  // Sets stored so far, and the bytes they take (for tests and diagnostics).
  std::size_t size() const;
  std::size_t bytes() const;

 private:
  std::size_t words_;
  std::size_t max_bytes_;
  std::size_t bytes_ = 0;
  std::atomic<bool> full_{false};
  mutable std::shared_mutex mu_;
  std::map<std::string, AllowedSet, std::less<>> sets_;
};

// The grammar of `gbnf` (rule `root`), lazy with its triggers or not, as a llama_sampler.
// Null where llama.cpp's parser refuses it (llama.cpp's log says why); llama.cpp's own
// exceptions pass through (an invalid trigger pattern).
SamplerPtr make_stateful_grammar(const llama_vocab* vocab, const std::string& gbnf, bool lazy,
                                 const std::vector<const char*>& trigger_patterns,
                                 const std::vector<llama_token>& trigger_tokens);

// The AllowedSets that `s` and its clones share; null when `s` is not from
// make_stateful_grammar() (or the build cannot see grammar states).
AllowedSets* allowed_sets_of(const llama_sampler* s);

// Writes the state of `s` into `key` (replacing what was there; no allocation once `key` has
// grown to the grammar's largest state). False when `s` cannot say: not a stateful grammar,
// or a lazy grammar still waiting for its trigger (which allows everything).
bool grammar_state_key(const llama_sampler* s, std::string& key);

}  // namespace troupe::engine
