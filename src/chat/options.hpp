#pragma once
// ChatOptions: everything `troupe chat` is started with (see cli/cmd_chat.cpp for the flags).
//
// Thread-safety: a plain value.

#include <boost/json/array.hpp>
#include <cstddef>
#include <optional>
#include <string>

#include "chat/conversation.hpp"

namespace troupe::chat {

struct ChatOptions {
  std::string url = "http://127.0.0.1:8080";
  std::string model;    // empty: the server's default model
  std::string api_key;  // empty: none (the CLI falls back to $TROUPE_API_KEY)
  std::string system;   // system prompt; empty: none
  Sampling sampling;
  std::optional<std::string> prompt;  // -p: ask this once and exit
  std::string history_path;           // empty: no persistent history
  std::size_t history_size = 1000;
  bool stats = false;  // start with /stats on
  // Write the model's reasoning (dimmed on a terminal). Unset: shown when the output is a
  // terminal, hidden when it is not (a pipe gets the answer only).
  std::optional<bool> show_reasoning;
  // An OpenAI tools array sent with every request (empty: none); checked by the caller
  // (client::load_tools_file).
  boost::json::array tools;
};

// Runs the chat: non-interactive when a prompt was given or stdin is not a terminal, else the
// interactive prompt. Returns the process exit code: 0 success, 1 a request failed (one line
// on stderr says why), 2 bad input (no question), 130 interrupted by SIGINT (non-interactive).
// Call from main's thread; it runs its own event loop until done.
int run_chat(const ChatOptions& options);

}  // namespace troupe::chat
