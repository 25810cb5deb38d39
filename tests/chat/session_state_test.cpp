#include "chat/session_state.hpp"

#include <gtest/gtest.h>

#include <filesystem>

namespace troupe::chat {
namespace {

Reaction run(SessionState& s, std::string_view text) {
  auto input = parse_input(text);
  EXPECT_TRUE(input.ok()) << text;
  return react(s, input.value());
}

TEST(SessionState, MessagesAreSentNotStored) {
  SessionState s;
  auto r = run(s, "hello");
  EXPECT_EQ(r.send, "hello");
  EXPECT_FALSE(r.exit);
  EXPECT_TRUE(s.conversation.turns().empty());
}

TEST(SessionState, CommandsChangeTheState) {
  SessionState s;
  s.conversation.add_user("q");
  EXPECT_EQ(run(s, "/system Be kind.").say, "(system prompt set)\n");
  EXPECT_EQ(s.conversation.system(), "Be kind.");
  EXPECT_EQ(run(s, "/model other").say, "(model other)\n");
  EXPECT_EQ(s.conversation.model(), "other");
  EXPECT_EQ(run(s, "/set max_tokens 12").say, "(max_tokens = 12)\n");
  EXPECT_EQ(s.conversation.sampling().max_tokens, 12);
  EXPECT_EQ(run(s, "/stats").say, "(stats on)\n");
  EXPECT_TRUE(s.show_stats);
  EXPECT_EQ(run(s, "/stats").say, "(stats off)\n");
  run(s, "/clear");
  EXPECT_TRUE(s.conversation.turns().empty());
  EXPECT_EQ(s.conversation.system(), "Be kind.");  // /clear keeps the system prompt
  EXPECT_TRUE(run(s, "/exit").exit);
  EXPECT_NE(run(s, "/help").say.find("/save"), std::string::npos);
}

TEST(SessionState, BadValuesAndFailedSavesAreReportedAsErrors) {
  SessionState s;
  auto bad = run(s, "/set temperature 9");
  EXPECT_TRUE(bad.is_error);
  EXPECT_EQ(bad.say, "temperature must be a number in [0, 2]\n");
  auto save = run(s, "/save /nonexistent-dir/c.json");
  EXPECT_TRUE(save.is_error);
}

TEST(SessionState, ToolResultsAnswerWaitingCallsInOrderThenResume) {
  SessionState s;
  s.conversation.add_user("weather and time?");
  s.conversation.add_assistant("", {{"a", "get_weather", "{}"}, {"b", "get_time", "{}"}});
  auto refused = run(s, "and tomorrow?");
  EXPECT_TRUE(refused.is_error);
  EXPECT_FALSE(refused.send);
  EXPECT_EQ(refused.say,
            "the model waits for 2 tool results: answer with /tool <result> (or /clear)\n");
  auto first = run(s, "/tool 18 C");
  EXPECT_FALSE(first.is_error);
  EXPECT_FALSE(first.resume);
  EXPECT_EQ(first.say, "(get_weather answered; next waiting call: get_time)\n");
  auto second = run(s, "/tool 14:05");
  EXPECT_TRUE(second.resume);
  EXPECT_TRUE(second.say.empty());
  ASSERT_EQ(s.conversation.turns().size(), 4u);
  EXPECT_EQ(s.conversation.turns()[3].tool_call_id, "b");
  EXPECT_EQ(s.conversation.turns()[3].content, "14:05");
  auto none = run(s, "/tool again");
  EXPECT_TRUE(none.is_error);
  EXPECT_EQ(none.say, "no tool call is waiting for a result\n");
}

TEST(SessionState, ReasoningTogglesAndTheLastOneCanBeShown) {
  SessionState s;
  EXPECT_TRUE(s.show_reasoning);
  EXPECT_EQ(run(s, "/reasoning hide").say, "(reasoning hidden)\n");
  EXPECT_FALSE(s.show_reasoning);
  EXPECT_EQ(run(s, "/reasoning").say, "(reasoning shown)\n");
  EXPECT_TRUE(s.show_reasoning);
  run(s, "/reasoning show");
  EXPECT_TRUE(s.show_reasoning);
  EXPECT_EQ(run(s, "/reasoning last").say, "(the last answer had no reasoning)\n");
  s.last_reasoning = "Because.";
  auto last = run(s, "/reasoning last");
  EXPECT_TRUE(last.dim);
  EXPECT_EQ(last.say, "Because.\n");
}

TEST(SessionState, SaveWritesTheConversation) {
  SessionState s;
  s.conversation.add_user("q");
  s.conversation.add_assistant("a");
  const auto path = std::filesystem::path(TROUPE_BINARY_DIR) / "chat_state_save.json";
  auto r = run(s, "/save " + path.string());
  EXPECT_FALSE(r.is_error) << r.say;
  EXPECT_TRUE(std::filesystem::exists(path));
  std::filesystem::remove(path);
}

TEST(ChooseModel, TheOneAskedForElseTheServersFirst) {
  EXPECT_EQ(choose_model({"a", "b"}, "").model, "a");
  EXPECT_EQ(choose_model({}, "").model, "");
  auto asked = choose_model({"a", "b"}, "b");
  EXPECT_EQ(asked.model, "b");
  EXPECT_EQ(asked.warning, "");
  auto unknown = choose_model({"a", "b"}, "c");
  EXPECT_EQ(unknown.model, "c");  // asked for anyway
  EXPECT_NE(unknown.warning.find("does not list model 'c'"), std::string::npos);
  EXPECT_NE(unknown.warning.find("a, b"), std::string::npos);
  EXPECT_EQ(choose_model({}, "c").warning, "");  // a server that lists nothing
}

TEST(SessionState, DropForgetsTheOldestExchangeWithItsToolTurns) {
  SessionState s;
  EXPECT_TRUE(run(s, "/drop").is_error);  // nothing yet
  s.conversation.add_user("q1");
  s.conversation.add_assistant("", {{"c1", "f", "{}"}});
  ASSERT_TRUE(s.conversation.add_tool_result("r1"));
  s.conversation.add_assistant("a1");
  s.conversation.add_user("q2");
  s.conversation.add_assistant("a2");
  auto r = run(s, "/drop");
  EXPECT_FALSE(r.is_error) << r.say;
  EXPECT_NE(r.say.find("4 messages"), std::string::npos) << r.say;
  ASSERT_EQ(s.conversation.turns().size(), 2u);
  EXPECT_EQ(s.conversation.turns()[0].content, "q2");
  EXPECT_TRUE(run(s, "/drop").is_error);  // the last exchange stays
}

}  // namespace
}  // namespace troupe::chat
