#include "engine/indent_limit.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace troupe::engine {
namespace {

// Feeds `pieces` and returns everything emitted, and whether the limit ended the text.
std::pair<std::string, bool> run(std::int32_t n_indent, std::vector<std::string> pieces) {
  IndentLimit limit(n_indent);
  std::string out;
  bool ended = false;
  for (const auto& p : pieces) {
    auto r = limit.feed(p);
    out += r.emit;
    ended = ended || r.ended;
  }
  if (!ended)
    out += limit.flush();
  return {out, ended};
}

TEST(IndentLimit, OffPassesEverything) {
  EXPECT_EQ(run(0, {"a\n", "b\n", "c"}), (std::pair<std::string, bool>{"a\nb\nc", false}));
}

TEST(IndentLimit, TheFirstLineIsNeverChecked) {
  EXPECT_EQ(run(4, {"x", " = 1"}), (std::pair<std::string, bool>{"x = 1", false}));
}

TEST(IndentLimit, ALessIndentedLineEndsAfterItsIndentation) {
  EXPECT_EQ(run(4, {"a\n    b\n  c\n    d"}), (std::pair<std::string, bool>{"a\n    b\n  ", true}));
  // Tabs count as one each; split across pieces.
  EXPECT_EQ(run(2, {"a\n\t", "\tb\n", "\t", "c"}),
            (std::pair<std::string, bool>{"a\n\t\tb\n\t", true}));
}

TEST(IndentLimit, AnEmptyLineIsIndentedLessToo) {
  // As llama-server: a line break right after the indentation is the line's first character.
  EXPECT_EQ(run(2, {"a\n  b\n\n  c"}), (std::pair<std::string, bool>{"a\n  b\n", true}));
}

TEST(IndentLimit, NothingAfterTheEnd) {
  IndentLimit limit(1);
  EXPECT_TRUE(limit.feed("a\nb").ended);
  EXPECT_TRUE(limit.ended());
  EXPECT_EQ(limit.feed(" more").emit, "");
}

}  // namespace
}  // namespace troupe::engine
