// troupe mkmodel with a real tokenizer (--vocab): a random-weight llama model written with one
// of llama.cpp's ggml-vocab-*.gguf files loads, has that vocabulary's special tokens, tokenizes
// exactly like the vocabulary file itself, decodes, and carries the chat template asked for.

#include "mkmodel/vocab_file.hpp"

#include <gguf.h>
#include <gtest/gtest.h>
#include <llama.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <memory>
#include <string>
#include <vector>

#include "engine/llama_runtime.hpp"
#include "mkmodel/model_spec.hpp"

namespace troupe::mkmodel {
namespace {

namespace fs = std::filesystem;

struct ModelDeleter {
  void operator()(llama_model* m) const { llama_model_free(m); }
};
struct ContextDeleter {
  void operator()(llama_context* c) const { llama_free(c); }
};
using ModelPtr = std::unique_ptr<llama_model, ModelDeleter>;
using ContextPtr = std::unique_ptr<llama_context, ContextDeleter>;

const fs::path kTestData = TROUPE_LLAMA_TESTDATA;

ModelPtr load(const std::string& path, bool vocab_only) {
  engine::init_llama_runtime();
  auto params = llama_model_default_params();
  params.vocab_only = vocab_only;
  return ModelPtr(llama_model_load_from_file(path.c_str(), params));
}

std::string read_file(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), {}};
}

std::string temp_path(const std::string& name) {
  const auto dir = fs::path(TROUPE_BINARY_DIR) / "test-models";
  fs::create_directories(dir);
  return (dir / name).string();
}

std::vector<llama_token> tokenize(const llama_vocab* vocab, const std::string& text) {
  std::vector<llama_token> out(text.size() + 16);
  int n = llama_tokenize(vocab, text.data(), static_cast<int>(text.size()), out.data(),
                         static_cast<int>(out.size()), /*add_special=*/true,
                         /*parse_special=*/true);
  EXPECT_GE(n, 0) << text;
  out.resize(static_cast<std::size_t>(std::max(n, 0)));
  return out;
}

std::string detokenize(const llama_vocab* vocab, const std::vector<llama_token>& tokens) {
  std::string out(tokens.size() * 32 + 32, '\0');
  int n = llama_detokenize(vocab, tokens.data(), static_cast<int>(tokens.size()), out.data(),
                           static_cast<int>(out.size()), false, true);
  EXPECT_GE(n, 0);
  out.resize(static_cast<std::size_t>(std::max(n, 0)));
  return out;
}

std::string text_of(const llama_vocab* vocab, llama_token t) {
  if (t == LLAMA_TOKEN_NULL)
    return "(none)";
  return llama_vocab_get_text(vocab, t);
}

// Texts that exercise pre-tokenizers: spaces, digits, code, punctuation, non-Latin scripts,
// emoji, and special-token text.
const std::vector<std::string> kTexts = {
    "Hello, world! This is a test.",
    "  leading spaces,\ttabs\nand\n\nnewlines   ",
    "The year 2024 had 366 days; 3.14159 is pi.",
    "def f(x):\n    return x**2  # square\n",
    "caf\xC3\xA9 na\xC3\xAFve r\xC3\xA9sum\xC3\xA9 \xC3\x9C"
    "ber",
    "\xE6\x97\xA5\xE6\x9C\xAC\xE8\xAA\x9E\xE3\x81\xAE\xE6\x96\x87\xE7\xAB\xA0 "
    "\xD0\xBF\xD1\x80\xD0\xB8\xD0\xB2\xD0\xB5\xD1\x82",
    "emoji \xF0\x9F\x98\x80\xF0\x9F\x9A\x80! and CAPS, don't, we'll",
};

std::string write_with_vocab(const std::string& family, const fs::path& vocab_path,
                             std::optional<std::string> chat_template = std::nullopt) {
  ModelSpec spec{*shape_by_name("tiny"), WeightType::q4_0, 11};
  spec.vocab_file = vocab_path.string();
  spec.chat_template = std::move(chat_template);
  const auto out = temp_path("vocab-" + family + ".gguf");
  auto ok = write_model(spec, out);
  EXPECT_TRUE(ok) << (ok ? "" : ok.error().message);
  return out;
}

class RealVocab : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    if (!fs::is_directory(kTestData / "vocab"))
      GTEST_SKIP() << "llama.cpp's test data is not installed (" << kTestData << ")";
    vocab_path_ = kTestData / "vocab" / ("ggml-vocab-" + GetParam() + ".gguf");
    if (GetParam() == "qwen35" && !fs::exists(vocab_path_))
      GTEST_SKIP() << "this release has no qwen35 vocabulary";
    ASSERT_TRUE(fs::exists(vocab_path_)) << vocab_path_;
  }
  fs::path vocab_path_;
};

TEST_P(RealVocab, ModelTokenizesLikeTheVocabularyAndDecodes) {
  const auto path = write_with_vocab(GetParam(), vocab_path_);
  auto reference = load(vocab_path_.string(), true);
  auto model = load(path, false);
  ASSERT_TRUE(reference);
  ASSERT_TRUE(model) << path;
  const llama_vocab* rv = llama_model_get_vocab(reference.get());
  const llama_vocab* mv = llama_model_get_vocab(model.get());

  // The embedding and output tensors are sized to the vocabulary.
  ASSERT_EQ(llama_vocab_n_tokens(mv), llama_vocab_n_tokens(rv));
  ASSERT_EQ(llama_vocab_type(mv), llama_vocab_type(rv));
  char arch[32] = {};
  llama_model_meta_val_str(model.get(), "general.architecture", arch, sizeof arch);
  EXPECT_STREQ(arch, "llama");

  // Special tokens: ids and text, the add_bos/add_eos flags, the whole end-of-generation set.
  EXPECT_EQ(text_of(mv, llama_vocab_bos(mv)), text_of(rv, llama_vocab_bos(rv)));
  EXPECT_EQ(llama_vocab_bos(mv), llama_vocab_bos(rv));
  EXPECT_EQ(llama_vocab_eos(mv), llama_vocab_eos(rv));
  EXPECT_EQ(text_of(mv, llama_vocab_eos(mv)), text_of(rv, llama_vocab_eos(rv)));
  EXPECT_EQ(llama_vocab_eot(mv), llama_vocab_eot(rv));
  EXPECT_EQ(llama_vocab_pad(mv), llama_vocab_pad(rv));
  EXPECT_EQ(llama_vocab_nl(mv), llama_vocab_nl(rv));
  EXPECT_EQ(llama_vocab_get_add_bos(mv), llama_vocab_get_add_bos(rv));
  EXPECT_EQ(llama_vocab_get_add_eos(mv), llama_vocab_get_add_eos(rv));
  int eog = 0;
  for (llama_token t = 0; t < llama_vocab_n_tokens(rv); ++t) {
    ASSERT_EQ(llama_vocab_is_eog(mv, t), llama_vocab_is_eog(rv, t)) << "token " << t;
    ASSERT_EQ(llama_vocab_is_control(mv, t), llama_vocab_is_control(rv, t)) << "token " << t;
    eog += llama_vocab_is_eog(rv, t) ? 1 : 0;
  }
  EXPECT_GT(eog, 0);
  EXPECT_TRUE(llama_vocab_is_eog(mv, llama_vocab_eos(mv)));

  // Tokenizing: the same ids as the vocabulary file, with the special tokens' text parsed.
  std::vector<std::string> texts = kTexts;
  texts.push_back("before " + text_of(rv, llama_vocab_eos(rv)) + " after");
  for (const auto& text : texts) {
    const auto expected = tokenize(rv, text);
    const auto got = tokenize(mv, text);
    EXPECT_EQ(got, expected) << GetParam() << ": " << text;
    EXPECT_EQ(detokenize(mv, got), detokenize(rv, expected)) << text;
  }

  // It decodes: a prompt, then a few greedy tokens, all inside the vocabulary.
  auto cparams = llama_context_default_params();
  cparams.n_ctx = 128;
  cparams.n_batch = 128;
  cparams.n_threads = cparams.n_threads_batch = 1;
  ContextPtr ctx(llama_init_from_model(model.get(), cparams));
  ASSERT_TRUE(ctx);
  auto tokens = tokenize(mv, kTexts[0]);
  std::unique_ptr<llama_sampler, decltype(&llama_sampler_free)> greedy(llama_sampler_init_greedy(),
                                                                       llama_sampler_free);
  llama_batch batch = llama_batch_get_one(tokens.data(), static_cast<int>(tokens.size()));
  std::vector<llama_token> out;
  for (int i = 0; i < 4; ++i) {
    ASSERT_EQ(llama_decode(ctx.get(), batch), 0);
    out.push_back(llama_sampler_sample(greedy.get(), ctx.get(), -1));
    ASSERT_GE(out.back(), 0);
    ASSERT_LT(out.back(), llama_vocab_n_tokens(mv));
    batch = llama_batch_get_one(&out.back(), 1);
  }
}

TEST_P(RealVocab, ChatTemplateIsTheVocabularysOwnOrTheOneGiven) {
  const auto path = write_with_vocab(GetParam(), vocab_path_);
  auto reference = load(vocab_path_.string(), true);
  auto model = load(path, true);
  ASSERT_TRUE(reference && model);
  const char* own = llama_model_chat_template(reference.get(), nullptr);
  const char* copied = llama_model_chat_template(model.get(), nullptr);
  if (own == nullptr) {
    EXPECT_EQ(copied, nullptr) << "the generated ChatML template must not replace a real vocab's";
  } else {
    ASSERT_NE(copied, nullptr);
    EXPECT_STREQ(copied, own);
  }

  const auto tmpl = kTestData / "templates" / "meta-llama-Llama-3.3-70B-Instruct.jinja";
  if (!fs::exists(tmpl))
    GTEST_SKIP() << tmpl << " is not installed";
  const std::string text = read_file(tmpl);
  ASSERT_FALSE(text.empty());
  const auto with_template = write_with_vocab(GetParam() + "-tmpl", vocab_path_, text);
  auto templated = load(with_template, true);
  ASSERT_TRUE(templated);
  const char* read_back = llama_model_chat_template(templated.get(), nullptr);
  ASSERT_NE(read_back, nullptr);
  EXPECT_EQ(std::string(read_back), text);
}

INSTANTIATE_TEST_SUITE_P(Mkmodel, RealVocab,
                         ::testing::Values("llama-bpe", "qwen2", "qwen35", "phi-3", "gemma-4",
                                           "deepseek-llm", "llama-spm", "command-r"),
                         [](const auto& info) {
                           std::string name = info.param;
                           for (char& c : name)
                             c = (c == '-') ? '_' : c;
                           return name;
                         });

TEST(VocabFile, BadFilesAreClearErrors) {
  auto missing = VocabFile::open("/nonexistent/ggml-vocab-x.gguf");
  ASSERT_FALSE(missing);
  EXPECT_NE(missing.error().message.find("not found"), std::string::npos);

  const auto text = temp_path("not-a-gguf.txt");
  std::ofstream(text) << "this is not a GGUF file\n";
  auto not_gguf = VocabFile::open(text);
  ASSERT_FALSE(not_gguf);
  EXPECT_NE(not_gguf.error().message.find("is not a GGUF file"), std::string::npos)
      << not_gguf.error().message;

  // A valid GGUF without a tokenizer.
  const auto bare = temp_path("no-tokenizer.gguf");
  std::unique_ptr<gguf_context, decltype(&gguf_free)> g(gguf_init_empty(), gguf_free);
  gguf_set_val_str(g.get(), "general.architecture", "llama");
  ASSERT_TRUE(gguf_write_to_file(g.get(), bare.c_str(), false));
  auto no_tokenizer = VocabFile::open(bare);
  ASSERT_FALSE(no_tokenizer);
  EXPECT_NE(no_tokenizer.error().message.find("has no tokenizer"), std::string::npos)
      << no_tokenizer.error().message;

  ModelSpec spec{*shape_by_name("tiny"), WeightType::f32, 1};
  spec.vocab_file = bare;
  auto written = write_model(spec, temp_path("never.gguf"));
  ASSERT_FALSE(written);
  EXPECT_EQ(written.error().param, "vocab");
}

}  // namespace
}  // namespace troupe::mkmodel
