// The troupe executable as a user meets it: unknown commands and options, a model that does
// not load, the banner, the default random-weight model, /tokenize pieces. Every wait is for a
// line of output or the process's exit, bounded by a generous deadline.

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <regex>
#include <string>

#include "cli/raw_http.hpp"
#include "cli/run_troupe.hpp"
#include "cluster/child_process.hpp"
#include "mkmodel/model_spec.hpp"
#include "support/test_models.hpp"

namespace troupe::cli {
namespace {

namespace fs = std::filesystem;
using cluster::test::ChildProcess;

using invoke::has;
using invoke::Run;
Run run(const std::string& args) {
  return invoke::run_troupe(args);
}

fs::path temp_dir(const std::string& name) {
  const auto dir = fs::path(TROUPE_BINARY_DIR) / "cli_test_tmp" / name;
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir;
}

using raw::http;

const std::regex kBanner("troupe is serving on http://127\\.0\\.0\\.1:([0-9]+)");

// ---- Unknown commands and options ----------------------------------------------------------

TEST(CommandLine, UnknownCommandNamesItSuggestsAndLists) {
  for (const std::string word : {"run", "download", "serv"}) {
    auto r = run(word);
    EXPECT_NE(r.exit_code, 0) << word;
    EXPECT_TRUE(has(r.output, "unknown command '" + word + "'")) << r.output;
    EXPECT_TRUE(has(r.output, "Commands: serve, chat, bench")) << r.output;
    EXPECT_FALSE(has(r.output, "A subcommand is required")) << r.output;
  }
  EXPECT_TRUE(has(run("serv").output, "Did you mean 'troupe serve'?"));
  EXPECT_TRUE(has(run("run").output, "troupe chat"));
  EXPECT_TRUE(has(run("download").output, "troupe pull OWNER/NAME[:QUANT]"));
}

TEST(CommandLine, UnknownOptionsGetDidYouMeanOrTheTroupeName) {
  auto r = run("serve --engine sim --prot 8080");
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_TRUE(has(r.output, "troupe serve: unknown option '--prot'; did you mean '--port'?"))
      << r.output;
  EXPECT_FALSE(has(r.output, "listening on")) << r.output;

  r = run("serve --engine sim --batch-size 64 -ub 99");
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_TRUE(has(r.output, "'--batch-size': troupe's name for it is -b/--batch")) << r.output;
  EXPECT_TRUE(has(r.output, "'-ub': troupe decodes each step as one batch")) << r.output;

  r = run("mkmodel --shpe tiny -o x.gguf");
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_TRUE(has(r.output, "troupe mkmodel: unknown option '--shpe'; did you mean '--shape'?"))
      << r.output;

  r = run("serve --engine sim model.gguf");
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_TRUE(has(r.output, "unexpected argument 'model.gguf' (a model is given with -m/--model"))
      << r.output;
}

TEST(CommandLine, LogLevelAfterTheCommand) {
  auto r = run("version --log-level debug");
  EXPECT_EQ(r.exit_code, 0) << r.output;
  r = run("version --log-level loud");
  EXPECT_NE(r.exit_code, 0) << r.output;
  EXPECT_TRUE(has(r.output, "unknown log level 'loud'")) << r.output;
}

// The malloc the program's libraries call: mimalloc's where the build links it (ahead of
// libc, so that llama.cpp's allocations go to it too), another otherwise.
TEST(CommandLine, VersionSaysWhichMallocServesTheProcess) {
  auto r = run("version");
  EXPECT_EQ(r.exit_code, 0) << r.output;
  ASSERT_TRUE(has(r.output, "malloc: ")) << r.output;
#if TROUPE_EXPECT_MIMALLOC
  EXPECT_TRUE(has(r.output, "libmimalloc.so")) << r.output;
#else  // glibc's, or a sanitizer's
  EXPECT_FALSE(has(r.output, "libmimalloc.so")) << r.output;
#endif
}

TEST(CommandLine, NoCommandListsTheCommands) {
  auto r = run("");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_TRUE(has(r.output, "a command is required")) << r.output;
  EXPECT_TRUE(has(r.output, "serve")) << r.output;
  EXPECT_EQ(run("--help").exit_code, 0);
  EXPECT_EQ(run("help").exit_code, 0);
}

// ---- Server-wide sampling defaults ------------------------------------------------------------

TEST(SamplingDefaults, HelpDocumentsThemAndBadValuesAreRefused) {
  for (const std::string command : {"serve", "worker"}) {
    const auto help = run(command + " --help");
    EXPECT_EQ(help.exit_code, 0) << help.output;
    for (const std::string flag :
         {"--temp,--temperature FLOAT=0.8", "--top-k INT=40", "--top-p FLOAT=0.95",
          "--min-p FLOAT=0.05", "--repeat-penalty FLOAT=1", "--seed INT=-1",
          "--n-predict,--predict INT=-1"})
      EXPECT_TRUE(has(help.output, flag)) << command << ": " << flag << "\n" << help.output;
  }
  for (const auto& [args, says] : std::vector<std::pair<std::string, std::string>>{
           {"--top-p 0", "--top-p must be in (0, 1]"},
           {"--temp -1", "--temp must be in [0, 100]"},
           {"--min-p 2", "--min-p must be in [0, 1]"},
           {"--top-k -3", "--top-k must be in"},
           {"--repeat-penalty 0", "--repeat-penalty must be in"},
           {"--seed -2", "--seed must be -1"},
           {"--n-predict 0", "--n-predict must be -1"}}) {
    auto r = run("serve --engine sim --port 0 " + args);
    EXPECT_NE(r.exit_code, 0) << args << "\n" << r.output;
    EXPECT_TRUE(has(r.output, says)) << args << "\n" << r.output;
    EXPECT_FALSE(has(r.output, "troupe is serving")) << r.output;
  }
}

// llama-server's --sse-ping-interval: seconds, or a duration; its -1 (off) is accepted.
TEST(CommandLine, SsePingIntervalTakesLlamaServersOff) {
  ChildProcess p({"serve", "--engine", "sim", "--port", "0", "--sse-ping-interval", "-1"}, "serve");
  ASSERT_TRUE(p.wait_for(kBanner, 0, std::chrono::seconds(60))) << p.output();
  p.terminate();
  EXPECT_EQ(p.wait(), 0) << p.output();
  auto r = run("serve --engine sim --port 0 --sse-ping-interval -2");
  EXPECT_NE(r.exit_code, 0) << r.output;
  EXPECT_TRUE(has(r.output, "--sse-ping-interval")) << r.output;
}

TEST(SamplingDefaults, ApplyWhenARequestOmitsThemAndLoseToItsOwn) {
  ChildProcess p({"serve", "-m", test::generated_model("tiny"), "--port", "0", "--threads", "1",
                  "--parallel", "1", "-c", "256", "--temp", "0", "--n-predict", "5"},
                 "serve");
  auto banner = p.wait_for(kBanner, 0, std::chrono::seconds(120));
  ASSERT_TRUE(banner) << p.output();
  const int port = std::stoi((*banner)[1].str());
  const auto ask = [&](const std::string& fields) {
    return http(port, "POST", "/v1/completions",
                R"({"prompt":"Once upon a time","ignore_eos":true)" + fields + "}");
  };
  const std::string by_default = ask("");
  EXPECT_TRUE(has(by_default, R"("completion_tokens":5)")) << by_default;
  EXPECT_TRUE(has(ask(R"(,"max_tokens":2)"), R"("completion_tokens":2)"));
  // --temp 0: greedy, the same text as an explicit temperature 0.
  const auto text = [](const std::string& answer) {
    const auto at = answer.find(R"("text":)");
    return at == std::string::npos ? std::string() : answer.substr(at, answer.find(',', at) - at);
  };
  EXPECT_EQ(text(by_default), text(ask(R"(,"temperature":0,"max_tokens":5)")));
  EXPECT_FALSE(text(by_default).empty()) << by_default;
  // The request's own sampling wins: temperature 2 with a seed writes other tokens.
  EXPECT_NE(text(by_default), text(ask(R"(,"temperature":2,"top_k":0,"top_p":1,"seed":9)")));
  p.terminate();
  EXPECT_EQ(p.wait(), 0) << p.output();
}

// ---- A model that does not load stops the process ------------------------------------------

// Runs `args`, which must fail: the reason (`reason`) is printed, no banner, exit != 0.
void expect_fails_before_banner(std::vector<std::string> args, const std::string& reason) {
  ChildProcess p(std::move(args), "troupe");
  // Today's failure mode was a server that listens and prints its banner anyway.
  auto seen = p.wait_for(std::regex("did not load|troupe is serving|listening on|ready"), 0,
                         std::chrono::seconds(120));
  if (seen && !has(seen->str(0), "did not load"))
    p.terminate();
  const int status = p.wait();
  const std::string out = p.output();
  EXPECT_NE(status, 0) << out;
  EXPECT_TRUE(has(out, reason)) << out;
  EXPECT_FALSE(has(out, "troupe is serving")) << out;
  EXPECT_FALSE(has(out, "listening on")) << out;
}

TEST(ModelLoad, ServeWithAMissingModelExitsWithTheReason) {
  expect_fails_before_banner({"serve", "-m", "/nope/model.gguf", "--port", "0"},
                             "model file not found: /nope/model.gguf");
}

TEST(ModelLoad, ServeWithANonGgufFileExitsWithTheReason) {
  const auto file = temp_dir("not-gguf") / "model.gguf";
  std::ofstream(file) << "not a model\n";
  expect_fails_before_banner({"serve", "-m", file.string(), "--port", "0"},
                             "could not load " + file.string());
}

TEST(ModelLoad, WorkerWithAMissingModelExitsWithTheReason) {
  expect_fails_before_banner({"worker", "-m", "/nope/model.gguf", "--listen", "127.0.0.1:0",
                              "--cluster-secret", "test-secret"},
                             "model file not found: /nope/model.gguf");
}

TEST(ModelLoad, BannerOnlyOnceTheModelIsReady) {
  ChildProcess p({"serve", "-m", test::generated_model("tiny"), "--port", "0", "--threads", "1",
                  "--parallel", "1", "-c", "256"},
                 "serve");
  std::size_t ready = 0, banner = 0;
  ASSERT_TRUE(p.wait_for(std::regex("model .* ready"), 0, std::chrono::seconds(120), &ready))
      << p.output();
  ASSERT_TRUE(p.wait_for(kBanner, 0, std::chrono::seconds(120), &banner)) << p.output();
  EXPECT_LT(ready, banner) << p.output();
  p.terminate();
  EXPECT_EQ(p.wait(), 0) << p.output();
}

// ---- The default model says what it is -----------------------------------------------------

TEST(DefaultModel, BannerAndModelListSayTheWeightsAreRandom) {
  const auto cache = temp_dir("xdg-cache");
  ASSERT_EQ(::setenv("XDG_CACHE_HOME", cache.c_str(), 1), 0);  // before any thread reads it
  ChildProcess p({"serve", "--port", "0", "--threads", "1", "--parallel", "1", "-c", "256"},
                 "serve");
  std::size_t at = 0;
  auto banner = p.wait_for(kBanner, 0, std::chrono::seconds(120), &at);
  ASSERT_TRUE(banner) << p.output();
  const int port = std::stoi((*banner)[1].str());
  ASSERT_TRUE(p.wait_for(std::regex("RANDOM WEIGHTS"), at, std::chrono::seconds(60))) << p.output();
  ASSERT_TRUE(p.wait_for(std::regex("troupe serve -m MODEL.gguf"), at, std::chrono::seconds(60)))
      << p.output();

  const std::string models = http(port, "GET", "/v1/models");
  EXPECT_TRUE(has(models, "\"id\":\"random-weights-tiny\"")) << models;
  EXPECT_TRUE(has(models, "random weights, not a trained model")) << models;
  EXPECT_TRUE(has(models, "troupe serve -m MODEL.gguf")) << models;
  // The model's own endpoints answer as with -m (the wrapper that marks the weights random
  // passes them on): its one slot, its props, its (no) adapters.
  const std::string slots = http(port, "GET", "/slots");
  EXPECT_TRUE(has(slots, "\"id\":0,\"n_ctx\":256")) << slots;
  const std::string props = http(port, "GET", "/props");
  EXPECT_TRUE(has(props, "\"total_slots\":1")) << props;
  const std::string lora = http(port, "GET", "/lora-adapters");
  EXPECT_TRUE(has(lora, "200 OK") && has(lora, "\r\n\r\n[]")) << lora;

  // Small: the tiny shape, a few MB, not the 269 MB `small` model.
  const auto file = cache / "troupe" / "models" / "random-weights-tiny.gguf";
  ASSERT_TRUE(fs::exists(file));
  EXPECT_LT(fs::file_size(file), 20u << 20);
  p.terminate();
  EXPECT_EQ(p.wait(), 0) << p.output();
}

// ---- /tokenize pieces are each token's own text ---------------------------------------------

TEST(Tokenize, PiecesKeepTheirLeadingSpace) {
  // A SentencePiece vocabulary that adds a space prefix: detokenizing "▁is" alone gives "is".
  const auto vocab = fs::path(TROUPE_LLAMA_TESTDATA) / "vocab" / "ggml-vocab-llama-spm.gguf";
  if (!fs::exists(vocab))
    GTEST_SKIP() << vocab << " is not installed";
  const auto model = temp_dir("spm") / "spm.gguf";
  mkmodel::ModelSpec spec{*mkmodel::shape_by_name("tiny"), mkmodel::WeightType::q8_0, 3};
  spec.vocab_file = vocab.string();
  ASSERT_TRUE(mkmodel::write_model(spec, model.string()));

  ChildProcess p({"serve", "-m", model.string(), "--port", "0", "--threads", "1", "--parallel", "1",
                  "-c", "256"},
                 "serve");
  auto banner = p.wait_for(kBanner, 0, std::chrono::seconds(120));
  ASSERT_TRUE(banner) << p.output();
  const int port = std::stoi((*banner)[1].str());
  const std::string answer =
      http(port, "POST", "/tokenize", R"({"content":"This is a test","with_pieces":true})");
  EXPECT_TRUE(has(answer, "200 OK")) << answer;
  EXPECT_TRUE(has(answer, R"("piece":" is")")) << answer;
  EXPECT_TRUE(has(answer, R"("piece":" a")")) << answer;
  EXPECT_TRUE(has(answer, R"("piece":" test")")) << answer;
  EXPECT_FALSE(has(answer, R"("piece":"is")")) << answer;
  p.terminate();
  EXPECT_EQ(p.wait(), 0) << p.output();
}

}  // namespace
}  // namespace troupe::cli
