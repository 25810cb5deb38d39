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

}  // namespace
}  // namespace troupe::chat
