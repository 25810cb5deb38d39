// The sampler's fast path: the distribution it draws from (a grid of uniform values, so the
// counts are exact, and a chi-square over a fixed seed, so nothing can flake), the candidate
// sets of top_k / top_p / min_p against llama.cpp's own chain, seeds, suppressed tokens and
// logprobs.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <random>
#include <set>
#include <vector>

#include "engine/llama_runtime.hpp"
#include "engine/sampler.hpp"

namespace troupe::engine {
namespace {

constexpr float inf = std::numeric_limits<float>::infinity();

std::vector<double> softmax(const std::vector<float>& logits, float temperature,
                            const std::vector<Token>& suppress = {}) {
  double m = -inf;
  for (std::size_t i = 0; i < logits.size(); ++i) {
    if (std::find(suppress.begin(), suppress.end(), static_cast<Token>(i)) == suppress.end())
      m = std::max(m, static_cast<double>(logits[i]));
  }
  std::vector<double> p(logits.size(), 0.0);
  double z = 0.0;
  for (std::size_t i = 0; i < logits.size(); ++i) {
    if (std::find(suppress.begin(), suppress.end(), static_cast<Token>(i)) != suppress.end())
      continue;
    p[i] = std::exp((logits[i] - m) / temperature);
    z += p[i];
  }
  for (auto& x : p)
    x /= z;
  return p;
}

std::vector<float> random_logits(std::size_t n, std::uint32_t seed, float sigma = 3.0f) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> d(0.0f, sigma);
  std::vector<float> v(n);
  for (auto& x : v)
    x = d(rng);
  return v;
}

// Draws at u = (i + 0.5) / n_grid: token j must come out p_j * n_grid times, within 2 (the
// grid's own rounding, plus the exponential's ~1e-7 relative error).
void expect_grid_counts(const std::vector<float>& logits, float temperature,
                        const std::vector<Token>& suppress) {
  const auto n = static_cast<std::int32_t>(logits.size());
  SamplerScratch scratch(n);
  constexpr int n_grid = 20000;
  std::vector<int> count(logits.size(), 0);
  for (int i = 0; i < n_grid; ++i) {
    const double u = (i + 0.5) / n_grid;
    ++count[static_cast<std::size_t>(draw_full(
        logits.data(), n, suppress.empty() ? nullptr : &suppress, temperature, u, scratch))];
  }
  const auto p = softmax(logits, temperature, suppress);
  for (std::size_t j = 0; j < logits.size(); ++j) {
    EXPECT_NEAR(count[j], p[j] * n_grid, 2.0) << "token " << j << " at T " << temperature;
  }
}

TEST(SamplerFast, FullVocabularyDrawFollowsTheSoftmaxAtEveryTemperature) {
  // 150 logits: two full blocks of 64 and a partial one, a spread of probabilities.
  std::vector<float> logits(150, -6.0f);
  for (std::size_t i = 0; i < logits.size(); ++i)
    logits[i] = -0.05f * static_cast<float>(i % 37);
  logits[3] = 2.0f;
  logits[70] = 1.5f;
  logits[149] = 1.0f;
  logits[64] = -inf;  // never drawn
  for (float t : {1.0f, 0.7f, 1.6f})
    expect_grid_counts(logits, t, {});
}

TEST(SamplerFast, SuppressedTokensAreNeverDrawnAndTheRestRenormalise) {
  std::vector<float> logits = random_logits(300, 5, 1.0f);
  logits[10] = 30.0f;  // suppressed, and it would take nearly all the mass
  logits[200] = 3.0f;
  const std::vector<Token> suppress = {10, 200, 299};
  expect_grid_counts(logits, 1.0f, suppress);
  // A suppressed token 200 nats above every other: the others must still be drawn.
  logits[10] = 250.0f;
  expect_grid_counts(logits, 1.0f, suppress);
}

TEST(SamplerFast, CandidateDrawFollowsTheSoftmaxOfTheCandidates) {
  const std::vector<float> logits = {0.0f, 1.0f, -1.0f, 2.0f, 0.5f};
  SamplerScratch scratch(5);
  const std::vector<std::uint64_t> keys = {candidate_key(logits[1], 1), candidate_key(logits[3], 3),
                                           candidate_key(logits[4], 4)};
  const std::vector<float> kept = {logits[1], logits[3], logits[4]};
  for (float t : {1.0f, 0.5f}) {
    const auto p = softmax(kept, t);
    constexpr int n_grid = 10000;
    std::vector<int> count(5, 0);
    for (int i = 0; i < n_grid; ++i)
      ++count[static_cast<std::size_t>(draw_candidates(keys, t, (i + 0.5) / n_grid, scratch))];
    EXPECT_EQ(count[0] + count[2], 0);
    EXPECT_NEAR(count[1], p[0] * n_grid, 2.0);
    EXPECT_NEAR(count[3], p[1] * n_grid, 2.0);
    EXPECT_NEAR(count[4], p[2] * n_grid, 2.0);
  }
}

// Temperature 1 and no filter: the model's own distribution. (Fields left unset would take
// the serving engine's defaults, llama-server's temperature 0.8 with top_k/top_p/min_p.)
SamplingParams unfiltered(std::uint32_t seed) {
  SamplingParams sp;
  sp.seed = seed;
  sp.temperature = 1.0f;
  sp.top_k = 0;
  sp.top_p = 1.0f;
  sp.min_p = 0.0f;
  return sp;
}

// Pearson's chi-square of `n_draws` Sampler draws (fixed seed) against the softmax.
double chi_square(const std::vector<float>& logits, const SamplingParams& sp, int n_draws) {
  const auto n = static_cast<std::int32_t>(logits.size());
  Sampler s(sp, n, {}, 64);
  SamplerScratch scratch(n);
  std::vector<int> count(logits.size(), 0);
  for (int i = 0; i < n_draws; ++i) {
    SampledToken out;
    EXPECT_EQ(s.sample(logits.data(), nullptr, scratch, out), SampleStatus::ok);
    ++count[static_cast<std::size_t>(out.token)];
  }
  const auto p = softmax(logits, *sp.temperature);
  double chi2 = 0.0;
  for (std::size_t j = 0; j < logits.size(); ++j) {
    const double e = p[j] * n_draws;
    chi2 += (count[j] - e) * (count[j] - e) / e;
  }
  return chi2;
}

TEST(SamplerFast, SeededDrawsPassAChiSquareTest) {
  // 8 tokens, 7 degrees of freedom: 24.3 is the 0.1% critical value. The seed is fixed, so
  // the statistic is a fixed number; a wrong temperature or a biased draw gives thousands.
  const std::vector<float> logits = {1.0f, 0.5f, 0.0f, -0.5f, 2.0f, 1.2f, -1.0f, 0.3f};
  SamplingParams sp = unfiltered(42);
  EXPECT_LT(chi_square(logits, sp, 80000), 24.3);
  sp.temperature = 0.6f;
  EXPECT_LT(chi_square(logits, sp, 80000), 24.3);
  SamplingParams wrong = sp;  // the statistic can fail: the same draws against T = 1
  wrong.temperature = 1.0f;
  Sampler s(sp, 8, {}, 64);
  SamplerScratch scratch(8);
  std::vector<int> count(8, 0);
  for (int i = 0; i < 80000; ++i) {
    SampledToken out;
    s.sample(logits.data(), nullptr, scratch, out);
    ++count[static_cast<std::size_t>(out.token)];
  }
  const auto p1 = softmax(logits, 1.0f);
  double chi2 = 0.0;
  for (std::size_t j = 0; j < 8; ++j)
    chi2 += (count[j] - p1[j] * 80000) * (count[j] - p1[j] * 80000) / (p1[j] * 80000);
  EXPECT_GT(chi2, 1000.0);
}

// What llama.cpp's chain (top_k, top_p, min_p; no draw) keeps of the same logits.
std::set<Token> chain_keeps(const std::vector<float>& logits, const FilterSpec& f,
                            const std::vector<Token>& suppress) {
  auto cp = llama_sampler_chain_default_params();
  SamplerPtr chain(llama_sampler_chain_init(cp));
  if (f.top_k > 0)
    llama_sampler_chain_add(chain.get(), llama_sampler_init_top_k(f.top_k));
  if (f.top_p < 1.0f)
    llama_sampler_chain_add(chain.get(), llama_sampler_init_top_p(f.top_p, 1));
  if (f.min_p > 0.0f)
    llama_sampler_chain_add(chain.get(), llama_sampler_init_min_p(f.min_p, 1));
  std::vector<llama_token_data> data;
  for (std::size_t i = 0; i < logits.size(); ++i) {
    const bool banned =
        std::find(suppress.begin(), suppress.end(), static_cast<Token>(i)) != suppress.end();
    data.push_back({static_cast<Token>(i), banned ? -inf : logits[i], 0.0f});
  }
  llama_token_data_array arr{data.data(), data.size(), -1, false};
  llama_sampler_apply(chain.get(), &arr);
  std::set<Token> kept;
  for (std::size_t i = 0; i < arr.size; ++i)
    kept.insert(arr.data[i].id);
  return kept;
}

std::set<Token> fast_keeps(const std::vector<float>& logits, const FilterSpec& f,
                           const std::vector<Token>& suppress) {
  SamplerScratch scratch(static_cast<std::int32_t>(logits.size()));
  std::set<Token> kept;
  for (auto k : filter_candidates(logits.data(), static_cast<std::int32_t>(logits.size()),
                                  suppress.empty() ? nullptr : &suppress, f, scratch))
    kept.insert(key_token(k));
  return kept;
}

TEST(SamplerFast, FiltersKeepExactlyTheCraftedSets) {
  // Probabilities 0.5, 0.3, 0.15, 0.05 at temperature 1 (tokens 2, 0, 3, 1).
  const std::vector<float> logits = {std::log(0.3f), std::log(0.05f), std::log(0.5f),
                                     std::log(0.15f)};
  EXPECT_EQ(fast_keeps(logits, {2, 1.0f, 0.0f}, {}), (std::set<Token>{2, 0}));
  EXPECT_EQ(fast_keeps(logits, {0, 0.75f, 0.0f}, {}), (std::set<Token>{2, 0}));
  EXPECT_EQ(fast_keeps(logits, {0, 0.85f, 0.0f}, {}), (std::set<Token>{2, 0, 3}));
  EXPECT_EQ(fast_keeps(logits, {0, 0.4f, 0.0f}, {}), (std::set<Token>{2}));
  // min_p 0.25: p >= 0.125 (tokens 2, 0, 3); 0.5: p >= 0.25 (2, 0).
  EXPECT_EQ(fast_keeps(logits, {0, 1.0f, 0.25f}, {}), (std::set<Token>{2, 0, 3}));
  EXPECT_EQ(fast_keeps(logits, {0, 1.0f, 0.5f}, {}), (std::set<Token>{2, 0}));
  // top_p after top_k renormalises over the top 3 (0.5/0.95 = 0.53): 0.5 keeps one token.
  EXPECT_EQ(fast_keeps(logits, {3, 0.5f, 0.0f}, {}), (std::set<Token>{2}));
  EXPECT_EQ(fast_keeps(logits, {3, 0.6f, 0.0f}, {}), (std::set<Token>{2, 0}));
  // Suppressed: never kept, and min_p is relative to the best allowed token.
  EXPECT_EQ(fast_keeps(logits, {0, 1.0f, 0.5f}, {2}), (std::set<Token>{0, 3}));
  EXPECT_EQ(fast_keeps(logits, {2, 1.0f, 0.0f}, {2}), (std::set<Token>{0, 3}));
}

// The filters' meaning, computed plainly in double: sort, top_k, top_p over the top-k set at
// temperature 1, then min_p relative to the best.
std::set<Token> exact_keeps(const std::vector<float>& logits, const FilterSpec& f,
                            const std::vector<Token>& suppress) {
  std::vector<std::pair<float, Token>> v;
  for (std::size_t i = 0; i < logits.size(); ++i) {
    if (std::find(suppress.begin(), suppress.end(), static_cast<Token>(i)) == suppress.end())
      v.push_back({logits[i], static_cast<Token>(i)});
  }
  std::sort(v.begin(), v.end(), [](auto& a, auto& b) {
    return a.first > b.first || (a.first == b.first && a.second < b.second);
  });
  if (f.top_k > 0 && static_cast<std::size_t>(f.top_k) < v.size())
    v.resize(static_cast<std::size_t>(f.top_k));
  if (f.top_p < 1.0f) {
    double z = 0.0;
    for (auto& [l, t] : v)
      z += std::exp(static_cast<double>(l) - v[0].first);
    double cum = 0.0;
    std::size_t keep = v.size();
    for (std::size_t i = 0; i < v.size(); ++i) {
      cum += std::exp(static_cast<double>(v[i].first) - v[0].first);
      if (cum >= f.top_p * z) {
        keep = i + 1;
        break;
      }
    }
    v.resize(keep);
  }
  std::set<Token> kept;
  for (auto& [l, t] : v) {
    if (f.min_p <= 0.0f || l >= v[0].first + std::log(f.min_p))
      kept.insert(t);
  }
  return kept;
}

// Equal sets; except that llama.cpp's top_p adds normalised probabilities in float, so where
// the cut falls among many tiny tail probabilities (p 0.95-0.999 over a wide vocabulary) it
// lands a little early (289 for 290, 4650 for 4816 of 150k: the exact cut is the double
// reference above, which the fast path matches exactly). Both are prefixes of the same order:
// one must hold the other, within 4 tokens or 4% of the larger.
::testing::AssertionResult expect_same_sets(const std::set<Token>& fast,
                                            const std::set<Token>& chain) {
  if (fast == chain)
    return ::testing::AssertionSuccess();
  const auto& small = fast.size() < chain.size() ? fast : chain;
  const auto& large = fast.size() < chain.size() ? chain : fast;
  const bool nested = std::includes(large.begin(), large.end(), small.begin(), small.end());
  const std::size_t slack = std::max<std::size_t>(4, large.size() / 25);
  if (nested && large.size() - small.size() <= slack)
    return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << "fast keeps " << fast.size() << ", llama.cpp "
                                       << chain.size() << (nested ? " (nested)" : " (not nested)");
}

TEST(SamplerFast, FiltersKeepWhatLlamaCppsChainKeeps) {
  init_llama_runtime();
  const std::vector<FilterSpec> specs = {
      {40, 1.0f, 0.0f},   {0, 0.95f, 0.0f}, {0, 1.0f, 0.05f},  {40, 0.95f, 0.05f},
      {1, 1.0f, 0.0f},    {0, 0.5f, 0.0f},  {0, 0.99f, 0.0f},  {0, 0.9f, 0.01f},
      {2000, 0.9f, 0.0f}, {5, 0.3f, 0.2f},  {0, 0.999f, 0.0f}, {300, 1.0f, 0.001f},
  };
  for (std::size_t n : {100u, 5000u, 32000u, 150000u}) {
    for (float sigma : {0.5f, 2.0f, 6.0f}) {
      const auto logits = random_logits(n, static_cast<std::uint32_t>(n) + 7, sigma);
      const std::vector<Token> suppress = {static_cast<Token>(n / 3), 0};
      for (const auto& f : specs) {
        for (const auto& sup : {std::vector<Token>{}, suppress}) {
          const auto fast = fast_keeps(logits, f, sup);
          EXPECT_EQ(fast, exact_keeps(logits, f, sup));
          EXPECT_TRUE(expect_same_sets(fast, chain_keeps(logits, f, sup)))
              << "n " << n << " sigma " << sigma << " k " << f.top_k << " p " << f.top_p
              << " min_p " << f.min_p << " suppressed " << sup.size();
        }
      }
    }
  }
}

TEST(SamplerFast, TheSameSeedGivesTheSameTokensAloneOrInterleaved) {
  const auto a_logits = random_logits(3000, 1, 2.0f);
  const auto b_logits = random_logits(3000, 2, 2.0f);
  for (const FilterSpec f : {FilterSpec{}, FilterSpec{40, 0.95f, 0.05f}}) {
    SamplingParams sp;
    sp.seed = 99;
    sp.top_k = f.top_k;
    sp.top_p = f.top_p;
    sp.min_p = f.min_p;
    sp.temperature = 0.8f;
    SamplerScratch scratch(3000);
    const auto run = [&](Sampler& s, const std::vector<float>& l) {
      SampledToken out;
      s.sample(l.data(), nullptr, scratch, out);
      return out.token;
    };
    Sampler alone_a(sp, 3000, {}, 64), alone_b(sp, 3000, {}, 64);
    std::vector<Token> a1, b1, a2, b2;
    for (int i = 0; i < 200; ++i)
      a1.push_back(run(alone_a, a_logits));
    for (int i = 0; i < 200; ++i)
      b1.push_back(run(alone_b, b_logits));
    Sampler mixed_a(sp, 3000, {}, 64), mixed_b(sp, 3000, {}, 64);
    for (int i = 0; i < 200; ++i) {  // batched: one step samples both, sharing the scratch
      a2.push_back(run(mixed_a, a_logits));
      b2.push_back(run(mixed_b, b_logits));
    }
    EXPECT_EQ(a1, a2);
    EXPECT_EQ(b1, b2);
    EXPECT_GT(std::set<Token>(a1.begin(), a1.end()).size(), 3u) << "it really samples";
    sp.seed = 100;
    Sampler other(sp, 3000, {}, 64);
    std::vector<Token> c;
    for (int i = 0; i < 200; ++i)
      c.push_back(run(other, a_logits));
    EXPECT_NE(a1, c) << "another seed, other tokens";
  }
}

TEST(SamplerFast, SuppressedTokensAreNeverSampledOnAnyPath) {
  auto logits = random_logits(1000, 3, 1.0f);
  logits[7] = 20.0f;
  logits[500] = 19.0f;
  const std::vector<Token> suppress = {7, 500};
  SamplerScratch scratch(1000);
  for (const FilterSpec f : {FilterSpec{}, FilterSpec{40, 0.95f, 0.05f}, FilterSpec{0, 0.9f, 0}}) {
    SamplingParams sp = unfiltered(5);
    sp.top_k = f.top_k;
    sp.top_p = f.top_p;
    sp.min_p = f.min_p;
    Sampler s(sp, 1000, {}, 64);
    for (int i = 0; i < 2000; ++i) {
      SampledToken out;
      s.sample(logits.data(), &suppress, scratch, out);
      ASSERT_NE(out.token, 7);
      ASSERT_NE(out.token, 500);
    }
  }
}

TEST(SamplerFast, LogprobsAreTheRawSoftmaxWithTheTopAlternatives) {
  const auto logits = random_logits(5000, 11, 2.0f);
  SamplingParams sp = unfiltered(1);
  sp.top_k = 10;
  sp.temperature = 0.5f;
  sp.logprobs = true;
  sp.top_logprobs = 5;
  Sampler s(sp, 5000, {}, 64);
  SamplerScratch scratch(5000);
  SampledToken out;
  s.sample(logits.data(), nullptr, scratch, out);
  const auto p = softmax(logits, 1.0f);
  EXPECT_NEAR(out.logprob, std::log(p[static_cast<std::size_t>(out.token)]), 1e-4);
  std::vector<std::size_t> order(p.size());
  for (std::size_t i = 0; i < order.size(); ++i)
    order[i] = i;
  std::partial_sort(order.begin(), order.begin() + 5, order.end(),
                    [&](auto a, auto b) { return p[a] > p[b]; });
  ASSERT_EQ(out.top.size(), 5u);
  for (std::size_t k = 0; k < 5; ++k) {
    EXPECT_EQ(out.top[k].token, static_cast<Token>(order[k]));
    EXPECT_NEAR(out.top[k].logprob, std::log(p[order[k]]), 1e-4);
  }
}

}  // namespace
}  // namespace troupe::engine
