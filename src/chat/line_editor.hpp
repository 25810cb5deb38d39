#pragma once
// LineEditor: GNU readline driven by the chat's event loop through readline's callback
// interface. The loop waits for stdin to be readable (an Asio stream_descriptor) and then calls
// read_available(); readline never blocks the thread and never installs signal handlers (the
// chat owns SIGINT and SIGWINCH through asio::signal_set and calls cancel_line() / resize()).
//
// The prompt is shown (terminal in readline's raw mode, keys read) only between show_prompt()
// and the line that completes it: a completed line hides the prompt, so nothing is read while
// an answer streams (typed keys wait in the terminal for the next prompt).
//
// Readline keeps its state in library globals and its line callback has no user-data
// argument, so at most one LineEditor may exist per process (constructing a second one
// aborts). Thread-safety: not thread-safe; create, use and destroy it on the event-loop thread.

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace troupe::chat {

// What the prompt produced: a line (may contain newlines, e.g. pasted text) or end of input
// (Ctrl-D on an empty line).
struct LineInput {
  bool eof = false;
  std::string text;
};

class LineEditor {
 public:
  // Reads from `in_fd`, echoes and draws on `out_fd` (both terminals). Enables bracketed paste
  // and completion of slash commands. `history` seeds the in-memory history (oldest first);
  // at most `max_history` entries are kept.
  LineEditor(int in_fd, int out_fd, const std::vector<std::string>& history,
             std::size_t max_history);
  ~LineEditor();  // hides the prompt and restores the terminal
  LineEditor(const LineEditor&) = delete;
  LineEditor& operator=(const LineEditor&) = delete;

  // Draws `prompt` and starts reading keys (prompt may hold SGR sequences wrapped in \001 and
  // \002). Replaces a prompt already shown, keeping nothing of its line.
  void show_prompt(const std::string& prompt);
  // Stops reading keys and gives the terminal back its normal mode. Idempotent.
  void hide_prompt();
  bool prompt_shown() const noexcept { return shown_; }

  // Feeds the bytes waiting on stdin to readline. Returns the completed line, if one was
  // completed (the prompt is then hidden and later bytes stay unread). Precondition:
  // prompt_shown() and stdin readable (read(2) would not block).
  std::optional<LineInput> read_available();

  // Ctrl-C at the prompt: echoes ^C, abandons the line being edited (and any search) and
  // shows `prompt` on a new line.
  void cancel_line(const std::string& prompt);

  // The terminal changed size (SIGWINCH).
  void resize();

  // Adds an entry to the in-memory history (Up arrow).
  void add_history(const std::string& entry);

  // Called by the readline callback (internal).
  void on_line(char* line);

 private:
  int in_fd_;
  bool shown_ = false;
  std::optional<LineInput> completed_;
};

}  // namespace troupe::chat
