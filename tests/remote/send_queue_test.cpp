#include "remote/detail/send_queue.hpp"

#include <gtest/gtest.h>

#include <thread>
#include <vector>

#include "remote/wire.hpp"

namespace troupe::remote {
namespace {

FrameHeader tell_to(std::uint64_t target, std::uint64_t seq) {
  return FrameHeader{FrameKind::tell, 0, target, seq};
}

TEST(SendQueue, SmallPayloadsAreInlineAndBigOnesAreSeparate) {
  SendQueue q(4);
  std::vector<std::byte> small(10, std::byte{1}), big(1000, std::byte{2});
  ASSERT_TRUE(q.push(tell_to(1, 0), small));
  ASSERT_TRUE(q.push(tell_to(1, 1), std::vector<std::byte>(big)));
  auto* a = q.peek(0);
  auto* b = q.peek(1);
  ASSERT_TRUE(a && b);
  EXPECT_EQ(q.peek(2), nullptr);
  EXPECT_EQ(a->inline_len, kHeaderSize + 10);
  EXPECT_TRUE(a->big.empty());
  EXPECT_EQ(b->inline_len, kHeaderSize);
  EXPECT_EQ(b->big.size(), 1000u);
  auto h = decode_header({a->data, kHeaderSize}, 100);
  ASSERT_TRUE(h.ok());
  EXPECT_EQ(h->length, 10u);
  q.release(2);
  EXPECT_FALSE(q.front_ready());
  EXPECT_EQ(q.released(), 2u);
}

TEST(SendQueue, FullQueueRefusesAndCounts) {
  SendQueue q(4);
  std::byte p[1]{};
  for (int i = 0; i < 4; ++i)
    EXPECT_TRUE(q.push(tell_to(1, i), p));
  EXPECT_FALSE(q.push(tell_to(1, 4), p));
  EXPECT_EQ(q.rejected(), 1u);
  q.release(1);
  EXPECT_TRUE(q.push(tell_to(1, 4), p));
}

TEST(SendQueue, ManyProducersKeepPerProducerOrderAndExactCounts) {
  constexpr int kProducers = 4, kEach = 5000;
  SendQueue q(256);
  std::vector<std::thread> threads;
  for (int t = 0; t < kProducers; ++t) {
    threads.emplace_back([&q, t] {
      for (int i = 0; i < kEach;) {
        std::byte p[8];
        WireWriter w(p);
        w.u64(static_cast<std::uint64_t>(i));
        if (q.push(tell_to(t, i), p))
          ++i;
        else
          std::this_thread::yield();
      }
    });
  }
  std::vector<std::uint64_t> next(kProducers, 0);
  int total = 0;
  while (total < kProducers * kEach) {
    std::size_t n = 0;
    while (auto* s = q.peek(n)) {
      auto h = decode_header({s->data, kHeaderSize}, 100);
      ASSERT_TRUE(h.ok());
      ASSERT_EQ(h->correlation, next[h->target]++);
      ++n;
    }
    q.release(n);
    total += static_cast<int>(n);
  }
  for (auto& th : threads)
    th.join();
  for (auto n : next)
    EXPECT_EQ(n, static_cast<std::uint64_t>(kEach));
}

}  // namespace
}  // namespace troupe::remote
