#include "chat/answer_layout.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cctype>
#include <string>
#include <vector>

namespace troupe::chat {
namespace {

// The bytes of each piece, as the writer would write them (one string per event).
struct Shown {
  std::vector<std::string> writes;
  std::string all() const {
    std::string s;
    for (const auto& w : writes)
      s += w;
    return s;
  }
};

TEST(AnswerLayout, ContentAloneIsWrittenAsIs) {
  AnswerLayout layout(Style{true}, true);
  Shown shown;
  for (const char* piece : {"Hel", "lo", "\n"}) {
    std::string out;
    layout.content(piece, out);
    shown.writes.push_back(out);
  }
  std::string end;
  layout.finish(end);
  EXPECT_EQ(shown.writes, (std::vector<std::string>{"Hel", "lo", "\n"}));
  EXPECT_EQ(end, "");
  EXPECT_FALSE(layout.needs_newline());
}

TEST(AnswerLayout, ReasoningIsDimmedAndSetApartFromTheContent) {
  AnswerLayout layout(Style{true}, true);
  std::string a, b, c;
  layout.reasoning("Let me", a);
  layout.reasoning(" think.", b);
  layout.content("4", c);
  EXPECT_EQ(a, "\x1b[2mLet me\x1b[0m");
  EXPECT_EQ(b, "\x1b[2m think.\x1b[0m");
  EXPECT_EQ(c, "\n\n4");  // the reasoning's line ended, a blank line, then the answer
  EXPECT_TRUE(layout.needs_newline());
}

TEST(AnswerLayout, ReasoningEndingALineGetsOnlyTheBlankLine) {
  AnswerLayout layout(Style{false}, true);
  std::string all;
  layout.reasoning("thought\n", all);
  layout.content("answer", all);
  EXPECT_EQ(all, "thought\n\nanswer");  // plain text without a terminal
}

TEST(AnswerLayout, HiddenReasoningIsOneLineOnATerminalAndNothingElsewhere) {
  AnswerLayout terminal(Style{true}, false);
  std::string a, b, c;
  terminal.reasoning("secret", a);
  terminal.reasoning(" more", b);
  terminal.content("42", c);
  EXPECT_EQ(a, "\x1b[2m[reasoning hidden]\x1b[0m\n");
  EXPECT_EQ(b, "");
  EXPECT_EQ(c, "42");

  AnswerLayout pipe(Style{false}, false);
  std::string all;
  pipe.reasoning("secret", all);
  pipe.content("42", all);
  pipe.finish(all);
  EXPECT_EQ(all, "42");
}

TEST(AnswerLayout, ToolCallsAreLinesOfTheirOwnWithStreamedArguments) {
  AnswerLayout layout(Style{false}, true);
  std::vector<std::string> writes;
  auto add = [&](auto&& fn) {
    std::string out;
    fn(out);
    writes.push_back(out);
  };
  add([&](std::string& o) { layout.content("Checking.", o); });
  add([&](std::string& o) { layout.tool_call(0, "get_weather", "", o); });
  add([&](std::string& o) { layout.tool_call(0, "get_weather", R"({"city":)", o); });
  add([&](std::string& o) { layout.tool_call(0, "get_weather", R"("Paris"})", o); });
  add([&](std::string& o) { layout.tool_call(1, "get_time", "{}", o); });
  add([&](std::string& o) { layout.finish(o); });
  EXPECT_EQ(writes, (std::vector<std::string>{"Checking.", "\n→ get_weather(", R"({"city":)",
                                              R"("Paris"})", ")\n→ get_time({}", ")"}));
  EXPECT_TRUE(layout.needs_newline());
}

TEST(AnswerLayout, ToolCallNameIsBoldOnATerminalAndContentAfterACallStartsANewLine) {
  AnswerLayout layout(Style{true}, true);
  std::string all;
  layout.reasoning("plan", all);
  layout.tool_call(0, "f", "{}", all);
  layout.content("done", all);
  layout.finish(all);
  EXPECT_EQ(all, "\x1b[2mplan\x1b[0m\n\n\x1b[1m→ f\x1b[0m({})\ndone");
}

// What a terminal of `width` columns shows for `bytes` (cursor-left and erase-line sequences
// applied; one cell per code point), as lines without trailing blanks.
std::vector<std::string> screen(const std::string& bytes, int width) {
  std::vector<std::vector<std::string>> rows(1);
  std::size_t col = 0;
  for (std::size_t i = 0; i < bytes.size(); ++i) {
    if (bytes[i] == '\n') {
      rows.emplace_back();
      col = 0;
    } else if (bytes.compare(i, 2, "\x1b[") == 0) {
      std::size_t j = i + 2, n = 0;
      while (std::isdigit(static_cast<unsigned char>(bytes[j])))
        n = n * 10 + static_cast<std::size_t>(bytes[j++] - '0');
      if (bytes[j] == 'D')
        col -= std::min(col, n);
      else if (bytes[j] == 'K')
        rows.back().resize(std::min(rows.back().size(), col));
      i = j;
    } else if ((static_cast<unsigned char>(bytes[i]) & 0xC0) == 0x80) {
      rows.back()[col - 1] += bytes[i];  // a continuation byte joins its character's cell
    } else {
      EXPECT_LT(col, static_cast<std::size_t>(width)) << "the terminal would wrap by itself";
      if (rows.back().size() <= col)
        rows.back().resize(col + 1, " ");
      rows.back()[col++] = std::string(1, bytes[i]);
    }
  }
  std::vector<std::string> lines;
  for (const auto& r : rows) {
    std::string line;
    for (const auto& cell : r)
      line += cell;
    while (!line.empty() && line.back() == ' ')
      line.pop_back();
    lines.push_back(line);
  }
  return lines;
}

TEST(AnswerLayout, WithAWidthLinesBreakBetweenWordsWhileEveryPieceIsWrittenAtOnce) {
  AnswerLayout layout(Style{false}, true, 20);
  std::string all;
  // Pieces as tokens arrive: words split across pieces, spaces at either end.
  for (const char* piece : {"The quick", " brown fox", " jum", "ps over", " the lazy", " dog",
                            " and", " keeps", " running"}) {
    std::string out;
    layout.content(piece, out);
    EXPECT_FALSE(out.empty()) << piece;  // nothing held back
    all += out;
  }
  EXPECT_EQ(screen(all, 20), (std::vector<std::string>{"The quick brown fox", "jumps over the lazy",
                                                       "dog and keeps", "running"}));
}

TEST(AnswerLayout, AWordLongerThanALineBreaksAtTheMargin) {
  AnswerLayout layout(Style{false}, true, 10);
  std::string out;
  layout.content("ab abcdefghijklmnop", out);
  EXPECT_EQ(screen(out, 10), (std::vector<std::string>{"ab", "abcdefghi", "jklmnop"}));
}

TEST(AnswerLayout, NewlinesResetTheColumnAndMultibyteCharactersCountOnce) {
  AnswerLayout layout(Style{false}, true, 8);
  std::string out;
  layout.content("héllo\nwörld ünd x", out);
  EXPECT_EQ(screen(out, 8), (std::vector<std::string>{"héllo", "wörld", "ünd x"}));
}

TEST(AnswerLayout, WithoutAWidthTheTerminalBreaksLines) {
  AnswerLayout layout(Style{false}, true);
  std::string out;
  layout.content(std::string(300, 'a') + " b", out);
  EXPECT_EQ(out, std::string(300, 'a') + " b");
}

}  // namespace
}  // namespace troupe::chat
