#include "chat/slash_command.hpp"

#include <gtest/gtest.h>

namespace troupe::chat {
namespace {

template <class T>
T parsed_as(std::string_view text) {
  auto r = parse_input(text);
  EXPECT_TRUE(r.ok()) << text;
  if (!r.ok())
    return T{};
  EXPECT_TRUE(std::holds_alternative<T>(r.value())) << text;
  return std::holds_alternative<T>(r.value()) ? std::get<T>(r.value()) : T{};
}

std::string error_of(std::string_view text) {
  auto r = parse_input(text);
  EXPECT_FALSE(r.ok()) << text;
  return r.ok() ? std::string() : r.error().message;
}

TEST(SlashCommand, PlainTextIsAMessageKeptAsTyped) {
  EXPECT_EQ(parsed_as<UserMessage>("hello there ").text, "hello there ");
  EXPECT_EQ(parsed_as<UserMessage>("line one\nline two").text, "line one\nline two");
  EXPECT_EQ(parsed_as<UserMessage>("what is a/b?").text, "what is a/b?");
}

TEST(SlashCommand, DoubleSlashEscapesAMessageStartingWithSlash) {
  EXPECT_EQ(parsed_as<UserMessage>("//etc/passwd is a file").text, "/etc/passwd is a file");
}

TEST(SlashCommand, CommandsWithoutArguments) {
  parsed_as<HelpCommand>("/help");
  parsed_as<HelpCommand>("  /help  ");
  parsed_as<ClearCommand>("/clear");
  parsed_as<ExitCommand>("/exit");
  parsed_as<ExitCommand>("/quit");
  parsed_as<ExitCommand>("/bye");
  parsed_as<DropCommand>("/drop");  // ollama's
  parsed_as<HelpCommand>("/?");
  parsed_as<StatsCommand>("/stats");
  EXPECT_NE(error_of("/clear now").find("takes no argument"), std::string::npos);
}

TEST(SlashCommand, SystemTakesTheRestOfTheLine) {
  EXPECT_EQ(parsed_as<SystemCommand>("/system You are   terse.").text, "You are   terse.");
  EXPECT_EQ(parsed_as<SystemCommand>("/system").text, "");
}

TEST(SlashCommand, SetNamesAKnownParameterAndOneValue) {
  auto set = parsed_as<SetCommand>("/set temperature 0.7");
  EXPECT_EQ(set.name, "temperature");
  EXPECT_EQ(set.value, "0.7");
  EXPECT_EQ(parsed_as<SetCommand>("/set top_p 0.9").name, "top_p");
  EXPECT_EQ(parsed_as<SetCommand>("/set max_tokens 64").name, "max_tokens");
  EXPECT_EQ(parsed_as<SetCommand>("/set   seed   42").value, "42");
  const std::string form = "usage: /set temperature|top_p|max_tokens|seed <value>";
  EXPECT_EQ(error_of("/set"), form);
  EXPECT_EQ(error_of("/set temperature"), form);
  EXPECT_EQ(error_of("/set warmth 1"), form);
  EXPECT_EQ(error_of("/set seed 1 2"), form);
}

TEST(SlashCommand, ModelAndSaveNeedAnArgument) {
  EXPECT_EQ(parsed_as<ModelCommand>("/model tiny-chat").name, "tiny-chat");
  EXPECT_EQ(error_of("/model"), "usage: /model <name>");
  EXPECT_EQ(error_of("/model a b"), "usage: /model <name>");
  EXPECT_EQ(parsed_as<SaveCommand>("/save /tmp/my chat.json").path, "/tmp/my chat.json");
  EXPECT_EQ(error_of("/save"), "usage: /save <file>");
}

TEST(SlashCommand, ReasoningShowsHidesTogglesOrPrintsTheLast) {
  using Action = ReasoningCommand::Action;
  EXPECT_EQ(parsed_as<ReasoningCommand>("/reasoning").action, Action::toggle);
  EXPECT_EQ(parsed_as<ReasoningCommand>("/reasoning show").action, Action::show);
  EXPECT_EQ(parsed_as<ReasoningCommand>("/reasoning  hide ").action, Action::hide);
  EXPECT_EQ(parsed_as<ReasoningCommand>("/reasoning last").action, Action::last);
  EXPECT_EQ(error_of("/reasoning maybe"), "usage: /reasoning [show|hide|last]");
}

TEST(SlashCommand, ToolTakesTheResultAsTypedAcrossLines) {
  EXPECT_EQ(parsed_as<ToolCommand>(R"(/tool {"temp": 18})").result, R"({"temp": 18})");
  EXPECT_EQ(parsed_as<ToolCommand>("/tool line one\nline  two").result, "line one\nline  two");
  EXPECT_EQ(error_of("/tool"), "usage: /tool <result>");
  EXPECT_EQ(error_of("/tool   "), "usage: /tool <result>");
}

TEST(SlashCommand, UnknownCommandAndBlankInputAreErrors) {
  EXPECT_EQ(error_of("/frobnicate 3"), "unknown command /frobnicate (type /help for the list)");
  EXPECT_EQ(parse_input("   ").error().code, Errc::invalid_request);
  EXPECT_FALSE(parse_input("").ok());
}

TEST(SlashCommand, HelpListsEveryCommand) {
  for (const char* name : {"/help", "/clear", "/drop", "/system", "/set", "/model", "/save",
                           "/stats", "/reasoning", "/tool", "/exit"}) {
    EXPECT_NE(help_text().find(name), std::string_view::npos) << name;
  }
}

}  // namespace
}  // namespace troupe::chat
