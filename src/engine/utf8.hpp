#pragma once
// Utf8Assembler: turns a stream of token pieces (arbitrary bytes: a byte-fallback token may be
// a third of a character) into valid UTF-8 text without ever splitting a character.
//
// Bytes that can still become a character are held back until the rest arrives; bytes that
// can never be valid (a stray continuation byte, a lead byte followed by the wrong byte) are
// replaced by U+FFFD so that every emitted string is valid UTF-8.
//
// Thread-safety: none; one owner (a SequenceActor).

#include <string>
#include <string_view>

namespace troupe::engine {

class Utf8Assembler {
 public:
  // Appends raw bytes and moves every complete character to `out` (appended).
  void append(std::string_view bytes, std::string& out);

  // End of input: whatever is held back is an incomplete character; emits U+FFFD for it.
  void flush(std::string& out);

  // Number of bytes held back (0..3).
  std::size_t pending() const noexcept { return pending_.size(); }

 private:
  std::string pending_;
};

// True when `s` is entirely complete, valid UTF-8 characters.
bool is_valid_utf8(std::string_view s) noexcept;

// True when `s` ends inside a character: its last bytes begin one that needs more.
bool ends_mid_character(std::string_view s) noexcept;

}  // namespace troupe::engine
