#include "chat/answer_layout.hpp"

#include <gtest/gtest.h>

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

}  // namespace
}  // namespace troupe::chat
