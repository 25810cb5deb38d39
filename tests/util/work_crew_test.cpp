#include "util/work_crew.hpp"

#include <gtest/gtest.h>

#include <array>
#include <atomic>
#include <chrono>
#include <thread>
#include <vector>

namespace troupe::util {
namespace {

// Every item runs exactly once, on the calling thread (worker 0) or a helper (1..helpers), for
// runs larger and smaller than the crew, again and again on the same helpers.
TEST(WorkCrew, RunsEveryItemOnceOnEachRun) {
  WorkCrew crew(3);
  ASSERT_EQ(crew.helpers(), 3);
  for (std::int32_t n : {0, 1, 2, 3, 4, 7, 64, 1000}) {
    for (int rep = 0; rep < 20; ++rep) {
      std::vector<std::atomic<int>> seen(static_cast<std::size_t>(n));
      std::atomic<int> bad_worker{0};
      auto fn = [&](std::int32_t item, std::int32_t worker) {
        seen[static_cast<std::size_t>(item)].fetch_add(1, std::memory_order_relaxed);
        if (worker < 0 || worker > 3)
          bad_worker.fetch_add(1, std::memory_order_relaxed);
      };
      crew.run(n, fn);
      for (std::int32_t i = 0; i < n; ++i)
        ASSERT_EQ(seen[static_cast<std::size_t>(i)].load(), 1) << "n " << n << ", item " << i;
      EXPECT_EQ(bad_worker.load(), 0);
    }
  }
}

// The helpers take items while the caller is busy with one: a run of two items where the
// caller's item waits for the other to have run elsewhere completes (with no helper it could
// not).
TEST(WorkCrew, HelpersWorkWhileTheCallerIsBusy) {
  WorkCrew crew(1);
  for (int rep = 0; rep < 50; ++rep) {
    std::atomic<bool> other_ran{false};
    std::array<std::int32_t, 2> who{-1, -1};
    const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    auto fn = [&](std::int32_t item, std::int32_t worker) {
      who[static_cast<std::size_t>(item)] = worker;
      if (worker == 0) {  // the caller holds on to its item until the helper has run one
        while (!other_ran.load(std::memory_order_acquire) &&
               std::chrono::steady_clock::now() < give_up)
          std::this_thread::yield();
      } else {
        other_ran.store(true, std::memory_order_release);
      }
    };
    crew.run(2, fn);
    ASSERT_TRUE(other_ran.load()) << "the helper never took an item";
    EXPECT_TRUE(who[0] == 1 || who[1] == 1);
  }
}

TEST(WorkCrew, NoHelpersRunsOnTheCaller) {
  WorkCrew crew(0);
  const auto caller = std::this_thread::get_id();
  int count = 0;
  bool elsewhere = false;
  auto fn = [&](std::int32_t, std::int32_t worker) {
    ++count;
    elsewhere = elsewhere || worker != 0 || std::this_thread::get_id() != caller;
  };
  crew.run(5, fn);
  EXPECT_EQ(count, 5);
  EXPECT_FALSE(elsewhere);
}

}  // namespace
}  // namespace troupe::util
