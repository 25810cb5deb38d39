// Tool calling and reasoning through the client: request bodies with tools and tool messages,
// streamed tool-call pieces and reasoning, non-streamed answers with tool_calls, the tools
// file reader and the assembler.

#include "client/tools.hpp"

#include <gtest/gtest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/json.hpp>
#include <filesystem>
#include <fstream>

#include "client/client.hpp"
#include "client/wire.hpp"
#include "fake_server.hpp"

namespace troupe::client {
namespace {

namespace asio = boost::asio;
namespace json = boost::json;
using asio::ip::tcp;
using test::FakeRequest;
using test::FakeServer;

template <class Body>
void run(test::FakeHandler handler, Body body) {
  EXPECT_TRUE(test::run_with_server(std::move(handler), std::move(body)));
}

// A chat chunk whose delta is `delta` (JSON text).
std::string delta_chunk(std::string_view delta, std::string_view finish = {}) {
  std::string fin = finish.empty() ? "null" : "\"" + std::string(finish) + "\"";
  return "data: {\"object\":\"chat.completion.chunk\",\"choices\":[{\"index\":0,\"delta\":" +
         std::string(delta) + ",\"finish_reason\":" + fin + "}]}\n\n";
}

// What a server streams for an answer that thinks, says a word and calls two functions.
std::string tool_call_stream() {
  return delta_chunk(R"({"role":"assistant","content":""})") +
         delta_chunk(R"({"reasoning_content":"The user wants"})") +
         delta_chunk(R"({"reasoning_content":" the weather."})") +
         delta_chunk(R"({"content":"Ok."})") +
         delta_chunk(
             R"({"tool_calls":[{"index":0,"id":"call_a","type":"function","function":{"name":"get_weather","arguments":""}}]})") +
         delta_chunk(R"({"tool_calls":[{"index":0,"function":{"arguments":"{\"city\":"}}]})") +
         delta_chunk(R"({"tool_calls":[{"index":0,"function":{"arguments":"\"Paris\"}"}}]})") +
         delta_chunk(
             R"({"tool_calls":[{"index":1,"id":"call_b","type":"function","function":{"name":"get_time","arguments":"{}"}}]})") +
         delta_chunk("{}", "tool_calls") + "data: [DONE]\n\n";
}

struct Streamed {
  std::string content, reasoning;
  int deltas = 0, tool_deltas = 0;
  ToolCallAssembler calls;
  StreamEvent last;
};

asio::awaitable<Streamed> collect(Stream& s) {
  Streamed out;
  for (;;) {
    auto ev = co_await s.next();
    if (auto* d = std::get_if<Delta>(&ev)) {
      out.content += d->content;
      out.reasoning += d->reasoning;
      out.tool_deltas += d->tool_calls.empty() ? 0 : 1;
      out.calls.add(d->tool_calls);
      ++out.deltas;
      continue;
    }
    out.last = std::move(ev);
    co_return out;
  }
}

ChatRequest tool_request() {
  ChatRequest r;
  r.messages = {{"user", "weather?"}};
  r.tools =
      parse_tools(
          R"([{"type":"function","function":{"name":"get_weather","parameters":{"type":"object","properties":{"city":{"type":"string"}}}}}])")
          .value();
  r.tool_choice = "auto";
  return r;
}

TEST(ClientTools, StreamedReasoningAndToolCallPiecesAreDelivered) {
  auto handler = [](const FakeRequest&, tcp::socket& s) -> asio::awaitable<bool> {
    co_await test::write_all(s, test::sse_head_close() + tool_call_stream());
    co_return false;
  };
  run(handler, [](asio::io_context& io, FakeServer& srv) -> asio::awaitable<void> {
    Client c(io.get_executor(), {.base_url = srv.url()});
    auto s = co_await c.stream_chat(tool_request());
    if (!s) {
      ADD_FAILURE() << s.error().message;
      co_return;
    }
    auto got = co_await collect(s.value());
    EXPECT_EQ(got.reasoning, "The user wants the weather.");
    EXPECT_EQ(got.content, "Ok.");
    EXPECT_EQ(got.deltas, 7);  // the role-only and the empty finish chunks are not deltas
    EXPECT_EQ(got.tool_deltas, 4);
    EXPECT_EQ(got.calls.calls(),
              (std::vector<ToolCall>{{"call_a", "get_weather", R"({"city":"Paris"})"},
                                     {"call_b", "get_time", "{}"}}));
    auto* done = std::get_if<Done>(&got.last);
    EXPECT_TRUE(done);
    if (done) {
      EXPECT_EQ(done->finish_reason, "tool_calls");
    }
    auto body = json::parse(srv.requests().at(0).body).as_object();
    EXPECT_EQ(body.at("tools").as_array().size(), 1u);
    EXPECT_EQ(body.at("tools").at(0).at("function").at("name").as_string(), "get_weather");
    EXPECT_EQ(body.at("tool_choice").as_string(), "auto");
  });
}

TEST(ClientTools, ToolCallIndexOutOfRangeIsAnError) {
  auto handler = [](const FakeRequest&, tcp::socket& s) -> asio::awaitable<bool> {
    co_await test::write_all(
        s, test::sse_head_close() +
               delta_chunk(
                   R"({"tool_calls":[{"index":100000000,"id":"x","function":{"name":"f"}}]})"));
    co_return false;
  };
  run(handler, [](asio::io_context& io, FakeServer& srv) -> asio::awaitable<void> {
    Client c(io.get_executor(), {.base_url = srv.url()});
    auto s = co_await c.stream_chat(tool_request());
    if (!s) {
      ADD_FAILURE() << s.error().message;
      co_return;
    }
    auto got = co_await collect(s.value());
    auto* e = std::get_if<ClientError>(&got.last);
    EXPECT_TRUE(e);
    if (e) {
      EXPECT_NE(e->message.find("tool call index"), std::string::npos) << e->message;
    }
  });
}

TEST(ClientTools, NonStreamedAnswerCarriesToolCallsAndReasoning) {
  auto handler = [](const FakeRequest&, tcp::socket& s) -> asio::awaitable<bool> {
    co_await test::write_all(
        s,
        test::json_response(
            200,
            R"({"choices":[{"index":0,"message":{"role":"assistant","content":null,"reasoning_content":"Think.","tool_calls":[{"id":"call_1","type":"function","function":{"name":"get_weather","arguments":"{\"city\":\"Oslo\"}"}},{"id":"call_2","type":"function","function":{"name":"f","arguments":{"x":1}}}]},"finish_reason":"tool_calls"}],"usage":{"prompt_tokens":9,"completion_tokens":12}})"));
    co_return true;
  };
  run(handler, [](asio::io_context& io, FakeServer& srv) -> asio::awaitable<void> {
    Client c(io.get_executor(), {.base_url = srv.url()});
    auto a = co_await c.chat(tool_request());
    if (!a) {
      ADD_FAILURE() << a.error().message;
      co_return;
    }
    EXPECT_EQ(a->content, "");
    EXPECT_EQ(a->reasoning, "Think.");
    EXPECT_EQ(a->finish_reason, "tool_calls");
    // Arguments sent as an object are read as its JSON text.
    EXPECT_EQ(a->tool_calls, (std::vector<ToolCall>{{"call_1", "get_weather", R"({"city":"Oslo"})"},
                                                    {"call_2", "f", R"({"x":1})"}}));
  });
}

TEST(ClientTools, HistoryWithToolCallsAndResultsIsSentInOpenAiShape) {
  ChatRequest r;
  r.messages.push_back({"user", "weather in Paris?"});
  Message call{"assistant", ""};
  call.tool_calls = {{"call_a", "get_weather", R"({"city":"Paris"})"}};
  r.messages.push_back(call);
  Message result{"tool", "18 C"};
  result.tool_call_id = "call_a";
  r.messages.push_back(result);
  auto body = json::parse(wire::chat_body(r, true)).as_object();
  const auto& m = body.at("messages").as_array();
  ASSERT_EQ(m.size(), 3u);
  EXPECT_FALSE(m[0].as_object().contains("tool_calls"));
  EXPECT_TRUE(m[1].at("content").is_null());
  const auto& c = m[1].at("tool_calls").at(0);
  EXPECT_EQ(c.at("id").as_string(), "call_a");
  EXPECT_EQ(c.at("type").as_string(), "function");
  EXPECT_EQ(c.at("function").at("name").as_string(), "get_weather");
  EXPECT_EQ(c.at("function").at("arguments").as_string(), R"({"city":"Paris"})");
  EXPECT_EQ(m[2].at("role").as_string(), "tool");
  EXPECT_EQ(m[2].at("tool_call_id").as_string(), "call_a");
  EXPECT_EQ(m[2].at("content").as_string(), "18 C");
  EXPECT_FALSE(body.contains("tools"));  // none given: none sent
  EXPECT_FALSE(body.contains("tool_choice"));
}

TEST(ToolCallAssembler, JoinsPiecesByIndexInAnyOrder) {
  ToolCallAssembler a;
  std::vector<ToolCallDelta> first = {{1, "b", "g", ""}, {0, "a", "f", "{\"x\""}};
  a.add(first);
  std::vector<ToolCallDelta> more = {{0, "", "", ":1}"}, {1, "", "", "{}"}};
  a.add(more);
  EXPECT_EQ(a.calls(), (std::vector<ToolCall>{{"a", "f", "{\"x\":1}"}, {"b", "g", "{}"}}));
  auto taken = a.take();
  EXPECT_EQ(taken.size(), 2u);
  EXPECT_TRUE(a.empty());
}

TEST(ParseTools, AcceptsAnArrayOrARequestAndNamesEachProblem) {
  const std::string ok =
      R"([{"type":"function","function":{"name":"a","description":"d","parameters":{"type":"object"}}},
          {"type":"function","function":{"name":"b"}}])";
  auto tools = parse_tools(ok);
  ASSERT_TRUE(tools.ok()) << tools.error().message;
  EXPECT_EQ(tool_names(tools.value()), (std::vector<std::string>{"a", "b"}));
  EXPECT_TRUE(parse_tools(R"({"model":"m","tools":)" + ok + "}").ok());

  auto check = [](std::string_view text, std::string_view needle) {
    auto r = parse_tools(text);
    ASSERT_FALSE(r.ok()) << text;
    EXPECT_EQ(r.error().param, "tools");
    EXPECT_NE(r.error().message.find(needle), std::string::npos) << r.error().message;
  };
  check("[", "not JSON");
  check("{}", "expected an array");
  check("[]", "empty");
  check("[1]", "tools[0] is not an object");
  check(R"([{"type":"retrieval"}])", "tools[0]: \"type\" must be \"function\"");
  check(R"([{"type":"function"}])", "needs a \"function\" object");
  check(R"([{"type":"function","function":{"name":""}}])", "function.name");
  check(R"([{"type":"function","function":{"name":"a","parameters":"x"}}])", "parameters");
  check(
      R"([{"type":"function","function":{"name":"a"}},{"type":"function","function":{"name":"a"}}])",
      "tools[1]: the name a is used twice");
}

TEST(ParseTools, FileErrorsNameTheFile) {
  auto missing = load_tools_file("/nonexistent-dir/tools.json");
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.error().message.find("/nonexistent-dir/tools.json"), std::string::npos);
  const auto path = std::filesystem::path(TROUPE_BINARY_DIR) / "client_tools_test.json";
  std::ofstream(path) << R"([{"type":"function","function":{"name":"x","parameters":[]}}])";
  auto bad = load_tools_file(path.string());
  std::filesystem::remove(path);
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.error().message.find(path.string() + ": tools[0]"), std::string::npos)
      << bad.error().message;
}

}  // namespace
}  // namespace troupe::client
