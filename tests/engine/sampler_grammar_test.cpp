// A grammar-constrained draw on a real vocabulary (Llama 2's 32k SentencePiece tokens): where
// the draw keeps only the k best tokens (greedy, top_k), the grammar checks candidates in
// descending logit order until k pass. These tests hold that search to the whole-vocabulary
// check it replaces (SamplerPath::whole_vocabulary): the same token and status at every step
// of a walk through a JSON-like grammar with patterns, over many seeds and filters, with ties,
// suppressed tokens, the end of the grammar held back, and a grammar that allows nothing; and
// to a brute-force answer where the only allowed tokens sit at the chunks' edges. The default
// path learns each state's allowed set the first time the grammar rejects a draw there
// (grammar_state.hpp) and draws from it; walks with llama.cpp's own grammar sampler (no
// states) hold the top-k search itself to the same reference.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "engine/llama_runtime.hpp"
#include "engine/sampler.hpp"

namespace troupe::engine {
namespace {

constexpr float inf = std::numeric_limits<float>::infinity();

// A profile-like object: literals, two name patterns, digits, a long free-text pattern and a
// bounded list of alternatives.
const char* const kProfile =
    R"(root ::= "{\"name\": \"" [A-Z] [a-z]{2,12} " " [A-Z] [a-z]{2,16} "\", \"age\": " [1-9] [0-9] ", \"bio\": \"" [a-z ,.]{20,80} "\", \"tags\": [" tag ("," " "? tag){0,3} "]}"
tag ::= "\"" ("admin" | "beta" | "vip" | "staff") "\""
)";

class SamplerGrammarTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    init_llama_runtime();
    auto p = llama_model_default_params();
    p.vocab_only = true;
    const auto path =
        std::filesystem::path(TROUPE_LLAMA_TESTDATA) / "vocab" / "ggml-vocab-llama-spm.gguf";
    model_.reset(llama_model_load_from_file(path.c_str(), p));
    ASSERT_TRUE(model_);
    first_bytes_ = std::make_unique<FirstByteIndex>(FirstByteIndex::of(vocab()));
    split_everywhere_ = std::make_unique<FirstByteIndex>(FirstByteIndex::of(vocab(), 1));
  }
  static void TearDownTestSuite() {
    first_bytes_.reset();
    split_everywhere_.reset();
    model_.reset();
  }
  static const FirstByteIndex* first_bytes() { return first_bytes_.get(); }
  // Every ASCII first byte with more than one token split by pairs (the default splits the
  // space's group alone in this vocabulary).
  static const FirstByteIndex* split_everywhere() { return split_everywhere_.get(); }

  static const llama_vocab* vocab() { return llama_model_get_vocab(model_.get()); }
  static std::int32_t n_vocab() { return llama_vocab_n_tokens(vocab()); }
  static Token eos() { return llama_vocab_eos(vocab()); }

  static SamplerPtr grammar(const char* gbnf) {
    auto g = make_grammar_sampler(vocab(), GrammarSpec{gbnf, false, {}, {}, {}});
    EXPECT_TRUE(g) << g.error().message;
    return g ? std::move(g.value()) : SamplerPtr{};
  }

  // Which tokens `g` allows now, by applying it to the whole vocabulary.
  static std::vector<bool> allowed_by(llama_sampler* g) {
    std::vector<llama_token_data> data(static_cast<std::size_t>(n_vocab()));
    for (Token i = 0; i < n_vocab(); ++i)
      data[static_cast<std::size_t>(i)] = {i, 0.0f, 0.0f};
    llama_token_data_array arr{data.data(), data.size(), -1, false};
    llama_sampler_apply(g, &arr);
    std::vector<bool> out(data.size());
    for (std::size_t i = 0; i < data.size(); ++i)
      out[i] = data[i].logit != -inf;
    return out;
  }

  // The first token whose text is `piece`.
  static Token by_piece(const std::string& piece) {
    for (Token i = 0; i < n_vocab(); ++i) {
      char buf[16];
      const int k = llama_token_to_piece(vocab(), i, buf, sizeof(buf), 0, false);
      if (k > 0 && std::string(buf, static_cast<std::size_t>(k)) == piece)
        return i;
    }
    ADD_FAILURE() << "no token '" << piece << "'";
    return 0;
  }

  static inline ModelPtr model_;
  static inline std::unique_ptr<FirstByteIndex> first_bytes_;
  static inline std::unique_ptr<FirstByteIndex> split_everywhere_;
};

SamplingParams params(float temperature, std::int32_t top_k, float top_p, float min_p,
                      std::uint32_t seed) {
  SamplingParams p;
  p.temperature = temperature;
  p.top_k = top_k;
  p.top_p = top_p;
  p.min_p = min_p;
  p.seed = seed;
  return p;
}

// Normal logits; with `ties`, rounded to whole numbers, so that thousands of tokens share
// each value (the k-th best among them).
std::vector<float> random_logits(std::int32_t n, std::mt19937& rng, bool ties) {
  std::normal_distribution<float> d(0.0f, ties ? 1.5f : 3.0f);
  std::vector<float> v(static_cast<std::size_t>(n));
  for (auto& x : v)
    x = ties ? std::round(d(rng)) : d(rng);
  return v;
}

struct WalkResult {
  int steps = 0;
  int constrained = 0;  // steps whose unconstrained token the grammar rejected
  SampleStatus last = SampleStatus::ok;
};

// Samples both paths step by step on the same logits until the grammar ends or fails; every
// token and status must agree. `suppress` is passed at every step. `first_bytes` (may be
// null) narrows the default path's checks; the reference checks the whole vocabulary. With
// `learn` the default path's grammar keeps its states' allowed sets (as the engine's do);
// without, it is llama.cpp's own grammar sampler, and rejections take the top-k search.
WalkResult walk(const llama_vocab* vocab, const char* gbnf, const SamplingParams& p,
                std::uint32_t logit_seed, bool ties, const std::vector<Token>& suppress,
                const FirstByteIndex* first_bytes = nullptr, bool learn = true) {
  const std::int32_t n = llama_vocab_n_tokens(vocab);
  auto g1 = learn ? make_grammar_sampler(vocab, GrammarSpec{gbnf, false, {}, {}, {}})
                  : Result<SamplerPtr>(SamplerPtr(llama_sampler_init_grammar(vocab, gbnf, "root")));
  EXPECT_EQ(allowed_sets_of(g1->get()) != nullptr, learn);
  auto g2 = make_grammar_sampler(vocab, GrammarSpec{gbnf, false, {}, {}, {}});
  EXPECT_TRUE(g1 && g2);
  SamplerPtr probe(llama_sampler_clone(g1->get()));  // follows the walk: what was rejected
  const FirstByteCheck check = first_byte_check(GrammarSpec{gbnf, false, {}, {}, {}});
  Sampler fast(p, n, {}, 4096, std::move(g1.value()), {}, SamplerPath::automatic, first_bytes,
               check);
  Sampler whole(p, n, {}, 4096, std::move(g2.value()), {}, SamplerPath::whole_vocabulary);
  SamplerScratch s1(n), s2(n);
  std::mt19937 rng(logit_seed);
  WalkResult r;
  for (; r.steps < 300; ++r.steps) {
    const auto logits = random_logits(n, rng, ties);
    SampledToken a, b;
    const SampleStatus sa = fast.sample(logits.data(), &suppress, s1, a);
    const SampleStatus sb = whole.sample(logits.data(), &suppress, s2, b);
    EXPECT_EQ(sa, sb) << "step " << r.steps;
    EXPECT_EQ(a.token, b.token) << "step " << r.steps;
    if (sa != sb || a.token != b.token)
      return r;
    r.last = sa;
    if (sa != SampleStatus::ok || llama_vocab_is_eog(vocab, a.token))
      return r;
    // Whether the best logit's token was rejected: the greedy path's first draw.
    const auto best = std::max_element(logits.begin(), logits.end()) - logits.begin();
    llama_token_data one{static_cast<Token>(best), 0.0f, 0.0f};
    llama_token_data_array arr{&one, 1, -1, false};
    llama_sampler_apply(probe.get(), &arr);
    r.constrained += one.logit == -inf;
    llama_sampler_accept(probe.get(), a.token);
  }
  return r;
}

TEST_F(SamplerGrammarTest, GreedyPicksWhatTheWholeVocabularyCheckPicks) {
  int steps = 0, constrained = 0;
  for (std::uint32_t seed = 1; seed <= 5; ++seed) {
    for (bool ties : {false, true}) {
      const auto r =
          walk(vocab(), kProfile, params(0.0f, 0, 1.0f, 0.0f, seed), seed, ties, {},
               seed % 3 == 0 ? nullptr : (seed % 3 == 1 ? first_bytes() : split_everywhere()),
               /*learn=*/ties);
      EXPECT_GT(r.steps, 20) << "the walk reaches the patterns";
      steps += r.steps;
      constrained += r.constrained;
    }
  }
  EXPECT_GT(constrained, steps * 3 / 4) << "random logits: most best tokens are rejected";
}

TEST_F(SamplerGrammarTest, TopKDrawsWhatTheWholeVocabularyCheckDraws) {
  struct Filters {
    std::int32_t top_k;
    float top_p, min_p, temperature;
  };
  const Filters filters[] = {
      {40, 0.95f, 0.05f, 0.8f},  // llama-server's defaults
      {40, 1.0f, 0.0f, 1.0f},    // top_k alone
      {1, 1.0f, 0.0f, 1.0f},     // top_k 1: still one random draw per token
      {40, 1.0f, 0.05f, 0.8f},   // min_p settles the draw early
      {40, 0.9f, 0.0f, 0.8f},    // top_p alone
      {5, 0.5f, 0.0f, 1.5f},    {300, 0.9f, 0.1f, 0.7f}, {2000, 1.0f, 0.02f, 1.0f},
  };
  for (const auto& f : filters) {
    for (std::uint32_t seed = 1; seed <= 2; ++seed) {
      const auto p = params(f.temperature, f.top_k, f.top_p, f.min_p, seed);
      for (const FirstByteIndex* index : {static_cast<const FirstByteIndex*>(nullptr),
                                          seed % 2 ? first_bytes() : split_everywhere()}) {
        const auto r =
            walk(vocab(), kProfile, p, 100 + seed, seed % 2 == 0, {}, index, seed % 4 < 2);
        EXPECT_GT(r.steps, 20) << "top_k " << f.top_k << " seed " << seed;
      }
    }
  }
}

TEST_F(SamplerGrammarTest, SuppressedTokensAndTheHeldBackEndAgree) {
  // EOG held back (ignore_eos), plus tokens the grammar often allows: "a", "e", " ", ",".
  std::vector<Token> suppress = {eos()};
  for (const char* piece : {"a", "e", " ", ","})
    suppress.push_back(by_piece(piece));
  suppress.push_back(eos());  // a repeat counts once
  int ended = 0;
  for (std::uint32_t seed = 1; seed <= 3; ++seed) {
    for (float temperature : {0.0f, 0.8f}) {
      const auto p = params(temperature, 40, 0.95f, 0.05f, seed);
      for (const FirstByteIndex* index : {static_cast<const FirstByteIndex*>(nullptr),
                                          seed % 2 ? first_bytes() : split_everywhere()}) {
        const auto r =
            walk(vocab(), kProfile, p, 200 + seed, seed % 3 == 0, suppress, index, seed % 2 == 0);
        ended += r.last == SampleStatus::grammar_end;
      }
    }
  }
  EXPECT_EQ(ended, 12) << "every walk ends with the grammar done and its EOG held back";
}

TEST_F(SamplerGrammarTest, AGrammarThatAllowsNothingFailsOnBothPaths) {
  // After "no" the grammar allows only EOG: with its logit at -inf nothing is allowed (failed);
  // with it suppressed, the end is held back (grammar_end). The same on both paths.
  for (float temperature : {0.0f, 1.0f}) {
    for (bool suppress_eos : {false, true}) {
      const auto p = params(temperature, 40, 1.0f, 0.0f, 7);
      Sampler fast(p, n_vocab(), {}, 4096, grammar(R"(root ::= "no")"));
      Sampler whole(p, n_vocab(), {}, 4096, grammar(R"(root ::= "no")"), {},
                    SamplerPath::whole_vocabulary);
      SamplerScratch s1(n_vocab()), s2(n_vocab());
      std::mt19937 rng(3);
      std::vector<Token> suppress;
      if (suppress_eos)
        suppress.push_back(eos());
      for (int step = 0; step < 4; ++step) {
        auto logits = random_logits(n_vocab(), rng, false);
        logits[static_cast<std::size_t>(eos())] = suppress_eos ? 5.0f : -inf;
        SampledToken a, b;
        const auto sa = fast.sample(logits.data(), &suppress, s1, a);
        const auto sb = whole.sample(logits.data(), &suppress, s2, b);
        ASSERT_EQ(sa, sb) << "step " << step;
        ASSERT_EQ(a.token, b.token) << "step " << step;
        if (sa == SampleStatus::ok)
          continue;
        EXPECT_EQ(sa, suppress_eos ? SampleStatus::grammar_end : SampleStatus::grammar_failed);
        if (suppress_eos) {
          EXPECT_EQ(a.token, eos());
        }
        break;
      }
    }
  }
}

TEST_F(SamplerGrammarTest, AllowedTokensAtTheChunksEdgesAreFound) {
  // The grammar allows a handful of tokens (digits); every other token outranks them, and the
  // allowed ones sit at chosen ranks around where the chunks end (about 64, 64 + 256, ...:
  // quantiles of a sample, here of evenly spaced logits) and last. A search that skipped a
  // candidate at an edge would pick another token, or none.
  const char* const digits = R"(root ::= [0-9] [0-9])";
  auto probe = grammar(digits);
  const auto allowed = allowed_by(probe.get());
  std::vector<Token> yes, no;
  for (Token i = 0; i < n_vocab(); ++i)
    (allowed[static_cast<std::size_t>(i)] ? yes : no).push_back(i);
  ASSERT_GE(yes.size(), 3u);
  const std::int32_t n = n_vocab();
  std::mt19937 shuffle(5);
  for (std::int32_t rank : {0, 1, 63, 64, 65, 319, 320, 321, 1343, 1344, 1345, 5439, 5440, 5441,
                            n - static_cast<std::int32_t>(yes.size())}) {
    // Logits n, n-1, ... by rank; the allowed tokens take ranks rank, rank + 1, ...
    std::shuffle(no.begin(), no.end(), shuffle);
    std::vector<float> logits(static_cast<std::size_t>(n));
    std::size_t next_no = 0;
    std::size_t next_yes = 0;
    for (std::int32_t r = 0; r < n; ++r) {
      const bool take_yes = r >= rank && next_yes < yes.size();
      const Token t = take_yes ? yes[next_yes++] : no[next_no++];
      logits[static_cast<std::size_t>(t)] = static_cast<float>(n - r);
    }
    const Token best_allowed = yes.front();
    for (float temperature : {0.0f, 1.0f}) {
      const auto p = params(temperature, 2, 1.0f, 0.0f, 11);
      Sampler s(p, n, {}, 4096, grammar(digits));
      SamplerScratch scratch(n);
      SampledToken out;
      ASSERT_EQ(s.sample(logits.data(), nullptr, scratch, out), SampleStatus::ok) << rank;
      // Greedy: the best allowed; top_k 2 at temperature 1: one of the two best allowed,
      // whose logits differ by 1 (never another token).
      if (temperature == 0.0f)
        EXPECT_EQ(out.token, best_allowed) << "rank " << rank;
      else
        EXPECT_TRUE(out.token == yes[0] || out.token == yes[1]) << "rank " << rank;
    }
  }
}

TEST_F(SamplerGrammarTest, GreedyTreatsSignedZerosAsATieAsTheArgmaxDoes) {
  // The first chunk holds 63 rejected tokens and one allowed at +0; the other allowed ones sit
  // at -0 (the lowest id among them) and below. The argmax over the masked vocabulary sees +0
  // and -0 as equal and takes the lower id; candidate keys put every -0 after every +0.
  const char* const digits = R"(root ::= [0-9] [0-9])";
  auto probe = grammar(digits);
  const auto allowed = allowed_by(probe.get());
  std::vector<Token> yes;
  std::vector<float> logits(static_cast<std::size_t>(n_vocab()), -0.0f);
  int high = 0;
  for (Token i = 0; i < n_vocab(); ++i) {
    if (allowed[static_cast<std::size_t>(i)])
      yes.push_back(i);
    else if (high < 63 && ++high)
      logits[static_cast<std::size_t>(i)] = 1.0f;
  }
  ASSERT_GE(yes.size(), 3u);
  logits[static_cast<std::size_t>(yes[1])] = 0.0f;
  for (std::size_t j = 2; j < yes.size(); ++j)
    logits[static_cast<std::size_t>(yes[j])] = -1.0f;
  for (SamplerPath path : {SamplerPath::automatic, SamplerPath::whole_vocabulary}) {
    Sampler s(params(0.0f, 0, 1.0f, 0.0f, 1), n_vocab(), {}, 4096, grammar(digits), {}, path);
    SamplerScratch scratch(n_vocab());
    SampledToken out;
    ASSERT_EQ(s.sample(logits.data(), nullptr, scratch, out), SampleStatus::ok);
    EXPECT_EQ(out.token, yes[0]);
  }
}

TEST_F(SamplerGrammarTest, TiesAtTheCutOffAreBrokenByTokenIdOnBothPaths) {
  // Every allowed token has the same logit, above a sea of rejected ones: top_k 3 must keep
  // the three lowest ids, as the whole-vocabulary path's key order does.
  const char* const digits = R"(root ::= [0-9] [0-9])";
  auto probe = grammar(digits);
  const auto allowed = allowed_by(probe.get());
  std::vector<float> logits(static_cast<std::size_t>(n_vocab()), 0.0f);
  std::vector<Token> yes;
  for (Token i = 0; i < n_vocab(); ++i) {
    if (allowed[static_cast<std::size_t>(i)]) {
      logits[static_cast<std::size_t>(i)] = 1.0f;
      yes.push_back(i);
    } else {
      logits[static_cast<std::size_t>(i)] = 2.0f + static_cast<float>(i % 7);
    }
  }
  ASSERT_GE(yes.size(), 4u);
  for (std::uint32_t seed = 1; seed <= 40; ++seed) {
    const auto p = params(1.0f, 3, 1.0f, 0.0f, seed);
    Sampler fast(p, n_vocab(), {}, 4096, grammar(digits));
    Sampler whole(p, n_vocab(), {}, 4096, grammar(digits), {}, SamplerPath::whole_vocabulary);
    SamplerScratch s1(n_vocab()), s2(n_vocab());
    SampledToken a, b;
    ASSERT_EQ(fast.sample(logits.data(), nullptr, s1, a), SampleStatus::ok);
    ASSERT_EQ(whole.sample(logits.data(), nullptr, s2, b), SampleStatus::ok);
    EXPECT_EQ(a.token, b.token) << "seed " << seed;
    EXPECT_TRUE(a.token == yes[0] || a.token == yes[1] || a.token == yes[2]) << a.token;
  }
}

// By first byte, on every path that checks more than the first draw: the whole-vocabulary
// pass (no top_k: temperature 1 over everything; the chain) and the top-k search, against the
// reference that checks every token. The grammars include non-ASCII text: a negated class that
// excludes a character whose lead byte starts allowed ones (é excluded, è allowed: both start
// with 0xC3), literal non-ASCII characters, and byte tokens that leave a character half done.
TEST_F(SamplerGrammarTest, CheckingByFirstByteAllowsWhatTheWholeVocabularyAllows) {
  const char* const accents =
      R"(root ::= "{\"n\": \"" [^"\\é\x00-\x1F]{3,24} "\", \"m\": \"" ("süß" | "naïve" | [0-9]{2,4}) "\"}")";
  const char* const letters =
      R"(root ::= "{\"n\": \"" [^"\\\x00-\x1F]{3,24} "\", \"m\": \"" ([à-ÿ] [a-zß]{1,6} | "süß" | [0-9]{2,4}) "\"}")";
  ASSERT_EQ(first_byte_check(GrammarSpec{accents, false, {}, {}, {}}), FirstByteCheck::ascii);
  ASSERT_EQ(first_byte_check(GrammarSpec{letters, false, {}, {}, {}}), FirstByteCheck::all_bytes);
  struct Case {
    const char* gbnf;
    SamplingParams p;
  };
  SamplingParams chain = params(0.9f, 40, 0.95f, 0.05f, 3);
  chain.repeat_penalty = 1.1f;  // penalties: llama.cpp's chain
  const Case cases[] = {
      {kProfile, params(1.0f, 0, 1.0f, 0.0f, 1)},    // fast, no filter: the whole pass
      {kProfile, chain},                             // the chain: the whole pass
      {kProfile, params(0.0f, 0, 1.0f, 0.0f, 2)},    // greedy: the top-k search
      {accents, params(1.0f, 0, 1.0f, 0.0f, 4)},     // ASCII first bytes only, on each path
      {accents, params(0.8f, 40, 0.95f, 0.05f, 5)},  // (the top-k search with its filters)
      {accents, chain},
      {accents, params(0.0f, 0, 1.0f, 0.0f, 6)},
      {letters, params(1.0f, 0, 1.0f, 0.0f, 7)},  // every first byte, on each path
      {letters, params(0.8f, 40, 0.95f, 0.05f, 8)},
      {letters, chain},
      {letters, params(0.0f, 0, 1.0f, 0.0f, 9)},
  };
  int steps = 0;
  for (const auto& c : cases) {
    for (std::uint32_t seed = 1; seed <= 3; ++seed) {
      const auto r = walk(vocab(), c.gbnf, c.p, 300 + seed, false, {},
                          seed == 2 ? split_everywhere() : first_bytes(), seed != 3);
      EXPECT_GT(r.steps, 8);
      steps += r.steps;
    }
  }
  EXPECT_GT(steps, 400);
}

// Why a grammar with a negated class that excludes a non-ASCII character is checked by ASCII
// first bytes only: llama.cpp rejects the lone lead byte 0xC3 there (é, which it could become,
// is excluded) yet allows è, which starts with it.
TEST_F(SamplerGrammarTest, ALoneLeadByteIsNotItsCharactersProbeUnderANegatedClass) {
  auto g = grammar("root ::= [^é]");
  const auto allowed = allowed_by(g.get());
  EXPECT_FALSE(allowed[static_cast<std::size_t>(by_piece("\xc3"))]);
  EXPECT_TRUE(allowed[static_cast<std::size_t>(by_piece("è"))]);
  EXPECT_FALSE(allowed[static_cast<std::size_t>(by_piece("é"))]);
}

TEST_F(SamplerGrammarTest, TheFirstByteIndexCoversTheVocabulary) {
  // Every token is in exactly one place: one first byte's list, one pair's group, the
  // always-checked list, or nowhere (empty text or NUL first: never allowed).
  for (const FirstByteIndex* index : {first_bytes(), split_everywhere()}) {
    ASSERT_EQ(index->n_vocab(), n_vocab());
    std::vector<int> seen(static_cast<std::size_t>(n_vocab()), 0);
    const auto text = [&](Token t) {
      char buf[64];
      const int k = llama_token_to_piece(vocab(), t, buf, sizeof(buf), 0, true);
      return std::string(buf, static_cast<std::size_t>(std::max(k, 0)));
    };
    std::size_t n_pairs = 0;
    for (unsigned c = 0; c < 256; ++c) {
      for (Token t : index->starting_with(static_cast<unsigned char>(c))) {
        ++seen[static_cast<std::size_t>(t)];
        ASSERT_FALSE(text(t).empty());
        EXPECT_EQ(static_cast<unsigned char>(text(t)[0]), c);
      }
      for (const auto& pair : index->pairs_of(static_cast<unsigned char>(c))) {
        ++n_pairs;
        const std::string two = text(pair.probe);
        ASSERT_EQ(two.size(), 2u);
        EXPECT_EQ(static_cast<unsigned char>(two[0]), c);
        EXPECT_LT(static_cast<unsigned char>(two[1]), 0x80);
        for (Token t : index->members(pair.group)) {
          ++seen[static_cast<std::size_t>(t)];
          EXPECT_EQ(text(t).substr(0, 2), two) << "token " << t;
        }
      }
    }
    for (Token t : index->always_checked())
      ++seen[static_cast<std::size_t>(t)];
    EXPECT_EQ(std::count(seen.begin(), seen.end(), 2), 0);
    for (Token t = 0; t < n_vocab(); ++t) {
      if (seen[static_cast<std::size_t>(t)] == 0) {
        EXPECT_TRUE(text(t).empty() || text(t)[0] == 0) << "token " << t << " is nowhere";
      }
    }
    // Llama 2's vocabulary has a one-byte token for every byte (its <0xNN> tokens).
    EXPECT_EQ(index->probes().size(), 255u);
    // Split are the groups of more than 64 tokens: the space's (about 94 pairs: " a", " b",
    // ...), the largest, first, and the letters'; split everywhere, every ASCII byte with a
    // two-byte token starting with it.
    EXPECT_EQ(index->split_bytes().front(), ' ');
    EXPECT_GT(index->pairs_of(' ').size(), 50u);
    EXPECT_FALSE(index->pairs_of('a').empty());
    EXPECT_GT(n_pairs, index == first_bytes() ? 500u : 700u);
  }
}

TEST(FirstByteIndex, SplitsALargeGroupByItsPairs) {
  const std::vector<std::string> pieces = {
      " ",          // 0: the probe for ' '
      " a",         // 1: the probe for the pair " a"
      " ab",        // 2: in " a"'s group
      " b",         // 3: the probe for " b"
      " bc",        // 4
      " zz",        // 5: no token " z": stays in ' ''s own group
      " \xc3\xa9",  // 6: a non-ASCII second byte: stays in ' ''s own group
      "a",          // 7: the probe for 'a' (a group of 2: not split)
      "ab",         // 8
      " \xc3",      // 9: a non-ASCII pair is never a probe
  };
  const FirstByteIndex index(pieces, {}, 3);
  const auto list = [](std::span<const Token> s) { return std::vector<Token>(s.begin(), s.end()); };
  ASSERT_EQ(index.pairs_of(' ').size(), 2u);
  EXPECT_EQ(index.pairs_of(' ')[0].probe, 1);
  EXPECT_EQ(index.pairs_of(' ')[1].probe, 3);
  EXPECT_TRUE(index.pairs_of('a').empty());
  EXPECT_EQ(list(index.members(index.pairs_of(' ')[0].group)), (std::vector<Token>{1, 2}));
  EXPECT_EQ(list(index.members(index.pairs_of(' ')[1].group)), (std::vector<Token>{3, 4}));
  EXPECT_EQ(list(index.starting_with(' ')), (std::vector<Token>{0, 5, 6, 9}));
  EXPECT_EQ(list(index.starting_with('a')), (std::vector<Token>{7, 8}));
  EXPECT_EQ(index.n_groups(), FirstByteIndex::kGroups + 2);
  // Not split when the group is no larger than the threshold.
  const FirstByteIndex whole(pieces, {}, 8);
  EXPECT_TRUE(whole.pairs_of(' ').empty());
  EXPECT_EQ(whole.starting_with(' ').size(), 8u);
}

TEST(FirstByteIndex, SortsTokensByTheirFirstByte) {
  const std::vector<std::string> pieces = {
      "",                          // 0: never allowed
      "a",                         // 1: the probe for 'a'
      "ab",                        // 2
      "b",                         // 3: the probe for 'b'
      "\xc3\xa9",                  // 4: é
      "zz",                        // 5: no one-byte "z": always checked
      "</s>",                      // 6: end of generation: always checked
      std::string(1, '\0') + "x",  // 7: NUL first: never allowed
      "ba",                        // 8
      "\xc3",                      // 9: a lone lead byte: the probe for 0xC3
  };
  const std::vector<Token> eog = {6};
  const FirstByteIndex index(pieces, eog, /*split_above=*/100);
  const auto list = [](std::span<const Token> s) { return std::vector<Token>(s.begin(), s.end()); };
  EXPECT_EQ(index.n_vocab(), 10);
  ASSERT_EQ(index.probes().size(), 3u);
  EXPECT_EQ(index.probes()[0], 1);
  EXPECT_EQ(index.probe_byte(0), 'a');
  EXPECT_EQ(index.probes()[1], 3);
  EXPECT_EQ(index.probe_byte(1), 'b');
  EXPECT_EQ(index.probes()[2], 9);
  EXPECT_EQ(index.probe_byte(2), 0xc3);
  EXPECT_EQ(list(index.starting_with('a')), (std::vector<Token>{1, 2}));
  EXPECT_EQ(list(index.starting_with('b')), (std::vector<Token>{3, 8}));
  EXPECT_EQ(list(index.starting_with(0xc3)), (std::vector<Token>{4, 9}));
  EXPECT_TRUE(index.starting_with('z').empty());
  EXPECT_EQ(list(index.always_checked()), (std::vector<Token>{5, 6}));
  const std::vector<std::uint16_t> groups(index.groups(), index.groups() + 10);
  constexpr auto always = FirstByteIndex::kAlways, never = FirstByteIndex::kNever;
  EXPECT_EQ(groups, (std::vector<std::uint16_t>{never, 'a', 'a', 'b', 0xc3, always, always, never,
                                                'b', 0xc3}));
}

TEST(FirstByteIndex, OnlyGrammarsThatMatchTextQualify) {
  const auto check = [](const char* gbnf) {
    return first_byte_check(GrammarSpec{gbnf, false, {}, {}, {}});
  };
  constexpr auto all = FirstByteCheck::all_bytes;
  EXPECT_EQ(check(R"(root ::= "a" [0-9]+ # a comment with < and !)"), all);
  EXPECT_EQ(check(R"(root ::= "<b>!" [<>!] "\"<")"), all);
  EXPECT_EQ(check("root ::= [\\]<] \"x\""), all);                 // an escaped ] in a class
  EXPECT_EQ(check(R"(root ::= [^"\\\x7F\x00-\x1F]* "é")"), all);  // JSON's string characters
  EXPECT_EQ(check(R"(root ::= <[1234]> "a")"), FirstByteCheck::off);
  EXPECT_EQ(check(R"(root ::= "a" !<[5]>)"), FirstByteCheck::off);
  EXPECT_EQ(check("root ::= \"a\" # note\nx ::= <think>"), FirstByteCheck::off);
  EXPECT_EQ(check(R"(root ::= "\"" <[7]>)"), FirstByteCheck::off);  // an escaped quote
  // A negated class that excludes a non-ASCII character, raw or escaped.
  EXPECT_EQ(check(R"(root ::= [^é])"), FirstByteCheck::ascii);
  EXPECT_EQ(check(R"(root ::= [^a\xE9])"), FirstByteCheck::ascii);
  EXPECT_EQ(check(R"(root ::= [^\u00e9])"), FirstByteCheck::ascii);
  EXPECT_EQ(check(R"(root ::= [é] [^a])"), all);  // a positive class is no exception
  GrammarSpec lazy{R"(root ::= "a")", true, {"a"}, {}, {}};
  EXPECT_EQ(first_byte_check(lazy), FirstByteCheck::off);
  GrammarSpec prefilled{R"(root ::= "<tool_call>" "a")", false, {}, {}, "<tool_call>"};
  EXPECT_EQ(first_byte_check(prefilled), all);
}

// A grammar's state as a key: clones (each with its own copy of the rules) in the same state
// give the same key; another state another key; a lazy grammar waiting for its trigger none.
TEST_F(SamplerGrammarTest, ClonesInTheSameStateGiveTheSameKey) {
  auto a = grammar(R"(root ::= "ab" [0-9]+ | "ac" [a-z]+)");
  SamplerPtr b(llama_sampler_clone(a.get()));
  std::string ka, kb;
  ASSERT_TRUE(grammar_state_key(a.get(), ka));
  ASSERT_TRUE(grammar_state_key(b.get(), kb));
  EXPECT_EQ(ka, kb);
  llama_sampler_accept(a.get(), by_piece("a"));
  ASSERT_TRUE(grammar_state_key(a.get(), ka));
  EXPECT_NE(ka, kb) << "a state further on";
  llama_sampler_accept(b.get(), by_piece("a"));
  ASSERT_TRUE(grammar_state_key(b.get(), kb));
  EXPECT_EQ(ka, kb);
  // "ab1" and "ab12": the same state (more digits or the end), reached by other paths.
  for (const char* t : {"b", "1"})
    llama_sampler_accept(a.get(), by_piece(t));
  for (const char* t : {"b", "1", "2"})
    llama_sampler_accept(b.get(), by_piece(t));
  ASSERT_TRUE(grammar_state_key(a.get(), ka));
  ASSERT_TRUE(grammar_state_key(b.get(), kb));
  EXPECT_EQ(ka, kb);
  EXPECT_EQ(allowed_sets_of(a.get()), allowed_sets_of(b.get())) << "clones share the sets";

  auto lazy =
      make_grammar_sampler(vocab(), GrammarSpec{R"(root ::= "x")", true, {"<call>"}, {}, {}});
  ASSERT_TRUE(lazy) << lazy.error().message;
  EXPECT_FALSE(grammar_state_key(lazy->get(), ka)) << "waiting for its trigger: no state";
  EXPECT_EQ(grammar_state_key(
                SamplerPtr(llama_sampler_init_grammar(vocab(), "root ::= [a]", "root")).get(), ka),
            false)
      << "llama.cpp's own grammar sampler cannot say";
}

// Sequences of one grammar (clones from the GrammarCache, as the engine's are) share what
// each learned: a second walk through the same states learns nothing new and draws exactly
// what the whole-vocabulary check draws.
TEST_F(SamplerGrammarTest, SequencesOfOneGrammarShareTheLearnedSets) {
  GrammarCache cache;
  const GrammarSpec spec{kProfile, false, {}, {}, {}};
  const auto p = params(0.8f, 40, 0.95f, 0.05f, 11);
  std::size_t learned_first = 0;
  for (int sequence = 0; sequence < 2; ++sequence) {
    Result<void> error;
    SamplerPtr g = cache.get(vocab(), spec, error);
    ASSERT_TRUE(g);
    AllowedSets* sets = allowed_sets_of(g.get());
    ASSERT_NE(sets, nullptr);
    Sampler fast(p, n_vocab(), {}, 4096, std::move(g), {}, SamplerPath::automatic, first_bytes(),
                 first_byte_check(spec));
    Sampler whole(p, n_vocab(), {}, 4096, grammar(kProfile), {}, SamplerPath::whole_vocabulary);
    SamplerScratch s1(n_vocab()), s2(n_vocab());
    std::mt19937 rng(77);  // the same logits: the same walk
    int steps = 0;
    for (; steps < 300; ++steps) {
      const auto logits = random_logits(n_vocab(), rng, false);
      SampledToken a, b;
      const SampleStatus sa = fast.sample(logits.data(), nullptr, s1, a);
      ASSERT_EQ(sa, whole.sample(logits.data(), nullptr, s2, b)) << "step " << steps;
      ASSERT_EQ(a.token, b.token) << "step " << steps;
      if (sa != SampleStatus::ok || llama_vocab_is_eog(vocab(), a.token))
        break;
    }
    EXPECT_GT(steps, 40);
    if (sequence == 0) {
      learned_first = sets->size();
      EXPECT_GT(learned_first, 10u) << "random logits: the grammar rejects most draws";
    } else {
      EXPECT_EQ(sets->size(), learned_first) << "the second walk only looked sets up";
    }
  }
}

TEST(AllowedSets, StoresUpToItsBudgetAndKeepsTheFirstSetOfAKey) {
  // 2,000 tokens (32 words a set): a set of 3 tokens is kept as its list, one of 300 as bits.
  std::vector<std::uint64_t> few(32), many(32), other(32);
  few[0] = 1;
  few[2] = 4;                        // tokens 0 and 130
  few[31] = std::uint64_t{1} << 15;  // token 1999
  for (int t = 0; t < 300; ++t)
    many[static_cast<std::size_t>(t / 64)] |= std::uint64_t{1} << (t % 64);
  other[1] = 2;
  AllowedSets sets(2000, 2 * (32 * 8 + 96 + 1) + 3 * 4 + 96 + 1);  // room for these three
  ASSERT_EQ(sets.words(), 32u);
  EXPECT_EQ(sets.find("a"), nullptr);
  const AllowedSet* a = sets.insert("a", few.data());
  ASSERT_NE(a, nullptr);
  EXPECT_EQ(a->bits, nullptr) << "a few tokens: a list";
  EXPECT_EQ(a->tokens, (std::vector<std::int32_t>{0, 130, 1999}));
  EXPECT_TRUE(a->contains(130));
  EXPECT_FALSE(a->contains(131));
  EXPECT_EQ(sets.insert("a", other.data()), a) << "another thread learned it first: its set stays";
  const AllowedSet* b = sets.insert("b", many.data());
  ASSERT_NE(b, nullptr);
  ASSERT_NE(b->bits, nullptr) << "many tokens: bits";
  EXPECT_NE(b->bits, many.data()) << "a copy";
  EXPECT_TRUE(b->contains(299));
  EXPECT_FALSE(b->contains(300));
  EXPECT_FALSE(sets.full());
  EXPECT_NE(sets.insert("c", many.data()), nullptr);
  EXPECT_EQ(sets.insert("d", many.data()), nullptr) << "the budget is spent";
  EXPECT_TRUE(sets.full());
  EXPECT_EQ(sets.find("d"), nullptr);
  EXPECT_EQ(sets.find("a"), a);
  EXPECT_EQ(sets.size(), 3u);
}

}  // namespace
}  // namespace troupe::engine
