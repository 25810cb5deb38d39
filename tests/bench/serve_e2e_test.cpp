// End to end against the real server: `troupe serve --engine sim` on a free loopback port,
// then a benchmark run whose results.json counts must match, and its HTML report; and
// `troupe serve` on the generated tiny model with prompts sized by its local vocabulary
// (--tokenizer), which the server's /tokenize and usage must agree with.
// Skipped when the troupe binary of this build has no `serve` (a build without the server);
// $TROUPE_BIN names another binary.

#include <gtest/gtest.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>
#include <boost/json.hpp>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>

#include "bench/options.hpp"
#include "bench/report.hpp"
#include "bench/results.hpp"
#include "bench/runner.hpp"
#include "bench/tokenizer.hpp"
#include "bench/workload.hpp"
#include "engine/vocab_tokenizer.hpp"
#include "support/test_models.hpp"

extern char** environ;

namespace troupe::bench {
namespace {

// A child process whose stderr+stdout we read line by line (blocking reads: no sleeps).
class Child {
 public:
  explicit Child(std::vector<std::string> args) {
    int fds[2];
    if (pipe(fds) != 0)
      return;
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, fds[1], 1);
    posix_spawn_file_actions_adddup2(&fa, fds[1], 2);
    posix_spawn_file_actions_addclose(&fa, fds[0]);
    std::vector<char*> argv;
    for (auto& a : args)
      argv.push_back(a.data());
    argv.push_back(nullptr);
    if (posix_spawn(&pid_, argv[0], &fa, nullptr, argv.data(), environ) != 0)
      pid_ = -1;
    posix_spawn_file_actions_destroy(&fa);
    close(fds[1]);
    out_ = fdopen(fds[0], "r");
  }
  ~Child() {
    if (pid_ > 0) {
      kill(pid_, SIGTERM);
      waitpid(pid_, nullptr, 0);
    }
    if (out_)
      std::fclose(out_);
  }
  // Reads lines until one matches; returns the first capture group ("" at EOF).
  std::string wait_for(const std::regex& re, std::string& seen) {
    char line[4096];
    while (out_ && std::fgets(line, sizeof line, out_)) {
      seen += line;
      std::cmatch m;
      if (std::regex_search(line, m, re))
        return m[1].str();
    }
    return {};
  }
  bool running() const { return pid_ > 0; }

 private:
  pid_t pid_ = -1;
  std::FILE* out_ = nullptr;
};

// The build's troupe, or $TROUPE_BIN (e.g. a full build's binary when this one has no server).
std::string troupe_binary() {
  if (const char* bin = std::getenv("TROUPE_BIN"))
    return bin;
  return std::string(TROUPE_BINARY_DIR) + "/troupe";
}

// True when the binary has `serve` with the simulated engine (its help mentions --sim-decode-tps).
bool has_sim_serve() {
  if (!std::filesystem::exists(troupe_binary()))
    return false;
  std::string cmd = troupe_binary() + " serve --help 2>&1";
  std::FILE* p = popen(cmd.c_str(), "r");
  if (!p)
    return false;
  std::string out;
  char buf[1024];
  while (std::fgets(buf, sizeof buf, p))
    out += buf;
  pclose(p);
  return out.find("--sim-decode-tps") != std::string::npos;
}

boost::json::object read_results(const std::filesystem::path& dir) {
  std::ifstream in(dir / "results.json");
  std::stringstream ss;
  ss << in.rdbuf();
  return boost::json::parse(ss.str()).as_object();
}

TEST(ServeEndToEnd, CountsMatchAndReportEmbedsPlots) {
  if (!has_sim_serve())
    GTEST_SKIP() << "this build's troupe has no `serve` (server not configured)";
  Child server({troupe_binary(), "serve", "--engine", "sim", "--port", "0", "--parallel", "8",
                "--sim-decode-tps", "2000"});
  ASSERT_TRUE(server.running());
  std::string log;
  auto url = server.wait_for(std::regex("listening on (http://[0-9.:]+)"), log);
  ASSERT_FALSE(url.empty()) << log;

  BenchFlags f;
  f.url = url;
  f.scenarios = {"D(24,6)"};
  f.concurrency = "1,4";
  f.endpoint = "completions";  // no chat template: usage.prompt_tokens is the prompt itself
  f.max_requests = 12;
  f.warmup = 1;
  f.progress = "off";
  auto config = make_config(f);
  ASSERT_TRUE(config.ok()) << config.error().message;
  auto run = run_benchmark(config.value(), nullptr);
  ASSERT_TRUE(run.ok()) << run.error().message;
  EXPECT_TRUE(run->exact_prompts);
  EXPECT_EQ(run->inexact_prompts, 0);

  auto dir = std::filesystem::path(TROUPE_BINARY_DIR) / "bench_test_out" / "serve_e2e";
  std::filesystem::remove_all(dir);
  ASSERT_TRUE(write_results(run.value(), dir.string()).ok());
  auto results = read_results(dir);
  const auto& points = results.at("points").as_array();
  ASSERT_EQ(points.size(), 2u);
  for (const auto& pv : points) {
    const auto& p = pv.as_object();
    SCOPED_TRACE(p.at("label").as_string().c_str());
    EXPECT_EQ(p.at("requests").to_number<int>(), 12);
    EXPECT_EQ(p.at("completed").to_number<int>(), 12);
    EXPECT_EQ(p.at("failed").to_number<int>(), 0);
    EXPECT_DOUBLE_EQ(p.at("output_tokens").at("mean").to_number<double>(), 6.0);
    // Prompts are exactly 24 tokens by the server's /tokenize (inexact_prompts == 0 below);
    // usage.prompt_tokens may count more (special tokens, the sim's own prompt accounting).
    EXPECT_GE(p.at("input_tokens").at("min").to_number<double>(), 24.0);
    EXPECT_EQ(p.at("usage_mismatch").to_number<int>(), 0);
    EXPECT_GT(p.at("output_tokens_per_s").to_number<double>(), 0);
  }
  auto html = dir / "report.html";
  ASSERT_TRUE(write_report({dir.string()}, html.string()).ok());
  std::ifstream page_in(html);
  std::stringstream page;
  page << page_in.rdbuf();
  auto text = page.str();
  std::size_t svgs = 0;
  for (auto at = text.find("<svg"); at != std::string::npos; at = text.find("<svg", at + 1))
    ++svgs;
  EXPECT_GE(svgs, 7u);
  EXPECT_EQ(text.find("<script"), std::string::npos);
}

// --endpoint messages / responses: the same load through Anthropic's /v1/messages and OpenAI's
// /v1/responses, their events timed and their usage counted like chat chunks.
TEST(ServeEndToEnd, MessagesAndResponsesEndpointsAreLoadTestedLikeChat) {
  if (!has_sim_serve())
    GTEST_SKIP() << "this build's troupe has no `serve` (server not configured)";
  Child server({troupe_binary(), "serve", "--engine", "sim", "--port", "0", "--parallel", "4",
                "--sim-decode-tps", "2000"});
  ASSERT_TRUE(server.running());
  std::string log;
  auto url = server.wait_for(std::regex("listening on (http://[0-9.:]+)"), log);
  ASSERT_FALSE(url.empty()) << log;
  for (const std::string endpoint : {"messages", "responses"}) {
    SCOPED_TRACE(endpoint);
    BenchFlags f;
    f.url = url;
    f.scenarios = {"D(24,6)"};
    f.concurrency = "2";
    f.endpoint = endpoint;
    f.max_requests = 6;
    f.warmup = 1;
    f.progress = "off";
    auto config = make_config(f);
    ASSERT_TRUE(config.ok()) << config.error().message;
    EXPECT_EQ(config->messages, endpoint == "messages");
    EXPECT_EQ(config->responses, endpoint == "responses");
    auto run = run_benchmark(config.value(), nullptr);
    ASSERT_TRUE(run.ok()) << run.error().message;
    auto dir =
        std::filesystem::path(TROUPE_BINARY_DIR) / "bench_test_out" / ("serve_e2e_" + endpoint);
    std::filesystem::remove_all(dir);
    ASSERT_TRUE(write_results(run.value(), dir.string()).ok());
    auto results = read_results(dir);
    EXPECT_EQ(results.at("config").at("endpoint"), endpoint.c_str());
    const auto& p = results.at("points").at(0).as_object();
    EXPECT_EQ(p.at("completed").to_number<int>(), 6);
    EXPECT_EQ(p.at("failed").to_number<int>(), 0);
    EXPECT_DOUBLE_EQ(p.at("output_tokens").at("mean").to_number<double>(), 6.0);
    EXPECT_GE(p.at("input_tokens").at("min").to_number<double>(), 24.0);
    EXPECT_EQ(p.at("usage_mismatch").to_number<int>(), 0);
    EXPECT_GT(p.at("output_tokens_per_s").to_number<double>(), 0);
  }
}

// `troupe serve` on the generated tiny model (the real engine, one thread).
class TinyServer {
 public:
  TinyServer()
      : child_({troupe_binary(), "serve", "--model", test::generated_model("tiny"), "--threads",
                "1", "--parallel", "2", "--port", "0"}) {
    if (!child_.running())
      return;
    url_ = child_.wait_for(std::regex("listening on (http://[0-9.:]+)"), log_);
    // The server listens while the model loads (503 "the model is loading" until then): wait
    // for the engine too, unless its line came first.
    if (!url_.empty() && log_.find(" ready: ") == std::string::npos &&
        child_.wait_for(std::regex("model \\S+ (ready): "), log_).empty()) {
      url_.clear();
    }
  }
  const std::string& url() const { return url_; }
  const std::string& log() const { return log_; }

 private:
  Child child_;
  std::string log_;
  std::string url_;
};

TEST(ServeEndToEnd, ServerTokenizeAgreesWithLocalVocabularyPrompts) {
  if (!has_sim_serve())
    GTEST_SKIP() << "this build's troupe has no `serve` (server not configured)";
  TinyServer server;
  ASSERT_FALSE(server.url().empty()) << server.log();
  auto local = make_local_tokenizer(test::generated_model("tiny"));
  ASSERT_TRUE(local.ok()) << local.error().message;
  auto vocab = engine::VocabTokenizer::load(test::generated_model("tiny"));
  ASSERT_TRUE(vocab.ok()) << vocab.error().message;

  boost::asio::io_context io;
  client::Client c(io.get_executor(), {.base_url = server.url()});
  auto check = [&]() -> boost::asio::awaitable<void> {
    auto builder = co_await PromptBuilder::create(local->get(), builtin_corpus());
    EXPECT_TRUE(builder.exact()) << builder.inexact_reason();
    std::mt19937_64 rng(3);
    for (std::int32_t n : {1, 5, 24, 128, 500}) {
      SCOPED_TRACE("tokens " + std::to_string(n));
      auto prompt = co_await builder.build(n, n / 4, rng);
      auto on_server = co_await c.tokenize(prompt, false);
      EXPECT_TRUE(on_server.ok()) << (on_server ? "" : on_server.error().message);
      if (!on_server)
        continue;
      auto here = (*vocab)->tokenize(prompt, false, true);
      EXPECT_TRUE(here.ok());
      if (!here)
        continue;
      EXPECT_EQ(static_cast<std::int32_t>(on_server->size()), n);
      EXPECT_EQ(*on_server, *here);  // the very same ids, not only the count
    }
  };
  auto done = boost::asio::co_spawn(io, check(), boost::asio::use_future);
  io.run();
  done.get();
}

TEST(ServeEndToEnd, TokenizerFlagInputTokensMatchRequestedLengths) {
  if (!has_sim_serve())
    GTEST_SKIP() << "this build's troupe has no `serve` (server not configured)";
  TinyServer server;
  ASSERT_FALSE(server.url().empty()) << server.log();
  auto model = test::generated_model("tiny");
  // What the server adds to a completions prompt itself (BOS): usage counts it.
  auto vocab = engine::VocabTokenizer::load(model);
  ASSERT_TRUE(vocab.ok()) << vocab.error().message;
  auto added = static_cast<double>((*vocab)->tokenize("x", true, true)->size() -
                                   (*vocab)->tokenize("x", false, true)->size());

  BenchFlags f;
  f.url = server.url();
  f.tokenizer = model;
  f.scenarios = {"D(24,4)", "U(8,40)/(2,3)"};
  f.concurrency = "1,2";
  f.endpoint = "completions";  // no chat template: usage.prompt_tokens is the prompt + BOS
  f.max_requests = 6;
  f.progress = "off";
  auto config = make_config(f);
  ASSERT_TRUE(config.ok()) << config.error().message;
  auto run = run_benchmark(config.value(), nullptr);
  ASSERT_TRUE(run.ok()) << run.error().message;

  auto dir = std::filesystem::path(TROUPE_BINARY_DIR) / "bench_test_out" / "serve_tokenizer";
  std::filesystem::remove_all(dir);
  ASSERT_TRUE(write_results(run.value(), dir.string()).ok());
  auto results = read_results(dir);
  EXPECT_EQ(results.at("tokenizer").as_string(), "local:" + model);
  EXPECT_EQ(results.at("config").at("tokenizer_file").as_string(), model);
  EXPECT_TRUE(results.at("exact_prompts").as_bool());
  EXPECT_EQ(results.at("inexact_prompts").to_number<int>(), 0);
  const auto& points = results.at("points").as_array();
  ASSERT_EQ(points.size(), 4u);
  for (std::size_t i = 0; i < points.size(); ++i) {
    const auto& p = points[i].as_object();
    SCOPED_TRACE(p.at("label").as_string().c_str());
    EXPECT_EQ(p.at("completed").to_number<int>(), 6);
    EXPECT_EQ(p.at("output_len_mismatch").to_number<int>(), 0);
    // (usage_mismatch is not checked: a random-weight model emits byte tokens that the server
    // holds back until they make whole UTF-8 characters, so deltas may be fewer than tokens.)
    if (p.at("scenario").as_string() == "D(24,4)") {
      EXPECT_DOUBLE_EQ(p.at("input_tokens").at("min").to_number<double>(), 24 + added);
      EXPECT_DOUBLE_EQ(p.at("input_tokens").at("max").to_number<double>(), 24 + added);
    }
    // Every request, both scenarios: the server counted exactly the requested length.
    for (const auto& r : run->points[i].records) {
      EXPECT_TRUE(r.ok()) << r.error_message;
      EXPECT_EQ(r.input_tokens, r.target_input + static_cast<std::int32_t>(added));
    }
  }
}

}  // namespace
}  // namespace troupe::bench
