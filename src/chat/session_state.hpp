#pragma once
// SessionState and react(): what an interactive chat remembers between inputs and what each
// slash command does to it. No terminal or network here: react() returns what to print and
// whether to send a message or exit, and the interactive loop does the I/O.
//
// Thread-safety: plain values and a pure function (apart from /save writing its file); not
// synchronised.

#include <optional>
#include <string>
#include <vector>

#include "chat/conversation.hpp"
#include "chat/slash_command.hpp"

namespace troupe::chat {

struct SessionState {
  Conversation conversation;
  bool show_stats = false;     // print TTFT and tokens/s after each answer
  bool show_reasoning = true;  // write the model's reasoning as it streams (dimmed)
  std::string last_reasoning;  // the last answer's reasoning, for `/reasoning last`
};

struct Reaction {
  std::string say;                  // text to print (ends with '\n' when not empty)
  bool is_error = false;            // `say` reports a failure
  bool dim = false;                 // `say` is model text to print dimmed (reasoning)
  bool exit = false;                // leave the chat
  std::optional<std::string> send;  // a user message to send to the model
  bool resume = false;              // every tool call has its result: ask the model to go on
};

// What the chat says at start about the server's models: the model it will talk to (the one
// asked for, else the server's first; empty when the server lists none) and a warning when
// the one asked for is not in the list (it is asked for anyway: some servers serve any name).
struct ModelChoice {
  std::string model;
  std::string warning;  // empty: none
};
ModelChoice choose_model(const std::vector<std::string>& served, const std::string& requested);

// Applies one input to the state. A UserMessage is not added to the conversation here (the
// caller adds it when it sends it); a message while tool calls wait for results is refused.
// A tool result is added here.
Reaction react(SessionState& state, const Input& input);

}  // namespace troupe::chat
