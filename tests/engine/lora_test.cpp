// LoRA adapters: a random adapter (mkmodel::write_lora_adapter) on the tiny random model,
// greedy answers compared with and without it, alone and batched with other scales.

#include "engine/lora.hpp"

#include <gtest/gtest.h>

#include "engine/coordinator.hpp"
#include "engine/host_cache.hpp"
#include "engine_test_util.hpp"

namespace troupe::engine {
namespace {

using testing::collect;
using testing::run_sync;

constexpr const char* kPrompt = "Once upon a time there was a little";

class LoraTest : public ::testing::Test {
 protected:
  static std::string base() { return testing::tiny_model(); }

  std::unique_ptr<Coordinator> make(std::vector<LoraSpec> lora, std::int32_t parallel = 4,
                                    PadRows pads = PadRows::measured, bool unified = false) {
    EngineOptions o;
    o.engine.pad_rows = pads;
    o.engine.kv_unified = unified;
    o.model_path = base();
    o.model_id = "tiny";
    o.lora = std::move(lora);
    o.engine.n_threads = 1;
    o.engine.n_parallel = parallel;
    o.engine.n_ctx = 256 * parallel;
    auto c = std::make_unique<Coordinator>(std::move(o));
    EXPECT_EQ(c->wait_loaded().state, HealthState::ready) << c->health().message;
    return c;
  }

  static Task task(std::optional<LoraRequest> lora, std::string prompt = kPrompt) {
    Task t;
    t.prompt = std::move(prompt);
    t.sampling.temperature = 0.0f;
    t.stop.max_tokens = 16;
    t.stop.ignore_eos = true;
    t.lora = std::move(lora);
    return t;
  }

  static testing::Collected run(Coordinator& c, Task t) {
    auto s = run_sync(c.generate(std::move(t)));
    return collect(s);
  }

  static std::vector<Token> answer(Coordinator& c, Task t) {
    auto r = run(c, std::move(t));
    EXPECT_FALSE(r.error) << r.error->message;
    return r.tokens;
  }
};

TEST_F(LoraTest, AdapterChangesTheAnswerAndScaleZeroIsTheBaseModel) {
  auto plain = make({});
  const auto base_answer = answer(*plain, task(std::nullopt));
  ASSERT_EQ(base_answer.size(), 16u);

  auto c = make({{troupe::test::generated_lora(base(), 7), 1.0f}});
  const auto adapted = answer(*c, task(std::nullopt));  // the server-wide scale: 1
  EXPECT_NE(adapted, base_answer);
  EXPECT_EQ(answer(*c, task(LoraRequest{{0, 1.0f}})), adapted);
  EXPECT_EQ(answer(*c, task(LoraRequest{{0, 0.0f}})), base_answer);
  EXPECT_EQ(answer(*c, task(LoraRequest{})), base_answer);  // adapters left out: scale 0
  EXPECT_NE(answer(*c, task(LoraRequest{{0, 0.5f}})), adapted);
}

// Pad rows off, always (a sequence waiting for its adapters' step takes a pad in its stream),
// and one KV pool for all sequences.
class LoraLayouts : public LoraTest,
                    public ::testing::WithParamInterface<std::pair<PadRows, bool>> {};

TEST_P(LoraLayouts, SequencesWithOtherScalesRunTogetherAndKeepTheirOwnAnswers) {
  auto c = make({{troupe::test::generated_lora(base(), 7), 1.0f},
                 {troupe::test::generated_lora(base(), 8), 0.0f}},
                4, GetParam().first, GetParam().second);
  const std::vector<LoraRequest> sets = {{{0, 1.0f}}, {}, {{1, 1.0f}}, {{0, 0.5f}, {1, 0.5f}}};
  std::vector<std::vector<Token>> solo;
  for (const auto& set : sets)
    solo.push_back(answer(*c, task(set, std::string(kPrompt) + " dog")));
  for (std::size_t i = 0; i < solo.size(); ++i) {
    for (std::size_t j = i + 1; j < solo.size(); ++j)
      EXPECT_NE(solo[i], solo[j]) << i << " " << j;
  }
  // All four at once, twice each (eight streams on four slots): each set's steps take turns.
  std::vector<TokenStream> streams;
  for (int round = 0; round < 2; ++round) {
    for (const auto& set : sets)
      streams.push_back(run_sync(c->generate(task(set, std::string(kPrompt) + " dog"))));
  }
  for (std::size_t k = 0; k < streams.size(); ++k) {
    auto r = collect(streams[k]);
    ASSERT_FALSE(r.error) << r.error->message;
    EXPECT_EQ(r.tokens, solo[k % sets.size()]) << "stream " << k;
  }
  if (GetParam().first == PadRows::always)  // the waiting sequences' streams took pads
    EXPECT_GT(c->stats().pad_rows_total, 0);
}

INSTANTIATE_TEST_SUITE_P(Engine, LoraLayouts,
                         ::testing::Values(std::pair{PadRows::off, false},
                                           std::pair{PadRows::always, false},
                                           std::pair{PadRows::off, true}));

TEST_F(LoraTest, ACachedPrefixIsReusedOnlyWithTheSameScales) {
  auto c = make({{troupe::test::generated_lora(base(), 7), 1.0f}}, /*parallel=*/1);
  auto plain = make({}, 1);
  const std::string prompt =
      "The quick brown fox jumps over the lazy dog and runs into the forest where the "
      "old owl lives";
  auto first = run(*c, task(LoraRequest{{0, 1.0f}}, prompt));
  ASSERT_TRUE(first.started);
  auto other = run(*c, task(LoraRequest{{0, 0.0f}}, prompt));
  ASSERT_TRUE(other.started);
  EXPECT_EQ(other.started->cached_tokens, 0);  // the slot's cells hold the adapter's keys
  EXPECT_EQ(other.tokens, answer(*plain, task(std::nullopt, prompt)));
  auto again = run(*c, task(LoraRequest{{0, 0.0f}}, prompt));
  ASSERT_TRUE(again.started);
  EXPECT_GT(again.started->cached_tokens, 0);
  EXPECT_EQ(again.tokens, other.tokens);
  // Back to the adapter: its state comes from host memory (or is recomputed), never the
  // base model's cells.
  auto back = run(*c, task(LoraRequest{{0, 1.0f}}, prompt));
  EXPECT_EQ(back.tokens, first.tokens);
}

TEST_F(LoraTest, ServerWideScalesListAndSet) {
  const std::string path = troupe::test::generated_lora(base(), 7);
  auto c = make({{path, 0.25f}});
  auto list = run_sync(c->lora_adapters(""));
  ASSERT_TRUE(list) << list.error().message;
  ASSERT_EQ(list->size(), 1u);
  EXPECT_EQ((*list)[0].path, path);
  EXPECT_FLOAT_EQ((*list)[0].scale, 0.25f);
  EXPECT_EQ((*list)[0].task_name, "test");
  const auto quarter = answer(*c, task(LoraRequest{{0, 0.25f}}));
  EXPECT_EQ(answer(*c, task(std::nullopt)), quarter);

  ASSERT_TRUE(run_sync(c->set_lora_adapters("", LoraRequest{{0, 1.0f}})));
  EXPECT_FLOAT_EQ((*run_sync(c->lora_adapters("")))[0].scale, 1.0f);
  EXPECT_EQ(answer(*c, task(std::nullopt)), answer(*c, task(LoraRequest{{0, 1.0f}})));
  ASSERT_TRUE(run_sync(c->set_lora_adapters("", LoraRequest{})));  // left out: 0
  EXPECT_FLOAT_EQ((*run_sync(c->lora_adapters("")))[0].scale, 0.0f);

  auto bad = run_sync(c->set_lora_adapters("", LoraRequest{{3, 1.0f}}));
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().code, Errc::invalid_request);
  EXPECT_EQ(bad.error().param, "lora");
  EXPECT_FALSE(run_sync(c->lora_adapters("another-model")));

  auto r = run(*c, task(LoraRequest{{1, 1.0f}}));
  ASSERT_TRUE(r.error);
  EXPECT_EQ(r.error->code, Errc::invalid_request);
  EXPECT_EQ(r.error->param, "lora");
  EXPECT_NE(r.error->message.find("ids 0 to 0"), std::string::npos) << r.error->message;
}

TEST_F(LoraTest, AServerWithoutAdaptersRefusesAnId) {
  auto c = make({});
  EXPECT_TRUE(run_sync(c->lora_adapters(""))->empty());
  auto r = run(*c, task(LoraRequest{{0, 1.0f}}));
  ASSERT_TRUE(r.error);
  EXPECT_EQ(r.error->param, "lora");
  EXPECT_NE(r.error->message.find("--lora"), std::string::npos) << r.error->message;
  EXPECT_FALSE(run_sync(c->set_lora_adapters("", LoraRequest{{0, 1.0f}})));
  EXPECT_TRUE(run_sync(c->set_lora_adapters("", LoraRequest{})));
}

TEST_F(LoraTest, AFileThatIsNoAdapterFailsTheLoad) {
  EngineOptions o;
  o.model_path = base();
  o.lora = {{base(), 1.0f}};  // a model, not an adapter
  o.engine.n_threads = 1;
  Coordinator c(std::move(o));
  const Health h = c.wait_loaded();
  EXPECT_EQ(h.state, HealthState::failed);
  EXPECT_NE(h.message.find("LoRA adapter"), std::string::npos) << h.message;

  EngineOptions missing;
  missing.model_path = base();
  missing.lora = {{"/nonexistent/adapter.gguf", 1.0f}};
  missing.engine.n_threads = 1;
  Coordinator m(std::move(missing));
  EXPECT_EQ(m.wait_loaded().state, HealthState::failed);
  EXPECT_NE(m.health().message.find("not found"), std::string::npos) << m.health().message;
}

// A generative model serving embeddings (--embeddings): a request's scales reach its vector, and
// inputs of two sets submitted together (embedding steps of one set each) give their vectors
// alone.
TEST_F(LoraTest, EmbeddingsTakeTheRequestsScales) {
  EngineOptions o;
  o.model_path = base();
  o.model_id = "tiny";
  o.lora = {{troupe::test::generated_lora(base(), 7), 1.0f}};
  o.engine.n_threads = 1;
  o.engine.n_parallel = 4;
  o.engine.n_ctx = 1024;
  o.engine.embeddings = true;
  o.engine.pooling = Pooling::mean;
  Coordinator c(std::move(o));
  ASSERT_EQ(c.wait_loaded().state, HealthState::ready) << c.health().message;
  const auto embed_task = [](std::optional<LoraRequest> lora) {
    Task t;
    t.prompt = std::string(kPrompt);
    t.embedding = EmbeddingParams{};
    t.lora = std::move(lora);
    return t;
  };
  const auto vector_of = [](TokenStream& s) {
    auto r = collect(s);
    EXPECT_FALSE(r.error) << r.error->message;
    return r.finished ? r.finished->embedding : std::vector<float>{};
  };
  auto s1 = run_sync(c.generate(embed_task(LoraRequest{{0, 1.0f}})));
  const auto adapted = vector_of(s1);
  auto s0 = run_sync(c.generate(embed_task(LoraRequest{{0, 0.0f}})));
  const auto plain = vector_of(s0);
  ASSERT_EQ(adapted.size(), plain.size());
  ASSERT_FALSE(adapted.empty());
  EXPECT_NE(adapted, plain);
  std::vector<TokenStream> both;
  for (int i = 0; i < 3; ++i) {
    both.push_back(run_sync(c.generate(embed_task(LoraRequest{{0, 1.0f}}))));
    both.push_back(run_sync(c.generate(embed_task(LoraRequest{{0, 0.0f}}))));
  }
  for (std::size_t i = 0; i < both.size(); ++i) {
    const auto v = vector_of(both[i]);
    const auto& want = i % 2 == 0 ? adapted : plain;
    ASSERT_EQ(v.size(), want.size());
    for (std::size_t k = 0; k < v.size(); ++k)
      EXPECT_NEAR(v[k], want[k], 1e-4f) << "input " << i << ", element " << k;
  }
}

TEST(LoraScaled, ParsesFileAndScale) {
  auto a = parse_lora_scaled("/m/a.gguf:0.5");
  ASSERT_TRUE(a);
  EXPECT_EQ(a->path, "/m/a.gguf");
  EXPECT_FLOAT_EQ(a->scale, 0.5f);
  auto colon = parse_lora_scaled("c:/x.gguf:-1");  // the scale after the last ':'
  ASSERT_TRUE(colon);
  EXPECT_EQ(colon->path, "c:/x.gguf");
  EXPECT_FLOAT_EQ(colon->scale, -1.0f);
  for (const char* bad : {"a.gguf", "a.gguf:", ":1", "a.gguf:x", "a.gguf:1x", "a.gguf:nan"})
    EXPECT_FALSE(parse_lora_scaled(bad)) << bad;
}

TEST(HostCacheLora, AnEntryServesOnlyItsOwnScales) {
  HostCache cache(1 << 20);
  const std::vector<Token> tokens = {1, 2, 3, 4};
  ASSERT_TRUE(cache.store(tokens, HostCache::State(64), {1.0f}));
  EXPECT_TRUE(cache.find(tokens, std::vector<float>{1.0f}));
  EXPECT_FALSE(cache.find(tokens, std::vector<float>{0.0f}));
  EXPECT_FALSE(cache.find(tokens));
  EXPECT_TRUE(cache.covers(tokens, std::vector<float>{1.0f}));
  EXPECT_FALSE(cache.covers(tokens, std::vector<float>{0.5f}));
  // The same tokens with other scales are another entry, not a replacement.
  ASSERT_TRUE(cache.store(tokens, HostCache::State(64), {0.5f}));
  EXPECT_EQ(cache.size(), 2u);
}

}  // namespace
}  // namespace troupe::engine
