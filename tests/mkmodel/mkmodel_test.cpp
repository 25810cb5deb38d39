// troupe mkmodel: generated models are deterministic, load in libllama, carry the metadata
// asked for, tokenize any UTF-8 text reversibly, render ChatML, and generate.

#include <gguf.h>
#include <gtest/gtest.h>
#include <llama.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <memory>
#include <string>
#include <vector>

#include "engine/llama_runtime.hpp"
#include "mkmodel/model_spec.hpp"
#include "support/test_models.hpp"

namespace troupe::mkmodel {
namespace {

struct ModelDeleter {
  void operator()(llama_model* m) const { llama_model_free(m); }
};
struct ContextDeleter {
  void operator()(llama_context* c) const { llama_free(c); }
};
using ModelPtr = std::unique_ptr<llama_model, ModelDeleter>;
using ContextPtr = std::unique_ptr<llama_context, ContextDeleter>;

ModelPtr load(const std::string& path) {
  engine::init_llama_runtime();
  auto params = llama_model_default_params();
  return ModelPtr(llama_model_load_from_file(path.c_str(), params));
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), {}};
}

std::string temp_path(const std::string& name) {
  const auto dir = std::filesystem::path(TROUPE_BINARY_DIR) / "test-models";
  std::filesystem::create_directories(dir);
  return (dir / name).string();
}

std::vector<llama_token> tokenize(const llama_vocab* vocab, const std::string& text,
                                  bool add_special, bool parse_special = false) {
  std::vector<llama_token> out(text.size() + 8);
  int n = llama_tokenize(vocab, text.data(), static_cast<int>(text.size()), out.data(),
                         static_cast<int>(out.size()), add_special, parse_special);
  EXPECT_GE(n, 0);
  out.resize(static_cast<std::size_t>(std::max(n, 0)));
  return out;
}

std::string detokenize(const llama_vocab* vocab, const std::vector<llama_token>& tokens) {
  std::string out(tokens.size() * 16 + 16, '\0');
  int n = llama_detokenize(vocab, tokens.data(), static_cast<int>(tokens.size()), out.data(),
                           static_cast<int>(out.size()), false, false);
  EXPECT_GE(n, 0);
  out.resize(static_cast<std::size_t>(std::max(n, 0)));
  return out;
}

// Greedy-generates n tokens after `prompt` with a fresh single-thread context.
std::vector<llama_token> greedy(llama_model* model, const std::string& prompt, int n) {
  auto cparams = llama_context_default_params();
  cparams.n_ctx = 256;
  cparams.n_threads = cparams.n_threads_batch = 1;
  ContextPtr ctx(llama_init_from_model(model, cparams));
  EXPECT_TRUE(ctx);
  const llama_vocab* vocab = llama_model_get_vocab(model);
  auto tokens = tokenize(vocab, prompt, true);
  std::unique_ptr<llama_sampler, decltype(&llama_sampler_free)> sampler(llama_sampler_init_greedy(),
                                                                        llama_sampler_free);
  std::vector<llama_token> out;
  llama_batch batch = llama_batch_get_one(tokens.data(), static_cast<int>(tokens.size()));
  for (int i = 0; i < n; ++i) {
    EXPECT_EQ(llama_decode(ctx.get(), batch), 0);
    llama_token t = llama_sampler_sample(sampler.get(), ctx.get(), -1);
    out.push_back(t);
    batch = llama_batch_get_one(&out.back(), 1);
  }
  return out;
}

TEST(Mkmodel, SameSeedSameBytesOtherSeedOtherBytes) {
  auto spec = ModelSpec{*shape_by_name("tiny"), WeightType::q8_0, 7};
  ASSERT_TRUE(write_model(spec, temp_path("det-a.gguf")));
  ASSERT_TRUE(write_model(spec, temp_path("det-b.gguf")));
  spec.seed = 8;
  ASSERT_TRUE(write_model(spec, temp_path("det-c.gguf")));
  const auto a = read_file(temp_path("det-a.gguf"));
  EXPECT_GT(a.size(), 1000u);
  EXPECT_EQ(a, read_file(temp_path("det-b.gguf")));
  EXPECT_NE(a, read_file(temp_path("det-c.gguf")));
}

class EveryType : public ::testing::TestWithParam<WeightType> {};

TEST_P(EveryType, TinyLoadsAndGenerates) {
  auto model = load(test::generated_model("tiny", GetParam(), 3));
  ASSERT_TRUE(model);
  auto out = greedy(model.get(), "hello world", 8);
  EXPECT_EQ(out.size(), 8u);
}

INSTANTIATE_TEST_SUITE_P(Mkmodel, EveryType,
                         ::testing::Values(WeightType::f32, WeightType::f16, WeightType::q8_0,
                                           WeightType::q4_0),
                         [](const auto& info) {
                           return std::string(weight_type_name(info.param));
                         });

TEST(Mkmodel, MetadataAsRequested) {
  auto spec = ModelSpec{*shape_by_name("tiny"), WeightType::f16, 5};
  spec.shape.n_vocab = 1000;
  spec.shape.n_layer = 3;
  spec.shape.n_ctx = 512;
  const auto path = temp_path("meta.gguf");
  ASSERT_TRUE(write_model(spec, path));
  auto model = load(path);
  ASSERT_TRUE(model);
  EXPECT_EQ(llama_vocab_n_tokens(llama_model_get_vocab(model.get())), 1000);
  EXPECT_EQ(llama_model_n_layer(model.get()), 3);
  EXPECT_EQ(llama_model_n_embd(model.get()), 128);
  EXPECT_EQ(llama_model_n_head(model.get()), 4);
  EXPECT_EQ(llama_model_n_head_kv(model.get()), 2);
  EXPECT_EQ(llama_model_n_ctx_train(model.get()), 512);
  EXPECT_EQ(static_cast<std::int64_t>(llama_model_n_params(model.get())),
            parameter_count(spec.shape));
  char name[128] = {};
  llama_model_meta_val_str(model.get(), "general.file_type", name, sizeof name);
  EXPECT_STREQ(name, "1");
}

TEST(Mkmodel, SmallShapeLoadsAndGenerates) {
  auto model = load(test::generated_model("small", WeightType::q4_0, 1));
  ASSERT_TRUE(model);
  EXPECT_EQ(llama_model_n_embd(model.get()), 768);
  EXPECT_EQ(llama_model_n_layer(model.get()), 12);
  EXPECT_NEAR(static_cast<double>(llama_model_n_params(model.get())), 134e6, 10e6);
  EXPECT_EQ(greedy(model.get(), "hi", 2).size(), 2u);
}

TEST(MkmodelSlow, OneBShapeLoadsAndGenerates) {
  auto model = load(test::generated_model("1b", WeightType::q4_0, 1));
  ASSERT_TRUE(model);
  EXPECT_EQ(llama_model_n_embd(model.get()), 2048);
  EXPECT_EQ(llama_model_n_layer(model.get()), 22);
  EXPECT_EQ(llama_model_n_head_kv(model.get()), 4);
  EXPECT_NEAR(static_cast<double>(llama_model_n_params(model.get())), 1.1e9, 0.05e9);
  EXPECT_EQ(greedy(model.get(), "hi", 2).size(), 2u);
}

TEST(Tokenizer, AnyUtf8RoundTrips) {
  auto model = load(test::generated_model("tiny"));
  ASSERT_TRUE(model);
  const llama_vocab* vocab = llama_model_get_vocab(model.get());
  for (std::string text : {"Hello, world! The actor model.", "  two  spaces\tand\nnewlines ",
                           "caf\xC3\xA9 na\xC3\xAFve r\xC3\xA9sum\xC3\xA9",
                           "\xE6\x97\xA5\xE6\x9C\xAC\xE8\xAA\x9E\xE3\x81\xAE\xE6\x96\x87",
                           "emoji \xF0\x9F\x98\x80\xF0\x9F\x9A\x80!", "<|im_start|> as text"}) {
    auto tokens = tokenize(vocab, text, false);
    EXPECT_FALSE(tokens.empty()) << text;
    EXPECT_EQ(detokenize(vocab, tokens), text);
  }
}

TEST(Tokenizer, SpecialTokens) {
  auto model = load(test::generated_model("tiny"));
  const llama_vocab* vocab = llama_model_get_vocab(model.get());
  EXPECT_EQ(llama_vocab_bos(vocab), 1);
  EXPECT_EQ(llama_vocab_eos(vocab), 2);
  EXPECT_TRUE(llama_vocab_get_add_bos(vocab));
  EXPECT_FALSE(llama_vocab_get_add_eos(vocab));
  auto with_bos = tokenize(vocab, "the", true);
  ASSERT_FALSE(with_bos.empty());
  EXPECT_EQ(with_bos.front(), 1);
  auto im_end = tokenize(vocab, "<|im_end|>", true, true);
  ASSERT_EQ(im_end.size(), 2u);  // BOS, <|im_end|> parsed as one special token
  EXPECT_TRUE(llama_vocab_is_eog(vocab, im_end[1]));
  EXPECT_TRUE(llama_vocab_is_eog(vocab, 2));
}

TEST(Tokenizer, ChatTemplateRendersConversation) {
  auto model = load(test::generated_model("tiny"));
  const char* tmpl = llama_model_chat_template(model.get(), nullptr);
  ASSERT_NE(tmpl, nullptr);
  llama_chat_message msgs[] = {{"system", "Be brief."}, {"user", "Hi"}, {"assistant", "Hello."}};
  std::string out(1024, '\0');
  int n = llama_chat_apply_template(tmpl, msgs, 3, true, out.data(), static_cast<int>(out.size()));
  ASSERT_GT(n, 0);
  out.resize(static_cast<std::size_t>(n));
  EXPECT_EQ(out,
            "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n"
            "<|im_start|>assistant\nHello.<|im_end|>\n<|im_start|>assistant\n");
}

TEST(Generate, TinyGreedyIsRepeatable) {
  auto model = load(test::generated_model("tiny"));
  ASSERT_TRUE(model);
  auto a = greedy(model.get(), "Once upon a time", 32);
  auto b = greedy(model.get(), "Once upon a time", 32);
  EXPECT_EQ(a.size(), 32u);
  EXPECT_EQ(a, b);
}

TEST(Generate, RealModelGreedyIsRepeatableText) {
  auto path = test::shared_model("stories260K.gguf");
  if (!path)
    GTEST_SKIP() << "../shared/models is absent: the real-model check is skipped";
  auto model = load(*path);
  ASSERT_TRUE(model);
  auto a = greedy(model.get(), "Once upon a time", 32);
  EXPECT_EQ(a, greedy(model.get(), "Once upon a time", 32));
  const std::string text = detokenize(llama_model_get_vocab(model.get()), a);
  EXPECT_NE(text.find("little girl"), std::string::npos) << text;
}

}  // namespace
}  // namespace troupe::mkmodel

namespace troupe::mkmodel {
namespace {

// The tiny shape as a BERT with the real bert-bge vocabulary.
ModelSpec tiny_bert(WeightType type) {
  auto spec = ModelSpec{*shape_by_name("tiny"), type, 2};
  spec.arch = Arch::bert;
  spec.shape.n_head_kv = spec.shape.n_head;
  spec.shape.n_ctx = 512;
  spec.vocab_file = TROUPE_LLAMA_TESTDATA "/vocab/ggml-vocab-bert-bge.gguf";
  return spec;
}

// llama.cpp loads a generated BERT (the bert-bge WordPiece vocabulary) as an encoder that
// pools; the rank variant carries the one-score classifier head; a quantized one loads too.
TEST(MkmodelBert, LoadsWithPoolingAndClassifierHead) {
  for (BertPooling pooling : {BertPooling::cls, BertPooling::mean, BertPooling::rank}) {
    auto model = load(test::generated_bert_model(pooling));
    ASSERT_TRUE(model);
    char arch[32] = {};
    llama_model_meta_val_str(model.get(), "general.architecture", arch, sizeof arch);
    EXPECT_STREQ(arch, "bert");
    char pool[8] = {};
    llama_model_meta_val_str(model.get(), "bert.pooling_type", pool, sizeof pool);
    EXPECT_EQ(std::atoi(pool), static_cast<int>(pooling));
    EXPECT_EQ(llama_model_n_embd(model.get()), 128);
    EXPECT_EQ(llama_model_n_ctx_train(model.get()), 512);
    EXPECT_EQ(llama_model_n_cls_out(model.get()), 1u);
    const llama_vocab* vocab = llama_model_get_vocab(model.get());
    EXPECT_EQ(llama_vocab_type(vocab), LLAMA_VOCAB_TYPE_WPM);
    auto tokens = tokenize(vocab, "hello world", true);
    ASSERT_EQ(tokens.size(), 4u);  // [CLS] hello world [SEP]
    EXPECT_EQ(tokens.front(), llama_vocab_bos(vocab));
  }
  const auto spec = tiny_bert(WeightType::q8_0);
  const auto path = temp_path("bert-q8.gguf");
  ASSERT_TRUE(write_model(spec, path));
  EXPECT_TRUE(load(path));
}

// Every weight type embeds, not only loads: llama.cpp's BERT graph adds the token-type row
// to F32 activations, which ggml cannot do from an F16 or quantized tensor (it aborted).
TEST(MkmodelBert, EveryWeightTypeEmbeds) {
  for (WeightType type : {WeightType::f32, WeightType::f16, WeightType::q8_0}) {
    const auto spec = tiny_bert(type);
    const auto path = temp_path("bert-embeds.gguf");
    ASSERT_TRUE(write_model(spec, path));
    auto model = load(path);
    ASSERT_TRUE(model);
    auto params = llama_context_default_params();
    params.n_ctx = 512;
    params.n_batch = params.n_ubatch = 512;
    params.n_threads = params.n_threads_batch = 1;
    params.embeddings = true;
    std::unique_ptr<llama_context, decltype(&llama_free)> ctx(
        llama_init_from_model(model.get(), params), &llama_free);
    ASSERT_TRUE(ctx);
    auto tokens = tokenize(llama_model_get_vocab(model.get()), "hello world", true);
    ASSERT_EQ(llama_encode(ctx.get(),
                           llama_batch_get_one(tokens.data(), static_cast<int>(tokens.size()))),
              0);
    const float* v = llama_get_embeddings_seq(ctx.get(), 0);
    ASSERT_NE(v, nullptr);
    EXPECT_TRUE(std::isfinite(v[0]));
  }
}

TEST(MkmodelBert, RefusesWhatBertCannotBe) {
  auto spec = ModelSpec{*shape_by_name("tiny"), WeightType::f32, 2};
  spec.arch = Arch::bert;
  spec.shape.n_head_kv = spec.shape.n_head;
  auto no_vocab = validate(spec);
  ASSERT_FALSE(no_vocab);
  EXPECT_EQ(no_vocab.error().param, "vocab");
  spec.vocab_file = "x.gguf";
  spec.shape.n_head_kv = 2;
  auto gqa = validate(spec);
  ASSERT_FALSE(gqa);
  EXPECT_EQ(gqa.error().param, "kv-heads");
  EXPECT_FALSE(parse_arch("gpt"));
  EXPECT_FALSE(parse_bert_pooling("last"));
}

// --arch cohere2: llama.cpp loads it with its sliding window on three layers of four, and it
// generates (its output matrix is the token embeddings).
TEST(MkmodelCohere2, LoadsWithItsSlidingWindowAndGenerates) {
  auto model = load(test::generated_swa_model(16));
  ASSERT_TRUE(model);
  char arch[32] = {};
  llama_model_meta_val_str(model.get(), "general.architecture", arch, sizeof arch);
  EXPECT_STREQ(arch, "cohere2");
  EXPECT_EQ(llama_model_n_swa(model.get()), 16);
  EXPECT_EQ(greedy(model.get(), "hello world", 8).size(), 8u);
  auto spec = ModelSpec{*shape_by_name("tiny"), WeightType::f32, 2};
  spec.arch = Arch::cohere2;
  spec.sliding_window = 0;
  auto no_window = validate(spec);
  ASSERT_FALSE(no_window);
  EXPECT_EQ(no_window.error().param, "sliding-window");
  EXPECT_TRUE(parse_arch("cohere2"));
}

// --arch lfm2: llama.cpp loads it as a hybrid (a recurrent state beside a KV cache) and it
// generates, in every weight type (the convolution's taps stay F32).
TEST(MkmodelLfm2, LoadsAsAHybridAndGenerates) {
  auto model = load(test::generated_hybrid_model());
  ASSERT_TRUE(model);
  EXPECT_TRUE(llama_model_is_hybrid(model.get()));
  EXPECT_EQ(greedy(model.get(), "hello world", 8).size(), 8u);
  for (const WeightType type : {WeightType::q8_0, WeightType::q4_0}) {
    auto spec = ModelSpec{*shape_by_name("tiny"), type, 3};
    spec.arch = Arch::lfm2;
    const auto path = temp_path("lfm2-quantized.gguf");
    ASSERT_TRUE(write_model(spec, path));
    auto quantized = load(path);
    ASSERT_TRUE(quantized) << weight_type_name(type);
    EXPECT_EQ(greedy(quantized.get(), "hello world", 4).size(), 4u);
  }
}

}  // namespace
}  // namespace troupe::mkmodel
