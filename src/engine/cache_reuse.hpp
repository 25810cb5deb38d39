#pragma once
// Chunk reuse (llama-server's --cache-reuse N and a request's `n_cache_reuse`): after the
// prefix a slot's cached tokens share with a new prompt, the runs of at least N tokens that
// they still share in order are kept, each moved down to its place in the prompt by shifting
// its cells' positions (llama_memory_seq_add), so that only the tokens between them are
// computed. An editor's fill-in-the-middle requests are the case it is for: their context
// chunks come and go at the front of the prompt while the rest stays.
//
// A shifted cell's keys are rotated to the new position (RoPE is additive in the position),
// so the reused cells equal those of a fresh computation up to float rounding. What the plan
// keeps matches llama-server's scan token for token. Pure; any thread.

#include <cstdint>
#include <span>
#include <vector>

#include "engine/task.hpp"

namespace troupe::engine {

// Cells [from, from + n) of the cache move to positions [to, to + n); to < from.
struct ChunkMove {
  std::int32_t from = 0;
  std::int32_t to = 0;
  std::int32_t n = 0;
  friend bool operator==(const ChunkMove&, const ChunkMove&) = default;
};

// The moves that make `cached` (a slot's tokens, the first `head` of them equal to the
// prompt's) serve `prompt` beyond `head`, in order, with chunks of at least `min_chunk`
// tokens (> 0), into `moves` (cleared first). Returns the prompt tokens then cached: `head`
// plus the moved chunks' tokens. Each move's cells go right after the previous one's; the
// cells between them, and those after the last, are the caller's to drop. `prompt` should
// leave out the tokens that must be computed anyway (its last one gives the first logits).
std::int32_t plan_chunk_reuse(std::span<const Token> cached, std::span<const Token> prompt,
                              std::int32_t head, std::int32_t min_chunk,
                              std::vector<ChunkMove>& moves);

}  // namespace troupe::engine
