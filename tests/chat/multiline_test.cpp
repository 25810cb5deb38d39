#include "chat/multiline.hpp"

#include <gtest/gtest.h>

namespace troupe::chat {
namespace {

TEST(MultilineInput, OrdinaryLinesAreCompleteAtOnce) {
  MultilineInput in;
  EXPECT_EQ(in.feed("hello"), "hello");
  EXPECT_EQ(in.feed(""), "");
  EXPECT_EQ(in.feed("pasted\ntext"), "pasted\ntext");
  EXPECT_FALSE(in.in_block());
}

TEST(MultilineInput, TripleQuotesOnTheirOwnLinesFrameABlock) {
  MultilineInput in;
  EXPECT_EQ(in.feed(R"(""")"), std::nullopt);
  EXPECT_TRUE(in.in_block());
  EXPECT_EQ(in.feed("first"), std::nullopt);
  EXPECT_EQ(in.feed(""), std::nullopt);
  EXPECT_EQ(in.feed("  indented"), std::nullopt);
  EXPECT_EQ(in.feed(R"(""")"), "first\n\n  indented");
  EXPECT_FALSE(in.in_block());
  EXPECT_EQ(in.feed("after"), "after");
}

TEST(MultilineInput, QuotesMayShareLinesWithText) {
  MultilineInput in;
  EXPECT_EQ(in.feed(R"("""Write a poem)"), std::nullopt);
  EXPECT_EQ(in.feed("about the sea.\"\"\"  "), "Write a poem\nabout the sea.");
  EXPECT_EQ(in.feed(R"(  """one line""")"), "one line");
}

TEST(MultilineInput, ResetDropsAnOpenBlock) {
  MultilineInput in;
  EXPECT_EQ(in.feed(R"(""")"), std::nullopt);
  EXPECT_EQ(in.feed("abandoned"), std::nullopt);
  in.reset();
  EXPECT_FALSE(in.in_block());
  EXPECT_EQ(in.feed("fresh"), "fresh");
}

}  // namespace
}  // namespace troupe::chat
