#include "engine/grammar_state.hpp"

#include <algorithm>
#include <cstring>
#include <mutex>
#include <utility>

#if TROUPE_GRAMMAR_STATES
#include <llama-grammar.h>
#endif

namespace troupe::engine {

AllowedSets::AllowedSets(std::int32_t n_vocab, std::size_t max_bytes)
    : words_((static_cast<std::size_t>(std::max(n_vocab, 1)) + 63) / 64), max_bytes_(max_bytes) {}

const AllowedSet* AllowedSets::find(std::string_view key) const {
  std::shared_lock lock(mu_);
  const auto it = sets_.find(key);
  return it == sets_.end() ? nullptr : &it->second;
}

const AllowedSet* AllowedSets::insert(std::string_view key, const std::uint64_t* bits) {
  std::size_t count = 0;
  for (std::size_t w = 0; w < words_; ++w)
    count += static_cast<std::size_t>(__builtin_popcountll(bits[w]));
  const bool sparse = count <= kSparseMost;
  // What it takes: the set, its key, and about a map node's worth besides.
  const std::size_t cost =
      (sparse ? count * sizeof(std::int32_t) : words_ * sizeof(std::uint64_t)) + key.size() + 96;
  std::unique_lock lock(mu_);
  if (const auto it = sets_.find(key); it != sets_.end())
    return &it->second;
  if (bytes_ + cost > max_bytes_) {
    full_.store(true, std::memory_order_relaxed);
    return nullptr;
  }
  AllowedSet set;
  if (sparse) {
    set.tokens.reserve(count);
    for (std::size_t w = 0; w < words_; ++w) {
      for (std::uint64_t word = bits[w]; word != 0; word &= word - 1)
        set.tokens.push_back(static_cast<std::int32_t>(w * 64 + __builtin_ctzll(word)));
    }
  } else {
    set.storage = std::make_unique<std::uint64_t[]>(words_);
    std::memcpy(set.storage.get(), bits, words_ * sizeof(std::uint64_t));
    set.bits = set.storage.get();
  }
  bytes_ += cost;
  return &sets_.emplace(std::string(key), std::move(set)).first->second;
}

std::size_t AllowedSets::size() const {
  std::shared_lock lock(mu_);
  return sets_.size();
}

std::size_t AllowedSets::bytes() const {
  std::shared_lock lock(mu_);
  return bytes_;
}

#if TROUPE_GRAMMAR_STATES

namespace {

// A grammar sampler's context: llama.cpp's grammar, the sets its clones share, and where each
// of its rules starts (by address, for naming a stack's elements by rule and offset).
struct StatefulGrammar {
  llama_grammar* grammar = nullptr;
  std::shared_ptr<AllowedSets> sets;
  std::vector<std::pair<const llama_grammar_element*, std::uint32_t>> rule_starts;

  StatefulGrammar(llama_grammar* g, std::shared_ptr<AllowedSets> s)
      : grammar(g), sets(std::move(s)) {
    const auto& rules = llama_grammar_get_rules(grammar);
    rule_starts.reserve(rules.size());
    for (std::size_t r = 0; r < rules.size(); ++r)
      rule_starts.emplace_back(rules[r].data(), static_cast<std::uint32_t>(r));
    std::sort(rule_starts.begin(), rule_starts.end());
  }
  ~StatefulGrammar() { llama_grammar_free_impl(grammar); }
  StatefulGrammar(const StatefulGrammar&) = delete;
  StatefulGrammar& operator=(const StatefulGrammar&) = delete;
};

StatefulGrammar* context_of(const llama_sampler* s);

const char* grammar_name(const llama_sampler*) {
  return "grammar";
}
void grammar_accept(llama_sampler* s, llama_token token) {
  llama_grammar_accept_impl(*context_of(s)->grammar, token);
}
void grammar_apply(llama_sampler* s, llama_token_data_array* cur_p) {
  llama_grammar_apply_impl(*context_of(s)->grammar, cur_p);
}
llama_sampler* grammar_clone(const llama_sampler* s);
void grammar_free(llama_sampler* s) {
  delete context_of(s);
}

// No reset: a grammar sampler is cloned fresh from the parsed one instead (GrammarCache).
// Not const: llama_sampler_init takes it so.
llama_sampler_i kStatefulGrammar = {
    .name = grammar_name,
    .accept = grammar_accept,
    .apply = grammar_apply,
    .reset = nullptr,
    .clone = grammar_clone,
    .free = grammar_free,
};  // the backend-sampling hooks left null: grammars are sampled on the CPU

StatefulGrammar* context_of(const llama_sampler* s) {
  return s && s->iface == &kStatefulGrammar ? static_cast<StatefulGrammar*>(s->ctx) : nullptr;
}

llama_sampler* grammar_clone(const llama_sampler* s) {
  const StatefulGrammar* from = context_of(s);
  auto* ctx = new StatefulGrammar(llama_grammar_clone_impl(*from->grammar), from->sets);
  return llama_sampler_init(&kStatefulGrammar, ctx);
}

void append_u32(std::string& key, std::uint32_t v) {
  char b[4];
  std::memcpy(b, &v, sizeof(b));
  key.append(b, sizeof(b));
}

}  // namespace

SamplerPtr make_stateful_grammar(const llama_vocab* vocab, const std::string& gbnf, bool lazy,
                                 const std::vector<const char*>& trigger_patterns,
                                 const std::vector<llama_token>& trigger_tokens) {
  llama_grammar* g = llama_grammar_init_impl(
      vocab, gbnf.c_str(), "root", lazy,
      lazy ? const_cast<const char**>(trigger_patterns.data()) : nullptr,
      lazy ? trigger_patterns.size() : 0, lazy ? trigger_tokens.data() : nullptr,
      lazy ? trigger_tokens.size() : 0);
  if (!g)
    return {};
  auto sets = std::make_shared<AllowedSets>(llama_vocab_n_tokens(vocab));
  return SamplerPtr(llama_sampler_init(&kStatefulGrammar, new StatefulGrammar(g, std::move(sets))));
}

AllowedSets* allowed_sets_of(const llama_sampler* s) {
  const StatefulGrammar* ctx = context_of(s);
  return ctx ? ctx->sets.get() : nullptr;
}

bool grammar_state_key(const llama_sampler* s, std::string& key) {
  const StatefulGrammar* ctx = context_of(s);
  if (!ctx || ctx->grammar->awaiting_trigger)
    return false;
  key.clear();
  const auto& starts = ctx->rule_starts;
  for (const auto& stack : ctx->grammar->stacks) {
    for (const llama_grammar_element* e : stack) {
      // The rule that holds e: the last one starting at or before it.
      auto it = std::upper_bound(starts.begin(), starts.end(), e,
                                 [](const llama_grammar_element* p, const auto& start) {
                                   return std::less<>()(p, start.first);
                                 });
      --it;
      append_u32(key, it->second);
      append_u32(key, static_cast<std::uint32_t>(e - it->first));
    }
    append_u32(key, 0xffffffffu);  // the end of a stack
  }
  // The bits of a character begun: they matter only while it is unfinished (the value keeps
  // the last character's bits after it ends).
  const llama_partial_utf8& partial = ctx->grammar->partial_utf8;
  append_u32(key, partial.n_remain > 0 ? partial.value : 0u);
  append_u32(key, static_cast<std::uint32_t>(partial.n_remain));
  return true;
}

#else  // llama.cpp's grammar internals are not available to this build

SamplerPtr make_stateful_grammar(const llama_vocab* vocab, const std::string& gbnf, bool lazy,
                                 const std::vector<const char*>& trigger_patterns,
                                 const std::vector<llama_token>& trigger_tokens) {
  return SamplerPtr(lazy
                        ? llama_sampler_init_grammar_lazy_patterns(
                              vocab, gbnf.c_str(), "root", trigger_patterns.data(),
                              trigger_patterns.size(), trigger_tokens.data(), trigger_tokens.size())
                        : llama_sampler_init_grammar(vocab, gbnf.c_str(), "root"));
}

AllowedSets* allowed_sets_of(const llama_sampler*) {
  return nullptr;
}

bool grammar_state_key(const llama_sampler*, std::string&) {
  return false;
}

#endif

}  // namespace troupe::engine
