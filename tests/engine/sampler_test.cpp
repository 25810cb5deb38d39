// The greedy fast path (Sampler with temperature 0 and no filters) against a plain scalar
// argmax: first index of the largest logit, NaNs skipped, suppressed tokens never chosen.
// (sampler_fast_test.cpp: the fast path's distribution, filters and seeds.)
// And the persistent ggml threadpool the BatchEngine attaches: created, paused, resumed.
#include "engine/sampler.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "engine/llama_runtime.hpp"
#include "engine/threadpool.hpp"
#include "engine_test_util.hpp"
#include "util/thread_name.hpp"

namespace troupe::engine {
namespace {

constexpr float inf = std::numeric_limits<float>::infinity();

Token reference_argmax(const std::vector<float>& v, const std::vector<Token>* suppress) {
  Token best = 0;
  float best_v = -inf;
  for (Token i = 0; i < static_cast<Token>(v.size()); ++i) {
    const bool banned =
        suppress && std::find(suppress->begin(), suppress->end(), i) != suppress->end();
    if (!banned && v[static_cast<std::size_t>(i)] > best_v) {
      best_v = v[static_cast<std::size_t>(i)];
      best = i;
    }
  }
  return best;
}

Token greedy(const std::vector<float>& logits, const std::vector<Token>* suppress = nullptr) {
  SamplingParams p;
  p.temperature = 0.0f;
  Sampler s(p, static_cast<std::int32_t>(logits.size()), {}, 64);
  SamplerScratch scratch(static_cast<std::int32_t>(logits.size()));
  SampledToken out;
  s.sample(logits.data(), suppress, scratch, out);
  return out.token;
}

TEST(Sampler, GreedyIsTheFirstLargestLogitAtEveryLengthAndPosition) {
  std::mt19937 rng(7);
  std::normal_distribution<float> d(0.0f, 3.0f);
  for (std::size_t n : {1u, 2u, 3u, 4u, 5u, 15u, 16u, 17u, 31u, 33u, 67u, 1000u, 32000u}) {
    for (int round = 0; round < 20; ++round) {
      std::vector<float> v(n);
      for (auto& x : v)
        x = d(rng);
      if (round % 4 == 1)
        v[rng() % n] = 100.0f;  // a clear winner anywhere, the tail included
      if (round % 4 == 2 && n > 1) {
        v[n - 1] = 50.0f;  // a tie: the first one wins
        v[rng() % n] = 50.0f;
      }
      ASSERT_EQ(greedy(v), reference_argmax(v, nullptr)) << "n " << n << " round " << round;
    }
  }
}

TEST(Sampler, GreedySkipsNanAndHandlesInfinities) {
  std::vector<float> v(40, 1.0f);
  v[3] = std::nanf("");
  v[20] = 2.0f;
  v[39] = std::nanf("");
  EXPECT_EQ(greedy(v), 20);
  std::vector<float> all_neg(37, -inf);
  EXPECT_EQ(greedy(all_neg), 0);
  std::vector<float> all_nan(21, std::nanf(""));
  EXPECT_EQ(greedy(all_nan), 0);
  std::vector<float> pos_inf(50, 0.0f);
  pos_inf[33] = inf;
  EXPECT_EQ(greedy(pos_inf), 33);
}

TEST(Sampler, GreedyNeverPicksASuppressedToken) {
  std::vector<float> v(100);
  for (std::size_t i = 0; i < v.size(); ++i)
    v[i] = static_cast<float>(i % 17);
  const std::vector<Token> suppress = {16, 33, 50, 67, 84};  // every 16.0
  EXPECT_EQ(greedy(v, &suppress), reference_argmax(v, &suppress));
  EXPECT_EQ(greedy(v, &suppress), 15);
}

TEST(CpuThreadpool, StartsPausedAndPausesAndResumes) {
  init_llama_runtime();
  auto pool = CpuThreadpool::create(2, 0);
  ASSERT_NE(pool, nullptr) << "the prebuilt CPU backend exports ggml_threadpool_new";
  EXPECT_EQ(pool->n_threads(), 2);
  EXPECT_NE(pool->get(), nullptr);
  EXPECT_TRUE(pool->paused()) << "no worker runs before the first graph";
  pool->resume();
  EXPECT_FALSE(pool->paused());
  pool->pause();
  pool->pause();  // idempotent
  EXPECT_TRUE(pool->paused());
  EXPECT_EQ(CpuThreadpool::create(0, 0), nullptr);
}

TEST(CpuThreadpool, ItsWorkersAreNamedAndTheCreatorKeepsItsName) {
  // An OpenMP build of ggml (bench/peer/build.sh --openmp) runs graphs on libgomp's threads: its
  // threadpool object starts no workers of its own.
  const bool openmp = init_llama_runtime().system_info.find("OPENMP = 1") != std::string::npos;
  std::thread([openmp] {
    util::set_thread_name("pool-creator");
    const auto before = testing::thread_names().count("ggml-worker");
    auto pool = CpuThreadpool::create(3, 0);
    ASSERT_NE(pool, nullptr);
    EXPECT_EQ(testing::thread_names().count("ggml-worker"), before + (openmp ? 0 : 2))
        << "ggml starts n_threads - 1 workers, none with OpenMP";
    EXPECT_EQ(util::thread_name(), "pool-creator");
  }).join();
}

}  // namespace
}  // namespace troupe::engine
