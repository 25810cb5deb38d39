#include <fmt/format.h>
#include <unistd.h>

#include <iostream>
#include <iterator>

#include "chat/interactive.hpp"
#include "chat/one_shot.hpp"
#include "chat/options.hpp"
#include "chat/terminal.hpp"

namespace troupe::chat {
namespace {

std::string read_all_stdin() {
  std::string text{std::istreambuf_iterator<char>(std::cin), std::istreambuf_iterator<char>()};
  while (!text.empty() && (text.back() == '\n' || text.back() == '\r'))
    text.pop_back();
  return text;
}

}  // namespace

int run_chat(const ChatOptions& options) {
  const bool interactive = !options.prompt && is_terminal(STDIN_FILENO);
  if (interactive) {
    InteractiveChat chat(options);
    return chat.run();
  }
  const std::string question = options.prompt ? *options.prompt : read_all_stdin();
  if (question.find_first_not_of(" \t\r\n") == std::string::npos) {
    fmt::print(stderr, "troupe chat: no question (give -p TEXT or pipe it on stdin)\n");
    return 2;
  }
  FdOutput out(STDOUT_FILENO);
  return ask_once(options, question, out, is_terminal(STDOUT_FILENO));
}

}  // namespace troupe::chat
