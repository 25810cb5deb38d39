#pragma once
// Sampler: one sequence's sampling policy, applied in place to the logits of the engine's last
// decode. Three paths, chosen once from SamplingParams:
//
//  - greedy (temperature 0, no bias, no penalties, none of llama-server's other samplers): an
//    SSE argmax over the logits;
//  - fast (temperature > 0 with any of top_k, top_p, min_p, and nothing else): troupe's
//    own filters and draw, O(vocab) with no sort of the vocabulary and no allocation. With no
//    filter it is one max pass, one pass of exponentials summed per block of 64 logits (AVX2
//    or SSE2) and a draw that walks the block sums, then one block. With filters, top_k is a
//    threshold scan with a running k-th value (nth_element on a small buffer), min_p a
//    threshold (logit >= max + ln min_p), top_p a prefix of the candidates sorted only as far
//    as needed (a sort of the top-k set, or a weighted selection over the tokens above a
//    threshold lowered until they hold the mass). Same order and meaning as llama.cpp's chain:
//    top_k, top_p (over the top-k set, at temperature 1), min_p (relative to the best token),
//    then temperature and the draw;
//  - chain (logit bias, penalties, DRY, top_n_sigma, typical_p, XTC, dynamic temperature or
//    mirostat): llama.cpp's sampler chain in llama-server's order (logit bias, penalties, DRY,
//    top_n_sigma, top_k, typical_p, top_p, min_p, XTC, temperature with dynatemp_range, seeded
//    distribution; at temperature 0 without dynatemp_range the filters end in greedy; with
//    mirostat: logit bias, temperature, mirostat 1 or 2), primed as in llama-server: the
//    penalties and DRY see the prompt's last `repeat_last_n` / `dry_penalty_last_n` tokens
//    (-1: the whole context), not only the generated ones. A request's own order of stages
//    (SamplingParams::samplers, llama-server's `samplers`) replaces that order: only the
//    stages listed, then the draw; its `infill` stage is llama.cpp's fill-in-the-middle
//    sampler.
//
// Unset fields of SamplingParams (temperature, top_k, top_p, min_p, repeat_penalty) take
// SamplingDefaults{}'s values; the Coordinator fills them from its options before this.
//
// Random draws come from the sequence's own generator (xoshiro256**, seeded from `seed`, or
// from std::random_device when unset), one draw per token: the same seed and the same logits
// give the same tokens, whether the sequence runs alone or batched with others.
//
// Grammar (optional, a llama.cpp grammar sampler built off the engine thread): the token is
// drawn from the unconstrained candidates first and checked against the grammar; only when
// the grammar rejects it is the token drawn again from what the grammar allows (llama.cpp's
// common_sampler does the same). The chosen token is then accepted into the grammar. A lazy
// grammar allows everything until its trigger. Where the draw keeps only the k best tokens
// (greedy: k = 1; the fast path with top_k), only the k best allowed tokens can matter, so
// the grammar checks candidates in descending logit order, in growing chunks (about 64, 256,
// 1024, 4096, then the rest of the vocabulary at once), and stops once k of them pass or
// once those found settle top_p's cut and min_p's floor: the same token and the same random
// draws as a check of the whole vocabulary, which the chain path still does (its penalties
// and biases act before top_k). Either way, for a grammar that matches text only
// (first_byte_check()), the grammar first sees the one-byte tokens, and only the tokens whose
// first byte it allowed are candidates (FirstByteIndex): at a position that allows a few
// characters (a digit, a quote) that is a few hundred tokens, not the vocabulary.
//
// Logprobs are those of the model's own distribution (softmax of the raw logits), as OpenAI
// reports them, whatever the filters and the grammar did.
//
// Thread-safety: none; a Sampler lives in one BatchEngine slot and is used on the engine thread.
// Per token the greedy and fast paths allocate nothing; llama.cpp allocates inside the chain
// (some of its samplers: typical_p, DRY, ...) and inside the grammar sampler (every check and
// accept); troupe's code around them allocates nothing.

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "engine/first_byte_index.hpp"
#include "engine/grammar_state.hpp"
#include "engine/llama_handles.hpp"
#include "engine/reasoning_block.hpp"
#include "engine/sequence_protocol.hpp"
#include "engine/task.hpp"
#include "util/lru_cache.hpp"
#include "util/result.hpp"

namespace troupe::engine {

// Buffers the sampler works in, sized once to the vocabulary: one per engine, lent to each
// slot's sampler in turn on the engine thread.
struct SamplerScratch {
  explicit SamplerScratch(std::int32_t n_vocab);
  std::vector<std::uint64_t> keys;       // candidates: see candidate_key()
  std::vector<float> weights;            // their weights
  std::vector<float> block_sums;         // full-vocabulary draws: one per 64 logits
  std::vector<float> masked;             // logits with the grammar's rejections at -inf
  std::vector<llama_token_data> data;    // llama.cpp's candidate array (chain, grammar)
  std::vector<std::uint64_t> allowed;    // keys the grammar allowed (the top-k search)
  std::vector<std::uint8_t> group_pass;  // by FirstByteIndex group: whether it passed
  std::string state_key;                 // the grammar's state (grammar_state_key)
  std::vector<std::uint64_t> bits;       // an allowed set being learned: a bit per token
  AllowedSet unstored;                   // a view of `bits` when the store had no room left
};

// A candidate as one sortable number: the logit's bits in an order-preserving form above, the
// complemented token id below. Larger key = larger logit; equal logits: the lower id first.
std::uint64_t candidate_key(float logit, Token token);
Token key_token(std::uint64_t key);
float key_logit(std::uint64_t key);

// The fast path's filters; 0 / 1 / 0 are "off".
struct FilterSpec {
  std::int32_t top_k = 0;
  float top_p = 1.0f;
  float min_p = 0.0f;
};

// The tokens `f` keeps of logits[0..n), never a suppressed one, as keys in scratch.keys (in
// no particular order). Empty only when no token has a finite or +inf logit. Exposed for tests.
std::span<const std::uint64_t> filter_candidates(const float* logits, std::int32_t n,
                                                 const std::vector<Token>* suppress,
                                                 const FilterSpec& f, SamplerScratch& scratch);

// Draws with u in [0, 1) from softmax(logit / temperature): over the whole vocabulary less
// `suppress` (draw_full), or over `keys` (draw_candidates). The token is the first, in a fixed
// order, whose running weight exceeds u times the total; a token of weight 0 is never drawn.
// Exposed for tests: a grid of u's checks the distribution without randomness.
Token draw_full(const float* logits, std::int32_t n, const std::vector<Token>* suppress,
                float temperature, double u, SamplerScratch& scratch);
Token draw_candidates(std::span<const std::uint64_t> keys, float temperature, double u,
                      SamplerScratch& scratch);

// Checks a grammar's shape (empty GBNF; for a lazy grammar: no trigger at all, trigger tokens
// out of [0, n_vocab), trigger patterns that are not regular expressions). A grammar that is
// not lazy ignores its triggers, as llama.cpp's common_sampler does (a chat template's
// "required" tool grammar comes with them). The error is invalid_request, param "grammar".
std::optional<Error> check_grammar_spec(const GrammarSpec& g, std::int32_t n_vocab);

// Parses `g` into a fresh llama.cpp grammar sampler (it has state: one per sequence). Errors:
// invalid_request, param "grammar", for whatever check_grammar_spec refuses and for GBNF that
// llama.cpp cannot parse (or that has no rule "root"). Any thread; costs the parse.
// A non-lazy grammar with a `prefill` has read the tokens of that text already.
Result<SamplerPtr> make_grammar_sampler(const llama_vocab* vocab, const GrammarSpec& g);

// What a GBNF says about checking it by first byte (FirstByteIndex): whether it names tokens
// ('<' or '!' outside literals, classes and comments, where llama.cpp's parser reads a token
// reference), and whether a negated class excludes a non-ASCII character.
struct GbnfTraits {
  bool names_tokens = false;
  bool negates_non_ascii = false;
};
GbnfTraits gbnf_traits(std::string_view gbnf);
// How a grammar from `g` may be checked by first byte: off when it names tokens or is lazy (a
// lazy one allows everything until its trigger).
FirstByteCheck first_byte_check(const GrammarSpec& g);

// Compiled grammars by spec, least recently used evicted: a schema or tool set seen before
// costs a clone of its parsed grammar (tens of microseconds) instead of a parse.
// Thread-safety: none; one thread (the coordinator's tokenizer thread) owns it.
class GrammarCache {
 public:
  explicit GrammarCache(std::size_t capacity = 64) : parsed_(capacity) {}
  // A fresh sampler for `g` (its own state), or null with `error` set to what
  // make_grammar_sampler refused.
  SamplerPtr get(const llama_vocab* vocab, const GrammarSpec& g, Result<void>& error);
  std::uint64_t hits() const noexcept { return hits_; }
  std::size_t size() const noexcept { return parsed_.size(); }

 private:
  util::LruCache<SamplerPtr> parsed_;  // by spec; never sampled from, only cloned
  std::uint64_t hits_ = 0;
};

// True when `p` turns DRY on (multiplier > 0, base >= 1, a window) and mirostat does not
// replace the chain.
bool uses_dry(const SamplingParams& p);

// llama.cpp's DRY sampler for `p`, or null when !uses_dry(p). Building it scans the whole
// vocabulary for every sequence breaker (one detokenization per token and breaker), so it is
// built off the engine thread and handed to the Sampler. `vocab` may be null only when there
// are no sequence breakers; dry_penalty_last_n -1 becomes `n_ctx`. Any thread.
SamplerPtr make_dry_sampler(const llama_vocab* vocab, const SamplingParams& p, std::int32_t n_ctx);

// xoshiro256** seeded through splitmix64: small, fast, and the same stream for the same seed.
class SamplerRng {
 public:
  explicit SamplerRng(std::uint64_t seed);
  std::uint64_t next() noexcept;
  double uniform() noexcept { return static_cast<double>(next() >> 11) * 0x1.0p-53; }

 private:
  std::uint64_t s_[4];
};

enum class SamplerPath : std::uint8_t {
  automatic,         // greedy, fast or chain, as above
  chain,             // always llama.cpp's chain (benchmarks and tests compare the two)
  whole_vocabulary,  // as automatic, but a rejected draw applies the grammar to the whole
                     // vocabulary (the reference the top-k search is tested and timed against)
};

enum class SampleStatus : std::uint8_t {
  ok,
  grammar_end,     // the grammar allows only end-of-generation, which `suppress` held back:
                   // `out.token` is that token and the sequence should end
  grammar_failed,  // the grammar allows no token at all (or llama.cpp refused the token)
};

struct FirstBytePass;  // sampler.cpp's

class Sampler {
 public:
  // `prompt` primes the chain's penalties and DRY; `n_ctx` is the sequence's context size;
  // `grammar` (may be null) constrains the output; `dry` is make_dry_sampler(params) (null
  // when !uses_dry(params): precondition). The Sampler owns both from now on. `first_bytes`
  // (may be null; must outlive the Sampler) narrows the grammar's checks by first byte as
  // `check` says, which must be first_byte_check() of the grammar's spec (or less). `vocab`
  // (must outlive the Sampler) is what a request's `infill` stage needs; without it that
  // stage is left out.
  Sampler(const SamplingParams& params, std::int32_t n_vocab, const std::vector<Token>& prompt,
          std::int32_t n_ctx, SamplerPtr grammar = {}, SamplerPtr dry = {},
          SamplerPath path = SamplerPath::automatic, const FirstByteIndex* first_bytes = nullptr,
          FirstByteCheck check = FirstByteCheck::off, const llama_vocab* vocab = nullptr);

  // Samples one token from `logits` (n_vocab floats) into `out` (token, logprob, top).
  // `suppress` lists tokens that must not be chosen (EOG before min_tokens, or ignore_eos).
  SampleStatus sample(const float* logits, const std::vector<Token>* suppress,
                      SamplerScratch& scratch, SampledToken& out);

  // The template's reasoning block (engine/reasoning_block.hpp): it sees every token this
  // sampler takes and, once its budget is spent, chooses the next ones itself (the message
  // and closing tag it forces; the grammar still checks them). `gates_grammar`: the grammar
  // is lazy (a tool call's, waiting for its trigger) and sees nothing inside the block, so a
  // call's opening tag that the model writes while it reasons triggers nothing; the tokens
  // that close the block are shown to it then (llama-server's rule, common_sampler's).
  void set_reasoning(std::unique_ptr<ReasoningBlock> block, bool gates_grammar = false) {
    block_ = std::move(block);
    gates_grammar_ = gates_grammar && block_ != nullptr;
  }

  // Whether this sampler draws through llama.cpp's chain (for tests and diagnostics).
  bool uses_chain() const noexcept { return mode_ == Mode::chain; }

 private:
  enum class Mode : std::uint8_t { greedy, fast, chain };
  Token pick(const float* logits, const std::vector<Token>* suppress, SamplerScratch& scratch);
  SampleStatus accept_into_grammar(std::span<const Token> tokens);
  Token sample_chain(const float* logits, const std::vector<Token>* suppress,
                     SamplerScratch& scratch);
  bool grammar_allows(Token token);
  SampleStatus constrain(const float* logits, const std::vector<Token>* suppress,
                         SamplerScratch& scratch, Token& token);
  const AllowedSet* learn_allowed(SamplerScratch& scratch);
  SampleStatus constrain_to(const AllowedSet& allowed, const float* logits,
                            const std::vector<Token>* suppress, SamplerScratch& scratch,
                            Token& token);
  SampleStatus pick_unmasked(const std::vector<Token>* suppress, SamplerScratch& scratch,
                             Token& token);
  SampleStatus constrain_top_k(const float* logits, const std::vector<Token>* suppress,
                               SamplerScratch& scratch, Token& token, const FirstBytePass* first);
  std::size_t probe_first_bytes(SamplerScratch& scratch, FirstBytePass& first);
  std::size_t first_byte_candidates(const float* logits, SamplerScratch& scratch,
                                    const FirstBytePass& first);
  std::size_t first_byte_tokens(SamplerScratch& scratch, const FirstBytePass& first,
                                const float* logits);
  std::int32_t check_chunk(std::span<const std::uint64_t> keys, SamplerScratch& scratch,
                           std::int32_t n_allowed);
  bool settled(std::uint64_t* allowed, std::int32_t n, float bound, std::int32_t k) const;
  Token greedy_allowed(const float* logits, const std::vector<Token>* suppress,
                       SamplerScratch& scratch, std::int32_t n_allowed, std::uint64_t below,
                       const FirstBytePass* first);
  SampleStatus no_allowed_token(const float* logits, const std::vector<Token>* suppress,
                                Token& token);
  void fill_logprobs(const float* logits, SamplerScratch& scratch, SampledToken& out) const;

  Mode mode_ = Mode::greedy;
  SamplerPtr chain_;
  SamplerPtr grammar_;
  std::unique_ptr<ReasoningBlock> block_;  // the reasoning block, or null
  bool gates_grammar_ = false;             // the lazy grammar waits outside the block
  AllowedSets* allowed_sets_ = nullptr;    // the grammar's, shared; null: none (see sample())
  FilterSpec filter_;
  bool filtered_ = false;
  bool whole_vocabulary_ = false;                // SamplerPath::whole_vocabulary
  const FirstByteIndex* first_bytes_ = nullptr;  // null: no narrowing
  bool non_ascii_by_byte_ = false;               // FirstByteCheck::all_bytes
  float temperature_ = 1.0f;
  SamplerRng rng_;
  std::int32_t n_vocab_;
  bool logprobs_ = false;
  std::int32_t top_n_ = 0;
};

}  // namespace troupe::engine
