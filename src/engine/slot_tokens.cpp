#include "engine/slot_tokens.hpp"

namespace troupe::engine {

std::optional<std::vector<Token>> unpack_slot_tokens(std::span<const Token> words) {
  constexpr Token kMarker = -1;  // LLAMA_TOKEN_NULL
  constexpr Token kVersion = 1;
  if (words.empty() || words[0] != kMarker)
    return std::vector<Token>(words.begin(), words.end());
  if (words.size() < kPackedSlotWords || words[1] != kVersion || words[2] < 0)
    return std::nullopt;
  const auto n = static_cast<std::size_t>(words[2]);
  // The tokens, then a media count of 0 and nothing after it.
  if (words.size() != n + kPackedSlotWords || words[3 + n] != 0)
    return std::nullopt;
  return std::vector<Token>(words.begin() + 3, words.begin() + 3 + static_cast<std::ptrdiff_t>(n));
}

}  // namespace troupe::engine
