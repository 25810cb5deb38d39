// Embedding sequences through the Coordinator and the BatchEngine: batched inputs equal single
// ones, vectors have norm 1, pooling overrides, rerank scores, refusals, and generation beside
// embeddings on one context.

#include <gtest/gtest.h>

#include <cmath>
#include <numeric>

#include "engine/coordinator.hpp"
#include "engine/pooling.hpp"
#include "engine_test_util.hpp"

namespace troupe::engine {
namespace {

using testing::collect;
using testing::run_sync;

double norm(const std::vector<float>& v) {
  double s = 0;
  for (float x : v)
    s += static_cast<double>(x) * x;
  return std::sqrt(s);
}

double cosine(const std::vector<float>& a, const std::vector<float>& b) {
  double dot = 0;
  for (std::size_t i = 0; i < a.size(); ++i)
    dot += static_cast<double>(a[i]) * b[i];
  return dot / (norm(a) * norm(b));
}

double max_abs_diff(const std::vector<float>& a, const std::vector<float>& b) {
  double d = 0;
  for (std::size_t i = 0; i < a.size(); ++i)
    d = std::max(d, std::abs(static_cast<double>(a[i]) - b[i]));
  return d;
}

// `norm`: llama-server's embd_normalize (2: Euclidean, -1: none).
Task embed_task(Prompt prompt, std::int32_t norm = 2, bool per_token = false) {
  Task t;
  t.prompt = std::move(prompt);
  t.embedding = EmbeddingParams{};
  t.embedding->norm = norm;
  t.embedding->per_token = per_token;
  return t;
}

Task rerank_task(std::string query, std::string doc) {
  Task t;
  t.embedding = EmbeddingParams{};
  t.embedding->norm = -1;
  t.embedding->rerank = std::pair{std::move(query), std::move(doc)};
  return t;
}

const std::vector<std::string> kTexts = {
    "The cat sat on the mat.",
    "A cat was sitting on a mat.",
    "Tim ran to the big red ball.",
    "hello",
    "Embeddings turn text into vectors that can be compared with a cosine.",
    "one two three four five six seven eight nine ten eleven twelve",
    "x",
    "The quick brown fox jumps over the lazy dog, again and again and again.",
};

class EmbeddingTest : public ::testing::Test {
 protected:
  static std::unique_ptr<Coordinator> make(std::string path, std::int32_t parallel = 8,
                                           bool embeddings = true, Pooling pooling = Pooling::model,
                                           std::int32_t embed_pack = 512) {
    EngineOptions o;
    o.engine.embed_pack = embed_pack;
    o.model_path = std::move(path);
    o.model_id = "m";
    o.engine.n_threads = 1;
    o.engine.n_parallel = parallel;
    o.engine.n_ctx = 512 * parallel;
    o.engine.embeddings = embeddings;
    o.engine.pooling = pooling;
    auto c = std::make_unique<Coordinator>(std::move(o));
    EXPECT_EQ(c->wait_loaded().state, HealthState::ready) << c->health().message;
    return c;
  }

  // Embeds every text: all submitted before any is read (one or few decodes), or one by one.
  static std::vector<std::vector<float>> embed(Coordinator& c, const std::vector<std::string>& in,
                                               bool together, std::int32_t norm = 2,
                                               bool per_token = false) {
    std::vector<std::vector<float>> out;
    std::vector<TokenStream> streams;
    for (const auto& text : in) {
      streams.push_back(run_sync(c.generate(embed_task(text, norm, per_token))));
      if (!together) {
        auto r = collect(streams.back());
        EXPECT_FALSE(r.error) << r.error->message;
        out.push_back(r.finished ? r.finished->embedding : std::vector<float>{});
      }
    }
    if (together) {
      for (auto& s : streams) {
        auto r = collect(s);
        EXPECT_FALSE(r.error) << r.error->message;
        out.push_back(r.finished ? r.finished->embedding : std::vector<float>{});
      }
    }
    return out;
  }

  static void expect_same(const std::vector<std::vector<float>>& a,
                          const std::vector<std::vector<float>>& b) {
    ASSERT_EQ(a.size(), b.size());
    for (std::size_t i = 0; i < a.size(); ++i) {
      ASSERT_EQ(a[i].size(), b[i].size());
      EXPECT_LT(max_abs_diff(a[i], b[i]), 1e-4) << "input " << i;
    }
  }
};

TEST_F(EmbeddingTest, BertBatchedEqualsSingleWithNormOne) {
  auto c = make(test::generated_bert_model());
  const auto together = embed(*c, kTexts, true);
  const auto single = embed(*c, kTexts, false);
  expect_same(together, single);
  for (const auto& v : together) {
    ASSERT_EQ(v.size(), 128u);  // the tiny shape's n_embd
    EXPECT_NEAR(norm(v), 1.0, 1e-5);
  }
  EXPECT_LT(cosine(together[0], together[2]), 0.99999);  // different texts, different vectors
}

TEST_F(EmbeddingTest, OneSlotGivesTheSameVectors) {
  auto many = make(test::generated_bert_model(), 8);
  auto one = make(test::generated_bert_model(), 1);
  expect_same(embed(*many, kTexts, true), embed(*one, kTexts, true));
}

TEST_F(EmbeddingTest, APackOfFewTokensTakesMoreStepsForTheSameVectors) {
  // Packed up to 1 token (a longer input goes alone), each text takes a step of its own;
  // packed up to 512, those that wait together share one (how many do is up to timing).
  auto packed = make(test::generated_bert_model(), 8);
  auto alone = make(test::generated_bert_model(), 8, true, Pooling::model, 1);
  const auto a = embed(*packed, kTexts, true);
  const auto b = embed(*alone, kTexts, true);
  expect_same(a, b);
  EXPECT_LE(packed->stats().decode_steps_total, static_cast<std::int64_t>(kTexts.size()));
  EXPECT_EQ(alone->stats().decode_steps_total, static_cast<std::int64_t>(kTexts.size()));
}

TEST_F(EmbeddingTest, StartedAndUsageCountPromptTokens) {
  auto c = make(test::generated_bert_model());
  auto s = run_sync(c->generate(embed_task(std::string("hello world"))));
  auto r = collect(s);
  ASSERT_TRUE(r.finished);
  ASSERT_TRUE(r.started);
  EXPECT_EQ(r.started->prompt_tokens, 4);  // [CLS] hello world [SEP]
  EXPECT_EQ(r.finished->usage.prompt_tokens, 4);
  EXPECT_EQ(r.finished->usage.completion_tokens, 0);
  EXPECT_TRUE(r.tokens.empty());
}

TEST_F(EmbeddingTest, TokenInputEqualsText) {
  auto c = make(test::generated_bert_model());
  auto tokens = run_sync(c->tokenize("m", "The cat sat on the mat.", true, true));
  ASSERT_TRUE(tokens);
  auto sa = run_sync(c->generate(embed_task(std::string("The cat sat on the mat."))));
  auto a = collect(sa);
  auto sb = run_sync(c->generate(embed_task(*tokens)));
  auto b = collect(sb);
  ASSERT_TRUE(a.finished && b.finished);
  EXPECT_LT(max_abs_diff(a.finished->embedding, b.finished->embedding), 1e-6);
}

TEST_F(EmbeddingTest, PoolingOverridesGiveDifferentUnitVectors) {
  std::vector<std::vector<float>> first;
  for (Pooling p : {Pooling::mean, Pooling::cls, Pooling::last}) {
    auto c = make(test::generated_bert_model(), 4, true, p);
    const auto v = embed(*c, {kTexts[4]}, true);
    ASSERT_EQ(v[0].size(), 128u);
    EXPECT_NEAR(norm(v[0]), 1.0, 1e-5);
    for (const auto& other : first)
      EXPECT_LT(cosine(v[0], other), 0.99999) << pooling_name(p);
    first.push_back(v[0]);
  }
}

TEST_F(EmbeddingTest, UnnormalizedVectorsKeepTheirLength) {
  auto c = make(test::generated_bert_model(), 4, true, Pooling::mean);
  const auto raw = embed(*c, {kTexts[0]}, true, /*norm=*/-1);
  const auto unit = embed(*c, {kTexts[0]}, true, /*norm=*/2);
  const double n = norm(raw[0]);
  EXPECT_GT(std::abs(n - 1.0), 1e-3);
  for (std::size_t i = 0; i < raw[0].size(); ++i)
    EXPECT_NEAR(raw[0][i] / n, unit[0][i], 1e-5);
}

// llama-server's other `embd_normalize` values: each answer is the raw vector scaled so that its
// largest magnitude is 32760 (0), its magnitudes sum to 1 (1), its cubes' magnitudes sum to 1.
TEST_F(EmbeddingTest, LlamaServersNormalisationsScaleTheRawVector) {
  auto c = make(test::generated_bert_model(), 4, true, Pooling::mean);
  const auto raw = embed(*c, {kTexts[4]}, true, -1)[0];
  const auto p_sum = [](const std::vector<float>& v, double p) {
    double s = 0;
    for (float x : v)
      s += std::pow(std::abs(static_cast<double>(x)), p);
    return s;
  };
  const auto int16 = embed(*c, {kTexts[4]}, true, 0)[0];
  double largest = 0;
  for (float x : int16)
    largest = std::max(largest, std::abs(static_cast<double>(x)));
  EXPECT_NEAR(largest, 32760.0, 0.01);
  EXPECT_NEAR(p_sum(embed(*c, {kTexts[4]}, true, 1)[0], 1), 1.0, 1e-5);
  EXPECT_NEAR(p_sum(embed(*c, {kTexts[4]}, true, 3)[0], 3), 1.0, 1e-5);
  const double scale = int16[0] / raw[0];
  for (std::size_t i = 0; i < raw.size(); ++i)
    EXPECT_NEAR(int16[i], raw[i] * scale, 1e-2) << i;
}

// Pooling none (llama-server's /embedding): a vector per token of the input, raw; their mean is
// the mean-pooled vector and the first is the CLS-pooled one. Batched equals single. Without
// per_token (OpenAI's shape) the request is refused, naming /embedding.
TEST_F(EmbeddingTest, PoolingNoneGivesEveryTokensVector) {
  auto none = make(test::generated_bert_model(), 4, true, Pooling::none);
  auto mean = make(test::generated_bert_model(), 4, true, Pooling::mean);
  auto cls = make(test::generated_bert_model(), 4, true, Pooling::cls);
  const auto rows = embed(*none, kTexts, true, 2, /*per_token=*/true);
  expect_same(rows, embed(*none, kTexts, false, 2, true));
  const auto means = embed(*mean, kTexts, true, -1);
  const auto firsts = embed(*cls, kTexts, true, -1);
  for (std::size_t i = 0; i < kTexts.size(); ++i) {
    auto s = run_sync(none->generate(embed_task(kTexts[i], 2, true)));
    auto r = collect(s);
    ASSERT_TRUE(r.finished);
    const auto n = static_cast<std::size_t>(r.finished->usage.prompt_tokens);
    EXPECT_EQ(r.finished->embedding_rows, static_cast<std::int32_t>(n));
    ASSERT_EQ(rows[i].size(), n * 128u) << i;
    std::vector<float> avg(128, 0.0f);
    for (std::size_t t = 0; t < n; ++t) {
      for (std::size_t k = 0; k < 128; ++k)
        avg[k] += rows[i][t * 128 + k] / static_cast<float>(n);
    }
    EXPECT_LT(max_abs_diff(avg, means[i]), 1e-3) << i;
    EXPECT_LT(max_abs_diff({rows[i].begin(), rows[i].begin() + 128}, firsts[i]), 1e-4) << i;
  }
  auto s = run_sync(none->generate(embed_task(kTexts[0])));
  auto r = collect(s);
  ASSERT_TRUE(r.error);
  EXPECT_EQ(r.error->code, Errc::invalid_request);
  EXPECT_NE(r.error->message.find("/embedding"), std::string::npos) << r.error->message;
}

// A generative model with pooling none: each token's hidden state from the KV-cache path, whose
// mean is again the mean-pooled vector; generation on the same context is unchanged.
TEST_F(EmbeddingTest, GenerativePoolingNoneGivesEveryTokensVector) {
  auto none = make(testing::tiny_model(), 4, true, Pooling::none);
  auto mean = make(testing::tiny_model(), 4, true, Pooling::mean);
  const auto rows = embed(*none, {kTexts[0], kTexts[5]}, true, 2, true);
  const auto means = embed(*mean, {kTexts[0], kTexts[5]}, true, -1);
  for (std::size_t i = 0; i < rows.size(); ++i) {
    const std::size_t n = rows[i].size() / 128;
    ASSERT_GT(n, 1u);
    std::vector<float> avg(128, 0.0f);
    for (std::size_t t = 0; t < n; ++t) {
      for (std::size_t k = 0; k < 128; ++k)
        avg[k] += rows[i][t * 128 + k] / static_cast<float>(n);
    }
    EXPECT_LT(max_abs_diff(avg, means[i]), 1e-3) << i;
  }
}

TEST(NormalizeEmbedding, FollowsLlamaServersNorms) {
  std::vector<float> v{3.0f, -4.0f};
  normalize_embedding(v, 2);
  EXPECT_FLOAT_EQ(v[0], 0.6f);
  EXPECT_FLOAT_EQ(v[1], -0.8f);
  v = {3.0f, -4.0f};
  normalize_embedding(v, 1);
  EXPECT_FLOAT_EQ(v[0], 3.0f / 7.0f);
  v = {3.0f, -4.0f};
  normalize_embedding(v, 0);
  EXPECT_FLOAT_EQ(v[1], -32760.0f);
  EXPECT_FLOAT_EQ(v[0], 24570.0f);
  v = {3.0f, -4.0f};
  normalize_embedding(v, -1);
  EXPECT_EQ(v, (std::vector<float>{3.0f, -4.0f}));
  v = {1.0f, 1.0f};
  normalize_embedding(v, 4);
  EXPECT_FLOAT_EQ(v[0], static_cast<float>(std::pow(0.5, 0.25)));
  v = {0.0f, 0.0f};
  normalize_embedding(v, 2);
  EXPECT_EQ(v, (std::vector<float>{0.0f, 0.0f}));
}

TEST_F(EmbeddingTest, RerankScoresArePlainNumbers) {
  auto c = make(test::generated_bert_model(mkmodel::BertPooling::rank));
  std::vector<TokenStream> streams;
  for (const auto& d : kTexts)
    streams.push_back(run_sync(c->generate(rerank_task("a cat on a mat", d))));
  std::vector<float> batched;
  for (auto& s : streams) {
    auto r = collect(s);
    ASSERT_TRUE(r.finished) << (r.error ? r.error->message : "");
    ASSERT_EQ(r.finished->embedding.size(), 1u);
    EXPECT_TRUE(std::isfinite(r.finished->embedding[0]));
    batched.push_back(r.finished->embedding[0]);
  }
  for (std::size_t i = 0; i < kTexts.size(); ++i) {
    auto s = run_sync(c->generate(rerank_task("a cat on a mat", kTexts[i])));
    auto r = collect(s);
    ASSERT_TRUE(r.finished);
    EXPECT_NEAR(r.finished->embedding[0], batched[i], 1e-4);
  }
  // llama-server's pair for this vocabulary (it adds BOS and SEP, no EOS):
  // [CLS] hello [SEP] world
  auto s = run_sync(c->generate(rerank_task("hello", "world")));
  auto r = collect(s);
  ASSERT_TRUE(r.finished);
  EXPECT_EQ(r.finished->usage.prompt_tokens, 4);
}

TEST_F(EmbeddingTest, Refusals) {
  auto bert = make(test::generated_bert_model());
  const auto refused = [](Coordinator& c, Task t) {
    auto s = run_sync(c.generate(std::move(t)));
    auto r = collect(s);
    EXPECT_FALSE(r.finished);
    return r.error.value_or(Error{});
  };
  Task gen;
  gen.prompt = std::string("hello");
  gen.stop.max_tokens = 4;
  EXPECT_EQ(refused(*bert, gen).code, Errc::invalid_request);  // an embedding-only model
  EXPECT_EQ(refused(*bert, rerank_task("q", "d")).code, Errc::invalid_request);  // not rank
  EXPECT_EQ(refused(*bert, embed_task(std::vector<Token>{})).code, Errc::invalid_request);
  EXPECT_EQ(refused(*bert, embed_task(std::vector<Token>{1 << 30})).code, Errc::invalid_request);
  std::string long_text;
  for (int i = 0; i < 600; ++i)
    long_text += "word ";
  const Error e = refused(*bert, embed_task(long_text));
  EXPECT_EQ(e.code, Errc::prompt_too_long);
  EXPECT_EQ(e.param, "input");
  Task cut = embed_task(long_text);
  cut.embedding->truncate = true;
  auto s = run_sync(bert->generate(std::move(cut)));
  auto r = collect(s);
  ASSERT_TRUE(r.finished) << r.error->message;
  EXPECT_EQ(r.finished->usage.prompt_tokens, 512);  // the trained context of BERT

  auto reranker = make(test::generated_bert_model(mkmodel::BertPooling::rank));
  EXPECT_EQ(refused(*reranker, embed_task(std::string("x"))).code, Errc::invalid_request);

  auto generative = make(testing::tiny_model(), 2, /*embeddings=*/false);
  const Error off = refused(*generative, embed_task(std::string("hello")));
  EXPECT_EQ(off.code, Errc::invalid_request);
  EXPECT_NE(off.message.find("--embeddings"), std::string::npos) << off.message;
}

// A generative model serving embeddings: generation and embedding steps take turns on one
// context, and a causal model's batched vectors (unequal lengths) equal single ones.
TEST_F(EmbeddingTest, GenerativeModelServesBoth) {
  auto c = make(testing::tiny_model(), 4, true, Pooling::mean);
  const auto single = embed(*c, kTexts, false);
  Task gen;
  gen.prompt = std::string("Once upon a time");
  gen.sampling.temperature = 0.0f;
  gen.stop.max_tokens = 24;
  gen.stop.ignore_eos = true;
  auto alone = run_sync(c->generate(gen));
  const auto expected = collect(alone).tokens;
  auto g = run_sync(c->generate(gen));
  const auto together = embed(*c, kTexts, true);
  const auto r = collect(g);
  EXPECT_EQ(r.tokens, expected);  // greedy: the same tokens with embeddings in between
  expect_same(together, single);
  for (const auto& v : together) {
    ASSERT_EQ(v.size(), 128u);
    EXPECT_NEAR(norm(v), 1.0, 1e-5);
  }
}

TEST_F(EmbeddingTest, StoriesModelMeanPoolingRanksSimilarSentences) {
  const auto path = test::shared_model("stories260K.gguf");
  if (!path)
    GTEST_SKIP() << "../shared/models is absent";
  auto c = make(*path, 4, true, Pooling::mean);
  const auto v = embed(
      *c,
      {"The cat sat on the mat.", "A cat was sitting on a mat.", "Tim ran to the big red ball."},
      true);
  ASSERT_EQ(v[0].size(), 64u);
  EXPECT_GT(cosine(v[0], v[1]), cosine(v[0], v[2]));
  EXPECT_NEAR(cosine(v[0], v[1]), 0.94, 0.02);  // shared/models/README.md
  EXPECT_NEAR(cosine(v[0], v[2]), 0.83, 0.02);
}

}  // namespace
}  // namespace troupe::engine
