#pragma once
// TokenText: what a SequenceActor needs to know about a vocabulary (a token's bytes and
// whether it ends generation), behind an interface so the actor can be tested without a model.
//
// Thread-safety: implementations must allow concurrent calls of the const members from any
// thread (llama.cpp's vocabulary is read-only after loading).

#include <string>

#include "engine/task.hpp"

namespace troupe::engine {

class TokenText {
 public:
  virtual ~TokenText() = default;

  // Appends the token's piece: raw bytes, possibly part of a UTF-8 character. Control tokens
  // (end of generation, chat markers) append nothing.
  virtual void append_piece(Token token, std::string& out) const = 0;

  // Appends the token's text with control tokens written out (`<|im_end|>`, `[TOOL_CALLS]`):
  // what a template's preserved markup shows. By default, the piece.
  virtual void append_special(Token token, std::string& out) const { append_piece(token, out); }

  // True for the tokens that end generation (EOS, EOT, <|im_end|>, ...).
  virtual bool is_eog(Token token) const = 0;
};

}  // namespace troupe::engine
