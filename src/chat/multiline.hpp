#pragma once
// MultilineInput: joins the lines the prompt reads into complete inputs. A line starting with
// `"""` opens a block that runs until a line ending with `"""`; the block's lines (without the
// quotes) are one input, joined with '\n'. Any other line is an input by itself. Pasted text
// needs no block: bracketed paste delivers it as one line that contains newlines.
//
//   feed("hello")        -> "hello"
//   feed("\"\"\"")       -> nothing yet (block open)
//   feed("line one")     -> nothing yet
//   feed("two\"\"\"")    -> "line one\ntwo"
//
// Thread-safety: a plain value; not synchronised.

#include <optional>
#include <string>
#include <string_view>

namespace troupe::chat {

class MultilineInput {
 public:
  // Takes one line (without its newline). Returns the input it completes, if any.
  std::optional<std::string> feed(std::string_view line);

  // True while a `"""` block is open (the prompt shows a continuation marker).
  bool in_block() const noexcept { return in_block_; }

  // Drops an open block (Ctrl-C at the prompt).
  void reset() noexcept {
    in_block_ = false;
    buffer_.clear();
  }

 private:
  std::optional<std::string> close_with(std::string_view last);

  bool in_block_ = false;
  std::string buffer_;
};

}  // namespace troupe::chat
