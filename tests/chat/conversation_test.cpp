#include "chat/conversation.hpp"

#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace troupe::chat {
namespace {
namespace json = boost::json;

TEST(Conversation, RequestCarriesModelSystemTurnsAndSampling) {
  Conversation c("tiny", "Be brief.", {});
  ASSERT_TRUE(c.set_parameter("temperature", "0").ok());
  ASSERT_TRUE(c.set_parameter("seed", "7").ok());
  c.add_user("hi");
  c.add_assistant("hello");
  c.add_user("again");
  auto r = c.request();
  EXPECT_EQ(r.model, "tiny");
  ASSERT_EQ(r.messages.size(), 4u);
  EXPECT_EQ(r.messages[0].role, "system");
  EXPECT_EQ(r.messages[0].content, "Be brief.");
  EXPECT_EQ(r.messages[3].content, "again");
  EXPECT_EQ(r.sampling.temperature, 0.0);
  EXPECT_EQ(r.sampling.seed, 7);
  EXPECT_FALSE(r.sampling.top_p.has_value());
  EXPECT_FALSE(r.sampling.max_tokens.has_value());
}

TEST(Conversation, NoSystemMessageWhenNoneIsSet) {
  Conversation c;
  c.add_user("hi");
  auto r = c.request();
  ASSERT_EQ(r.messages.size(), 1u);
  EXPECT_EQ(r.messages[0].role, "user");
}

TEST(Conversation, SetParameterChecksRanges) {
  Conversation c;
  EXPECT_TRUE(c.set_parameter("temperature", "2").ok());
  EXPECT_TRUE(c.set_parameter("top_p", "1").ok());
  EXPECT_TRUE(c.set_parameter("max_tokens", "1").ok());
  EXPECT_TRUE(c.set_parameter("seed", "0").ok());
  for (auto [name, value] :
       std::vector<std::pair<std::string, std::string>>{{"temperature", "2.5"},
                                                        {"temperature", "-1"},
                                                        {"temperature", "warm"},
                                                        {"top_p", "0"},
                                                        {"top_p", "1.1"},
                                                        {"max_tokens", "0"},
                                                        {"max_tokens", "1.5"},
                                                        {"seed", "-3"},
                                                        {"seed", "x"},
                                                        {"color", "1"}}) {
    auto r = c.set_parameter(name, value);
    ASSERT_FALSE(r.ok()) << name << "=" << value;
    EXPECT_EQ(r.error().param, name);
  }
  EXPECT_EQ(c.sampling().temperature, 2.0);  // failures changed nothing
  EXPECT_EQ(c.sampling().max_tokens, 1);
}

TEST(Conversation, DropUnansweredRemovesOnlyATrailingUserTurn) {
  Conversation c;
  c.add_user("q1");
  c.add_assistant("a1");
  c.drop_unanswered();
  EXPECT_EQ(c.turns().size(), 2u);
  c.add_user("q2");
  c.drop_unanswered();
  EXPECT_EQ(c.turns().size(), 2u);
  c.clear();
  EXPECT_TRUE(c.turns().empty());
}

TEST(Conversation, SavedJsonHoldsEverything) {
  Conversation c("m", "sys", {});
  ASSERT_TRUE(c.set_parameter("top_p", "0.5").ok());
  c.add_user("say \"hi\"\n");
  c.add_assistant("hi ✓");
  const auto path = std::filesystem::path(TROUPE_BINARY_DIR) / "chat_saved_conversation.json";
  ASSERT_TRUE(write_file(path.string(), c.to_json()).ok());
  std::ifstream f(path);
  std::stringstream s;
  s << f.rdbuf();
  std::filesystem::remove(path);
  auto doc = json::parse(s.str()).as_object();
  EXPECT_EQ(doc.at("model").as_string(), "m");
  EXPECT_EQ(doc.at("system").as_string(), "sys");
  EXPECT_EQ(doc.at("sampling").at("top_p").as_double(), 0.5);
  const auto& messages = doc.at("messages").as_array();
  ASSERT_EQ(messages.size(), 3u);
  EXPECT_EQ(messages[1].at("content").as_string(), "say \"hi\"\n");
  EXPECT_EQ(messages[2].at("role").as_string(), "assistant");
  EXPECT_EQ(messages[2].at("content").as_string(), "hi ✓");
}

// An answer that called two functions, then their results: the history keeps the calls, so
// the next request sends them back in the OpenAI shape.
TEST(Conversation, ToolCallsAndResultsAreKeptAndSent) {
  Conversation c;
  c.set_tools(json::parse(R"([{"type":"function","function":{"name":"get_weather"}}])").as_array());
  c.add_user("weather and time in Paris?");
  EXPECT_TRUE(c.pending_tool_calls().empty());
  c.add_assistant("", {{"call_a", "get_weather", R"({"city":"Paris"})"}, {"", "get_time", "{}"}});
  auto pending = c.pending_tool_calls();
  ASSERT_EQ(pending.size(), 2u);
  EXPECT_EQ(pending[0].id, "call_a");
  EXPECT_EQ(pending[1].id, "call_1_1");  // the server gave none: one is made up
  auto first = c.add_tool_result("18 C");
  ASSERT_TRUE(first.ok());
  EXPECT_EQ(first->name, "get_weather");
  ASSERT_EQ(c.pending_tool_calls().size(), 1u);
  EXPECT_EQ(c.pending_tool_calls()[0].name, "get_time");
  ASSERT_TRUE(c.add_tool_result("14:05").ok());
  EXPECT_TRUE(c.pending_tool_calls().empty());
  EXPECT_FALSE(c.add_tool_result("extra").ok());

  auto r = c.request();
  ASSERT_EQ(r.messages.size(), 4u);
  EXPECT_EQ(r.messages[1].role, "assistant");
  ASSERT_EQ(r.messages[1].tool_calls.size(), 2u);
  EXPECT_EQ(r.messages[1].tool_calls[0].arguments, R"({"city":"Paris"})");
  EXPECT_EQ(r.messages[2].role, "tool");
  EXPECT_EQ(r.messages[2].tool_call_id, "call_a");
  EXPECT_EQ(r.messages[3].tool_call_id, "call_1_1");
  EXPECT_EQ(r.messages[3].content, "14:05");
  ASSERT_EQ(r.tools.size(), 1u);
}

TEST(Conversation, DroppingAFailedResultMakesItsCallPendingAgain) {
  Conversation c;
  c.add_user("q");
  c.add_assistant("", {{"id1", "f", "{}"}});
  ASSERT_TRUE(c.add_tool_result("r").ok());
  EXPECT_TRUE(c.pending_tool_calls().empty());
  c.drop_unanswered();  // the answer to the result failed
  ASSERT_EQ(c.pending_tool_calls().size(), 1u);
  EXPECT_EQ(c.turns().size(), 2u);
  c.add_assistant("plain answer");
  EXPECT_TRUE(c.pending_tool_calls().empty());  // only the last answer's calls can wait
}

TEST(Conversation, SavedJsonHoldsToolsCallsAndResults) {
  Conversation c;
  c.set_tools(json::parse(R"([{"type":"function","function":{"name":"f"}}])").as_array());
  c.add_user("q");
  c.add_assistant("", {{"id1", "f", R"({"x":1})"}});
  ASSERT_TRUE(c.add_tool_result("ok").ok());
  auto doc = json::parse(c.to_json()).as_object();
  EXPECT_EQ(doc.at("tools").at(0).at("function").at("name").as_string(), "f");
  const auto& m = doc.at("messages").as_array();
  ASSERT_EQ(m.size(), 3u);
  EXPECT_TRUE(m[1].at("content").is_null());
  EXPECT_EQ(m[1].at("tool_calls").at(0).at("function").at("arguments").as_string(), R"({"x":1})");
  EXPECT_EQ(m[2].at("tool_call_id").as_string(), "id1");
  EXPECT_FALSE(json::parse(Conversation().to_json()).as_object().contains("tools"));
}

TEST(Conversation, WriteFileReportsTheReason) {
  auto r = write_file("/nonexistent-dir/x.json", "{}");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("/nonexistent-dir/x.json"), std::string::npos);
}

}  // namespace
}  // namespace troupe::chat
