#pragma once
// StopMatcher: finds stop strings in generated text that arrives in arbitrary pieces, and
// decides which text is safe to emit: text that may turn out to be the start of a stop string
// is held back until it is known not to be, so no part of a stop string is ever emitted.
//
// Thread-safety: none; one owner (a SequenceActor).

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace troupe::engine {

class StopMatcher {
 public:
  // Empty strings in `stops` are ignored.
  explicit StopMatcher(std::vector<std::string> stops);

  struct Result {
    std::string emit;  // text that can be sent now (valid UTF-8 when the input was)
    std::optional<std::string> matched;  // the stop string found; nothing follows it
  };

  // Appends `text` and returns what may be emitted. After a match the matcher is finished:
  // the text after the stop string is discarded and later calls return nothing.
  Result feed(std::string_view text);

  // End of generation without a stop: returns the text held back.
  std::string flush();

  bool finished() const noexcept { return finished_; }
  std::size_t held() const noexcept { return pending_.size(); }

 private:
  // Length of the longest suffix of pending_ that is a proper prefix of some stop string.
  std::size_t held_suffix() const;

  std::vector<std::string> stops_;
  std::string pending_;
  bool finished_ = false;
};

}  // namespace troupe::engine
