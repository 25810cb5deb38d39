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

// It loads no LoRA adapters: naming one is a 400, as on a model served without --lora.
TEST(SimBackend, ALoraAdapterIdIsRefused) {
  auto b = make_sim_backend(fast());
  Task t = task(2);
  t.lora = LoraRequest{{0, 1.0f}};
  auto s = run_sync(b->generate(std::move(t)));
  auto r = collect(s);
  ASSERT_TRUE(r.error);
  EXPECT_EQ(r.error->code, Errc::invalid_request);
  EXPECT_EQ(r.error->param, "lora");
  EXPECT_TRUE(run_sync(b->lora_adapters(""))->empty());
}

// Its sequences have no slots: naming one (llama-server's id_slot) is a 400, not ignored.
TEST(SimBackend, AnIdSlotIsRefused) {
  auto b = make_sim_backend(fast());
  Task t = task(2);
  t.id_slot = 0;
  auto s = run_sync(b->generate(std::move(t)));
  auto r = collect(s);
  ASSERT_TRUE(r.error);
  EXPECT_EQ(r.error->code, Errc::invalid_request);
  EXPECT_EQ(r.error->param, "id_slot");
}

TEST(SimBackend, NPredictIsTheDefaultMaxTokensAndTheContextWithoutIt) {
  const auto completion = [](Backend& b, const Task& t) {
    auto s = run_sync(b.generate(t));
    const auto r = collect(s);
    EXPECT_TRUE(r.finished && r.finished->reason == FinishReason::length);
    return r.finished ? r.finished->usage.completion_tokens : -1;
  };
  auto o = fast();
  o.defaults.n_predict = 6;
  o.n_ctx = 40;
  Task t = task(1);
  t.stop.max_tokens.reset();
  EXPECT_EQ(completion(*make_sim_backend(o), t), 6);
  t.stop.max_tokens = 3;  // explicit: it wins
  EXPECT_EQ(completion(*make_sim_backend(o), t), 3);
  o.defaults.n_predict.reset();  // up to the context: 40 less the 8 prompt tokens
  t.stop.max_tokens.reset();
  EXPECT_EQ(completion(*make_sim_backend(o), t), 32);
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

TEST(SimBackend, UsageCountsWhatTokenizeReturns) {
  auto b = make_sim_backend(fast());
  for (std::string text : {"a b c", "hello there general kenobi", "  spaced\tout\n words  ",
                           "averyveryverylongword x", "w1 w2 w3"}) {
    auto toks = run_sync(b->tokenize("", text, true, false));
    ASSERT_TRUE(toks);
    Task t = task(2);
    t.prompt = text;
    auto s = run_sync(b->generate(std::move(t)));
    auto r = collect(s);
    ASSERT_TRUE(r.finished) << text;
    EXPECT_EQ(r.started->prompt_tokens, static_cast<std::int32_t>(toks->size())) << text;
    EXPECT_EQ(r.finished->usage.prompt_tokens, static_cast<std::int32_t>(toks->size())) << text;
  }
  EXPECT_EQ(sim_token_count("averyveryverylongword"), 6);  // 21 bytes: pieces of at most 4
}

TEST(SimBackend, RefusesToolsItCannotOffer) {
  auto b = make_sim_backend(fast());
  Task t = task(2);
  t.prompt = std::vector<ChatMessage>{{"user", "time?"}};
  t.chat.tools = {{"get_time", "", ""}};
  auto s = run_sync(b->generate(std::move(t)));
  auto r = collect(s);
  ASSERT_TRUE(r.error);
  EXPECT_EQ(r.error->code, Errc::invalid_request);
  EXPECT_EQ(r.error->param, "tools");
}

// What detokenize writes tokenizes back to the same ids (the bench trims prompts this way).
TEST(SimBackend, DetokenizedTextTokenizesBack) {
  auto b = make_sim_backend(fast());
  auto toks = run_sync(b->tokenize("", "some prompt text with averyveryverylongword", true, false));
  ASSERT_TRUE(toks);
  ASSERT_EQ(toks->size(), 11u);
  auto text = run_sync(b->detokenize("", *toks));
  ASSERT_TRUE(text);
  auto again = run_sync(b->tokenize("", *text, true, false));
  ASSERT_TRUE(again);
  EXPECT_EQ(*again, *toks) << *text;
  EXPECT_EQ(sim_token_count(*text), 11);
  // A token-like word outside the vocabulary is still one (hashed) token.
  auto big = run_sync(b->tokenize("", "w99999999", true, false));
  ASSERT_TRUE(big);
  ASSERT_EQ(big->size(), 1u);
  EXPECT_LT(big->front(), fast().n_vocab);
}

TEST(SimBackend, EmptyPromptIsRefused) {
  auto b = make_sim_backend(fast());
  Task t = task(2);
  t.prompt = std::string(" \n ");
  auto s = run_sync(b->generate(std::move(t)));
  EXPECT_EQ(collect(s).error->code, Errc::invalid_request);
}

// The pacing rule over a made-up sequence of wake-ups: on time (with jitter) the tokens keep
// the configured rate exactly; after a stall the stream resumes one interval at a time
// instead of emitting the tokens it missed back to back.
TEST(SimBackend, ALateTokenDoesNotStartABurst) {
  using namespace std::chrono;
  const steady_clock::duration interval = milliseconds(20);
  const steady_clock::time_point t0{};
  steady_clock::time_point due = t0, prev_emit{};
  std::vector<steady_clock::duration> gaps;
  for (int k = 0; k < 40; ++k) {
    // The thread wakes 1 ms late, except at token 10: 5 intervals late (a stalled thread).
    const auto emit = due + (k == 10 ? 5 * interval : milliseconds(1));
    if (k > 0)
      gaps.push_back(emit - prev_emit);
    prev_emit = emit;
    due = sim_next_due(due, emit, interval);
  }
  for (std::size_t i = 0; i < gaps.size(); ++i) {
    EXPECT_GE(gaps[i], interval) << "gap before token " << i + 1;
    if (i + 1 != 10) {
      EXPECT_LE(gaps[i], interval + milliseconds(1)) << "gap before token " << i + 1;
    }
  }
  // On time, no drift: 1 ms of jitter per token does not accumulate.
  EXPECT_EQ(sim_next_due(t0, t0 + milliseconds(1), interval), t0 + interval);
}

// The step clock: every due time moves up to the next tick, ticks stay ticks, so streams
// started at different moments emit on the same instants.
TEST(SimBackend, StepAlignedDueTimesLandOnTheStepClock) {
  using namespace std::chrono;
  const steady_clock::duration interval = milliseconds(20);
  const steady_clock::time_point epoch{seconds(100)};
  EXPECT_EQ(sim_step_align(epoch, epoch, interval), epoch);
  EXPECT_EQ(sim_step_align(epoch + interval, epoch, interval), epoch + interval);
  EXPECT_EQ(sim_step_align(epoch + nanoseconds(1), epoch, interval), epoch + interval);
  EXPECT_EQ(sim_step_align(epoch + milliseconds(39), epoch, interval), epoch + 2 * interval);
  EXPECT_EQ(sim_step_align(epoch - milliseconds(5), epoch, interval), epoch);
  // Two streams out of phase by 7 ms share every tick after the first.
  steady_clock::time_point a = epoch + milliseconds(3), b = epoch + milliseconds(10);
  for (int k = 0; k < 5; ++k) {
    a = sim_step_align(sim_next_due(a, a, interval), epoch, interval);
    b = sim_step_align(sim_next_due(b, b, interval), epoch, interval);
    EXPECT_EQ(a, b) << "token " << k;
    EXPECT_EQ((a - epoch) % interval, steady_clock::duration::zero());
  }
}

TEST(SimBackend, StepAlignedStreamsCompleteWithTheirCounts) {
  SimOptions o = fast();
  o.step_aligned = true;
  auto b = make_sim_backend(o);
  for (int n : {1, 5, 9}) {
    auto s = run_sync(b->generate(task(n)));
    auto r = collect(s);
    ASSERT_TRUE(r.finished);
    EXPECT_EQ(r.finished->usage.completion_tokens, n);
    EXPECT_EQ(r.tokens.size(), static_cast<std::size_t>(n));
  }
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
