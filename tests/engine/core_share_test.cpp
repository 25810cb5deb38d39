// CoreShare: the threads an engine decodes with while others of its process are busy.
#include "engine/core_share.hpp"

#include <gtest/gtest.h>

#include <optional>
#include <vector>

namespace troupe::engine {
namespace {

TEST(CoreShare, ThreadsAreSplitEvenlyAndTheFirstSeatsTakeTheRest) {
  EXPECT_EQ(CoreShare::share_of(2, 1, 0), 2);
  EXPECT_EQ(CoreShare::share_of(2, 2, 0), 1);
  EXPECT_EQ(CoreShare::share_of(2, 2, 1), 1);
  EXPECT_EQ(CoreShare::share_of(3, 2, 0), 2);
  EXPECT_EQ(CoreShare::share_of(3, 2, 1), 1);
  EXPECT_EQ(CoreShare::share_of(8, 3, 0), 3);
  EXPECT_EQ(CoreShare::share_of(8, 3, 1), 3);
  EXPECT_EQ(CoreShare::share_of(8, 3, 2), 2);
  // More busy engines than threads: one each (the cores are oversubscribed, never idle).
  EXPECT_EQ(CoreShare::share_of(2, 3, 2), 1);
  EXPECT_EQ(CoreShare::share_of(1, 4, 3), 1);
}

TEST(CoreShare, ABusyEngineHalvesTheOthersShareUntilItIsIdle) {
  CoreShare share;
  auto a = share.take_seat();
  auto b = share.take_seat();
  ASSERT_TRUE(a && b);
  EXPECT_EQ(share.busy_count(), 0);
  a->busy();
  EXPECT_EQ(a->threads(4), 4);
  // An idle engine asking counts itself: it asks for the step it is about to decode.
  EXPECT_EQ(b->threads(4), 2);
  b->busy();
  EXPECT_EQ(share.busy_count(), 2);
  EXPECT_EQ(a->threads(4), 2);
  EXPECT_EQ(b->threads(4), 2);
  EXPECT_EQ(a->threads(5), 3);  // the first seat takes the odd thread
  EXPECT_EQ(b->threads(5), 2);
  b->busy();  // saying it twice changes nothing
  b->idle();
  EXPECT_EQ(share.busy_count(), 1);
  EXPECT_EQ(a->threads(4), 4);
  b->busy();
  b.reset();  // an engine that ends is no longer busy
  EXPECT_EQ(share.busy_count(), 1);
  EXPECT_EQ(a->threads(4), 4);
}

TEST(CoreShare, SeatsRunOutAndComeBack) {
  CoreShare share;
  std::vector<std::optional<CoreShare::Seat>> seats;
  for (int i = 0; i < CoreShare::kMaxSeats; ++i) {
    auto s = share.take_seat();
    ASSERT_TRUE(s) << i;
    seats.emplace_back(std::move(*s));  // the moved-from seat's end changes nothing
  }
  EXPECT_FALSE(share.take_seat());
  for (auto& s : seats)
    s->busy();
  EXPECT_EQ(share.busy_count(), CoreShare::kMaxSeats);
  EXPECT_EQ(seats[3]->threads(64), 1);
  seats[3].reset();
  EXPECT_EQ(share.busy_count(), CoreShare::kMaxSeats - 1);
  auto again = share.take_seat();
  ASSERT_TRUE(again);
  again->busy();
  EXPECT_EQ(share.busy_count(), CoreShare::kMaxSeats);
}

}  // namespace
}  // namespace troupe::engine
