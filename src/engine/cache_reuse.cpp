#include "engine/cache_reuse.hpp"

#include <algorithm>

namespace troupe::engine {

std::int32_t plan_chunk_reuse(std::span<const Token> cached, std::span<const Token> prompt,
                              std::int32_t head, std::int32_t min_chunk,
                              std::vector<ChunkMove>& moves) {
  moves.clear();
  const auto n_cached = static_cast<std::int32_t>(cached.size());
  const auto n_prompt = static_cast<std::int32_t>(prompt.size());
  std::int32_t c = std::min({head, n_cached, n_prompt});  // next cached token to look at
  std::int32_t p = c;                                     // next prompt token to fill
  while (c < n_cached && p < n_prompt) {
    std::int32_t n = 0;
    while (c + n < n_cached && p + n < n_prompt && cached[c + n] == prompt[p + n])
      ++n;
    if (n >= min_chunk) {
      moves.push_back({c, p, n});
      c += n;
      p += n;
    } else {
      ++c;
    }
  }
  return p;
}

}  // namespace troupe::engine
