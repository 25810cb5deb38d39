// Exact-length prompts from a local GGUF vocabulary (--tokenizer), and what the runner does
// with a server that has no /tokenize. The vocabulary is the generated tiny test model's.

#include "bench/tokenizer.hpp"

#include <gtest/gtest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>
#include <filesystem>
#include <fstream>
#include <optional>

#include "bench/options.hpp"
#include "bench/runner.hpp"
#include "bench/workload.hpp"
#include "engine/vocab_tokenizer.hpp"
#include "server_thread.hpp"
#include "support/test_models.hpp"

namespace troupe::bench {
namespace {

namespace asio = boost::asio;

// Runs `coro` to completion on a fresh io_context (the local tokenizer needs no I/O).
template <class T>
T run(asio::awaitable<T> coro) {
  asio::io_context io;
  auto f = asio::co_spawn(io, std::move(coro), asio::use_future);
  io.run();
  return f.get();
}

// co_spawn needs a default-constructible result; a PromptBuilder is not.
asio::awaitable<std::optional<PromptBuilder>> make_builder(Tokenizer* tokenizer) {
  co_return co_await PromptBuilder::create(tokenizer, builtin_corpus());
}

std::unique_ptr<Tokenizer> tiny_vocab() {
  auto t = make_local_tokenizer(test::generated_model("tiny"));
  EXPECT_TRUE(t.ok()) << t.error().message;
  return t ? std::move(t).value() : nullptr;
}

TEST(LocalTokenizer, PromptsHaveExactlyTheRequestedTokenCount) {
  auto tok = tiny_vocab();
  ASSERT_TRUE(tok);
  EXPECT_EQ(tok->describe(), "local:" + test::generated_model("tiny"));
  auto vocab = engine::VocabTokenizer::load(test::generated_model("tiny"));
  ASSERT_TRUE(vocab.ok()) << vocab.error().message;
  auto made = run(make_builder(tok.get()));
  ASSERT_TRUE(made.has_value());
  auto& builder = *made;
  ASSERT_TRUE(builder.exact()) << builder.inexact_reason();

  std::mt19937_64 rng(7);
  for (std::int32_t n : {1, 2, 7, 24, 100, 333, 1000}) {
    for (std::int32_t prefix : {0, n / 2}) {
      SCOPED_TRACE("tokens " + std::to_string(n) + " prefix " + std::to_string(prefix));
      auto prompt = run(builder.build(n, prefix, rng));
      // Counted independently of the bench adapter, with the engine's vocabulary unit.
      auto ids = (*vocab)->tokenize(prompt, /*add_special=*/false, /*parse_special=*/true);
      ASSERT_TRUE(ids.ok());
      EXPECT_EQ(static_cast<std::int32_t>(ids->size()), n) << prompt;
    }
  }
  EXPECT_EQ(builder.inexact(), 0);
}

TEST(LocalTokenizer, RoundTripsTextThroughTheVocabulary) {
  auto vocab = engine::VocabTokenizer::load(test::generated_model("tiny"));
  ASSERT_TRUE(vocab.ok()) << vocab.error().message;
  EXPECT_GT((*vocab)->n_vocab(), 256);
  std::string text = "The river ran past the old mill.";
  auto ids = (*vocab)->tokenize(text, false, true);
  ASSERT_TRUE(ids.ok());
  ASSERT_FALSE(ids->empty());
  auto back = (*vocab)->detokenize(*ids);
  ASSERT_TRUE(back.ok());
  // SentencePiece vocabularies may add a leading space; the words come back unchanged.
  EXPECT_NE(back->find("river ran past the old mill."), std::string::npos) << *back;
  auto bad = (*vocab)->detokenize({(*vocab)->n_vocab()});
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().code, Errc::invalid_request);
}

TEST(LocalTokenizer, BadFilesAreClearErrors) {
  auto missing = make_local_tokenizer("/nonexistent/model.gguf");
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.error().code, Errc::not_found);
  EXPECT_NE(missing.error().message.find("--tokenizer"), std::string::npos);
  EXPECT_NE(missing.error().message.find("/nonexistent/model.gguf"), std::string::npos);

  auto path = std::filesystem::path(TROUPE_BINARY_DIR) / "bench_test_out" / "not_a_model.gguf";
  std::filesystem::create_directories(path.parent_path());
  std::ofstream(path) << "this is not a GGUF file\n";
  auto garbage = make_local_tokenizer(path.string());
  ASSERT_FALSE(garbage.ok());
  EXPECT_EQ(garbage.error().code, Errc::invalid_request);
  EXPECT_NE(garbage.error().message.find("--tokenizer"), std::string::npos);
  EXPECT_NE(garbage.error().message.find(path.string()), std::string::npos);
}

// The scripted server of tests/client, except that /tokenize and /detokenize are 404 (like
// vLLM's OpenAI server or OpenAI's API).
asio::awaitable<bool> no_tokenize(test::FakeHandler inner, const test::FakeRequest& req,
                                  asio::ip::tcp::socket& s) {
  if (req.target == "/tokenize" || req.target == "/detokenize") {
    co_await test::write_all(
        s, test::json_response(404, R"({"error":{"message":"Not Found","type":"not_found"}})"));
    co_return true;
  }
  co_return co_await inner(req, s);
}

class NoTokenizeServer : public testing::ServerThread {
 public:
  NoTokenizeServer()
      : testing::ServerThread([inner = test::openai_handler()](const test::FakeRequest& req,
                                                               asio::ip::tcp::socket& s) {
          return no_tokenize(inner, req, s);
        }) {}
};

BenchConfig small_run(const std::string& url, const std::string& tokenizer) {
  BenchFlags f;
  f.url = url;
  f.scenarios = {"D(30,2)"};
  f.max_requests = 3;
  f.progress = "off";
  f.tokenizer = tokenizer;
  auto c = make_config(f);
  EXPECT_TRUE(c.ok()) << c.error().message;
  return c.value();
}

TEST(LocalTokenizer, ServerWithoutTokenizeGetsApproximatePromptsAndAHint) {
  NoTokenizeServer server;
  auto run = run_benchmark(small_run(server.url(), ""), nullptr);
  ASSERT_TRUE(run.ok()) << run.error().message;
  EXPECT_FALSE(run->exact_prompts);
  EXPECT_EQ(run->tokenizer, "none");
  bool hinted = false;
  for (const auto& w : run->warnings)
    hinted = hinted || w.find("pass --tokenizer") != std::string::npos;
  EXPECT_TRUE(hinted) << "no warning names --tokenizer";
}

TEST(LocalTokenizer, TokenizerFlagMakesPromptsExactWithoutTheServer) {
  NoTokenizeServer server;
  auto model = test::generated_model("tiny");
  auto run = run_benchmark(small_run(server.url(), model), nullptr);
  ASSERT_TRUE(run.ok()) << run.error().message;
  EXPECT_TRUE(run->exact_prompts);
  EXPECT_EQ(run->inexact_prompts, 0);
  EXPECT_EQ(run->tokenizer, "local:" + model);
  for (const auto& w : run->warnings)
    EXPECT_EQ(w.find("approximate"), std::string::npos) << w;
  ASSERT_EQ(run->points.size(), 1u);
  EXPECT_EQ(run->points[0].stats.completed, 3u);
}

TEST(LocalTokenizer, BadTokenizerFailsBeforeContactingTheServer) {
  // Nothing listens on this URL: the error must be about the file, not the connection.
  asio::io_context probe;
  asio::ip::tcp::acceptor a(probe, {asio::ip::make_address("127.0.0.1"), 0});
  auto url = "http://127.0.0.1:" + std::to_string(a.local_endpoint().port());
  a.close();
  auto run = run_benchmark(small_run(url, "/nonexistent/model.gguf"), nullptr);
  ASSERT_FALSE(run.ok());
  EXPECT_NE(run.error().message.find("--tokenizer"), std::string::npos) << run.error().message;
}

}  // namespace
}  // namespace troupe::bench
