#include "api/responses.hpp"

#include <gtest/gtest.h>

#include <boost/json/parse.hpp>

namespace troupe::api {
namespace {
namespace json = boost::json;

ResponsesRequest parse_ok(const std::string& body) {
  auto r = parse_responses_request(body);
  EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.error().message);
  return r.ok() ? std::move(r).value() : ResponsesRequest{};
}

void expect_refused(const std::string& body, const std::string& param) {
  auto r = parse_responses_request(body);
  ASSERT_FALSE(r.ok()) << body;
  EXPECT_EQ(r.error().code, Errc::invalid_request);
  EXPECT_EQ(r.error().param, param) << r.error().message;
}

TEST(Responses, ParsesInputInstructionsAndOptions) {
  auto req = parse_ok(R"({"model":"tiny","input":"hi","instructions":"Be brief.",
    "max_output_tokens":16,"temperature":0.5,"top_p":0.9,"store":false,"stream":true,
    "previous_response_id":"resp_1","reasoning":{"effort":"low","summary":"auto"},
    "text":{"format":{"type":"json_schema","name":"x","schema":{"type":"object"},"strict":true}}})");
  EXPECT_EQ(req.chat.params.model, "tiny");
  EXPECT_EQ(req.chat.params.max_tokens, 16);
  EXPECT_EQ(req.chat.params.temperature, 0.5);
  EXPECT_FALSE(req.store);
  EXPECT_TRUE(req.chat.params.stream);
  EXPECT_EQ(req.previous_response_id, "resp_1");
  EXPECT_EQ(req.instructions, "Be brief.");
  EXPECT_EQ(req.chat.chat.reasoning_effort, "low");
  EXPECT_EQ(req.chat.params.json_schema, R"({"type":"object"})");
  EXPECT_EQ(req.chat.params.schema_param, "text.format.schema");
  ASSERT_EQ(req.chat.messages.size(), 2u);
  EXPECT_EQ(req.chat.messages[0].role, "system");
  EXPECT_EQ(req.chat.messages[1].content, "hi");
}

TEST(Responses, ItemsBecomeTheConversation) {
  auto req = parse_ok(R"({"input":[
    {"role":"developer","content":"sys"},
    {"type":"message","role":"user","content":[{"type":"input_text","text":"Weather?"}]},
    {"type":"reasoning","id":"rs_1","summary":[],"content":[{"type":"reasoning_text","text":"hmm"}]},
    {"type":"function_call","call_id":"call_1","name":"get_weather","arguments":"{\"city\":\"Paris\"}"},
    {"type":"function_call_output","call_id":"call_1","output":"sunny"}],
    "tools":[{"type":"function","name":"get_weather","parameters":{"type":"object"}}],
    "tool_choice":{"type":"function","name":"get_weather"}})");
  ASSERT_EQ(req.chat.messages.size(), 4u);
  EXPECT_EQ(req.chat.messages[0].role, "system");
  EXPECT_EQ(req.chat.messages[1].content, "Weather?");
  const auto& a = req.chat.messages[2];
  EXPECT_EQ(a.role, "assistant");
  EXPECT_EQ(a.reasoning_content, "hmm");
  ASSERT_EQ(a.tool_calls.size(), 1u);
  EXPECT_EQ(a.tool_calls[0].id, "call_1");
  EXPECT_EQ(req.chat.messages[3].role, "tool");
  EXPECT_EQ(req.chat.messages[3].tool_call_id, "call_1");
  EXPECT_EQ(req.chat.messages[3].name, "get_weather");
  EXPECT_EQ(req.chat.chat.tool_choice, chatfmt::ToolChoice::function);
}

TEST(Responses, RefusesWhatItCannotHonour) {
  expect_refused(R"({"model":"m"})", "input");
  expect_refused(R"({"input":"x","tools":[{"type":"web_search"}]})", "tools[0].type");
  expect_refused(R"({"input":"x","background":true})", "background");
  expect_refused(R"({"input":"x","include":["reasoning.encrypted_content"]})", "include");
  expect_refused(R"({"input":"x","reasoning":{"summary":"detailed"}})", "reasoning.summary");
  expect_refused(R"({"input":"x","reasoning":{"effort":"max"}})", "reasoning.effort");
  expect_refused(R"({"input":"x","truncation":"auto"})", "truncation");
  expect_refused(R"({"input":"x","text":{"format":{"type":"xml"}}})", "text.format.type");
  expect_refused(R"({"input":[{"type":"message","role":"user","content":[{"type":"input_image",
      "image_url":"x"}]}]})",
                 "input[0].content[0].type");
  expect_refused(R"({"input":"x","tool_choice":"required"})", "tool_choice");
  expect_refused(R"({"input":"x","max_output_tokens":0})", "max_output_tokens");
}

const ResponsesHead head{"resp_abc", "tiny", 1700000000, "Be brief.", "", true};

TEST(Responses, ResponseObjectHasItemsAndUsage) {
  CompletionResult r{"Checking.", "tool_calls", {10, 5, 4, 2}, std::nullopt};
  r.reasoning_content = "hmm";
  r.tool_calls = {{"call_1", "get_weather", R"({"city":"Paris"})"}};
  auto v = json::parse(response_json(head, r, false));
  EXPECT_EQ(v.at("object"), "response");
  EXPECT_EQ(v.at("status"), "completed");
  EXPECT_EQ(v.at("instructions"), "Be brief.");
  const auto& out = v.at("output").as_array();
  ASSERT_EQ(out.size(), 3u);
  EXPECT_EQ(out[0].at("type"), "reasoning");
  EXPECT_EQ(out[0].at("content").at(0).at("text"), "hmm");
  EXPECT_EQ(out[1].at("type"), "message");
  EXPECT_EQ(out[1].at("content").at(0).at("type"), "output_text");
  EXPECT_EQ(out[1].at("content").at(0).at("text"), "Checking.");
  EXPECT_EQ(out[2].at("type"), "function_call");
  EXPECT_EQ(out[2].at("call_id"), "call_1");
  EXPECT_EQ(out[2].at("arguments"), R"({"city":"Paris"})");
  EXPECT_EQ(v.at("usage").at("input_tokens"), 10);
  EXPECT_EQ(v.at("usage").at("input_tokens_details").at("cached_tokens"), 4);
  EXPECT_EQ(v.at("usage").at("output_tokens_details").at("reasoning_tokens"), 2);
  EXPECT_EQ(v.at("usage").at("total_tokens"), 15);
  auto cut = json::parse(response_json(head, {"x", "length", {1, 1, 0, 0}, std::nullopt}, true));
  EXPECT_EQ(cut.at("status"), "incomplete");
  EXPECT_EQ(cut.at("incomplete_details").at("reason"), "max_output_tokens");
}

// The response echoes the request's tool settings, OpenAI's defaults when it gave none.
TEST(Responses, TheResponseEchoesTheRequestsToolSettings) {
  const CompletionResult r{"x", "stop", {1, 1, 0, 0}, std::nullopt};
  auto plain = json::parse(response_json(head, r, false));
  EXPECT_EQ(plain.at("tools"), json::array());
  EXPECT_EQ(plain.at("tool_choice"), "auto");
  EXPECT_EQ(plain.at("parallel_tool_calls"), true);

  auto req = parse_ok(R"({"input":"Weather?","parallel_tool_calls":false,
    "tools":[{"type":"function","name":"get_weather","parameters":{"type":"object"}}],
    "tool_choice":{"type":"function","name":"get_weather"}})");
  ResponsesHead h = head;
  h.tools = req.tools;
  auto echoed = json::parse(response_json(h, r, false));
  EXPECT_EQ(echoed.at("tools").at(0).at("name"), "get_weather");
  EXPECT_EQ(echoed.at("tools").at(0).at("parameters").at("type"), "object");
  EXPECT_EQ(echoed.at("tool_choice").at("type"), "function");
  EXPECT_EQ(echoed.at("tool_choice").at("name"), "get_weather");
  EXPECT_EQ(echoed.at("parallel_tool_calls"), false);
  EXPECT_EQ(parse_ok(R"({"input":"x","tool_choice":"none"})").tools.tool_choice, R"("none")");
}

std::vector<std::string> types(const std::vector<SseEvent>& events) {
  std::vector<std::string> out;
  std::int64_t seq = 0;
  for (const auto& e : events) {
    out.emplace_back(e.name);
    const auto v = json::parse(e.data);
    EXPECT_EQ(v.at("type"), e.name.data());
    EXPECT_EQ(v.at("sequence_number"), seq++);
  }
  return out;
}

TEST(ResponsesStream, TextInOrder) {
  ResponsesStreamWriter w(head);
  std::vector<SseEvent> ev;
  w.start(ev);
  w.delta("Hel", "", {}, ev);
  w.delta("lo", "", {}, ev);
  w.finish({"Hello", "stop", {3, 2, 0, 0}, std::nullopt}, false, ev);
  EXPECT_EQ(types(ev),
            (std::vector<std::string>{"response.created", "response.in_progress",
                                      "response.output_item.added", "response.content_part.added",
                                      "response.output_text.delta", "response.output_text.delta",
                                      "response.output_text.done", "response.content_part.done",
                                      "response.output_item.done", "response.completed"}));
  EXPECT_EQ(json::parse(ev[0].data).at("response").at("status"), "in_progress");
  EXPECT_EQ(json::parse(ev[4].data).at("delta"), "Hel");
  EXPECT_EQ(json::parse(ev[6].data).at("text"), "Hello");
  const auto item = json::parse(ev[8].data).at("item");
  EXPECT_EQ(item.at("content").at(0).at("text"), "Hello");
  const auto done = json::parse(ev[9].data).at("response");
  EXPECT_EQ(done.at("status"), "completed");
  EXPECT_EQ(done.at("output").at(0).at("id"), item.at("id"));
}

TEST(ResponsesStream, ReasoningAndFunctionCalls) {
  ResponsesStreamWriter w(head);
  std::vector<SseEvent> ev;
  w.start(ev);
  w.delta("", "hmm", {}, ev);
  w.delta("", "", {{0, "call_1", "f", "{\"a\""}}, ev);
  w.delta("", "", {{0, "", "", ":1}"}}, ev);
  CompletionResult r{"", "tool_calls", {3, 3, 0, 1}, std::nullopt};
  r.reasoning_content = "hmm";
  r.tool_calls = {{"call_1", "f", "{\"a\":1}"}};
  w.finish(r, false, ev);
  EXPECT_EQ(types(ev),
            (std::vector<std::string>{
                "response.created", "response.in_progress", "response.output_item.added",
                "response.reasoning_text.delta", "response.reasoning_text.done",
                "response.output_item.done", "response.output_item.added",
                "response.function_call_arguments.delta", "response.function_call_arguments.delta",
                "response.function_call_arguments.done", "response.output_item.done",
                "response.completed"}));
  EXPECT_EQ(json::parse(ev[6].data).at("item").at("call_id"), "call_1");
  EXPECT_EQ(json::parse(ev[9].data).at("arguments"), "{\"a\":1}");
  EXPECT_EQ(json::parse(ev[10].data).at("item").at("arguments"), "{\"a\":1}");
}

TEST(ResponsesStream, FailureEndsWithResponseFailed) {
  ResponsesStreamWriter w(head);
  std::vector<SseEvent> ev;
  w.start(ev);
  w.fail(to_http_error({Errc::engine_failed, "boom"}), ev);
  ASSERT_EQ(ev.back().name, "response.failed");
  const auto r = json::parse(ev.back().data).at("response");
  EXPECT_EQ(r.at("status"), "failed");
  EXPECT_EQ(r.at("error").at("message"), "boom");
}

}  // namespace
}  // namespace troupe::api
