#include "chat/answer_layout.hpp"

#include <fmt/format.h>

namespace troupe::chat {

void AnswerLayout::text(std::string_view bytes, std::string& out) {
  if (bytes.empty())
    return;
  shown_ = true;
  last_ = bytes.back();
  if (width_ <= 1) {
    out += bytes;
    return;
  }
  // One code point at a time: a lead byte and its continuation bytes.
  std::size_t start = 0;
  for (std::size_t i = 1; i <= bytes.size(); ++i) {
    if (i == bytes.size() || (static_cast<unsigned char>(bytes[i]) & 0xC0) != 0x80) {
      wrapped(bytes.substr(start, i - start), out);
      start = i;
    }
  }
}

// Writes one code point, breaking the line before the last column (so the cursor never sits
// in the terminal's pending-wrap state and moving back over a word is exact).
void AnswerLayout::wrapped(std::string_view cp, std::string& out) {
  const int usable = width_ - 1;
  if (cp == "\n" || cp == "\r") {
    out += cp;
    column_ = 0;
    word_.clear();
    word_columns_ = 0;
    return;
  }
  if (cp == " " || cp == "\t") {
    word_.clear();
    word_columns_ = 0;
    const int next = cp == "\t" ? (column_ / 8 + 1) * 8 : column_ + 1;
    if (next > usable) {  // the space ends the line
      out += '\n';
      column_ = 0;
      return;
    }
    out += cp;
    column_ = next;
    return;
  }
  if (column_ + 1 > usable) {
    if (word_columns_ > 0 && word_columns_ < column_) {
      // Move the word begun on this line to the next one.
      fmt::format_to(std::back_inserter(out), "\x1b[{}D\x1b[K\n", word_columns_);
      out += word_;
      column_ = word_columns_;
    } else {
      out += '\n';  // a word as long as the line: break it
      column_ = 0;
      word_.clear();
      word_columns_ = 0;
    }
  }
  out += cp;
  ++column_;
  word_ += cp;
  ++word_columns_;
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
