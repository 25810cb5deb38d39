// Mailbox: FIFO, bound, node reuse, exception safety, destruction of leftovers.

#include "actor/mailbox.hpp"

#include <gtest/gtest.h>

#include <memory>
#include <stdexcept>
#include <thread>
#include <vector>

namespace troupe::actor {
namespace {

TEST(Mailbox, FifoAndEmpty) {
  Mailbox<int> mb;
  EXPECT_TRUE(mb.empty());
  EXPECT_FALSE(mb.has_pending());
  for (int i = 0; i < 10; ++i)
    ASSERT_TRUE(mb.push(i));
  EXPECT_FALSE(mb.empty());
  std::vector<int> got;
  while (mb.try_consume([&](int& v) { got.push_back(v); })) {
  }
  EXPECT_EQ(got, (std::vector<int>{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}));
  EXPECT_TRUE(mb.empty());
  EXPECT_FALSE(mb.has_pending());
}

TEST(Mailbox, BoundRejectsAndFreesOnConsume) {
  Mailbox<int> mb(2);
  EXPECT_TRUE(mb.push(1));
  EXPECT_TRUE(mb.push(2));
  EXPECT_FALSE(mb.push(3));
  EXPECT_TRUE(mb.try_consume([](int&) {}));
  EXPECT_TRUE(mb.push(4));
}

TEST(Mailbox, ThrowingConsumerStillReleasesTheMessage) {
  auto token = std::make_shared<int>(0);
  Mailbox<std::shared_ptr<int>> mb;
  mb.push(token);
  EXPECT_EQ(token.use_count(), 2);
  EXPECT_THROW(mb.try_consume([](std::shared_ptr<int>&) { throw std::runtime_error("x"); }),
               std::runtime_error);
  EXPECT_EQ(token.use_count(), 1);
  EXPECT_TRUE(mb.empty());
}

TEST(Mailbox, DestructorDestroysLeftovers) {
  auto token = std::make_shared<int>(0);
  {
    Mailbox<std::shared_ptr<int>> mb;
    for (int i = 0; i < 5; ++i)
      mb.push(token);
    mb.try_consume([](std::shared_ptr<int>&) {});
    EXPECT_EQ(token.use_count(), 5);
  }
  EXPECT_EQ(token.use_count(), 1);
}

TEST(Mailbox, ConcurrentProducersLoseNothing) {
  Mailbox<std::uint64_t> mb;
  constexpr int kProducers = 4;
  constexpr std::uint64_t kEach = 50'000;
  std::vector<std::thread> threads;
  for (int p = 0; p < kProducers; ++p) {
    threads.emplace_back([&, p] {
      for (std::uint64_t i = 0; i < kEach; ++i)
        mb.push(p * kEach + i);
    });
  }
  std::uint64_t count = 0, sum = 0;
  const std::uint64_t total = kProducers * kEach;
  while (count < total) {
    if (!mb.try_consume([&](std::uint64_t& v) {
          sum += v;
          ++count;
        })) {
      std::this_thread::yield();
    }
  }
  for (auto& t : threads)
    t.join();
  EXPECT_EQ(sum, total * (total - 1) / 2);
  EXPECT_TRUE(mb.empty());
}

}  // namespace
}  // namespace troupe::actor
