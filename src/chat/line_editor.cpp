#include "chat/line_editor.hpp"

#include <sys/ioctl.h>
// readline.h needs stdio.h first.
#include <cstdio>
// clang-format off
#include <readline/readline.h>
#include <readline/history.h>
// clang-format on

#include <array>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <utility>

namespace troupe::chat {
namespace {

// Readline's line callback carries no user data, so the one live editor is reached through
// this pointer. Set and cleared only by LineEditor's constructor and destructor, on the
// event-loop thread; readline calls the callback only from read_available() on that thread.
LineEditor* active_editor = nullptr;

void line_callback(char* line) {
  if (active_editor) {
    active_editor->on_line(line);
  } else {
    std::free(line);
  }
}

constexpr std::array<const char*, 11> kCommands = {"/help",   "/clear", "/system ", "/set ",
                                                   "/model ", "/save ", "/stats",   "/reasoning ",
                                                   "/tool ",  "/exit",  nullptr};

char* command_generator(const char* text, int state) {
  static_assert(kCommands.back() == nullptr);
  // Readline's generator protocol: `state` 0 starts a new enumeration.
  thread_local std::size_t next = 0;
  if (state == 0)
    next = 0;
  const std::size_t len = std::strlen(text);
  while (kCommands[next] != nullptr) {
    const char* candidate = kCommands[next++];
    if (std::strncmp(candidate, text, len) == 0)
      return ::strdup(candidate);
  }
  return nullptr;
}

// Completes slash commands at the start of the line; nothing else (no file names).
char** complete(const char* text, int start, int /*end*/) {
  rl_attempted_completion_over = 1;
  if (start != 0 || text[0] != '/')
    return nullptr;
  rl_completion_append_character = '\0';
  return rl_completion_matches(text, command_generator);
}

std::size_t bytes_waiting(int fd) {
  int n = 0;
  if (::ioctl(fd, FIONREAD, &n) != 0 || n < 0)
    return 0;
  return static_cast<std::size_t>(n);
}

}  // namespace

LineEditor::LineEditor(int in_fd, int out_fd, const std::vector<std::string>& history,
                       std::size_t max_history)
    : in_fd_(in_fd) {
  if (active_editor)
    std::abort();  // readline's state is process-wide: one editor at a time
  active_editor = this;
  rl_readline_name = "troupe";
  rl_instream = ::fdopen(::dup(in_fd), "r");
  rl_outstream = ::fdopen(::dup(out_fd), "w");
  rl_catch_signals = 0;
  rl_catch_sigwinch = 0;
  rl_attempted_completion_function = complete;
  rl_variable_bind("enable-bracketed-paste", "on");
  using_history();
  stifle_history(static_cast<int>(max_history));
  for (const auto& entry : history)
    ::add_history(entry.c_str());
}

LineEditor::~LineEditor() {
  hide_prompt();
  clear_history();
  if (rl_instream)
    std::fclose(rl_instream);
  if (rl_outstream)
    std::fclose(rl_outstream);
  rl_instream = nullptr;
  rl_outstream = nullptr;
  active_editor = nullptr;
}

void LineEditor::show_prompt(const std::string& prompt) {
  rl_callback_handler_install(prompt.c_str(), line_callback);
  shown_ = true;
}

void LineEditor::hide_prompt() {
  if (!shown_)
    return;
  rl_callback_handler_remove();
  shown_ = false;
}

std::optional<LineInput> LineEditor::read_available() {
  completed_.reset();
  do {
    rl_callback_read_char();
  } while (!completed_ && shown_ && bytes_waiting(in_fd_) > 0);
  return std::exchange(completed_, std::nullopt);
}

void LineEditor::on_line(char* line) {
  completed_ = line ? LineInput{false, line} : LineInput{true, {}};
  std::free(line);
  // Removing the handler from inside it is allowed; readline then neither redraws the prompt
  // nor reads further until show_prompt().
  rl_callback_handler_remove();
  shown_ = false;
}

void LineEditor::cancel_line(const std::string& prompt) {
  rl_echo_signal_char(SIGINT);
  rl_free_line_state();
  rl_callback_sigcleanup();
  rl_replace_line("", 0);
  rl_crlf();
  hide_prompt();
  show_prompt(prompt);
}

void LineEditor::resize() {
  rl_resize_terminal();
}

void LineEditor::add_history(const std::string& entry) {
  ::add_history(entry.c_str());
}

}  // namespace troupe::chat
