#pragma once
// AnswerLayout: the bytes that show each piece of a streamed answer on the terminal, so that
// reasoning, content and tool calls can be told apart:
//
//   reasoning   dimmed, as it streams; hidden: one dimmed "[reasoning hidden]" line on a
//               terminal (Style enabled), nothing otherwise
//   content     as is; after shown reasoning, from a new line after a blank one
//   tool call   a line of its own: "→ name(" in bold, the arguments as they stream, ")"
//
// With a width (a terminal's columns), lines break between words: every piece is still written
// the moment it arrives, and when a word reaches the right margin the part already shown is
// erased (cursor back, erase to end of line) and written again at the start of the next line.
// A word longer than a line breaks at the margin. Columns are counted in code points (wide CJK
// characters count one).
//
// No I/O: each call appends to a caller's buffer, which the caller writes in one go.
//
// Thread-safety: a plain value; not synchronised.

#include <cstddef>
#include <string>
#include <string_view>

#include "chat/terminal.hpp"

namespace troupe::chat {

class AnswerLayout {
 public:
  // `width`: the terminal's columns; 0 leaves line breaking to the terminal.
  AnswerLayout(Style style, bool show_reasoning, int width = 0)
      : style_(style), show_reasoning_(show_reasoning), width_(width) {}

  // Appends the bytes that show a piece of reasoning, content, or tool call `index` (`name`:
  // the call's function name, `arguments`: this piece's fragment) to `out`.
  void reasoning(std::string_view text, std::string& out);
  void content(std::string_view text, std::string& out);
  void tool_call(std::size_t index, std::string_view name, std::string_view arguments,
                 std::string& out);

  // Appends what closes the answer (an open tool call's parenthesis).
  void finish(std::string& out);

  // Something was shown and the last line is not ended.
  bool needs_newline() const noexcept { return shown_ && last_ != '\n'; }

 private:
  enum class Section { none, reasoning, hidden, content, call };

  void enter(Section next, std::string& out);
  void leave(Section next, std::string& out);
  void text(std::string_view bytes, std::string& out);
  void wrapped(std::string_view code_point, std::string& out);
  void new_line(std::string& out);

  Style style_;
  bool show_reasoning_;
  Section section_ = Section::none;
  std::size_t call_ = 0;  // the open call's index (section_ == call)
  bool shown_ = false;    // visible text was written
  char last_ = '\n';      // the last visible character written
  int width_ = 0;         // columns; 0: no breaking of our own
  int column_ = 0;        // columns used on the current line
  std::string word_;      // the current word's bytes on this line (since the last space)
  int word_columns_ = 0;
};

}  // namespace troupe::chat
