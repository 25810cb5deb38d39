#include "engine/sim_backend.hpp"

#include <gtest/gtest.h>

#include "engine_test_util.hpp"

namespace troupe::engine {
namespace {

using testing::collect;
using testing::run_sync;

SimOptions fast() {
  SimOptions o;
  o.prefill_tokens_per_s = 1e6;
  o.decode_tokens_per_s = 1e5;
  return o;
}

Task task(std::int32_t max_tokens, std::vector<std::string> stop = {}) {
  Task t;
  t.prompt = std::string("hello there general kenobi");
  t.stop.max_tokens = max_tokens;
  t.stop.stop = std::move(stop);
  return t;
}

TEST(SimBackend, StreamsMaxTokensWords) {
  auto b = make_sim_backend(fast());
  auto s = run_sync(b->generate(task(5)));
  auto r = collect(s);
  ASSERT_TRUE(r.started);
  EXPECT_EQ(r.started->prompt_tokens, 8);
  ASSERT_TRUE(r.finished);
  EXPECT_EQ(r.finished->reason, FinishReason::length);
  EXPECT_EQ(r.finished->usage.completion_tokens, 5);
  EXPECT_EQ(r.tokens.size(), 5u);
  EXPECT_EQ(std::count(r.text.begin(), r.text.end(), ' '), 5);
  EXPECT_EQ(b->stats().generation_tokens_total, 5);
}

TEST(SimBackend, StopStringsApply) {
  auto b = make_sim_backend(fast());
  auto s = run_sync(b->generate(task(50, {" "})));
  auto r = collect(s);
  ASSERT_TRUE(r.finished);
  EXPECT_EQ(r.finished->reason, FinishReason::stop);
  EXPECT_EQ(r.text.find(' '), std::string::npos);
  EXPECT_EQ(r.finished->usage.completion_tokens, 1);
}

TEST(SimBackend, ThousandConcurrentStreamsOnOneThread) {
  auto o = fast();
  o.n_parallel = 1000;
  auto b = make_sim_backend(o);
  std::vector<TokenStream> streams;
  for (int i = 0; i < 1000; ++i)
    streams.push_back(run_sync(b->generate(task(20))));
  std::int64_t tokens = 0;
  for (auto& s : streams)
    tokens += collect(s).finished->usage.completion_tokens;
  EXPECT_EQ(tokens, 20000);
}

TEST(SimBackend, QueueFullAndCancellation) {
  auto o = fast();
  o.n_parallel = 1;
  o.max_queue = 1;
  o.decode_tokens_per_s = 1000.0;
  o.n_ctx = 1 << 24;
  auto b = make_sim_backend(o);
  auto running = run_sync(b->generate(task(1 << 23)));  // holds its slot for hours
  ASSERT_TRUE(running.next_blocking());                 // Started
  auto queued = run_sync(b->generate(task(3)));
  while (b->stats().requests_queued != 1)
    std::this_thread::yield();
  auto refused = run_sync(b->generate(task(3)));
  auto r = collect(refused);
  ASSERT_TRUE(r.error);
  EXPECT_EQ(r.error->code, Errc::overloaded);
  running.cancel();  // frees the slot: the queued request runs
  auto q = collect(queued);
  ASSERT_TRUE(q.finished);
  EXPECT_EQ(b->stats().cancelled_total, 1);
}

TEST(SimBackend, RefusalsAndTokenizer) {
  auto b = make_sim_backend(fast());
  Task t = task(3);
  t.model = "other";
  auto s = run_sync(b->generate(std::move(t)));
  EXPECT_EQ(collect(s).error->code, Errc::not_found);
  Task big = task(3);
  big.prompt = std::string(1u << 20, 'x');
  auto s2 = run_sync(b->generate(std::move(big)));
  EXPECT_EQ(collect(s2).error->code, Errc::prompt_too_long);
  auto toks = run_sync(b->tokenize("", "a b c", true, false));
  ASSERT_TRUE(toks);
  EXPECT_EQ(toks->size(), 3u);
  EXPECT_EQ(b->health().state, HealthState::ready);
}

}  // namespace
}  // namespace troupe::engine
