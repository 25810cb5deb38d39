#include "chat/slash_command.hpp"

#include <array>

namespace troupe::chat {
namespace {

constexpr std::string_view kSpaces = " \t\r\n";

std::string_view trim(std::string_view s) {
  const auto first = s.find_first_not_of(kSpaces);
  if (first == std::string_view::npos)
    return {};
  const auto last = s.find_last_not_of(kSpaces);
  return s.substr(first, last - first + 1);
}

// Splits "name rest..." at the first run of blanks.
std::pair<std::string_view, std::string_view> split_word(std::string_view s) {
  const auto end = s.find_first_of(kSpaces);
  if (end == std::string_view::npos)
    return {s, {}};
  return {s.substr(0, end), trim(s.substr(end))};
}

Error usage(std::string_view form) {
  return Error(Errc::invalid_request, "usage: " + std::string(form));
}

Result<Input> no_argument(std::string_view name, std::string_view args, Input command) {
  if (!args.empty())
    return usage("/" + std::string(name) + " (takes no argument)");
  return command;
}

Result<Input> parse_set(std::string_view args) {
  static constexpr std::array<std::string_view, 4> kNames = {"temperature", "top_p", "max_tokens",
                                                             "seed"};
  auto [name, value] = split_word(args);
  bool known = false;
  for (auto n : kNames)
    known = known || n == name;
  if (!known || value.empty() || value.find_first_of(kSpaces) != std::string_view::npos) {
    return usage("/set temperature|top_p|max_tokens|seed <value>");
  }
  return Input{SetCommand{std::string(name), std::string(value)}};
}

Result<Input> parse_reasoning(std::string_view args) {
  using Action = ReasoningCommand::Action;
  if (args.empty())
    return Input{ReasoningCommand{Action::toggle}};
  if (args == "show")
    return Input{ReasoningCommand{Action::show}};
  if (args == "hide")
    return Input{ReasoningCommand{Action::hide}};
  if (args == "last")
    return Input{ReasoningCommand{Action::last}};
  return usage("/reasoning [show|hide|last]");
}

Result<Input> parse_command(std::string_view line) {
  auto [name, args] = split_word(line.substr(1));
  if (name == "help" || name == "?")
    return no_argument(name, args, HelpCommand{});
  if (name == "clear")
    return no_argument(name, args, ClearCommand{});
  if (name == "drop")
    return no_argument(name, args, DropCommand{});
  if (name == "exit" || name == "quit" || name == "bye")
    return no_argument(name, args, ExitCommand{});
  if (name == "stats")
    return no_argument(name, args, StatsCommand{});
  if (name == "system")
    return Input{SystemCommand{std::string(args)}};
  if (name == "set")
    return parse_set(args);
  if (name == "model") {
    if (args.empty() || args.find_first_of(kSpaces) != std::string_view::npos) {
      return usage("/model <name>");
    }
    return Input{ModelCommand{std::string(args)}};
  }
  if (name == "save") {
    if (args.empty())
      return usage("/save <file>");
    return Input{SaveCommand{std::string(args)}};
  }
  if (name == "reasoning")
    return parse_reasoning(args);
  if (name == "tool") {
    if (args.empty())
      return usage("/tool <result>");
    return Input{ToolCommand{std::string(args)}};
  }
  return Error(Errc::invalid_request,
               "unknown command /" + std::string(name) + " (type /help for the list)");
}

}  // namespace

Result<Input> parse_input(std::string_view text) {
  const auto trimmed = trim(text);
  if (trimmed.empty())
    return Error(Errc::invalid_request, "empty input");
  if (trimmed.starts_with("//"))
    return Input{UserMessage{std::string(text.substr(text.find('/') + 1))}};
  if (trimmed.front() == '/')
    return parse_command(trimmed);
  return Input{UserMessage{std::string(text)}};
}

std::string_view help_text() noexcept {
  return "Commands:\n"
         "  /help                      this list (also /?)\n"
         "  /clear                     forget the conversation (keeps the system prompt)\n"
         "  /drop                      forget the oldest exchange (when the context is full)\n"
         "  /system <text>             set the system prompt (empty: remove it)\n"
         "  /set temperature <v>       sampling: also top_p, max_tokens, seed\n"
         "  /model <name>              use another model\n"
         "  /save <file>               write the conversation as JSON\n"
         "  /stats                     toggle time-to-first-token and tokens/s after answers\n"
         "  /reasoning [show|hide]     show or hide the model's reasoning (alone: toggle)\n"
         "  /reasoning last            print the last answer's reasoning\n"
         "  /tool <result>             answer the model's next waiting tool call\n"
         "  /exit                      quit (also /quit, /bye, or Ctrl-D)\n"
         "Input:\n"
         "  \"\"\" on its own line starts and ends a multi-line message; pasted text is kept\n"
         "  as one message. Ctrl-C stops an answer, or clears the line at the prompt.\n"
         "  //text sends a message that starts with '/'.\n";
}

}  // namespace troupe::chat
