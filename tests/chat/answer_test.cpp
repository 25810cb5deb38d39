#include "chat/answer.hpp"

#include <gtest/gtest.h>

#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/post.hpp>
#include <functional>

#include "chat/one_shot.hpp"
#include "scripted_server.hpp"

namespace troupe::chat {
namespace {
namespace asio = boost::asio;
using test::ScriptedResponse;
using test::ScriptedServer;

// Records writes and runs a hook after each (to act "while the answer streams").
class HookedOutput final : public Output {
 public:
  Result<void> write(std::string_view bytes) override {
    auto r = recorded_.write(bytes);
    if (after_write_)
      after_write_(recorded_.writes().size());
    return r;
  }
  std::function<void(std::size_t)> after_write_;
  RecordingOutput recorded_;
};

class AnswerTest : public ::testing::Test {
 protected:
  // Streams one answer to "hi" and runs the loop until everything (server included) is done.
  AnswerResult ask(Output& out, AnswerOptions options = {}) {
    client::ChatRequest request;
    request.messages.push_back({"user", "hi"});
    AnswerResult result;
    asio::co_spawn(
        io_, stream_answer(client_, request, out, options),
        asio::bind_cancellation_slot(stop_.slot(), [&](std::exception_ptr e, AnswerResult r) {
          if (e)
            std::rethrow_exception(e);
          result = std::move(r);
          server_.stop();
        }));
    io_.run();
    return result;
  }

  asio::io_context io_{1};
  ScriptedServer server_{io_};
  client::Client client_{io_.get_executor(), {.base_url = server_.url()}};
  asio::cancellation_signal stop_;
};

TEST_F(AnswerTest, EachTokenIsOneWriteAndNothingElseIsWritten) {
  const std::vector<std::string> tokens = {"Hel", "lo", ",", " wor", "ld", " ✓"};
  server_.add(test::streamed_answer(tokens));
  RecordingOutput out;
  auto result = ask(out);
  ASSERT_FALSE(result.error) << result.error->message;
  EXPECT_EQ(out.writes(), tokens);
  EXPECT_EQ(result.text, "Hello, world ✓");
  EXPECT_EQ(result.finish_reason, "stop");
  EXPECT_EQ(result.stats.text_events, 6);
  EXPECT_EQ(result.stats.tokens, 6);  // from usage
  ASSERT_EQ(server_.bodies().size(), 1u);
  EXPECT_NE(server_.bodies()[0].find(R"("stream":true)"), std::string::npos);
}

TEST_F(AnswerTest, EventsSplitAcrossReadsStillGiveOneWritePerToken) {
  const std::vector<std::string> tokens = {"one", " two", " three"};
  std::string body;
  for (const auto& piece : test::streamed_answer(tokens).pieces)
    body += piece;
  ScriptedResponse split;
  for (std::size_t i = 0; i < body.size(); i += 7)
    split.pieces.push_back(body.substr(i, 7));
  server_.add(split);
  RecordingOutput out;
  auto result = ask(out);
  ASSERT_FALSE(result.error);
  EXPECT_EQ(out.writes(), tokens);
}

TEST_F(AnswerTest, SpinnerIsErasedInTheSameWriteAsTheFirstToken) {
  server_.add(test::streamed_answer({"A", "B"}));
  RecordingOutput out;
  Spinner spinner(out, std::chrono::hours(1));  // one frame: no tick during the test
  auto result = ask(out, {&spinner});
  ASSERT_FALSE(result.error);
  EXPECT_EQ(out.writes(), (std::vector<std::string>{"⠋", "\b \bA", "B"}));
}

TEST_F(AnswerTest, HttpErrorsComeBackAsValuesAndEraseTheSpinner) {
  server_.add(
      {401, {}, R"({"error":{"message":"invalid api key","type":"invalid_request_error"}})"});
  RecordingOutput out;
  Spinner spinner(out, std::chrono::hours(1));
  auto result = ask(out, {&spinner});
  ASSERT_TRUE(result.error);
  EXPECT_EQ(result.error->code, Errc::unauthorized);
  EXPECT_EQ(result.error->http_status, 401);
  EXPECT_EQ(out.writes(), (std::vector<std::string>{"⠋", "\b \b"}));
  EXPECT_EQ(describe_error(*result.error, server_.url()),
            "unauthorized: HTTP 401: invalid api key (set --api-key or TROUPE_API_KEY)");
}

TEST_F(AnswerTest, UnknownModelIsNotFound) {
  server_.add(
      {404,
       {},
       R"({"error":{"message":"model 'x' not found","type":"invalid_request_error","code":"model_not_found"}})"});
  RecordingOutput out;
  auto result = ask(out);
  ASSERT_TRUE(result.error);
  EXPECT_EQ(result.error->code, Errc::not_found);
  EXPECT_EQ(describe_error(*result.error, server_.url()),
            "not found: HTTP 404: model 'x' not found");
  EXPECT_TRUE(out.writes().empty());
}

TEST_F(AnswerTest, CancellingMidAnswerClosesTheConnectionAndKeepsTheText) {
  ScriptedResponse held = test::streamed_answer({"first", " second"});
  held.pieces.resize(3);  // role and two tokens, then the server waits
  held.hold_open = true;
  held.chunked = false;
  server_.add(held);
  HookedOutput out;
  out.after_write_ = [&](std::size_t writes) {
    if (writes == 2)
      stop_.emit(asio::cancellation_type::terminal);
  };
  auto result = ask(out);
  ASSERT_TRUE(result.error);
  EXPECT_TRUE(result.stopped());
  EXPECT_EQ(result.text, "first second");
  EXPECT_EQ(server_.closed_by_client(), 1);  // the server saw the connection close
}

TEST_F(AnswerTest, StopWhileWaitingForTheNextTokenClosesTheConnection) {
  ScriptedResponse held = test::streamed_answer({"first", " second"});
  held.pieces.resize(3);
  held.hold_open = true;
  held.chunked = false;
  server_.add(held);
  HookedOutput out;
  out.after_write_ = [&](std::size_t writes) {
    // Like Ctrl-C: delivered later, by the event loop, while the answer waits for a token.
    if (writes == 2)
      asio::post(io_, [&] { stop_.emit(asio::cancellation_type::terminal); });
  };
  auto result = ask(out);
  EXPECT_TRUE(result.stopped());
  EXPECT_EQ(result.text, "first second");
  EXPECT_EQ(server_.closed_by_client(), 1);
}

// A server that holds a chunked stream open between tokens (as a real one does while the model
// works): each event must be written before the next one is even sent.
TEST_F(AnswerTest, HeldChunkedStreamDeliversEachEventAtOnce) {
  ScriptedResponse held = test::streamed_answer({"first", " second"});
  held.pieces.resize(3);
  held.hold_open = true;
  server_.add(held);
  HookedOutput out;
  out.after_write_ = [&](std::size_t writes) {
    if (writes == 2)
      asio::post(io_, [&] { stop_.emit(asio::cancellation_type::terminal); });
  };
  auto result = ask(out);
  EXPECT_TRUE(result.stopped());
  EXPECT_EQ(out.recorded_.writes(), (std::vector<std::string>{"first", " second"}));
}

// A thinking model that calls a function: reasoning, a word, the call in three pieces.
ScriptedResponse thinking_tool_call() {
  ScriptedResponse r;
  r.pieces = {test::sse_role(),
              test::sse_reasoning("User wants"),
              test::sse_reasoning(" weather."),
              test::sse_text("Checking."),
              test::sse_tool_call(0, "call_1", "get_weather", ""),
              test::sse_tool_arguments(0, R"({"city":)"),
              test::sse_tool_arguments(0, R"("Paris"})"),
              test::sse_finish("tool_calls"),
              test::sse_usage(20, 14),
              test::sse_done()};
  return r;
}

TEST_F(AnswerTest, ReasoningIsDimmedAndToolCallsShownOneWritePerEvent) {
  server_.add(thinking_tool_call());
  RecordingOutput out;
  auto result = ask(out, {nullptr, nullptr, Style{true}, true});
  ASSERT_FALSE(result.error) << result.error->message;
  EXPECT_EQ(out.writes(),
            (std::vector<std::string>{"\x1b[2mUser wants\x1b[0m", "\x1b[2m weather.\x1b[0m",
                                      "\n\nChecking.", "\n\x1b[1m→ get_weather\x1b[0m(",
                                      R"({"city":)", R"("Paris"})", ")"}));
  EXPECT_TRUE(result.needs_newline);
  EXPECT_EQ(result.text, "Checking.");  // only the content goes into the history
  EXPECT_EQ(result.reasoning, "User wants weather.");
  EXPECT_EQ(result.tool_calls,
            (std::vector<client::ToolCall>{{"call_1", "get_weather", R"({"city":"Paris"})"}}));
  EXPECT_EQ(result.finish_reason, "tool_calls");
  EXPECT_EQ(result.stats.text_events, 6);
  EXPECT_EQ(result.stats.tokens, 14);
}

TEST_F(AnswerTest, HiddenReasoningOffATerminalWritesOnlyTheAnswer) {
  ScriptedResponse r;
  r.pieces = {test::sse_role(), test::sse_reasoning("hmm"), test::sse_text("4"),
              test::sse_finish("stop"), test::sse_done()};
  server_.add(r);
  RecordingOutput out;
  auto result = ask(out, {nullptr, nullptr, Style{false}, false});
  ASSERT_FALSE(result.error);
  EXPECT_EQ(out.writes(), (std::vector<std::string>{"4"}));
  EXPECT_EQ(result.reasoning, "hmm");  // kept for /reasoning last
  EXPECT_TRUE(result.needs_newline);
}

TEST_F(AnswerTest, HiddenReasoningErasesTheSpinnerWithItsOneLine) {
  ScriptedResponse r;
  r.pieces = {test::sse_role(),      test::sse_reasoning("hmm"), test::sse_reasoning("..."),
              test::sse_text("4\n"), test::sse_finish("stop"),   test::sse_done()};
  server_.add(r);
  RecordingOutput out;
  Spinner spinner(out, std::chrono::hours(1));
  auto result = ask(out, {&spinner, nullptr, Style{true}, false});
  ASSERT_FALSE(result.error);
  EXPECT_EQ(out.writes(),
            (std::vector<std::string>{"⠋", "\b \b\x1b[2m[reasoning hidden]\x1b[0m\n", "4\n"}));
  EXPECT_FALSE(result.needs_newline);
}

TEST_F(AnswerTest, AStreamCutMidAnswerIsAConnectionLostNotUnreachable) {
  // A body without [DONE] that ends when the server closes the connection.
  server_.add({200, {test::sse_role(), test::sse_text("Hel")}, {}, false, false});
  RecordingOutput out;
  auto result = ask(out);
  ASSERT_TRUE(result.error);
  EXPECT_TRUE(result.connection_lost);
  EXPECT_EQ(result.text, "Hel");
  const std::string line = describe_error(*result.error, server_.url(), result.connection_lost);
  EXPECT_EQ(line.rfind("connection lost mid-answer", 0), 0u) << line;
}

TEST(AnswerUnreachable, ConnectionRefusedIsOneClearLine) {
  asio::io_context io{1};
  std::string url;
  {
    asio::ip::tcp::acceptor probe(io, {asio::ip::make_address("127.0.0.1"), 0});
    url = "http://127.0.0.1:" + std::to_string(probe.local_endpoint().port());
  }  // closed: nothing listens there now
  client::Client c(io.get_executor(), {.base_url = url});
  client::ChatRequest request;
  request.messages.push_back({"user", "hi"});
  RecordingOutput out;
  AnswerResult result;
  asio::co_spawn(io, stream_answer(c, request, out), [&](std::exception_ptr e, AnswerResult r) {
    if (e)
      std::rethrow_exception(e);
    result = std::move(r);
  });
  io.run();
  ASSERT_TRUE(result.error);
  EXPECT_EQ(result.error->code, Errc::unavailable);
  EXPECT_FALSE(result.connection_lost);
  const std::string line = describe_error(*result.error, url, result.connection_lost);
  EXPECT_EQ(line.rfind("cannot reach " + url + ": ", 0), 0u) << line;
  EXPECT_EQ(line.find('\n'), std::string::npos);
}

TEST(AnswerStatsTest, RateCountsTokensAfterTheFirst) {
  AnswerStats s;
  s.ttft = std::chrono::milliseconds(120);
  s.generation = std::chrono::seconds(2);
  s.tokens = 41;
  EXPECT_DOUBLE_EQ(s.tokens_per_second(), 20.0);
  EXPECT_EQ(s.summary(), "TTFT 120 ms · 20.0 tok/s · 41 tokens");
  s.tokens = 1;
  EXPECT_EQ(s.tokens_per_second(), 0.0);
}

}  // namespace
}  // namespace troupe::chat
