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

TEST(Conversation, WriteFileReportsTheReason) {
  auto r = write_file("/nonexistent-dir/x.json", "{}");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("/nonexistent-dir/x.json"), std::string::npos);
}

}  // namespace
}  // namespace troupe::chat
