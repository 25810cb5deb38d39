// ReasoningBlock over a made-up vocabulary: the tags are found in the text whatever tokens
// wrote them, and the budget counts, waits for a character, forces, and closes.

#include "engine/reasoning_block.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "engine/utf8.hpp"
#include "support/alloc_counter.hpp"

namespace troupe::engine {
namespace {

// Token i is pieces[i]; control tokens are written out only by append_special.
class Pieces final : public TokenText {
 public:
  explicit Pieces(std::vector<std::string> pieces, std::vector<bool> control = {})
      : pieces_(std::move(pieces)), control_(std::move(control)) {
    control_.resize(pieces_.size());
  }
  void append_piece(Token t, std::string& out) const override {
    if (!control_[static_cast<std::size_t>(t)])
      out += pieces_[static_cast<std::size_t>(t)];
  }
  void append_special(Token t, std::string& out) const override {
    out += pieces_[static_cast<std::size_t>(t)];
  }
  bool is_eog(Token) const override { return false; }
  Token id(const std::string& piece) const {
    for (std::size_t i = 0; i < pieces_.size(); ++i) {
      if (pieces_[i] == piece)
        return static_cast<Token>(i);
    }
    ADD_FAILURE() << "no token " << piece;
    return 0;
  }

 private:
  std::vector<std::string> pieces_;
  std::vector<bool> control_;
};

const Pieces vocab({"Let", " me", " think", ".", "\n", "</", "think", ">", ">\n\n", ".</", "The",
                    " answer", "<th", "ink", ">\n", "\xC3", "\xA9", "</think>", " Enough"});

ReasoningBlock::Spec think(std::int32_t budget, bool opened = true) {
  ReasoningBlock::Spec s;
  s.start = "<think>";
  s.ends = {"</think>"};
  s.budget = budget;
  s.opened = opened;
  if (budget >= 0)
    s.forced = {vocab.id(" Enough"), vocab.id("</"), vocab.id("think"), vocab.id(">")};
  return s;
}

std::vector<Token> ids(std::initializer_list<const char*> pieces) {
  std::vector<Token> out;
  for (const char* p : pieces)
    out.push_back(vocab.id(p));
  return out;
}

std::vector<Token> accept_all(ReasoningBlock& b, const std::vector<Token>& tokens) {
  std::vector<Token> closing;
  for (Token t : tokens) {
    b.accept(t);
    if (!b.closing().empty())
      closing.assign(b.closing().begin(), b.closing().end());
  }
  return closing;
}

TEST(ReasoningBlock, AClosingTagIsSeenHoweverItWasTokenized) {
  // The tag alone, the tag merged with the newlines after it, the tag merged with the full
  // stop before it, and the tag as one token.
  const std::vector<std::vector<Token>> closings = {
      ids({"</", "think", ">"}),
      ids({"</", "think", ">\n\n"}),
      ids({".</", "think", ">"}),
      ids({"</think>"}),
  };
  for (const auto& close : closings) {
    ReasoningBlock b(think(-1), vocab);
    ASSERT_TRUE(b.inside());
    EXPECT_TRUE(accept_all(b, ids({"Let", " me", " think"})).empty());
    EXPECT_TRUE(b.inside());
    EXPECT_EQ(accept_all(b, close), close) << "the tokens that wrote the tag";
    EXPECT_FALSE(b.inside());
    EXPECT_EQ(b.forced(), -1);
    b.accept(vocab.id("The"));
    EXPECT_TRUE(b.closing().empty());
    EXPECT_FALSE(b.inside());
  }
}

TEST(ReasoningBlock, AnOpeningTagOpensItAgain) {
  ReasoningBlock b(think(-1, /*opened=*/false), vocab);
  EXPECT_FALSE(b.inside());
  accept_all(b, ids({"Let", "<th", "ink"}));
  EXPECT_FALSE(b.inside());
  b.accept(vocab.id(">\n"));
  EXPECT_TRUE(b.inside());
  accept_all(b, ids({" me", "</", "think", ">\n\n", "The"}));
  EXPECT_FALSE(b.inside());
  accept_all(b, ids({"<th", "ink", ">"}));  // a second block, as some models write
  EXPECT_TRUE(b.inside());
}

TEST(ReasoningBlock, TheBudgetForcesTheMessageAndTheTagThenCloses) {
  ReasoningBlock b(think(3), vocab);
  accept_all(b, ids({"Let", " me"}));
  EXPECT_EQ(b.forced(), -1);
  b.accept(vocab.id(" think"));  // the third token inside
  const auto forced = ids({" Enough", "</", "think", ">"});
  for (Token t : forced) {
    ASSERT_TRUE(b.inside());
    ASSERT_EQ(b.forced(), t);
    b.accept(t);
  }
  EXPECT_FALSE(b.inside());
  EXPECT_EQ(std::vector<Token>(b.closing().begin(), b.closing().end()), ids({"</", "think", ">"}));
  EXPECT_EQ(b.forced(), -1);
}

TEST(ReasoningBlock, ABudgetOfZeroForcesAtOnceAndNoneNeverForces) {
  ReasoningBlock zero(think(0), vocab);
  EXPECT_EQ(zero.forced(), vocab.id(" Enough"));
  ReasoningBlock none(think(-1), vocab);
  for (int i = 0; i < 1000; ++i)
    none.accept(vocab.id(" think"));
  EXPECT_TRUE(none.inside());
  EXPECT_EQ(none.forced(), -1);
}

TEST(ReasoningBlock, TheBudgetLetsACharacterFinish) {
  ReasoningBlock b(think(2), vocab);
  b.accept(vocab.id("Let"));
  b.accept(vocab.id("\xC3"));  // the budget's last token begins "é"
  EXPECT_EQ(b.forced(), -1);
  b.accept(vocab.id("\xA9"));
  EXPECT_EQ(b.forced(), vocab.id(" Enough"));
}

TEST(ReasoningBlock, ANaturalCloseBeforeTheBudgetForcesNothing) {
  ReasoningBlock b(think(5), vocab);
  accept_all(b, ids({"Let", ".</", "think", ">\n\n"}));
  EXPECT_FALSE(b.inside());
  for (int i = 0; i < 10; ++i) {
    b.accept(vocab.id(" answer"));
    EXPECT_EQ(b.forced(), -1);
  }
}

TEST(ReasoningBlock, AControlTokenTagIsReadAsItsText) {
  const Pieces control({"[THINK]", "[/THINK]", "Hmm", "Yes"}, {true, true, false, false});
  ReasoningBlock::Spec s;
  s.start = "[THINK]";
  s.ends = {"[/THINK]"};
  ReasoningBlock b(std::move(s), control);
  b.accept(0);
  EXPECT_TRUE(b.inside());
  b.accept(2);
  b.accept(1);
  EXPECT_FALSE(b.inside());
  EXPECT_EQ(std::vector<Token>(b.closing().begin(), b.closing().end()), std::vector<Token>{1});
}

// It runs on the engine thread, once a token: no allocation, blocks opened and closed.
TEST(ReasoningBlock, AcceptingTokensAllocatesNothing) {
  ReasoningBlock b(think(-1), vocab);
  const auto round = ids({"Let", " me", ".</", "think", ">\n\n", "The", "<th", "ink", ">\n"});
  accept_all(b, round);
  const std::uint64_t before = troupe::test::thread_allocation_count();
  for (int i = 0; i < 100; ++i) {
    for (Token t : round)
      b.accept(t);
  }
  EXPECT_EQ(troupe::test::thread_allocation_count() - before, 0u);
  EXPECT_TRUE(b.inside());
}

TEST(Utf8, EndsMidCharacter) {
  EXPECT_FALSE(ends_mid_character(""));
  EXPECT_FALSE(ends_mid_character("abc"));
  EXPECT_TRUE(ends_mid_character("a\xC3"));
  EXPECT_FALSE(ends_mid_character("a\xC3\xA9"));
  EXPECT_TRUE(ends_mid_character("\xE2\x82"));
  EXPECT_FALSE(ends_mid_character("\xE2\x82\xAC"));
  EXPECT_TRUE(ends_mid_character("\xF0\x9F\x98"));
  EXPECT_FALSE(ends_mid_character("\xF0\x9F\x98\x80"));
}

}  // namespace
}  // namespace troupe::engine
