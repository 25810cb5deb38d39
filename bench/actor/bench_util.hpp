#pragma once
// Helpers shared by the troupe and CAF halves of actor_bench: completion latches, latency
// percentiles and heap usage. Each benchmark scenario is written once per framework with the
// same shape, so the two rows of a scenario are comparable.

#include <benchmark/benchmark.h>
#include <malloc.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <vector>

namespace troupe::actor::bench {

// Messages per iteration of the throughput scenarios.
inline constexpr std::uint64_t kTellMessages = 1'000'000;
inline constexpr int kProducers4 = 4;
inline constexpr std::uint64_t kPingPongRounds = 20'000;
inline constexpr std::size_t kSpawnBatch = 10'000;
inline constexpr std::size_t kIdleActors = 10'000;
inline constexpr std::size_t kRingSize = 1000;
inline constexpr std::uint64_t kRingHops = 1'000'000;

// A counter the test thread waits on (futex), bumped by the receiving actor.
struct Latch {
  std::atomic<std::uint64_t> value{0};
  void add(std::uint64_t n = 1) {
    value.fetch_add(n, std::memory_order_release);
    value.notify_all();
  }
  void wait_for(std::uint64_t target) {
    for (auto v = value.load(std::memory_order_acquire); v < target;
         v = value.load(std::memory_order_acquire)) {
      value.wait(v);
    }
  }
};

using Clock = std::chrono::steady_clock;

// Reports p50/p99 (microseconds) of the samples as benchmark counters.
inline void report_latency(benchmark::State& state, std::vector<Clock::duration>& samples) {
  if (samples.empty())
    return;
  std::sort(samples.begin(), samples.end());
  auto us = [](Clock::duration d) { return std::chrono::duration<double, std::micro>(d).count(); };
  state.counters["p50_us"] = us(samples[samples.size() / 2]);
  state.counters["p99_us"] = us(samples[samples.size() * 99 / 100]);
}

// Bytes of heap in use (all arenas, mmapped chunks included).
inline std::size_t heap_in_use() {
  struct mallinfo2 mi = mallinfo2();
  return mi.uordblks + mi.hblkhd;
}

}  // namespace troupe::actor::bench
