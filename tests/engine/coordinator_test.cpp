#include "engine/coordinator.hpp"

#include <gtest/gtest.h>

#include <cctype>
#include <fstream>
#include <sstream>

#include "engine_test_util.hpp"

namespace troupe::engine {
namespace {

using testing::collect;
using testing::run_sync;

class CoordinatorTest : public ::testing::Test {
 protected:
  std::unique_ptr<Coordinator> make(EngineOptions o = {}) {
    if (o.model_path.empty())
      o.model_path = testing::tiny_model();
    o.model_id = "tiny";
    o.engine.n_threads = 1;
    auto c = std::make_unique<Coordinator>(std::move(o));
    EXPECT_EQ(c->wait_loaded().state, HealthState::ready);
    return c;
  }

  static Task task(std::string prompt, std::int32_t max_tokens = 8) {
    Task t;
    t.prompt = std::move(prompt);
    t.sampling.temperature = 0.0f;
    t.stop.max_tokens = max_tokens;
    t.stop.ignore_eos = true;
    return t;
  }

  // Waits (by polling the gauges: nothing else shows a queued request) for the queue size.
  static void wait_queued(const Coordinator& c, std::int64_t n) {
    while (c.stats().requests_queued != n)
      std::this_thread::yield();
  }
};

TEST_F(CoordinatorTest, GeneratesAStream) {
  auto c = make();
  auto s = run_sync(c->generate(task("Once upon a time", 8)));
  auto r = collect(s);
  ASSERT_FALSE(r.error) << r.error->message;
  ASSERT_TRUE(r.started);
  EXPECT_GT(r.started->prompt_tokens, 1);
  ASSERT_TRUE(r.finished);
  EXPECT_EQ(r.finished->reason, FinishReason::length);
  EXPECT_EQ(r.finished->usage.completion_tokens, 8);
  EXPECT_EQ(r.tokens.size(), 8u);
  EXPECT_EQ(c->stats().generation_tokens_total, 8);
  EXPECT_EQ(c->models()[0].id, "tiny");
  EXPECT_GT(c->models()[0].n_ctx, 0);
}

TEST_F(CoordinatorTest, NamesItsThreads) {
  auto c = make();
  auto s = run_sync(c->generate(task("Once upon a time", 2)));  // the tokenizer has run
  collect(s);
  const auto names = testing::thread_names();
  for (const char* n : {"batch-engine", "sequences", "tokenizer"})
    EXPECT_GE(names.count(n), 1u) << n;
}

TEST_F(CoordinatorTest, ChatMessagesUseTheTemplate) {
  auto c = make();
  Task t = task("");
  t.prompt = std::vector<ChatMessage>{{"system", "Be brief."}, {"user", "Hello"}};
  auto s = run_sync(c->generate(std::move(t)));
  auto r = collect(s);
  ASSERT_TRUE(r.finished) << (r.error ? r.error->message : "");
}

std::string template_file(const std::string& name) {
  std::ifstream in(std::string(TROUPE_LLAMA_TESTDATA) + "/templates/" + name);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

TEST_F(CoordinatorTest, AChatTemplateThatCannotRenderFailsTheLoad) {
  EngineOptions o;
  o.model_path = testing::tiny_model();
  o.engine.n_threads = 1;
  o.chat_template = "{{ raise_exception('no conversation for you') }}";
  Coordinator c(std::move(o));
  const Health h = c.wait_loaded();
  EXPECT_EQ(h.state, HealthState::failed);
  EXPECT_NE(h.message.find("no conversation for you"), std::string::npos) << h.message;
}

TEST_F(CoordinatorTest, AnUnknownTemplateNameFailsTheLoad) {
  EngineOptions o;
  o.model_path = testing::tiny_model();
  o.engine.n_threads = 1;
  o.chat_template = "tool_use";  // the tiny model has no such variant
  Coordinator c(std::move(o));
  const Health h = c.wait_loaded();
  EXPECT_EQ(h.state, HealthState::failed);
  EXPECT_NE(h.message.find("tool_use"), std::string::npos) << h.message;
}

TEST_F(CoordinatorTest, ApplyTemplateRendersToolsWithTheGivenTemplate) {
  EngineOptions o;
  o.chat_template = template_file("Qwen-Qwen2.5-7B-Instruct.jinja");
  auto c = make(std::move(o));
  Task t;
  t.prompt = std::vector<ChatMessage>{{"user", "What time is it?"}};
  t.chat.tools = {{"get_time", "the time", R"({"type":"object","properties":{}})"}};
  auto prompt = run_sync(c->apply_template(t));
  ASSERT_TRUE(prompt) << prompt.error().message;
  EXPECT_NE(prompt->find("<tools>"), std::string::npos) << *prompt;
  EXPECT_TRUE(prompt->ends_with("<|im_start|>assistant\n")) << *prompt;
}

// llama-server's GET /props: what the engine serves with.
TEST_F(CoordinatorTest, PropsSayTheEnginesShapeTemplateAndDefaults) {
  EngineOptions o;
  o.chat_template = template_file("Qwen-Qwen2.5-7B-Instruct.jinja");
  std::string source = o.chat_template;
  while (!source.empty() && std::isspace(static_cast<unsigned char>(source.back())))
    source.pop_back();  // llama.cpp keeps a template without its trailing white space
  o.engine.n_parallel = 2;
  o.engine.n_ctx = 512;
  o.defaults.temperature = 0.3f;
  o.defaults.n_predict = 64;
  auto c = make(std::move(o));
  auto p = run_sync(c->props(""));
  ASSERT_TRUE(p) << p.error().message;
  EXPECT_EQ(p->id, "tiny");
  EXPECT_EQ(p->n_ctx, c->models().front().n_ctx);  // per sequence
  EXPECT_GT(p->n_ctx, 0);
  EXPECT_EQ(p->total_slots, 2);
  EXPECT_EQ(p->model_path, testing::tiny_model());
  EXPECT_EQ(p->chat_template, source);
  EXPECT_EQ(p->defaults.temperature, 0.3f);
  EXPECT_EQ(p->defaults.n_predict, 64);
  EXPECT_FALSE(p->embeddings);
  EXPECT_TRUE(run_sync(c->props("tiny")));
  auto unknown = run_sync(c->props("nope"));
  ASSERT_FALSE(unknown);
  EXPECT_EQ(unknown.error().code, Errc::not_found);
}

TEST_F(CoordinatorTest, AToolConversationGeneratesAndBadKwargsAreARequestError) {
  EngineOptions o;
  o.chat_template = template_file("Qwen-Qwen2.5-7B-Instruct.jinja");
  auto c = make(std::move(o));
  Task t = task("");
  ChatMessage call{"assistant", ""};
  call.tool_calls.push_back({"a1b2c3d4e", "get_time", R"({"city":"Paris"})"});
  ChatMessage result{"tool", "10:30"};
  result.tool_call_id = "a1b2c3d4e";
  t.prompt = std::vector<ChatMessage>{{"user", "Time in Paris?"}, call, result};
  t.chat.tools = {
      {"get_time", "the time", R"({"type":"object","properties":{"city":{"type":"string"}}})"}};
  Task bad = t;
  auto s = run_sync(c->generate(std::move(t)));
  auto r = collect(s);
  ASSERT_TRUE(r.finished) << (r.error ? r.error->message : "");

  bad.chat.template_kwargs = {{"enable_thinking", "\"yes\""}};
  auto s2 = run_sync(c->generate(std::move(bad)));
  auto r2 = collect(s2);
  ASSERT_TRUE(r2.error);
  EXPECT_EQ(r2.error->code, Errc::invalid_request);
  EXPECT_EQ(r2.error->param, "chat_template_kwargs");
}

TEST_F(CoordinatorTest, UnknownModelIsNotFound) {
  auto c = make();
  Task t = task("hi");
  t.model = "gpt-17";
  auto s = run_sync(c->generate(std::move(t)));
  auto r = collect(s);
  ASSERT_TRUE(r.error);
  EXPECT_EQ(r.error->code, Errc::not_found);
}

TEST_F(CoordinatorTest, InvalidParameterNamesIt) {
  auto c = make();
  Task t = task("hi");
  t.sampling.top_p = 1.5f;
  auto s = run_sync(c->generate(std::move(t)));
  auto r = collect(s);
  ASSERT_TRUE(r.error);
  EXPECT_EQ(r.error->code, Errc::invalid_request);
  EXPECT_EQ(r.error->param, "top_p");
}

// The message says what the operator can change, which depends on how the cells are split.
TEST_F(CoordinatorTest, PromptTooLongSaysHowLongAndWhatToChange) {
  const auto too_long = [&](EngineOptions o) {
    auto c = make(o);
    const auto n_ctx = c->models()[0].n_ctx;
    Task t = task("");
    t.prompt = std::vector<Token>(static_cast<std::size_t>(n_ctx), 5);
    auto s = run_sync(c->generate(std::move(t)));
    auto r = collect(s);
    EXPECT_TRUE(r.error);
    if (!r.error)
      return std::pair{n_ctx, std::string{}};
    EXPECT_EQ(r.error->code, Errc::prompt_too_long);
    EXPECT_NE(r.error->message.find(std::to_string(n_ctx) + " tokens per request"),
              std::string::npos)
        << r.error->message;
    return std::pair{n_ctx, r.error->message};
  };
  EngineOptions split;  // a stream of -c / --parallel cells per sequence
  split.engine.kv_unified = false;
  const auto [per_slot, split_says] = too_long(split);
  EXPECT_EQ(per_slot, 1024);
  EXPECT_NE(split_says.find("larger -c/--ctx-size (now 4096 for 4 parallel sequences), a "
                            "smaller --parallel, or --kv-unified"),
            std::string::npos)
      << split_says;
  EngineOptions shared;  // one pool: a request may use all of it
  shared.engine.kv_unified = true;
  shared.engine.n_ctx = 1024;
  const auto [whole, shared_says] = too_long(shared);
  EXPECT_EQ(whole, 1024);
  EXPECT_NE(shared_says.find("larger -c/--ctx-size (now 1024, shared by 4 parallel sequences)"),
            std::string::npos)
      << shared_says;
  shared.engine.n_ctx = 4096;  // more than the tiny model's trained 2048: capped there
  const auto [trained, trained_says] = too_long(shared);
  EXPECT_EQ(trained, 2048);
  EXPECT_NE(trained_says.find("a model trained for a longer context (this one: 2048 tokens)"),
            std::string::npos)
      << trained_says;
}

TEST_F(CoordinatorTest, ContextZeroIsTheTrainedContextAndSharesArePadded) {
  EngineOptions o;
  o.engine.n_ctx = 0;  // -c 0
  o.engine.n_parallel = 2;
  o.engine.kv_unified = false;
  auto c = make(o);
  // mkmodel's tiny shape is trained for 2048 tokens: 1024 for each of the two sequences.
  EXPECT_EQ(c->models()[0].n_ctx, 1024);
  EngineOptions odd;
  odd.engine.n_ctx = 700;  // 350 each: padded up, never rounded down below what was asked
  odd.engine.n_parallel = 2;
  odd.engine.kv_unified = false;
  EXPECT_EQ(make(odd)->models()[0].n_ctx, 512);
  odd.engine.kv_unified = true;  // one pool of 700, padded up to 768: a request may use it all
  EXPECT_EQ(make(odd)->models()[0].n_ctx, 768);
  o.engine.kv_unified = true;  // the trained 2048 in one pool
  EXPECT_EQ(make(o)->models()[0].n_ctx, 2048);
}

TEST_F(CoordinatorTest, HugePromptIsRefusedBeforeTokenizing) {
  auto c = make();
  auto s = run_sync(c->generate(task(std::string(16u << 20, 'a'))));
  auto r = collect(s);
  ASSERT_TRUE(r.error);
  EXPECT_EQ(r.error->code, Errc::prompt_too_long);
  EXPECT_NE(r.error->message.find("at least"), std::string::npos);
  EXPECT_EQ(c->stats().prompt_tokens_total, 0);
}

TEST_F(CoordinatorTest, QueueFullIsOverloadedAndCancelledQueuedRequestLeaves) {
  EngineOptions o;
  o.engine.n_parallel = 1;
  o.max_queue = 1;
  o.engine.n_ctx = 2048;
  auto c = make(o);
  auto running = run_sync(c->generate(task("a long one", 100000)));
  auto first = running.next_blocking();  // Started: it holds the only slot
  ASSERT_TRUE(first && std::holds_alternative<Started>(*first));
  auto queued = run_sync(c->generate(task("waits", 4)));
  wait_queued(*c, 1);
  auto refused = run_sync(c->generate(task("refused", 4)));
  auto r = collect(refused);
  ASSERT_TRUE(r.error);
  EXPECT_EQ(r.error->code, Errc::overloaded);
  queued.cancel();
  wait_queued(*c, 0);
  EXPECT_EQ(c->stats().cancelled_total, 1);
  EXPECT_EQ(c->stats().requests_running, 1);
}

TEST_F(CoordinatorTest, CancellingARunningRequestFreesItsSlotForTheQueue) {
  EngineOptions o;
  o.engine.n_parallel = 1;
  auto c = make(o);
  auto running = run_sync(c->generate(task("a long one", 100000)));
  ASSERT_TRUE(running.next_blocking());
  auto queued = run_sync(c->generate(task("next", 4)));
  wait_queued(*c, 1);
  running = TokenStream{};  // dropped: cancelled
  auto r = collect(queued);
  ASSERT_TRUE(r.finished) << (r.error ? r.error->message : "");
  EXPECT_EQ(r.finished->usage.completion_tokens, 4);
  auto snap = c->inspect_engine().get();
  EXPECT_FALSE(snap.slots[0].busy);
}

// A request for a busy slot (llama-server's id_slot) waits in the engine without a place:
// a request for any slot starts at once in the idle one, and the pinned one follows the busy
// slot's sequence there. Parked requests count against the queue's bound; past it one keeps
// its place, and the next request is refused as overloaded.
TEST_F(CoordinatorTest, ARequestWaitingForItsSlotHoldsNoPlace) {
  EngineOptions o;
  o.engine.n_parallel = 2;
  o.max_queue = 1;
  o.engine.n_ctx = 2048;
  auto c = make(o);
  auto busy = run_sync(c->generate(task("a long one", 100000)));
  ASSERT_TRUE(busy.next_blocking());
  const auto snap = c->inspect_engine().get();
  const std::int32_t held = snap.slots[0].busy ? 0 : 1;
  Task first = task("pinned", 4);
  first.id_slot = held;
  auto pinned = run_sync(c->generate(std::move(first)));
  wait_queued(*c, 1);  // parked in the engine, told as waiting
  EXPECT_EQ(c->stats().requests_running, 1);
  auto any = run_sync(c->generate(task("any slot", 4)));
  const auto other = collect(any);
  ASSERT_TRUE(other.finished) << (other.error ? other.error->message : "");
  while (c->stats().requests_running != 1)  // its release follows its last event
    std::this_thread::yield();

  Task second = task("pinned too", 4);
  second.id_slot = held;
  auto pinned_too = run_sync(c->generate(std::move(second)));
  while (c->stats().requests_running != 2)  // past the bound: it keeps its place
    std::this_thread::yield();
  auto over = run_sync(c->generate(task("refused", 4)));
  const auto refused = collect(over);
  ASSERT_TRUE(refused.error);
  EXPECT_EQ(refused.error->code, Errc::overloaded);

  busy = TokenStream{};  // the held slot goes to the first pinned request, then the second
  const auto r1 = collect(pinned);
  const auto r2 = collect(pinned_too);
  ASSERT_TRUE(r1.finished && r2.finished);
  EXPECT_EQ(r1.finished->usage.completion_tokens, 4);
  EXPECT_EQ(r2.finished->usage.completion_tokens, 4);
  wait_queued(*c, 0);
  while (c->stats().requests_running != 0)
    std::this_thread::yield();
}

TEST_F(CoordinatorTest, RepeatedPromptReusesTheCache) {
  auto c = make();
  std::string prompt;
  for (int i = 0; i < 60; ++i)
    prompt += "word" + std::to_string(i) + " ";
  auto a = run_sync(c->generate(task(prompt, 4)));
  auto ra = collect(a);
  auto b = run_sync(c->generate(task(prompt, 4)));
  auto rb = collect(b);
  ASSERT_TRUE(ra.finished && rb.finished);
  EXPECT_EQ(rb.started->cached_tokens, rb.started->prompt_tokens - 1);
  EXPECT_EQ(rb.finished->usage.cached_tokens, rb.started->cached_tokens);
  EXPECT_EQ(ra.tokens, rb.tokens);
  EXPECT_GE(c->stats().prefix_cache_hits_total, rb.started->cached_tokens);
}

TEST_F(CoordinatorTest, FatalEngineErrorIsSticky) {
  auto c = make();
  auto running = run_sync(c->generate(task("a long one", 100000)));
  ASSERT_TRUE(running.next_blocking());
  c->inject_failure(Error{Errc::engine_failed, "decode exploded"});
  auto r = collect(running);
  ASSERT_TRUE(r.error);
  EXPECT_EQ(r.error->code, Errc::engine_failed);
  while (c->health().state != HealthState::failed)
    std::this_thread::yield();
  EXPECT_EQ(c->health().message, "decode exploded");
  auto later = run_sync(c->generate(task("hi")));
  auto rl = collect(later);
  ASSERT_TRUE(rl.error);
  EXPECT_EQ(rl.error->code, Errc::engine_failed);
}

TEST_F(CoordinatorTest, MissingModelFileFailsHealth) {
  EngineOptions o;
  o.model_path = "/nonexistent/model.gguf";
  Coordinator c(o);
  const Health h = c.wait_loaded();
  EXPECT_EQ(h.state, HealthState::failed);
  auto s = run_sync(c.generate(task("hi")));
  auto r = collect(s);
  ASSERT_TRUE(r.error);
  EXPECT_EQ(r.error->code, Errc::engine_failed);
}

TEST_F(CoordinatorTest, TokenizeAndDetokenizeRoundTrip) {
  auto c = make();
  auto toks = run_sync(c->tokenize("", "hello world", false, false));
  ASSERT_TRUE(toks);
  EXPECT_FALSE(toks->empty());
  auto text = run_sync(c->detokenize("", *toks));
  ASSERT_TRUE(text);
  EXPECT_NE(text->find("hello world"), std::string::npos);
  auto bad = run_sync(c->tokenize("nope", "x", false, false));
  EXPECT_FALSE(bad);
}

TEST(CoordinatorSharedModel, StoriesModelWritesText) {
  auto path = troupe::test::shared_model("stories260K.gguf");
  if (!path)
    GTEST_SKIP() << "../shared/models/stories260K.gguf is not present";
  EngineOptions o;
  o.model_path = *path;
  o.engine.n_threads = 1;
  Coordinator c(o);
  ASSERT_EQ(c.wait_loaded().state, HealthState::ready);
  Task t;
  t.prompt = std::string("Once upon a time");
  t.sampling.temperature = 0.0f;
  t.stop.max_tokens = 40;
  t.stop.stop = {"."};
  auto s = run_sync(c.generate(std::move(t)));
  auto r = collect(s);
  ASSERT_TRUE(r.finished);
  EXPECT_EQ(r.finished->reason, FinishReason::stop);
  EXPECT_EQ(r.finished->stop_string, ".");
  EXPECT_EQ(r.text.find('.'), std::string::npos);
  EXPECT_FALSE(r.text.empty());
}

}  // namespace
}  // namespace troupe::engine
