// troupe mkmodel's command line: bad options give one clear line and a non-zero exit.

#include <gtest/gtest.h>
#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <filesystem>
#include <string>

namespace {

struct Run {
  int exit_code = -1;
  std::string output;
};

Run run(const std::string& args) {
  const std::string cmd = std::string(TROUPE_BINARY_DIR) + "/troupe " + args + " 2>&1";
  Run r;
  FILE* p = popen(cmd.c_str(), "r");
  if (!p)
    return r;
  std::array<char, 4096> buf{};
  while (size_t n = fread(buf.data(), 1, buf.size(), p))
    r.output.append(buf.data(), n);
  const int status = pclose(p);
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return r;
}

const std::string kOut = std::string(TROUPE_BINARY_DIR) + "/test-models/cli.gguf";

TEST(MkmodelCli, WritesAModel) {
  auto r = run("mkmodel --shape tiny --type q4_0 --seed 3 -o " + kOut);
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_TRUE(std::filesystem::exists(kOut));
}

TEST(MkmodelCli, UnknownShape) {
  auto r = run("mkmodel --shape huge -o " + kOut);
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.output.find("unknown shape 'huge'"), std::string::npos) << r.output;
}

TEST(MkmodelCli, UnknownType) {
  auto r = run("mkmodel --type q3 -o " + kOut);
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.output.find("unknown type 'q3'"), std::string::npos) << r.output;
}

TEST(MkmodelCli, ImpossibleShape) {
  auto r = run("mkmodel --heads 5 -o " + kOut);
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.output.find("heads (5) must divide embd (128)"), std::string::npos) << r.output;
  r = run("mkmodel --n-vocab 10 -o " + kOut);
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.output.find("vocab must be in"), std::string::npos) << r.output;
  r = run("mkmodel --vocab 10 -o " + kOut);  // a number: the size, its older meaning
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.output.find("vocab must be in"), std::string::npos) << r.output;
}

const std::filesystem::path kVocabDir = std::filesystem::path(TROUPE_LLAMA_TESTDATA) / "vocab";

TEST(MkmodelCli, RealVocabularyAndChatTemplate) {
  const auto vocab = kVocabDir / "ggml-vocab-qwen2.gguf";
  const auto tmpl =
      std::filesystem::path(TROUPE_LLAMA_TESTDATA) / "templates" / "Qwen-Qwen2.5-7B-Instruct.jinja";
  if (!std::filesystem::exists(vocab) || !std::filesystem::exists(tmpl))
    GTEST_SKIP() << "llama.cpp's test data is not installed";
  const std::string out = std::string(TROUPE_BINARY_DIR) + "/test-models/cli-qwen2.gguf";
  auto r = run("mkmodel --type q4_0 --vocab " + vocab.string() + " --chat-template " +
               tmpl.string() + " -o " + out);
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("tokenizer of " + vocab.string()), std::string::npos) << r.output;
  EXPECT_TRUE(std::filesystem::exists(out));
}

TEST(MkmodelCli, BadVocabularyFile) {
  auto r = run("mkmodel --vocab /nonexistent/v.gguf -o " + kOut);
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.output.find("vocabulary file not found: /nonexistent/v.gguf"), std::string::npos)
      << r.output;
  // Not GGUF: this test's own source file.
  r = run(std::string("mkmodel --vocab ") + TROUPE_SOURCE_DIR + "/tests/mkmodel/cli_test.cpp -o " +
          kOut);
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.output.find("is not a GGUF file"), std::string::npos) << r.output;
  r = run("mkmodel --vocab " + (kVocabDir / "ggml-vocab-qwen2.gguf").string() +
          " --n-vocab 1000 -o " + kOut);
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.output.find("exclude each other"), std::string::npos) << r.output;
  r = run("mkmodel --chat-template /nonexistent/t.jinja -o " + kOut);
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.output.find("cannot read chat-template file /nonexistent/t.jinja"), std::string::npos)
      << r.output;
}

TEST(MkmodelCli, UnwritablePath) {
  auto r = run("mkmodel -o /nonexistent-dir/x.gguf");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.output.find("cannot write '/nonexistent-dir/x.gguf'"), std::string::npos) << r.output;
}

TEST(MkmodelCli, MissingOutput) {
  auto r = run("mkmodel --shape tiny");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.output.find("--output"), std::string::npos) << r.output;
}

}  // namespace

namespace {

// A random LoRA adapter for a base model (what tests of troupe serve --lora load).
TEST(MkmodelCli, WritesALoraAdapterForABaseModel) {
  const std::string dir = std::string(TROUPE_BINARY_DIR) + "/test-models/";
  const std::string base = dir + "lora-cli-base.gguf";
  const std::string out = dir + "lora-cli-adapter.gguf";
  ASSERT_EQ(run("mkmodel --shape tiny -q -o " + base).exit_code, 0);
  auto r = run("mkmodel --lora-for " + base + " --rank 4 --seed 5 -o " + out);
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("a LoRA adapter of rank 4"), std::string::npos) << r.output;
  EXPECT_TRUE(std::filesystem::exists(out));
  const auto missing = run("mkmodel --lora-for /nonexistent.gguf -o " + out);
  EXPECT_NE(missing.exit_code, 0);
  EXPECT_NE(missing.output.find("is not a GGUF file"), std::string::npos) << missing.output;
  const auto rank = run("mkmodel --lora-for " + base + " --rank 0 -o " + out);
  EXPECT_NE(rank.exit_code, 0);
  EXPECT_NE(rank.output.find("rank must be in 1..256"), std::string::npos) << rank.output;
  const auto vocab_only = run("mkmodel --lora-for " +
                              (kVocabDir / "ggml-vocab-llama-bpe.gguf").string() + " -o " + out);
  EXPECT_NE(vocab_only.exit_code, 0);
  EXPECT_NE(vocab_only.output.find("has no matrices to adapt"), std::string::npos)
      << vocab_only.output;
}

}  // namespace
