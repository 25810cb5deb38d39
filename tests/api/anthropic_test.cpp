#include "api/anthropic.hpp"

#include <gtest/gtest.h>

#include <boost/json/parse.hpp>

#include "api/responses.hpp"

namespace troupe::api {
namespace {
namespace json = boost::json;

const ResponseHead head{"msg_1", "tiny", 1700000000};

ChatRequest parse_ok(const std::string& body) {
  auto r = parse_messages_request(body);
  EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.error().message);
  return r.ok() ? std::move(r).value() : ChatRequest{};
}

void expect_refused(const std::string& body, const std::string& param) {
  auto r = parse_messages_request(body);
  ASSERT_FALSE(r.ok()) << body;
  EXPECT_EQ(r.error().code, Errc::invalid_request);
  EXPECT_EQ(r.error().param, param) << r.error().message;
}

TEST(Anthropic, ParsesTheFieldsIntoAChatRequest) {
  auto req = parse_ok(R"({"model":"tiny","max_tokens":64,"system":"Be brief.",
    "messages":[{"role":"user","content":"hi"}],"stop_sequences":["END","STOP"],
    "temperature":0.5,"top_p":0.9,"top_k":20,"stream":true,"metadata":{"user_id":"u1"}})");
  EXPECT_EQ(req.params.model, "tiny");
  EXPECT_EQ(req.params.max_tokens, 64);
  EXPECT_EQ(req.params.temperature, 0.5);
  EXPECT_EQ(req.params.top_p, 0.9);
  EXPECT_EQ(req.params.top_k, 20);
  EXPECT_EQ(req.params.stop, (std::vector<std::string>{"END", "STOP"}));
  EXPECT_TRUE(req.params.stream);
  EXPECT_TRUE(req.chat.stream);
  EXPECT_EQ(req.params.user, "u1");
  ASSERT_EQ(req.messages.size(), 2u);
  EXPECT_EQ(req.messages[0].role, "system");
  EXPECT_EQ(req.messages[0].content, "Be brief.");
  EXPECT_EQ(req.messages[1].role, "user");
  EXPECT_EQ(req.messages[1].content, "hi");
  // No thinking asked for: the model's reasoning is off.
  EXPECT_EQ(req.chat.reasoning_effort, "none");
}

TEST(Anthropic, SystemBlocksAndContentBlocksAreJoined) {
  auto req = parse_ok(R"({"model":"m","max_tokens":8,
    "system":[{"type":"text","text":"A"},{"type":"text","text":"B","cache_control":{"type":"ephemeral"}}],
    "messages":[{"role":"user","content":[{"type":"text","text":"x"},{"type":"text","text":"y"}]}]})");
  ASSERT_EQ(req.messages.size(), 2u);
  EXPECT_EQ(req.messages[0].content, "A\nB");
  EXPECT_EQ(req.messages[1].content, "x\ny");
}

TEST(Anthropic, ToolUseAndToolResultBecomeToolCallsAndToolMessages) {
  auto req = parse_ok(R"({"model":"m","max_tokens":8,
    "tools":[{"name":"get_weather","description":"w","input_schema":{"type":"object",
      "properties":{"city":{"type":"string"}}}}],
    "tool_choice":{"type":"any","disable_parallel_tool_use":true},
    "messages":[{"role":"user","content":"Weather?"},
      {"role":"assistant","content":[{"type":"thinking","thinking":"hmm","signature":"s"},
        {"type":"text","text":"Checking."},
        {"type":"tool_use","id":"toolu_1","name":"get_weather","input":{"city":"Paris"}}]},
      {"role":"user","content":[{"type":"tool_result","tool_use_id":"toolu_1",
        "content":[{"type":"text","text":"sunny"}]},{"type":"text","text":"And?"}]},
      {"role":"user","content":[{"type":"tool_result","tool_use_id":"toolu_1","content":"x",
        "is_error":true}]}]})");
  ASSERT_EQ(req.chat.tools.size(), 1u);
  EXPECT_EQ(req.chat.tools[0].name, "get_weather");
  EXPECT_EQ(json::parse(req.chat.tools[0].parameters).at("type"), "object");
  EXPECT_EQ(req.chat.tool_choice, chatfmt::ToolChoice::required);
  EXPECT_EQ(req.chat.parallel_tool_calls, false);
  ASSERT_EQ(req.messages.size(), 5u);
  const auto& a = req.messages[1];
  EXPECT_EQ(a.role, "assistant");
  EXPECT_EQ(a.content, "Checking.");
  EXPECT_EQ(a.reasoning_content, "hmm");
  ASSERT_EQ(a.tool_calls.size(), 1u);
  EXPECT_EQ(a.tool_calls[0].id, "toolu_1");
  EXPECT_EQ(a.tool_calls[0].name, "get_weather");
  EXPECT_EQ(json::parse(a.tool_calls[0].arguments).at("city"), "Paris");
  EXPECT_EQ(req.messages[2].role, "tool");
  EXPECT_EQ(req.messages[2].tool_call_id, "toolu_1");
  EXPECT_EQ(req.messages[2].name, "get_weather");
  EXPECT_EQ(req.messages[2].content, "sunny");
  EXPECT_EQ(req.messages[3].role, "user");
  EXPECT_EQ(req.messages[3].content, "And?");
  EXPECT_EQ(req.messages[4].content, "Error: x");
}

TEST(Anthropic, ToolChoiceKinds) {
  const std::string tools =
      R"("tools":[{"name":"f","input_schema":{"type":"object"}}],"messages":[{"role":"user","content":"x"}])";
  auto with = [&](const std::string& choice) {
    return parse_ok(R"({"model":"m","max_tokens":8,)" + tools + R"(,"tool_choice":)" + choice +
                    "}");
  };
  EXPECT_EQ(with(R"({"type":"auto"})").chat.tool_choice, chatfmt::ToolChoice::automatic);
  EXPECT_EQ(with(R"({"type":"none"})").chat.tool_choice, chatfmt::ToolChoice::none);
  auto named = with(R"({"type":"tool","name":"f"})");
  EXPECT_EQ(named.chat.tool_choice, chatfmt::ToolChoice::function);
  EXPECT_EQ(named.chat.tool_choice_function, "f");
  expect_refused(
      R"({"model":"m","max_tokens":8,)" + tools + R"(,"tool_choice":{"type":"tool","name":"g"}})",
      "tool_choice.name");
  expect_refused(R"({"model":"m","max_tokens":8,)" + tools + R"(,"tool_choice":"auto"})",
                 "tool_choice");
  expect_refused(
      R"({"model":"m","max_tokens":8,"messages":[{"role":"user","content":"x"}],"tool_choice":{"type":"any"}})",
      "tool_choice");
}

TEST(Anthropic, ThinkingTurnsReasoningOnAndChecksTheBudget) {
  const std::string base = R"({"model":"m","messages":[{"role":"user","content":"x"}],)";
  auto on =
      parse_ok(base + R"("max_tokens":4096,"thinking":{"type":"enabled","budget_tokens":2048}})");
  EXPECT_FALSE(on.chat.reasoning_effort.has_value());
  EXPECT_EQ(on.params.reasoning_budget, 2048);  // the reasoning budget (engine::Task's)
  auto off = parse_ok(base + R"("max_tokens":8,"thinking":{"type":"disabled"}})");
  EXPECT_EQ(off.chat.reasoning_effort, "none");
  expect_refused(base + R"("max_tokens":4096,"thinking":{"type":"enabled","budget_tokens":100}})",
                 "thinking.budget_tokens");
  expect_refused(base + R"("max_tokens":2048,"thinking":{"type":"enabled","budget_tokens":2048}})",
                 "thinking.budget_tokens");
  expect_refused(base + R"("max_tokens":8,"thinking":{"type":"adaptive"}})", "thinking.type");
}

TEST(Anthropic, RefusesWhatItCannotHonour) {
  const std::string msgs = R"("messages":[{"role":"user","content":"x"}])";
  expect_refused(R"({"model":"m",)" + msgs + "}", "max_tokens");
  expect_refused(R"({"max_tokens":8,)" + msgs + "}", "model");
  expect_refused(R"({"model":"m","max_tokens":0,)" + msgs + "}", "max_tokens");
  expect_refused(R"({"model":"m","max_tokens":8,"temperature":1.5,)" + msgs + "}", "temperature");
  expect_refused(R"({"model":"m","max_tokens":8,"messages":[]})", "messages");
  expect_refused(R"({"model":"m","max_tokens":8,"messages":[{"role":"system","content":"x"}]})",
                 "messages[0].role");
  expect_refused(R"({"model":"m","max_tokens":8,"messages":[{"role":"user","content":[
      {"type":"image","source":{"type":"base64","media_type":"image/png","data":"AA=="}}]}]})",
                 "messages[0].content[0].type");
  expect_refused(R"({"model":"m","max_tokens":8,"messages":[{"role":"user","content":[
      {"type":"document","source":{}}]}]})",
                 "messages[0].content[0].type");
  expect_refused(R"({"model":"m","max_tokens":8,"tools":[{"type":"web_search_20250305",
      "name":"web_search"}],)" +
                     msgs + "}",
                 "tools[0].type");
  expect_refused(R"({"model":"m","max_tokens":8,"tools":[{"name":"f"}],)" + msgs + "}",
                 "tools[0].input_schema");
  expect_refused(R"({"model":"m","max_tokens":8,"mcp_servers":[{"url":"x"}],)" + msgs + "}",
                 "mcp_servers");
  expect_refused(R"({"model":"m","max_tokens":8,"service_tier":"priority",)" + msgs + "}",
                 "service_tier");
  expect_refused(R"({"model":"m","max_tokens":8,"stop_sequences":[""],)" + msgs + "}",
                 "stop_sequences");
  expect_refused(R"({"model":"m","max_tokens":8,"messages":[{"role":"user","content":[
      {"type":"tool_result","content":"x"}]}]})",
                 "messages[0].content[0].tool_use_id");
}

TEST(Anthropic, CountTokensNeedsNoMaxTokensAndDoesNotStream) {
  auto r =
      parse_count_tokens_request(R"({"model":"m","messages":[{"role":"user","content":"x"}]})");
  ASSERT_TRUE(r.ok());
  EXPECT_FALSE(r->params.max_tokens.has_value());
  auto s = parse_count_tokens_request(
      R"({"model":"m","stream":true,"messages":[{"role":"user","content":"x"}]})");
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().param, "stream");
  EXPECT_EQ(json::parse(count_tokens_json(12)).at("input_tokens"), 12);
}

TEST(Anthropic, MessageObjectHasBlocksStopReasonAndUsage) {
  CompletionResult r{"", "tool_calls", {10, 5, 4, 0}, std::nullopt};
  r.reasoning_content = "hmm";
  r.text = "Checking.";
  r.tool_calls = {{"toolu_1", "get_weather", R"({"city":"Paris"})"}};
  auto v = json::parse(anthropic_message_json(head, r, {"tool_use", {}}));
  EXPECT_EQ(v.at("id"), "msg_1");
  EXPECT_EQ(v.at("type"), "message");
  EXPECT_EQ(v.at("role"), "assistant");
  EXPECT_EQ(v.at("model"), "tiny");
  const auto& c = v.at("content").as_array();
  ASSERT_EQ(c.size(), 3u);
  EXPECT_EQ(c[0].at("type"), "thinking");
  EXPECT_EQ(c[0].at("thinking"), "hmm");
  EXPECT_EQ(c[1].at("type"), "text");
  EXPECT_EQ(c[1].at("text"), "Checking.");
  EXPECT_EQ(c[2].at("type"), "tool_use");
  EXPECT_EQ(c[2].at("id"), "toolu_1");
  EXPECT_EQ(c[2].at("input").at("city"), "Paris");
  EXPECT_EQ(v.at("stop_reason"), "tool_use");
  EXPECT_TRUE(v.at("stop_sequence").is_null());
  EXPECT_EQ(v.at("usage").at("input_tokens"), 6);
  EXPECT_EQ(v.at("usage").at("cache_read_input_tokens"), 4);
  EXPECT_EQ(v.at("usage").at("output_tokens"), 5);

  CompletionResult s{"ok", "stop", {3, 1, 0, 0}, std::nullopt};
  auto w = json::parse(anthropic_message_json(head, s, {"stop_sequence", "END"}));
  EXPECT_EQ(w.at("stop_reason"), "stop_sequence");
  EXPECT_EQ(w.at("stop_sequence"), "END");
  ASSERT_EQ(w.at("content").as_array().size(), 1u);
}

TEST(Anthropic, ErrorsHaveAnthropicsShapeAndStatus) {
  const auto check = [](const Error& e, int status, const char* type) {
    const HttpError h = to_http_error(e);
    EXPECT_EQ(anthropic_error_status(h), status) << e.message;
    auto v = json::parse(anthropic_error_json(h));
    EXPECT_EQ(v.at("type"), "error");
    EXPECT_EQ(v.at("error").at("type"), type) << e.message;
    EXPECT_EQ(v.at("error").at("message"), e.message.c_str());
  };
  check({Errc::invalid_request, "bad", "x"}, 400, "invalid_request_error");
  check({Errc::prompt_too_long, "long"}, 400, "invalid_request_error");
  check({Errc::unauthorized, "key"}, 401, "authentication_error");
  check({Errc::not_found, "no model", "model"}, 404, "not_found_error");
  check({Errc::overloaded, "full"}, 529, "overloaded_error");
  check({Errc::engine_failed, "boom"}, 500, "api_error");
  check({Errc::unavailable, "down"}, 503, "api_error");
  EXPECT_EQ(anthropic_error_status(payload_too_large(10)), 413);
}

std::vector<std::string> names(const std::vector<SseEvent>& events) {
  std::vector<std::string> out;
  for (const auto& e : events) {
    out.emplace_back(e.name);
    EXPECT_EQ(json::parse(e.data).at("type"), e.name.data()) << e.data;
  }
  return out;
}

TEST(AnthropicStream, TextInOrder) {
  MessagesStreamWriter w(head);
  std::vector<SseEvent> ev;
  w.start({7, 0, 2, 0}, ev);
  w.delta("Hel", "", {}, ev);
  w.delta("lo", "", {}, ev);
  w.finish({"end_turn", {}}, {7, 2, 2, 0}, ev);
  EXPECT_EQ(names(ev),
            (std::vector<std::string>{"message_start", "ping", "content_block_start",
                                      "content_block_delta", "content_block_delta",
                                      "content_block_stop", "message_delta", "message_stop"}));
  const auto start = json::parse(ev[0].data).at("message");
  EXPECT_EQ(start.at("id"), "msg_1");
  EXPECT_EQ(start.at("content").as_array().size(), 0u);
  EXPECT_TRUE(start.at("stop_reason").is_null());
  EXPECT_EQ(start.at("usage").at("input_tokens"), 5);
  EXPECT_EQ(start.at("usage").at("cache_read_input_tokens"), 2);
  const auto block = json::parse(ev[2].data);
  EXPECT_EQ(block.at("index"), 0);
  EXPECT_EQ(block.at("content_block").at("type"), "text");
  const auto d = json::parse(ev[3].data);
  EXPECT_EQ(d.at("index"), 0);
  EXPECT_EQ(d.at("delta").at("type"), "text_delta");
  EXPECT_EQ(d.at("delta").at("text"), "Hel");
  const auto md = json::parse(ev[6].data);
  EXPECT_EQ(md.at("delta").at("stop_reason"), "end_turn");
  EXPECT_TRUE(md.at("delta").at("stop_sequence").is_null());
  EXPECT_EQ(md.at("usage").at("output_tokens"), 2);
}

TEST(AnthropicStream, ThinkingTextAndToolUseEachGetABlock) {
  MessagesStreamWriter w(head);
  std::vector<SseEvent> ev;
  w.start({3, 0, 0, 0}, ev);
  w.delta("", "hm", {}, ev);
  w.delta("", "m", {}, ev);
  w.delta("Checking.", "", {}, ev);
  w.delta("", "", {{0, "toolu_1", "get_weather", "{\"city\""}}, ev);
  w.delta("", "", {{0, "", "", ":\"Paris\"}"}}, ev);
  w.delta("", "", {{1, "toolu_2", "get_time", ""}}, ev);
  w.delta("", "", {{1, "", "", "{}"}}, ev);
  w.finish({"tool_use", {}}, {3, 9, 0, 0}, ev);
  EXPECT_EQ(names(ev),
            (std::vector<std::string>{
                "message_start", "ping", "content_block_start", "content_block_delta",
                "content_block_delta",
                "content_block_stop",                                                // thinking
                "content_block_start", "content_block_delta", "content_block_stop",  // text
                "content_block_start", "content_block_delta", "content_block_delta",
                "content_block_stop",                                                // tool 1
                "content_block_start", "content_block_delta", "content_block_stop",  // tool 2
                "message_delta", "message_stop"}));
  const auto thinking = json::parse(ev[2].data);
  EXPECT_EQ(thinking.at("content_block").at("type"), "thinking");
  EXPECT_EQ(json::parse(ev[3].data).at("delta").at("type"), "thinking_delta");
  EXPECT_EQ(json::parse(ev[3].data).at("delta").at("thinking"), "hm");
  EXPECT_EQ(json::parse(ev[6].data).at("index"), 1);
  const auto tool = json::parse(ev[9].data);
  EXPECT_EQ(tool.at("index"), 2);
  EXPECT_EQ(tool.at("content_block").at("type"), "tool_use");
  EXPECT_EQ(tool.at("content_block").at("id"), "toolu_1");
  EXPECT_EQ(tool.at("content_block").at("name"), "get_weather");
  EXPECT_TRUE(tool.at("content_block").at("input").as_object().empty());
  const auto args = json::parse(ev[10].data).at("delta");
  EXPECT_EQ(args.at("type"), "input_json_delta");
  EXPECT_EQ(args.at("partial_json"), "{\"city\"");
  EXPECT_EQ(json::parse(ev[13].data).at("index"), 3);
  EXPECT_EQ(json::parse(ev[16].data).at("delta").at("stop_reason"), "tool_use");
}

TEST(AnthropicStream, AnAnswerWithNoOutputStillHasOneTextBlock) {
  MessagesStreamWriter w(head);
  std::vector<SseEvent> ev;
  w.start({3, 0, 0, 0}, ev);
  w.finish({"max_tokens", {}}, {3, 0, 0, 0}, ev);
  EXPECT_EQ(names(ev),
            (std::vector<std::string>{"message_start", "ping", "content_block_start",
                                      "content_block_stop", "message_delta", "message_stop"}));
  std::string wire;
  append_sse(wire, MessagesStreamWriter::ping());
  EXPECT_EQ(wire, "event: ping\ndata: {\"type\":\"ping\"}\n\n");
  const auto err = MessagesStreamWriter::error(to_http_error({Errc::overloaded, "full"}));
  EXPECT_EQ(err.name, "error");
  EXPECT_EQ(json::parse(err.data).at("error").at("type"), "overloaded_error");
}

}  // namespace
}  // namespace troupe::api

namespace troupe::api {
namespace {

// llama-server's `lora` reaches Messages and Responses as it does chat completions.
TEST(Anthropic, ReadsLlamaServersLoraOnMessagesAndResponses) {
  auto m = parse_messages_request(
      R"({"model":"m","max_tokens":4,"messages":[{"role":"user","content":"hi"}],
          "lora":[{"id":1,"scale":0.5}]})");
  ASSERT_TRUE(m.ok()) << m.error().message;
  ASSERT_TRUE(m->params.lora);
  EXPECT_EQ(*m->params.lora, (std::vector<std::pair<std::int32_t, float>>{{1, 0.5f}}));
  auto r = parse_responses_request(R"({"model":"m","input":"hi","lora":[{"id":0,"scale":2}]})");
  ASSERT_TRUE(r.ok()) << r.error().message;
  ASSERT_TRUE(r->chat.params.lora);
  EXPECT_EQ(*r->chat.params.lora, (std::vector<std::pair<std::int32_t, float>>{{0, 2.0f}}));
  auto bad = parse_responses_request(R"({"model":"m","input":"hi","lora":{"id":0}})");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().param, "lora");
}

}  // namespace
}  // namespace troupe::api
