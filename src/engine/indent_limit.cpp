#include "engine/indent_limit.hpp"

#include <utility>

namespace troupe::engine {

IndentLimit::Result IndentLimit::feed(std::string_view text) {
  Result r;
  if (ended_)
    return r;
  if (n_indent_ <= 0) {
    r.emit.assign(text);
    return r;
  }
  for (char c : text) {
    if (at_line_start_) {
      if (c == ' ' || c == '\t') {
        held_ += c;
        continue;
      }
      // The line's first other character: its indentation is known.
      at_line_start_ = false;
      r.emit += held_;
      const bool too_little = static_cast<std::int64_t>(held_.size()) < n_indent_;
      held_.clear();
      if (too_little) {
        ended_ = true;
        r.ended = true;
        return r;
      }
    }
    r.emit += c;
    if (c == '\n')
      at_line_start_ = true;
  }
  return r;
}

std::string IndentLimit::flush() {
  at_line_start_ = false;
  return std::exchange(held_, {});
}

}  // namespace troupe::engine
