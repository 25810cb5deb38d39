#include "engine/cache_reuse.hpp"

#include <gtest/gtest.h>

#include <numeric>

namespace troupe::engine {
namespace {

using Tokens = std::vector<Token>;

// `n` distinct tokens starting at `first`.
Tokens run(Token first, std::int32_t n) {
  Tokens t(static_cast<std::size_t>(n));
  std::iota(t.begin(), t.end(), first);
  return t;
}

Tokens cat(std::initializer_list<Tokens> parts) {
  Tokens out;
  for (const Tokens& p : parts)
    out.insert(out.end(), p.begin(), p.end());
  return out;
}

// An editor's context ring: its first chunk left, the next one moves down to its place, and
// so does the text after it that still matches (a chunk of its own after another dropped one).
TEST(PlanChunkReuse, ChunksAfterDroppedOnesMoveDown) {
  const Tokens p = run(1, 4), a = run(100, 10), b = run(200, 10), x = run(250, 2), s = run(300, 9);
  std::vector<ChunkMove> moves;
  const Tokens tail = run(400, 3);
  EXPECT_EQ(plan_chunk_reuse(cat({p, a, b, s}), cat({p, b, s, tail}), 4, 8, moves), 4 + 19);
  EXPECT_EQ(moves, (std::vector<ChunkMove>{{14, 4, 19}}));
  EXPECT_EQ(plan_chunk_reuse(cat({p, a, b, x, s}), cat({p, b, s, tail}), 4, 8, moves), 4 + 19);
  EXPECT_EQ(moves, (std::vector<ChunkMove>{{14, 4, 10}, {26, 14, 9}}));
}

TEST(PlanChunkReuse, RunsShorterThanTheMinimumStay) {
  const Tokens p = run(1, 4), a = run(100, 10), b = run(200, 7);
  std::vector<ChunkMove> moves;
  EXPECT_EQ(plan_chunk_reuse(cat({p, a, b}), cat({p, b, run(400, 5)}), 4, 8, moves), 4);
  EXPECT_TRUE(moves.empty());
  EXPECT_EQ(plan_chunk_reuse(cat({p, a, b}), cat({p, b, run(400, 5)}), 4, 7, moves), 11);
  EXPECT_EQ(moves, (std::vector<ChunkMove>{{14, 4, 7}}));
}

// Cells only move down and keep their order: chunks that swapped places, or text inserted
// before a chunk, leave the later ones to be computed (as on llama-server).
TEST(PlanChunkReuse, OnlyChunksInOrderAndNotPastAnInsertionAreKept) {
  const Tokens a = run(100, 10), b = run(200, 10);
  std::vector<ChunkMove> moves;
  EXPECT_EQ(plan_chunk_reuse(cat({a, b}), cat({b, a}), 0, 8, moves), 10);
  EXPECT_EQ(moves, (std::vector<ChunkMove>{{10, 0, 10}}));
  EXPECT_EQ(plan_chunk_reuse(cat({a, b}), cat({a, run(500, 3), b}), 10, 8, moves), 10);
  EXPECT_TRUE(moves.empty());
}

TEST(PlanChunkReuse, TheCommonPrefixAloneWhenNothingFollowsIt) {
  const Tokens a = run(100, 10);
  std::vector<ChunkMove> moves{{1, 0, 1}};
  EXPECT_EQ(plan_chunk_reuse(a, a, 10, 4, moves), 10);
  EXPECT_TRUE(moves.empty());
  EXPECT_EQ(plan_chunk_reuse(a, Tokens(a.begin(), a.begin() + 6), 6, 4, moves), 6);
  EXPECT_EQ(plan_chunk_reuse({}, a, 0, 4, moves), 0);
  EXPECT_TRUE(moves.empty());
}

// A run of one repeated token is taken as far as both go, from the first cached place.
TEST(PlanChunkReuse, RepeatedTokensMatchFromTheFirstPlace) {
  const Tokens cached = cat({Tokens(3, 9), Tokens(12, 7)});
  std::vector<ChunkMove> moves;
  EXPECT_EQ(plan_chunk_reuse(cached, Tokens(10, 7), 0, 8, moves), 10);
  EXPECT_EQ(moves, (std::vector<ChunkMove>{{3, 0, 10}}));
}

}  // namespace
}  // namespace troupe::engine
