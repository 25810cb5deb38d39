// The chat parts of the cluster protocol: a conversation with tool calls, the chat options,
// and parsed deltas travel between gateway and worker unchanged.

#include <gtest/gtest.h>

#include "cluster/cluster_protocol.hpp"

namespace troupe::cluster {
namespace {

template <class T>
T round_trip(const T& m) {
  auto bytes = encode_message(m);
  auto back = decode_message<T>(bytes);
  EXPECT_TRUE(back.ok());
  return back.ok() ? std::move(back.value()) : T{};
}

TEST(ClusterChatProtocol, AToolConversationAndItsOptionsRoundTrip) {
  engine::Task t;
  engine::ChatMessage call{"assistant", ""};
  call.reasoning_content = "let me look";
  call.tool_calls = {{"abc123XYZ", "get_time", R"({"city":"Paris"})"}, {"x", "y", "{}"}};
  engine::ChatMessage result{"tool", "10:30"};
  result.tool_call_id = "abc123XYZ";
  result.name = "get_time";
  t.prompt = std::vector<engine::ChatMessage>{{"user", "time?"}, call, result};
  t.chat.tools = {{"get_time", "the time", R"({"type":"object"})"}, {"y", "", ""}};
  t.chat.tool_choice = chatfmt::ToolChoice::function;
  t.chat.tool_choice_function = "get_time";
  t.chat.parallel_tool_calls = false;
  t.chat.template_kwargs = {{"enable_thinking", "false"}};
  t.chat.reasoning_format = chatfmt::ReasoningFormat::deepseek_legacy;
  t.chat.reasoning_effort = "low";
  t.chat.stream = true;
  auto back = round_trip(GenerateRequest{7, {}, t});
  EXPECT_EQ(std::get<std::vector<engine::ChatMessage>>(back.task.prompt),
            std::get<std::vector<engine::ChatMessage>>(t.prompt));
  EXPECT_EQ(back.task.chat, t.chat);
  t.chat = {};
  EXPECT_EQ(round_trip(GenerateRequest{7, {}, t}).task.chat, t.chat);
}

TEST(ClusterChatProtocol, ParsedDeltasAndToolCallsFinishRoundTrip) {
  engine::Delta d;
  d.text = "Checking.";
  d.reasoning = "hmm";
  d.tool_calls = {{0, "abc123XYZ", "get_time", "{\"ci"}, {1, "", "", "ty\":1}"}};
  d.tokens = {4};
  auto back = std::get<engine::Delta>(round_trip(StreamUpdate{3, d}).event);
  EXPECT_EQ(back.text, d.text);
  EXPECT_EQ(back.reasoning, d.reasoning);
  EXPECT_EQ(back.tool_calls, d.tool_calls);
  engine::Finished f;
  f.reason = engine::FinishReason::tool_calls;
  auto fin = std::get<engine::Finished>(round_trip(StreamUpdate{3, f}).event);
  EXPECT_EQ(fin.reason, engine::FinishReason::tool_calls);
}

}  // namespace
}  // namespace troupe::cluster
