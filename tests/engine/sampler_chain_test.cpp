// llama-server's samplers on llama.cpp's chain: typical_p, top_n_sigma, XTC, DRY, mirostat and
// dynamic temperature, each on a crafted logit vector, drawn many times with a fixed seed (so
// the counts are fixed numbers), against the same draws without it. And which requests take
// the chain: every sampler at its "off" value keeps the fast path.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <vector>

#include "engine/llama_runtime.hpp"
#include "engine/sampler.hpp"

namespace troupe::engine {
namespace {

// Temperature 1, no filter, a fixed seed: the model's own distribution.
SamplingParams plain(std::uint32_t seed = 11) {
  SamplingParams sp;
  sp.seed = seed;
  sp.temperature = 1.0f;
  sp.top_k = 0;
  sp.top_p = 1.0f;
  sp.min_p = 0.0f;
  return sp;
}

// How often each token is drawn in `n` draws from `logits`.
std::map<Token, int> draws(const SamplingParams& sp, const std::vector<float>& logits, int n,
                           const std::vector<Token>& prompt = {}, SamplerPtr dry = {}) {
  const auto n_vocab = static_cast<std::int32_t>(logits.size());
  Sampler s(sp, n_vocab, prompt, 256, {}, std::move(dry));
  SamplerScratch scratch(n_vocab);
  std::map<Token, int> count;
  for (int i = 0; i < n; ++i) {
    SampledToken out;
    EXPECT_EQ(s.sample(logits.data(), nullptr, scratch, out), SampleStatus::ok);
    ++count[out.token];
  }
  return count;
}

int count_of(const std::map<Token, int>& c, Token t) {
  const auto it = c.find(t);
  return it == c.end() ? 0 : it->second;
}

// Logits whose softmax is `p` (up to a constant).
std::vector<float> from_probabilities(const std::vector<double>& p) {
  std::vector<float> l;
  for (double x : p)
    l.push_back(static_cast<float>(std::log(x)));
  return l;
}

class SamplerChain : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { init_llama_runtime(); }
};

TEST_F(SamplerChain, OffValuesKeepTheFastPathAndEachSamplerTakesTheChain) {
  const std::int32_t n = 100;
  EXPECT_FALSE(Sampler(plain(), n, {}, 64).uses_chain());
  SamplingParams defaults;  // unset fields: llama-server's filters, still the fast path
  EXPECT_FALSE(Sampler(defaults, n, {}, 64).uses_chain());
  SamplingParams off = plain();
  off.typical_p = 1.0f;
  off.top_n_sigma = -1.0f;
  off.dynatemp_range = 0.0f;
  off.dry_multiplier = 0.0f;
  off.xtc_probability = 0.5f;
  off.xtc_threshold = 0.6f;  // above 0.5: XTC never removes anything
  off.mirostat = 0;
  EXPECT_FALSE(Sampler(off, n, {}, 64).uses_chain());

  const std::vector<void (*)(SamplingParams&)> each = {
      [](SamplingParams& s) { s.typical_p = 0.9f; },
      [](SamplingParams& s) { s.top_n_sigma = 2.0f; },
      [](SamplingParams& s) { s.dynatemp_range = 0.5f; },
      [](SamplingParams& s) { s.xtc_probability = 0.5f; },
      [](SamplingParams& s) { s.mirostat = 1; },
      [](SamplingParams& s) { s.mirostat = 2; },
      [](SamplingParams& s) { s.repeat_penalty = 1.1f; },
      [](SamplingParams& s) {
        s.logit_bias = {{3, 1.0f}};
      },
  };
  for (std::size_t i = 0; i < each.size(); ++i) {
    SamplingParams on = plain();
    each[i](on);
    EXPECT_TRUE(Sampler(on, n, {}, 64).uses_chain()) << "sampler " << i;
  }
  SamplingParams dry = plain();
  dry.dry_multiplier = 0.8f;
  dry.dry_sequence_breakers.clear();
  EXPECT_TRUE(uses_dry(dry));
  EXPECT_TRUE(Sampler(dry, n, {}, 64, {}, make_dry_sampler(nullptr, dry, 64)).uses_chain());
  dry.mirostat = 2;  // mirostat replaces the chain, DRY included (llama-server)
  EXPECT_FALSE(uses_dry(dry));
  EXPECT_EQ(make_dry_sampler(nullptr, dry, 64), nullptr);
}

TEST_F(SamplerChain, TypicalPRemovesTheMostLikelyOutlier) {
  // One token holds 0.3, seventy share the rest at 0.01 each. The entropy is close to the
  // small tokens' surprise, far from the outlier's: typical_p 0.5 keeps only small tokens.
  std::vector<double> p(71, 0.01);
  p[0] = 0.3;
  const auto logits = from_probabilities(p);
  const auto without = draws(plain(), logits, 4000);
  EXPECT_GT(count_of(without, 0), 1000) << "the premise: about 30% of the draws";
  SamplingParams sp = plain();
  sp.typical_p = 0.5f;
  const auto with = draws(sp, logits, 4000);
  EXPECT_EQ(count_of(with, 0), 0);
  EXPECT_GT(with.size(), 20u) << "the typical tokens are still drawn";
}

TEST_F(SamplerChain, TopNSigmaKeepsOnlyTokensWithinNSigmaOfTheMax) {
  // Two high logits among 98 zeros: the standard deviation of the logits is about 1.33, so
  // n = 1 keeps the logits above 10 - 1.33: tokens 0 and 1. At temperature 2 the zeros hold
  // about 30% of the mass without it.
  std::vector<float> logits(100, 0.0f);
  logits[0] = 10.0f;
  logits[1] = 9.0f;
  SamplingParams sp = plain();
  sp.temperature = 2.0f;
  const auto without = draws(sp, logits, 2000);
  EXPECT_GT(2000 - count_of(without, 0) - count_of(without, 1), 300);
  sp.top_n_sigma = 1.0f;
  const auto with = draws(sp, logits, 2000);
  EXPECT_EQ(count_of(with, 0) + count_of(with, 1), 2000);
  EXPECT_GT(count_of(with, 1), 200) << "both stay: token 1 is within one sigma";
}

TEST_F(SamplerChain, XtcRemovesTheTopChoicesAboveTheThreshold) {
  // 0.5, 0.3, 0.15, 0.05: three tokens reach 0.1; XTC (always triggered) removes all of them
  // but the least likely, token 2, and leaves token 3 alone.
  const auto logits = from_probabilities({0.5, 0.3, 0.15, 0.05});
  SamplingParams sp = plain();
  sp.xtc_probability = 1.0f;
  sp.xtc_threshold = 0.1f;
  const auto with = draws(sp, logits, 2000);
  EXPECT_EQ(count_of(with, 0) + count_of(with, 1), 0);
  EXPECT_GT(count_of(with, 2), count_of(with, 3));
  EXPECT_GT(count_of(with, 3), 0);
  sp.xtc_probability = 0.0f;  // never triggered: token 0 is the most drawn
  const auto never = draws(sp, logits, 2000);
  EXPECT_GT(count_of(never, 0), 800);
  sp.xtc_probability = 0.5f;  // half the time
  const auto half = draws(sp, logits, 2000);
  EXPECT_GT(count_of(half, 0), 300);
  EXPECT_LT(count_of(half, 0), 700);
}

TEST_F(SamplerChain, DryPenalizesATokenThatWouldExtendARepetition) {
  // The prompt ends with "1 2 3", which came before followed by 4: drawing 4 would extend the
  // repetition to length 4 (allowed: 2). Greedy prefers 4 (logit 2.0) over 6 (1.5) without DRY.
  const std::vector<Token> prompt = {1, 2, 3, 4, 5, 1, 2, 3};
  std::vector<float> logits(10, 0.0f);
  logits[4] = 2.0f;
  logits[6] = 1.5f;
  SamplingParams sp = plain();
  sp.temperature = 0.0f;
  EXPECT_EQ(count_of(draws(sp, logits, 1, prompt), 4), 1);
  sp.dry_multiplier = 0.8f;  // penalty 0.8 * 1.75^(3 - 2) = 1.4 on token 4 only
  sp.dry_base = 1.75f;
  sp.dry_allowed_length = 2;
  sp.dry_sequence_breakers.clear();
  EXPECT_EQ(count_of(draws(sp, logits, 1, prompt, make_dry_sampler(nullptr, sp, 256)), 6), 1);
  // A repetition shorter than the allowed length is not penalized.
  sp.dry_allowed_length = 4;
  EXPECT_EQ(count_of(draws(sp, logits, 1, prompt, make_dry_sampler(nullptr, sp, 256)), 4), 1);
  // Outside the window, nothing repeats.
  sp.dry_allowed_length = 2;
  sp.dry_penalty_last_n = 3;
  EXPECT_EQ(count_of(draws(sp, logits, 1, prompt, make_dry_sampler(nullptr, sp, 256)), 4), 1);
}

// The mean surprise, -log2 p under the softmax of `logits`, of `n` seeded draws after a
// warm-up of 200 (mirostat adapts its threshold from the first draws on).
double mean_surprise(const SamplingParams& sp, const std::vector<float>& logits, int n) {
  const auto n_vocab = static_cast<std::int32_t>(logits.size());
  const float m = *std::max_element(logits.begin(), logits.end());
  double z = 0.0;
  for (float l : logits)
    z += std::exp(l - m);
  Sampler s(sp, n_vocab, {}, 256);
  SamplerScratch scratch(n_vocab);
  double sum = 0.0;
  for (int i = 0; i < 200 + n; ++i) {
    SampledToken out;
    s.sample(logits.data(), nullptr, scratch, out);
    const double p = std::exp(logits[static_cast<std::size_t>(out.token)] - m) / z;
    if (i >= 200)
      sum += -std::log2(p);
  }
  return sum / n;
}

TEST_F(SamplerChain, MirostatKeepsTheSurpriseNearItsTarget) {
  // 1000 tokens with Zipf's probabilities (rank^-1.1): the most likely token has a surprise
  // of 2.5 bits, a plain draw's mean surprise is the entropy, 6.8 bits. Mirostat holds it
  // down, the more the lower its target tau.
  std::vector<float> logits(1000);
  for (std::size_t i = 0; i < logits.size(); ++i)
    logits[i] = -1.1f * std::log(static_cast<float>(i + 1));
  const double free = mean_surprise(plain(), logits, 3000);
  EXPECT_GT(free, 6.5);
  for (int version : {1, 2}) {
    SamplingParams sp = plain();
    sp.mirostat = version;
    sp.mirostat_eta = 0.1f;
    sp.mirostat_tau = 3.0f;
    const double low = mean_surprise(sp, logits, 3000);
    sp.mirostat_tau = 5.0f;
    const double high = mean_surprise(sp, logits, 3000);
    EXPECT_LT(low, high) << "mirostat " << version;
    EXPECT_LT(high, free - 0.5) << "mirostat " << version;
    EXPECT_LT(low, 4.5) << "mirostat " << version;
  }
}

TEST_F(SamplerChain, DynamicTemperatureSharpensLowEntropyAndFlattensHighEntropy) {
  // Temperature 1 +- 0.9, by normalized entropy. One strong token among 1000 weak ones: the
  // normalized entropy is about 0.33, so the temperature drops to about 0.7 and the strong
  // token wins more often than at temperature 1.
  std::vector<float> peaked(1000, 0.0f);
  peaked[0] = 8.0f;
  SamplingParams sp = plain();
  const int plain_peaked = count_of(draws(sp, peaked, 2000), 0);
  sp.dynatemp_range = 0.9f;
  const int dyn_peaked = count_of(draws(sp, peaked, 2000), 0);
  EXPECT_GT(plain_peaked, 1300);  // about 75%
  EXPECT_LT(plain_peaked, 1700);
  EXPECT_GT(dyn_peaked, 1900);  // about 99%

  // A nearly flat distribution: the normalized entropy is close to 1, the temperature rises
  // towards 1.9, and the slightly favoured token is drawn less often than at temperature 1.
  std::vector<float> flat(100, 0.0f);
  flat[0] = 1.0f;
  sp.dynatemp_range = 0.0f;
  const int plain_flat = count_of(draws(sp, flat, 20000), 0);
  sp.dynatemp_range = 0.9f;
  const int dyn_flat = count_of(draws(sp, flat, 20000), 0);
  EXPECT_GT(plain_flat, 400);             // about 2.7%
  EXPECT_LT(dyn_flat, plain_flat - 100);  // about 1.7%
  // The exponent 0 maps every entropy to the top of the range: flatter still on the peak.
  sp.dynatemp_exponent = 0.0f;
  EXPECT_LT(count_of(draws(sp, peaked, 2000), 0), plain_peaked);
}

TEST_F(SamplerChain, TemperatureZeroIsGreedyAfterTheFilters) {
  // llama-server's chain at temperature 0: the filters first, then the best of what is left.
  const auto logits = from_probabilities({0.5, 0.3, 0.15, 0.05});
  SamplingParams sp = plain();
  sp.temperature = 0.0f;
  sp.xtc_probability = 1.0f;
  sp.xtc_threshold = 0.1f;
  EXPECT_EQ(count_of(draws(sp, logits, 10), 2), 10);
  sp.xtc_probability = 0.0f;
  sp.mirostat = 2;
  EXPECT_EQ(count_of(draws(sp, logits, 10), 0), 10);
}

// llama-server's `samplers`: only the stages listed, in their order, then the draw.
TEST_F(SamplerChain, ARequestsOwnOrderAppliesOnlyTheStagesItLists) {
  const auto logits = from_probabilities({0.4, 0.3, 0.2, 0.1});
  SamplingParams sp = plain();
  sp.top_k = 1;
  sp.temperature = 0.0f;
  // Without `temperature` in the list, temperature 0 is not applied: the draw is over the
  // whole distribution...
  sp.samplers = {SamplerStage::top_p};
  EXPECT_TRUE(Sampler(sp, 4, {}, 64).uses_chain());
  const auto free = draws(sp, logits, 400);
  EXPECT_GT(count_of(free, 3), 10);
  EXPECT_GT(count_of(free, 1), 60);
  // ...with it, only the best token; top_k = 1 listed: the same.
  sp.samplers = {SamplerStage::temperature};
  EXPECT_EQ(count_of(draws(sp, logits, 50), 0), 50);
  sp.temperature = 1.0f;
  sp.samplers = {SamplerStage::top_k, SamplerStage::temperature};
  EXPECT_EQ(count_of(draws(sp, logits, 50), 0), 50);
  // min_p at 0.6 of the best keeps tokens 0 and 1, only when it is listed.
  sp.top_k = 0;
  sp.min_p = 0.6f;
  sp.samplers = {SamplerStage::min_p};
  const auto cut = draws(sp, logits, 400);
  EXPECT_EQ(count_of(cut, 0) + count_of(cut, 1), 400);
  sp.samplers = {SamplerStage::temperature};
  EXPECT_GT(count_of(draws(sp, logits, 400), 3), 10);
}

}  // namespace
}  // namespace troupe::engine
