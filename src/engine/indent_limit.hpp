#pragma once
// IndentLimit: llama-server's `n_indent` for code completion. An answer that fills in a block
// ends where a line (after its first) starts with fewer than `n_indent` spaces or tabs: the
// line's indentation is kept, the rest of it and everything after dropped. Text from a new
// line's start is held back until the line's first other character (a line break too) shows
// its indentation, so a stream never shows what is dropped.
//
// Pure; one owner (a SequenceActor).

#include <cstdint>
#include <string>
#include <string_view>

namespace troupe::engine {

class IndentLimit {
 public:
  explicit IndentLimit(std::int32_t n_indent) : n_indent_(n_indent) {}

  struct Result {
    std::string emit;    // text that can be sent now
    bool ended = false;  // a line was indented too little: nothing follows `emit`
  };

  // Appends `text`; after the end, nothing more is emitted.
  Result feed(std::string_view text);
  // End of generation: the indentation held back.
  std::string flush();

  bool ended() const noexcept { return ended_; }

 private:
  std::int32_t n_indent_;
  bool at_line_start_ = false;  // within a later line's indentation (held in held_)
  std::string held_;
  bool ended_ = false;
};

}  // namespace troupe::engine
