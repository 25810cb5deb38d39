// CAF 0.17's half of actor_bench: the scenarios of troupe_bench.cpp with CAF's idioms
// (event-based actors, anon_send from outside threads, request/then and scoped_actor
// request/receive for asks). Same worker-thread counts as troupe's rows.

#include <caf/all.hpp>
#include <memory>
#include <thread>
#include <vector>

#include "bench_util.hpp"

namespace troupe::actor::bench {
namespace {

// A fresh configuration per scenario; it must outlive the system built from it.
std::unique_ptr<caf::actor_system_config> config(std::size_t threads) {
  auto cfg = std::make_unique<caf::actor_system_config>();
  cfg->set("scheduler.max-threads", threads);
  return cfg;
}

caf::behavior receiver(caf::event_based_actor*, Latch* done, std::uint64_t batch) {
  auto count = std::make_shared<std::uint64_t>(0);
  return {[=](std::uint64_t) {
    if (++*count == batch) {
      *count = 0;
      done->add();
    }
  }};
}

void caf_tell_n_to_1(benchmark::State& state, int producers) {
  auto cfg = config(1);
  caf::actor_system sys{*cfg};
  Latch done;
  auto ref = sys.spawn(receiver, &done, kTellMessages);
  std::uint64_t rounds = 0;
  const std::uint64_t each = kTellMessages / producers;
  for (auto _ : state) {
    if (producers == 1) {
      for (std::uint64_t i = 0; i < kTellMessages; ++i)
        caf::anon_send(ref, i);
    } else {
      std::vector<std::thread> threads;
      for (int p = 0; p < producers; ++p) {
        threads.emplace_back([&] {
          for (std::uint64_t i = 0; i < each; ++i)
            caf::anon_send(ref, i);
        });
      }
      for (auto& t : threads)
        t.join();
    }
    done.wait_for(++rounds);
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(rounds * kTellMessages));
  caf::anon_send_exit(ref, caf::exit_reason::user_shutdown);
}

void BM_tell_1to1_caf(benchmark::State& s) {
  caf_tell_n_to_1(s, 1);
}
void BM_tell_4to1_caf(benchmark::State& s) {
  caf_tell_n_to_1(s, kProducers4);
}

caf::behavior echoer(caf::event_based_actor*) {
  return {[](std::uint64_t x) { return x; }};
}

struct PingRun {
  std::vector<Clock::duration>* samples;
  Latch* done;
  std::uint64_t sent = 0;
  Clock::time_point t0;
};

void ping_next(caf::event_based_actor* self, caf::actor echo, std::shared_ptr<PingRun> run) {
  run->t0 = Clock::now();
  self->request(echo, caf::infinite, run->sent).then([=](std::uint64_t) {
    run->samples->push_back(Clock::now() - run->t0);
    if (++run->sent == kPingPongRounds) {
      run->done->add();
      self->quit();
    } else {
      ping_next(self, echo, run);
    }
  });
}

void pinger(caf::event_based_actor* self, caf::actor echo, std::shared_ptr<PingRun> run) {
  ping_next(self, echo, run);
}

void BM_ask_pingpong_caf(benchmark::State& state) {
  auto cfg = config(1);
  caf::actor_system sys{*cfg};
  auto echo = sys.spawn(echoer);
  std::vector<Clock::duration> samples;
  samples.reserve(kPingPongRounds * 8);
  Latch done;
  std::uint64_t rounds = 0;
  for (auto _ : state) {
    auto run = std::make_shared<PingRun>(PingRun{&samples, &done});
    sys.spawn(pinger, echo, run);
    done.wait_for(++rounds);
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(rounds * kPingPongRounds));
  report_latency(state, samples);
  caf::anon_send_exit(echo, caf::exit_reason::user_shutdown);
}

void BM_ask_blocking_caf(benchmark::State& state) {
  auto cfg = config(1);
  caf::actor_system sys{*cfg};
  auto echo = sys.spawn(echoer);
  std::vector<Clock::duration> samples;
  std::uint64_t rounds = 0;
  {
    caf::scoped_actor self{sys};
    for (auto _ : state) {
      for (std::uint64_t i = 0; i < kPingPongRounds / 4; ++i) {
        auto t0 = Clock::now();
        self->request(echo, caf::infinite, i)
            .receive([&](std::uint64_t v) { benchmark::DoNotOptimize(v); },
                     [&](caf::error&) { state.SkipWithError("request failed"); });
        samples.push_back(Clock::now() - t0);
      }
      rounds += kPingPongRounds / 4;
    }
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(rounds));
  report_latency(state, samples);
  caf::anon_send_exit(echo, caf::exit_reason::user_shutdown);
}

caf::behavior idle(caf::event_based_actor* self, Latch* events) {
  events->add();
  self->attach_functor([events] { events->add(); });
  return {[](std::uint64_t) {}};
}

caf::behavior idle_plain(caf::event_based_actor*, Latch* started) {
  started->add();
  return {[](std::uint64_t) {}};
}

void BM_spawn_stop_caf(benchmark::State& state) {
  auto cfg = config(2);
  caf::actor_system sys{*cfg};
  Latch events;
  std::uint64_t target = 0;
  std::vector<caf::actor> refs;
  refs.reserve(kSpawnBatch);
  for (auto _ : state) {
    for (std::size_t i = 0; i < kSpawnBatch; ++i)
      refs.push_back(sys.spawn(idle, &events));
    for (auto& r : refs)
      caf::anon_send_exit(r, caf::exit_reason::user_shutdown);
    target += 2 * kSpawnBatch;
    events.wait_for(target);
    refs.clear();
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * kSpawnBatch));
}

void BM_idle_memory_caf(benchmark::State& state) {
  double per_actor = 0;
  for (auto _ : state) {
    auto cfg = config(1);
    caf::actor_system sys{*cfg};
    Latch started;
    std::vector<caf::actor> refs;
    refs.reserve(kIdleActors);
    const std::size_t before = heap_in_use();
    for (std::size_t i = 0; i < kIdleActors; ++i)
      refs.push_back(sys.spawn(idle_plain, &started));
    started.wait_for(kIdleActors);
    per_actor = double(heap_in_use() - before) / double(kIdleActors);
    for (auto& r : refs)
      caf::anon_send_exit(r, caf::exit_reason::user_shutdown);
  }
  state.counters["bytes_per_actor"] = per_actor;
}

caf::behavior ring_member(caf::event_based_actor*, std::shared_ptr<caf::actor> next, Latch* done) {
  return {[=](std::uint64_t hops_left) {
    if (hops_left == 0) {
      done->add();
    } else {
      caf::anon_send(*next, hops_left - 1);
    }
  }};
}

void BM_ring_caf(benchmark::State& state) {
  auto cfg = config(2);
  caf::actor_system sys{*cfg};
  Latch done;
  std::vector<std::shared_ptr<caf::actor>> nexts;
  std::vector<caf::actor> ring;
  for (std::size_t i = 0; i < kRingSize; ++i) {
    nexts.push_back(std::make_shared<caf::actor>());
    ring.push_back(sys.spawn(ring_member, nexts.back(), &done));
  }
  for (std::size_t i = 0; i < kRingSize; ++i)
    *nexts[i] = ring[(i + 1) % kRingSize];
  std::uint64_t rounds = 0;
  for (auto _ : state) {
    caf::anon_send(ring[0], kRingHops);
    done.wait_for(++rounds);
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(rounds * kRingHops));
  for (auto& r : ring)
    caf::anon_send_exit(r, caf::exit_reason::user_shutdown);
  for (auto& n : nexts)
    *n = nullptr;
}

}  // namespace

BENCHMARK(BM_tell_1to1_caf)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_tell_4to1_caf)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_ask_pingpong_caf)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_ask_blocking_caf)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_spawn_stop_caf)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_idle_memory_caf)->Iterations(1)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_ring_caf)->Unit(benchmark::kMillisecond)->UseRealTime();

}  // namespace troupe::actor::bench
