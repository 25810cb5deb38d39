#include "engine/host_cache.hpp"

#include <gtest/gtest.h>

#include <cstring>

namespace troupe::engine {
namespace {

// A state of `n` bytes, each `fill`, so that a test can tell entries apart.
HostCache::State state(std::size_t n, std::uint8_t fill) {
  HostCache::State s(n);
  std::memset(s.data(), fill, n);
  return s;
}

std::size_t entry_bytes(std::size_t state_bytes, std::size_t tokens) {
  return state_bytes + tokens * sizeof(Token);
}

TEST(HostCache, AStateOwnsItsMemoryAndMoves) {
  HostCache::State a = state(1 << 20, 7);
  ASSERT_NE(a.data(), nullptr);
  EXPECT_EQ(a.size(), 1u << 20);
  EXPECT_EQ(a.data()[(1 << 20) - 1], 7);
  const std::uint8_t* p = a.data();
  HostCache::State b(std::move(a));
  EXPECT_EQ(b.data(), p);
  EXPECT_EQ(a.data(), nullptr);  // NOLINT(bugprone-use-after-move): moved-from is empty
  EXPECT_EQ(a.size(), 0u);
  HostCache::State c = state(64, 1);
  c = std::move(b);  // c's own 64 bytes are given back
  EXPECT_EQ(c.data(), p);
  EXPECT_EQ(c.size(), 1u << 20);
  EXPECT_EQ(HostCache::State(0).data(), nullptr);
}

TEST(HostCache, AllocatedStatesAreUsableWithEitherPages) {
  HostCache c(64 << 20);
  for (int i = 0; i < 3; ++i) {  // huge pages, then 4 KiB ones, then the cheaper
    HostCache::State s = c.allocate(2 << 20);
    ASSERT_EQ(s.size(), 2u << 20);
    std::memset(s.data(), i, s.size());
    EXPECT_EQ(s.data()[s.size() - 1], i);
  }
  EXPECT_EQ(c.allocate(0).data(), nullptr);
}

TEST(PageChoice, MeasuresBothKindsThenTakesTheCheaperAndProbesTheOther) {
  PageChoice p;
  constexpr std::size_t kMiB = std::size_t{1} << 20;
  EXPECT_TRUE(p.next_huge());  // huge pages are measured first
  p.record(true, 10 * kMiB, 21'000.0);
  EXPECT_FALSE(p.next_huge());  // then 4 KiB pages
  p.record(false, 10 * kMiB, 7'000.0);
  EXPECT_NEAR(p.ns_per_byte(true), 21'000.0 * 1000 / (10 * kMiB), 1e-9);
  // 4 KiB pages were cheaper: taken, except every kProbe-th allocation, which tries huge ones.
  std::uint32_t huge = 0;
  for (std::uint32_t i = 0; i < 3 * PageChoice::kProbe; ++i)
    huge += p.next_huge() ? 1 : 0;
  EXPECT_EQ(huge, 3u);
  // Huge pages turn cheaper (another host's behaviour, or the memory now backed): a few
  // probes' worth of samples move the average past the other.
  for (int i = 0; i < 8; ++i)
    p.record(true, 10 * kMiB, 2'000.0);
  EXPECT_LT(p.ns_per_byte(true), p.ns_per_byte(false));
  huge = 0;
  for (std::uint32_t i = 0; i < PageChoice::kProbe; ++i)
    huge += p.next_huge() ? 1 : 0;
  EXPECT_EQ(huge, PageChoice::kProbe - 1);
}

TEST(PageChoice, SmallOrBadSamplesAreNotMeasured) {
  PageChoice p;
  p.record(true, 4096, 50.0);  // a few syscalls' cost, not the pages'
  p.record(true, 10 << 20, -1.0);
  EXPECT_EQ(p.ns_per_byte(true), 0.0);
  EXPECT_TRUE(p.next_huge());
}

TEST(HostCache, OffStoresNothing) {
  HostCache c;
  EXPECT_FALSE(c.enabled());
  EXPECT_FALSE(c.store({1, 2, 3}, state(8, 1)));
  EXPECT_EQ(c.size(), 0u);
  EXPECT_FALSE(c.find(std::vector<Token>{1, 2, 3}));
}

TEST(HostCache, FindsTheLongestSharedPrefix) {
  HostCache c(1 << 20);
  ASSERT_TRUE(c.store({1, 2, 3, 4}, state(8, 1)));
  ASSERT_TRUE(c.store({1, 2, 7, 8, 9}, state(8, 2)));
  ASSERT_TRUE(c.store({5, 6}, state(8, 3)));
  const std::vector<Token> prompt = {1, 2, 7, 8, 1};
  const auto m = c.find(prompt);
  ASSERT_TRUE(m);
  EXPECT_EQ(m->length, 4);
  EXPECT_EQ(c.at(m->index).state.data()[0], 2);
  EXPECT_FALSE(c.find(std::vector<Token>{9, 1, 2}));  // nothing begins with 9
  // A prompt shorter than the entry: all of it is shared.
  EXPECT_EQ(c.find(std::vector<Token>{5})->length, 1);
}

TEST(HostCache, AmongEqualMatchesTheMostRecentlyUsedWins) {
  HostCache c(1 << 20);
  ASSERT_TRUE(c.store({1, 2, 3}, state(8, 1)));
  ASSERT_TRUE(c.store({1, 2, 4}, state(8, 2)));
  const std::vector<Token> prompt = {1, 2, 9};
  EXPECT_EQ(c.at(c.find(prompt)->index).state.data()[0], 2);
  c.touch(0);
  EXPECT_EQ(c.at(c.find(prompt)->index).state.data()[0], 1);
}

TEST(HostCache, ALongerSequenceReplacesTheOnesItBegins) {
  HostCache c(1 << 20);
  ASSERT_TRUE(c.store({1, 2}, state(8, 1)));
  ASSERT_TRUE(c.store({1, 2, 3}, state(8, 2)));
  ASSERT_TRUE(c.store({1, 5}, state(8, 3)));  // shares a token, begins nothing: stays
  EXPECT_EQ(c.size(), 2u);
  EXPECT_TRUE(c.covers(std::vector<Token>{1, 2}));
  EXPECT_TRUE(c.covers(std::vector<Token>{1, 2, 3}));
  EXPECT_FALSE(c.covers(std::vector<Token>{1, 2, 3, 4}));
  EXPECT_EQ(c.bytes(), 2 * entry_bytes(8, 2) + sizeof(Token));
}

TEST(HostCache, TheLeastRecentlyUsedGoWhenTheBudgetIsFull) {
  const std::size_t one = entry_bytes(100, 2);
  HostCache c(3 * one);
  ASSERT_TRUE(c.store({1, 1}, state(100, 1)));
  ASSERT_TRUE(c.store({2, 2}, state(100, 2)));
  ASSERT_TRUE(c.store({3, 3}, state(100, 3)));
  EXPECT_EQ(c.bytes(), 3 * one);
  c.touch(c.find(std::vector<Token>{1, 1})->index);  // 1 used last: 2 is the oldest now
  ASSERT_TRUE(c.store({4, 4}, state(100, 4)));
  EXPECT_EQ(c.size(), 3u);
  EXPECT_TRUE(c.covers(std::vector<Token>{1, 1}));
  EXPECT_FALSE(c.covers(std::vector<Token>{2, 2}));
  EXPECT_TRUE(c.covers(std::vector<Token>{3, 3}));
  EXPECT_TRUE(c.covers(std::vector<Token>{4, 4}));
  // One entry larger than the whole budget is refused and drops nothing.
  EXPECT_FALSE(c.store({5, 5}, state(3 * one, 5)));
  EXPECT_EQ(c.size(), 3u);
  EXPECT_EQ(c.bytes(), 3 * one);
  c.erase(0);
  EXPECT_EQ(c.size(), 2u);
  EXPECT_EQ(c.bytes(), 2 * one);
}

// A state that cannot be cut at any token (a sliding window's, a recurrent one) serves only
// prefixes of at least its min_keep tokens: shorter matches are no match, and a longer entry
// replaces a shorter one only where it serves every prefix the shorter did.
TEST(HostCache, AnEntryServesOnlyPrefixesFromItsMinKeep) {
  HostCache c(1 << 20);
  ASSERT_TRUE(c.store({1, 2, 3, 4}, state(8, 1), {}, 4));
  ASSERT_TRUE(c.store({1, 2, 3, 4, 5, 6, 7, 8}, state(8, 2), {}, 6));
  EXPECT_EQ(c.size(), 2u);  // the longer one cannot serve 4 tokens
  EXPECT_FALSE(c.find(std::vector<Token>{1, 2, 3, 9}));
  const auto four = c.find(std::vector<Token>{1, 2, 3, 4, 9});
  ASSERT_TRUE(four);
  EXPECT_EQ(four->length, 4);
  EXPECT_EQ(c.at(four->index).state.data()[0], 1);
  const auto seven = c.find(std::vector<Token>{1, 2, 3, 4, 5, 6, 7, 9});
  ASSERT_TRUE(seven);
  EXPECT_EQ(seven->length, 7);
  EXPECT_EQ(c.at(seven->index).state.data()[0], 2);
  // 5 tokens shared with the longer, which serves 6 and more: the shorter serves 4.
  EXPECT_EQ(c.find(std::vector<Token>{1, 2, 3, 4, 5, 9})->length, 4);
  // Held already: only by an entry that serves every prefix the tokens' own state would.
  EXPECT_TRUE(c.covers(std::vector<Token>{1, 2, 3, 4, 5, 6, 7}, {}, 6));
  EXPECT_FALSE(c.covers(std::vector<Token>{1, 2, 3, 4, 5, 6, 7}, {}, 0));
  // A longer state serving every prefix of both replaces both.
  ASSERT_TRUE(c.store({1, 2, 3, 4, 5, 6, 7, 8, 9}, state(8, 3), {}, 0));
  EXPECT_EQ(c.size(), 1u);
}

// A sequence's context checkpoints, stored with its state, serve the prefixes their own states
// do (the prompts of its earlier turns): a prompt shares 7 tokens with an entry whose state
// serves 9 on and whose checkpoint at 6 tokens serves 5 and 6: served 6, with the checkpoint.
// The bytes count the checkpoints'; an entry that serves what another's state does but not
// what its checkpoints do leaves it.
TEST(HostCache, AnEntrysCheckpointsServeShorterPrefixes) {
  const auto checkpoint = [](std::int32_t n_tokens, std::int32_t min_keep, std::uint8_t fill) {
    return ContextCheckpoint{n_tokens, min_keep, std::vector<std::uint8_t>(16, fill)};
  };
  HostCache c(1 << 20);
  std::vector<ContextCheckpoint> cps;
  cps.push_back(checkpoint(3, 3, 1));
  cps.push_back(checkpoint(6, 5, 2));
  const std::vector<Token> tokens{1, 2, 3, 4, 5, 6, 7, 8, 9, 10};
  ASSERT_TRUE(c.store(tokens, state(8, 9), {}, 9, cps));
  EXPECT_EQ(c.bytes(), 8 + 10 * sizeof(Token) + 2 * (16 + sizeof(ContextCheckpoint)));
  const auto seven = c.find(std::vector<Token>{1, 2, 3, 4, 5, 6, 7, 0});
  ASSERT_TRUE(seven);
  EXPECT_EQ(seven->length, 6);
  EXPECT_EQ(seven->checkpoint, 1);
  const auto four = c.find(std::vector<Token>{1, 2, 3, 4, 0});
  ASSERT_TRUE(four);
  EXPECT_EQ(four->length, 3);
  EXPECT_EQ(four->checkpoint, 0);
  EXPECT_FALSE(c.find(std::vector<Token>{1, 2, 0}));  // the checkpoint at 3 serves 3 only
  const auto whole = c.find(std::vector<Token>{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11});
  ASSERT_TRUE(whole);
  EXPECT_EQ(whole->length, 10);
  EXPECT_EQ(whole->checkpoint, -1);
  // Held: the tokens with the entry's checkpoints, or fewer; not with one it lacks.
  EXPECT_TRUE(c.covers(tokens, {}, 9, cps));
  EXPECT_TRUE(c.covers(std::vector<Token>{1, 2, 3, 4, 5, 6}, {}, 5));
  EXPECT_FALSE(c.covers(tokens, {}, 9, std::vector<ContextCheckpoint>{checkpoint(4, 4, 3)}));
  // A longer entry serving from 11 on, with no checkpoints, leaves the first (it serves 3-6
  // and 9-10 alone); with the first's checkpoints it replaces it.
  const std::vector<Token> longer{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12};
  ASSERT_TRUE(c.store(longer, state(8, 3), {}, 11));
  EXPECT_EQ(c.size(), 2u);
  EXPECT_EQ(c.find(std::vector<Token>{1, 2, 3, 4, 5, 6, 7, 0})->checkpoint, 1);
  cps.push_back(checkpoint(10, 9, 4));
  ASSERT_TRUE(c.store(longer, state(8, 4), {}, 11, cps));
  EXPECT_EQ(c.size(), 1u);
  const auto nine = c.find(std::vector<Token>{1, 2, 3, 4, 5, 6, 7, 8, 9, 0});
  ASSERT_TRUE(nine);
  EXPECT_EQ(nine->length, 9);
  EXPECT_EQ(c.at(nine->index).checkpoints[static_cast<std::size_t>(nine->checkpoint)].state[0], 4);
}

}  // namespace
}  // namespace troupe::engine
