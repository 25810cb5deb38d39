#include "chat/answer_layout.hpp"

namespace troupe::chat {

void AnswerLayout::text(std::string_view bytes, std::string& out) {
  if (bytes.empty())
    return;
  out += bytes;
  shown_ = true;
  last_ = bytes.back();
}

void AnswerLayout::new_line(std::string& out) {
  if (needs_newline())
    text("\n", out);
}

// Closes the current section before `next` starts.
void AnswerLayout::leave(Section next, std::string& out) {
  switch (section_) {
    case Section::call:
      text(")", out);
      new_line(out);
      break;
    case Section::reasoning:
      if (shown_ && next != Section::none) {
        new_line(out);
        text("\n", out);  // a blank line between the reasoning and what follows
      }
      break;
    case Section::content:
      if (next == Section::call || next == Section::reasoning || next == Section::hidden)
        new_line(out);
      break;
    case Section::hidden:
    case Section::none:
      break;
  }
}

void AnswerLayout::enter(Section next, std::string& out) {
  if (section_ == next)
    return;
  leave(next, out);
  section_ = next;
  if (next == Section::hidden && style_.enabled) {
    new_line(out);
    out += style_.dim();
    text("[reasoning hidden]", out);
    out += style_.reset();
    text("\n", out);
  }
}

void AnswerLayout::reasoning(std::string_view piece, std::string& out) {
  if (piece.empty())
    return;
  enter(show_reasoning_ ? Section::reasoning : Section::hidden, out);
  if (!show_reasoning_)
    return;
  out += style_.dim();
  text(piece, out);
  out += style_.reset();
}

void AnswerLayout::content(std::string_view piece, std::string& out) {
  if (piece.empty())
    return;
  enter(Section::content, out);
  text(piece, out);
}

void AnswerLayout::tool_call(std::size_t index, std::string_view name, std::string_view arguments,
                             std::string& out) {
  if (section_ != Section::call || call_ != index) {
    leave(Section::call, out);
    section_ = Section::call;
    call_ = index;
    new_line(out);
    out += style_.bold();
    text("→ ", out);
    text(name, out);
    out += style_.reset();
    text("(", out);
  }
  text(arguments, out);
}

void AnswerLayout::finish(std::string& out) {
  if (section_ == Section::call)
    text(")", out);
  section_ = Section::none;
}

}  // namespace troupe::chat
