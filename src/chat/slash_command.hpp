#pragma once
// Parsing of one complete input of the chat prompt: either a message for the model or a slash
// command (`/help`, `/set temperature 0.7`, ...). Pure functions, no I/O.
//
// Thread-safety: stateless; safe from any thread.

#include <string>
#include <string_view>
#include <variant>

#include "util/result.hpp"

namespace troupe::chat {

// Text to send to the model as the next user turn.
struct UserMessage {
  std::string text;
};

struct HelpCommand {};
struct ClearCommand {};  // forget the conversation (the system prompt stays)
struct DropCommand {};   // forget the oldest exchange (for a conversation over the context)
struct ExitCommand {};
struct StatsCommand {};  // toggle printing TTFT and tokens/s after each answer

// `/system <text>`: replace the system prompt; empty text removes it.
struct SystemCommand {
  std::string text;
};

// `/set <name> <value>`: name is one of temperature, top_p, max_tokens, seed; value is
// unparsed (Conversation::set_parameter checks it).
struct SetCommand {
  std::string name;
  std::string value;
};

// `/model <name>`: use another model for the next requests.
struct ModelCommand {
  std::string name;
};

// `/save <file>`: write the conversation as JSON.
struct SaveCommand {
  std::string path;
};

// `/reasoning [show|hide|last]`: show or hide the model's reasoning as it streams (no
// argument: toggle), or print the last answer's reasoning.
struct ReasoningCommand {
  enum class Action { toggle, show, hide, last };
  Action action = Action::toggle;
};

// `/tool <result>`: the result of the first tool call still waiting for one; the text is
// sent as given (JSON or plain text), possibly several lines.
struct ToolCommand {
  std::string result;
};

using Input = std::variant<UserMessage, HelpCommand, ClearCommand, DropCommand, ExitCommand,
                           StatsCommand, SystemCommand, SetCommand, ModelCommand, SaveCommand,
                           ReasoningCommand, ToolCommand>;

// Parses one complete input (possibly several lines). Text that does not start with '/' is a
// UserMessage as typed; "//text" escapes a message starting with '/'. Errors
// (Errc::invalid_request) name the command and its expected form: unknown command, missing
// or extra arguments. Blank input is an error too (the caller normally skips it).
Result<Input> parse_input(std::string_view text);

// The text `/help` prints: one line per command.
std::string_view help_text() noexcept;

}  // namespace troupe::chat
