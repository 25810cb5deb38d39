// Fill in the middle (engine/infill.hpp, Task::infill): the prompt's layout from a stand-in
// tokenizer, then through the whole engine with a real FIM vocabulary (StarCoder's, from
// llama.cpp's test data: <fim_prefix>, <fim_suffix>, <fim_middle>) and random weights.

#include "engine/infill.hpp"

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>

#include "engine/coordinator.hpp"
#include "engine/llama_runtime.hpp"
#include "engine/model.hpp"
#include "engine/sampler.hpp"
#include "engine_test_util.hpp"
#include "mkmodel/model_spec.hpp"

namespace troupe::engine {
namespace {

using testing::collect;
using testing::run_sync;

// A stand-in tokenizer: one token per byte, its value + 1000.
Result<std::vector<Token>> bytes(std::string_view text) {
  std::vector<Token> out;
  for (char c : text)
    out.push_back(1000 + static_cast<unsigned char>(c));
  return out;
}

std::vector<Token> text_tokens(std::string_view text) {
  return bytes(text).value();
}

// Concatenates token lists.
std::vector<Token> cat(std::initializer_list<std::vector<Token>> parts) {
  std::vector<Token> out;
  for (const auto& p : parts)
    out.insert(out.end(), p.begin(), p.end());
  return out;
}

constexpr FimTokens kFim{1, 2, 3, -1, -1, -1};
constexpr FimTokens kRepoFim{1, 2, 3, 4, 5, 9};

TEST(InfillPrompt, PrefixMiddleSuffixInPsmOrder) {
  const InfillParams p{"ab", "cd", {}, false};
  const std::vector<Token> middle{77};
  auto out = infill_prompt(kFim, p, middle, bytes, {});
  ASSERT_TRUE(out) << out.error().message;
  EXPECT_EQ(out->tokens, cat({{1}, text_tokens("ab"), {77, 2}, text_tokens("cd"), {3}}));
  EXPECT_FALSE(out->truncated);
  // Empty parts are just the FIM tokens; a BOS goes first.
  auto empty = infill_prompt(kRepoFim, InfillParams{}, {}, bytes, {});
  ASSERT_TRUE(empty);
  EXPECT_EQ(empty->tokens, (std::vector<Token>{9, 1, 2, 3}));
}

// llama-server's --spm-infill: the suffix, then the prefix and the middle.
TEST(InfillPrompt, SuffixFirstInSpmOrder) {
  const InfillParams p{"ab", "cd", {{"", "E"}}, false};
  const std::vector<Token> middle{77};
  auto out = infill_prompt(kFim, p, middle, bytes, {0, 0, 0, /*suffix_first=*/true});
  ASSERT_TRUE(out) << out.error().message;
  EXPECT_EQ(out->tokens, cat({text_tokens("\n\n--- snippet ---\n\n"),
                              text_tokens("E"),
                              {2},
                              text_tokens("cd"),
                              {1},
                              text_tokens("ab"),
                              {77, 3}}));
}

TEST(InfillPrompt, OtherFilesComeFirstAsARepository) {
  const InfillParams p{"x", "y", {{"a.py", "A"}, {"", "B"}}, false};
  auto out = infill_prompt(kRepoFim, p, {}, bytes, {});
  ASSERT_TRUE(out);
  // The BOS after the other files, before the prefix: where llama-server puts it.
  EXPECT_EQ(out->tokens, cat({{4},
                              text_tokens("myproject\n"),
                              {5},
                              text_tokens("a.py\n"),
                              text_tokens("A"),
                              {5},
                              text_tokens("tmp\n"),
                              text_tokens("B"),
                              {5},
                              text_tokens("filename\n"),
                              {9, 1},
                              text_tokens("x"),
                              {2},
                              text_tokens("y"),
                              {3}}));
  // Without repository tokens each file is set apart by a plain line.
  auto plain = infill_prompt(kFim, InfillParams{"", "", {{"a.py", "A"}}, false}, {}, bytes, {});
  ASSERT_TRUE(plain);
  EXPECT_EQ(plain->tokens,
            cat({text_tokens("\n\n--- snippet ---\n\n"), text_tokens("A"), {1, 2, 3}}));
}

TEST(InfillPrompt, TrimmedToTheBatchAndTheContext) {
  // A batch of 16: the prefix keeps its last 12 tokens, the suffix its first 4 - 2 - 1 = 1
  // (the middle has one), the other files the context less the batch and twice the answer:
  // 40 - 16 - 2 * 8 = 8 tokens, their last.
  const InfillParams p{"0123456789abcdefghij", "ABCDEFG", {{"f", "0123456789"}}, true};
  const std::vector<Token> middle{77};
  auto out = infill_prompt(kFim, p, middle, bytes, {16, 8, 40});
  ASSERT_TRUE(out);
  EXPECT_TRUE(out->truncated);
  const auto extra = cat({text_tokens("\n\n--- snippet ---\n\n"), text_tokens("0123456789")});
  const std::vector<Token> kept(extra.end() - 8, extra.end());
  EXPECT_EQ(out->tokens,
            cat({kept, {1}, text_tokens("89abcdefghij"), {77, 2}, text_tokens("A"), {3}}));
  // Within the budget nothing is cut.
  auto whole = infill_prompt(kFim, InfillParams{"ab", "cd", {}, true}, {}, bytes, {16, 8, 40});
  ASSERT_TRUE(whole);
  EXPECT_FALSE(whole->truncated);
  EXPECT_EQ(whole->tokens.size(), 7u);
  // Without trim the same request is kept whole.
  auto untrimmed = infill_prompt(kFim, InfillParams{p.prefix, p.suffix, p.extra, false}, middle,
                                 bytes, {16, 8, 40});
  ASSERT_TRUE(untrimmed);
  EXPECT_FALSE(untrimmed->truncated);
  EXPECT_EQ(untrimmed->tokens.size(), extra.size() + 1 + 20 + 1 + 1 + 7 + 1);
}

TEST(InfillPrompt, AModelWithoutFimTokensIsAClearError) {
  auto out = infill_prompt(FimTokens{1, -1, 3}, InfillParams{"a", "b", {}, false}, {}, bytes, {});
  ASSERT_FALSE(out);
  EXPECT_EQ(out.error().code, Errc::invalid_request);
  EXPECT_EQ(out.error().param, "suffix");
  EXPECT_NE(out.error().message.find("fill in the middle"), std::string::npos);
}

// StarCoder's vocabulary with random weights, written once into the build tree.
std::string starcoder_model() {
  const auto dir = std::filesystem::path(TROUPE_BINARY_DIR) / "test-models";
  std::filesystem::create_directories(dir);
  const auto path = dir / "fim-starcoder.gguf";
  if (std::filesystem::exists(path))
    return path.string();
  mkmodel::ModelSpec spec;
  spec.shape = mkmodel::shape_by_name("tiny").value();
  spec.seed = 1;
  spec.vocab_file =
      (std::filesystem::path(TROUPE_LLAMA_TESTDATA) / "vocab" / "ggml-vocab-starcoder.gguf")
          .string();
  const auto tmp = path.string() + fmt::format(".{}.tmp", ::getpid());
  auto ok = mkmodel::write_model(spec, tmp);
  EXPECT_TRUE(ok) << (ok ? "" : ok.error().message);
  std::filesystem::rename(tmp, path);
  return path.string();
}

EngineOptions options(std::string model, std::int32_t n_ctx = 1024) {
  EngineOptions o;
  o.model_path = std::move(model);
  o.engine.n_threads = 1;
  o.engine.n_parallel = 1;
  o.engine.n_ctx = n_ctx;
  o.engine.n_batch = 64;
  return o;
}

Task greedy(Prompt prompt) {
  Task t;
  t.prompt = std::move(prompt);
  t.sampling.temperature = 0.0f;
  t.stop.max_tokens = 6;
  t.stop.ignore_eos = true;
  return t;
}

std::vector<Token> tokens(Coordinator& c, const std::string& text, bool special) {
  auto t = run_sync(c.tokenize("", text, false, special));
  EXPECT_TRUE(t) << t.error().message;
  return t ? *t : std::vector<Token>{};
}

// The engine's answer to an infill is its answer to the prompt laid out by hand with the
// vocabulary's FIM tokens: the same prompt, token for token (greedy, random weights: a
// different prompt gives a different answer).
TEST(Infill, TheEngineFillsTheMiddleWithTheModelsFimTokens) {
  Coordinator c(options(starcoder_model()));
  ASSERT_EQ(c.wait_loaded().state, HealthState::ready) << c.health().message;
  const Token pre = tokens(c, "<fim_prefix>", true).at(0);
  const Token suf = tokens(c, "<fim_suffix>", true).at(0);
  const Token mid = tokens(c, "<fim_middle>", true).at(0);
  ASSERT_EQ(tokens(c, "<fim_prefix>", true).size(), 1u);

  // Special-token text in the code is plain text, not markup.
  Task t = greedy(std::string("    return "));
  t.infill = InfillParams{"def add(a, b):\n<fim_middle>",
                          "\n\nprint(add(1, 2))\n",
                          {{"util.py", "import os\n"}},
                          false};
  auto s = run_sync(c.generate(t));
  auto got = collect(s);
  ASSERT_FALSE(got.error) << got.error->message;
  ASSERT_TRUE(got.finished);

  // llama.cpp finds StarCoder's prefix, suffix and middle tokens but no repository or file
  // separator among its tokens: the other file comes after a plain snippet line.
  const auto by_hand = cat({tokens(c, "\n\n--- snippet ---\n\n", false),
                            tokens(c, "import os\n", false),
                            {pre},
                            tokens(c, "def add(a, b):\n<fim_middle>", false),
                            tokens(c, "    return ", true),
                            {suf},
                            tokens(c, "\n\nprint(add(1, 2))\n", false),
                            {mid}});
  auto s2 = run_sync(c.generate(greedy(by_hand)));
  auto want = collect(s2);
  ASSERT_FALSE(want.error) << want.error->message;
  ASSERT_TRUE(got.started && want.started);
  EXPECT_EQ(got.started->prompt_tokens, static_cast<std::int32_t>(by_hand.size()));
  EXPECT_FALSE(got.started->truncated);
  EXPECT_EQ(got.tokens, want.tokens);
  EXPECT_EQ(got.tokens.size(), 6u);
}

TEST(Infill, TrimmedPartsAreSaidAndAnUntrimmedOneTooLongIsRefused) {
  Coordinator c(options(starcoder_model(), 256));
  ASSERT_EQ(c.wait_loaded().state, HealthState::ready) << c.health().message;
  std::string long_prefix;
  for (int i = 0; i < 200; ++i)
    long_prefix += fmt::format("x{} = {}\n", i, i);
  Task t = greedy(std::string());
  t.infill = InfillParams{long_prefix, "\n", {}, true};
  auto s = run_sync(c.generate(t));
  auto got = collect(s);
  ASSERT_FALSE(got.error) << got.error->message;
  ASSERT_TRUE(got.started);
  EXPECT_TRUE(got.started->truncated);
  // The budget's batch is llama-server's 2048, cut to the context of 256: the prefix's last
  // 192 tokens, the suffix's one, three FIM tokens.
  EXPECT_EQ(got.started->prompt_tokens, 192 + 1 + 3);

  t.infill->trim = false;
  auto refused = run_sync(c.generate(t));
  auto r = collect(refused);
  ASSERT_TRUE(r.error);
  EXPECT_EQ(r.error->code, Errc::prompt_too_long);
}

// llama-server's `infill` stage (llama.cpp's FIM sampler): where end-of-generation is likely
// enough among the candidates top_k left (three times its probability times their number
// beats the others' sum), the answer ends. 11 candidates, EOG at 0.21: 3 x 0.21 x 11 beats
// 0.79, so every draw ends; without the stage about a fifth do.
TEST(Infill, TheInfillStageEndsWhereEndOfGenerationOutweighsTheRest) {
  init_llama_runtime();
  auto model = LlamaModel::load({starcoder_model()});
  ASSERT_TRUE(model) << model.error().message;
  const llama_vocab* vocab = (*model)->vocab();
  const auto n_vocab = (*model)->n_vocab();
  const Token eos = llama_vocab_eos(vocab);
  ASSERT_GE(eos, 0);
  std::vector<float> logits(static_cast<std::size_t>(n_vocab), -30.0f);
  logits[static_cast<std::size_t>(eos)] = 5.0f;
  for (Token t = 1000; t < 1010; ++t)  // ten ordinary tokens a little less likely each
    logits[static_cast<std::size_t>(t)] = 4.0f;
  SamplingParams sp;
  sp.temperature = 1.0f;
  sp.top_k = 11;
  sp.top_p = 1.0f;
  sp.min_p = 0.0f;
  SamplerScratch scratch(n_vocab);
  int with = 0, without = 0;
  for (std::uint32_t seed = 1; seed <= 40; ++seed) {
    sp.seed = seed;
    for (bool infill : {true, false}) {
      sp.samplers = {SamplerStage::top_k, SamplerStage::top_p};
      if (infill)
        sp.samplers.push_back(SamplerStage::infill);
      Sampler s(sp, n_vocab, {}, 256, {}, {}, SamplerPath::automatic, nullptr, FirstByteCheck::off,
                vocab);
      SampledToken out;
      ASSERT_EQ(s.sample(logits.data(), nullptr, scratch, out), SampleStatus::ok);
      (infill ? with : without) += out.token == eos;
    }
  }
  EXPECT_EQ(with, 40);
  EXPECT_LT(without, 30);
  EXPECT_GT(without, 0);
}

TEST(Infill, AModelWithoutFimTokensIsRefused) {
  Coordinator c(options(testing::tiny_model()));
  ASSERT_EQ(c.wait_loaded().state, HealthState::ready) << c.health().message;
  Task t = greedy(std::string());
  t.infill = InfillParams{"a", "b", {}, false};
  auto s = run_sync(c.generate(t));
  auto got = collect(s);
  ASSERT_TRUE(got.error);
  EXPECT_EQ(got.error->code, Errc::invalid_request);
  EXPECT_EQ(got.error->param, "suffix");
}

}  // namespace
}  // namespace troupe::engine
