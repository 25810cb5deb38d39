#include "server/response_store.hpp"

#include <gtest/gtest.h>

namespace troupe::server {
namespace {

StoredResponse response(std::string json) {
  return StoredResponse{std::move(json), {chatfmt::Message{.role = "user", .content = "hi"}}, "m"};
}

TEST(ResponseStore, PutGetErase) {
  ResponseStore s;
  s.put("a", response("{1}"));
  auto got = s.get("a");
  ASSERT_TRUE(got);
  EXPECT_EQ(got->json, "{1}");
  EXPECT_EQ(got->conversation.at(0).content, "hi");
  EXPECT_FALSE(s.get("b"));
  EXPECT_TRUE(s.erase("a"));
  EXPECT_FALSE(s.erase("a"));
  EXPECT_FALSE(s.get("a"));
}

TEST(ResponseStore, TheOldestGoFirstPastTheEntryAndByteBounds) {
  ResponseStore s({.max_entries = 2, .max_bytes = 1u << 20, .max_age = std::chrono::seconds(3600)});
  s.put("a", response("1"));
  s.put("b", response("2"));
  s.put("c", response("3"));
  EXPECT_FALSE(s.get("a"));
  EXPECT_TRUE(s.get("b"));
  EXPECT_TRUE(s.get("c"));
  EXPECT_EQ(s.size(), 2u);
  ResponseStore small(
      {.max_entries = 100, .max_bytes = 300, .max_age = std::chrono::seconds(3600)});
  small.put("x", response(std::string(200, 'x')));
  small.put("y", response(std::string(200, 'y')));
  EXPECT_FALSE(small.get("x"));
  EXPECT_TRUE(small.get("y"));
}

TEST(ResponseStore, EntriesOlderThanTheAgeLimitAreGone) {
  ResponseStore s({.max_entries = 10, .max_bytes = 1u << 20, .max_age = std::chrono::seconds(-1)});
  s.put("a", response("1"));
  EXPECT_FALSE(s.get("a"));
  EXPECT_EQ(s.size(), 0u);
}

TEST(ResponseStore, PuttingAnIdAgainReplacesIt) {
  ResponseStore s({.max_entries = 2, .max_bytes = 1u << 20, .max_age = std::chrono::seconds(3600)});
  s.put("a", response("1"));
  s.put("a", response("2"));
  s.put("b", response("3"));
  EXPECT_EQ(s.get("a")->json, "2");
  EXPECT_EQ(s.size(), 2u);
}

}  // namespace
}  // namespace troupe::server
