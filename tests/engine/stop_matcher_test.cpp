#include "engine/stop_matcher.hpp"

#include <gtest/gtest.h>

#include "engine/utf8.hpp"

namespace troupe::engine {
namespace {

// Feeds pieces; returns everything emitted and the match.
std::pair<std::string, std::optional<std::string>> run(StopMatcher& m,
                                                       const std::vector<std::string>& pieces) {
  std::string out;
  std::optional<std::string> matched;
  for (const auto& p : pieces) {
    auto r = m.feed(p);
    out += r.emit;
    if (r.matched)
      matched = r.matched;
  }
  if (!matched)
    out += m.flush();
  return {out, matched};
}

TEST(StopMatcher, NoStopsPassesEverythingThrough) {
  StopMatcher m({});
  EXPECT_EQ(m.feed("abc").emit, "abc");
  EXPECT_EQ(m.held(), 0u);
}

TEST(StopMatcher, StopSplitAcrossOneToFourPieces) {
  const std::vector<std::vector<std::string>> splits = {
      {"hello STOP world"},
      {"hello ST", "OP world"},
      {"hello S", "T", "OP world"},
      {"hello ", "S", "T", "O", "P", " world"},
  };
  for (const auto& pieces : splits) {
    StopMatcher m({"STOP"});
    auto [out, matched] = run(m, pieces);
    EXPECT_EQ(out, "hello ");
    EXPECT_EQ(matched, "STOP");
    EXPECT_TRUE(m.finished());
  }
}

TEST(StopMatcher, HeldTextIsNeverPartOfAStopAndIsReleasedWhenItIsNot) {
  StopMatcher m({"STOP"});
  auto r = m.feed("abc ST");
  EXPECT_EQ(r.emit, "abc ");
  EXPECT_EQ(m.held(), 2u);
  r = m.feed("ART");
  EXPECT_EQ(r.emit, "START");
  EXPECT_FALSE(r.matched);
}

TEST(StopMatcher, OverlappingCandidatesEarliestWins) {
  StopMatcher m({"bcx", "abc"});
  auto [out, matched] = run(m, {"za", "b", "cx"});
  EXPECT_EQ(out, "z");
  EXPECT_EQ(matched, "abc");
}

TEST(StopMatcher, OverlappingCandidatesSamePositionLongestWins) {
  StopMatcher m({"ab", "abc"});
  auto [out, matched] = run(m, {"xabc"});
  EXPECT_EQ(matched, "abc");
  EXPECT_EQ(out, "x");
}

TEST(StopMatcher, SelfOverlappingStop) {
  StopMatcher m({"aab"});
  auto [out, matched] = run(m, {"a", "a", "a", "b"});
  EXPECT_EQ(out, "a");
  EXPECT_EQ(matched, "aab");
}

TEST(StopMatcher, FlushReturnsHeldTextWithoutMatch) {
  StopMatcher m({"STOP"});
  auto [out, matched] = run(m, {"end ST"});
  EXPECT_EQ(out, "end ST");
  EXPECT_FALSE(matched);
}

TEST(StopMatcher, NothingAfterAMatch) {
  StopMatcher m({"\n"});
  EXPECT_TRUE(m.feed("a\nb").matched);
  EXPECT_EQ(m.feed("more").emit, "");
  EXPECT_EQ(m.flush(), "");
}

TEST(Utf8Assembler, HoldsBackAnIncompleteCharacter) {
  Utf8Assembler a;
  std::string out;
  const std::string euro = "\xE2\x82\xAC";
  a.append(euro.substr(0, 1), out);
  EXPECT_EQ(out, "");
  a.append(euro.substr(1, 1), out);
  EXPECT_EQ(out, "");
  a.append(euro.substr(2) + "x", out);
  EXPECT_EQ(out, euro + "x");
  EXPECT_EQ(a.pending(), 0u);
}

TEST(Utf8Assembler, InvalidBytesBecomeReplacementCharacters) {
  Utf8Assembler a;
  std::string out;
  a.append(
      "a\x80"
      "b\xC3(",
      out);
  EXPECT_TRUE(is_valid_utf8(out));
  EXPECT_EQ(out,
            "a\xEF\xBF\xBD"
            "b\xEF\xBF\xBD(");
  a.append("\xF0\x9F", out);
  a.flush(out);
  EXPECT_TRUE(is_valid_utf8(out));
}

TEST(Utf8Assembler, FourByteCharacterSplitAcrossFourPieces) {
  Utf8Assembler a;
  std::string out;
  const std::string emoji = "\xF0\x9F\x98\x80";
  for (char c : emoji)
    a.append(std::string(1, c), out);
  EXPECT_EQ(out, emoji);
}

}  // namespace
}  // namespace troupe::engine
