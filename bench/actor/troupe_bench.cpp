// troupe's half of actor_bench. Scenarios (same shapes in caf_bench.cpp):
//   tell_1to1      one external thread tells kTellMessages to one actor
//   tell_4to1      four external threads tell kTellMessages in total to one actor
//   ask_pingpong   an ask (request/reply) round trip, one at a time; p50/p99
//   spawn_stop     spawn kSpawnBatch actors and stop them; cost per actor
//   idle_memory    heap bytes per idle actor (kIdleActors of them)
//   ring           a token passed kRingHops times around a ring of kRingSize actors
// Worker threads: 1 for tell/ask (the producer has the other core), 2 for spawn/ring.

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/use_future.hpp>
#include <memory>
#include <thread>
#include <variant>
#include <vector>

#include "actor/actor_system.hpp"
#include "bench_util.hpp"

namespace troupe::actor::bench {
namespace {

struct Count {
  std::uint64_t value;
};
using CountMsg = std::variant<Count>;

class Receiver : public Actor<CountMsg> {
 public:
  Receiver(Latch* done, std::uint64_t batch) : done_(done), batch_(batch) {}
  void on_message(CountMsg&) override {
    if (++count_ == batch_) {
      count_ = 0;
      done_->add();
    }
  }

 private:
  Latch* done_;
  std::uint64_t batch_;
  std::uint64_t count_ = 0;
};

void tell_n_to_1(benchmark::State& state, Execution exec, int producers) {
  ActorSystem sys(SystemOptions{.threads = 1});
  Latch done;
  auto ref = sys.spawn<Receiver>(SpawnOptions{.execution = exec}, &done, kTellMessages);
  std::uint64_t rounds = 0;
  const std::uint64_t each = kTellMessages / producers;
  for (auto _ : state) {
    if (producers == 1) {
      for (std::uint64_t i = 0; i < kTellMessages; ++i)
        ref.tell(Count{i});
    } else {
      std::vector<std::thread> threads;
      for (int p = 0; p < producers; ++p) {
        threads.emplace_back([&] {
          for (std::uint64_t i = 0; i < each; ++i)
            ref.tell(Count{i});
        });
      }
      for (auto& t : threads)
        t.join();
    }
    done.wait_for(++rounds);
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(rounds * kTellMessages));
}

void BM_tell_1to1_troupe(benchmark::State& s) {
  tell_n_to_1(s, Execution::shared, 1);
}
void BM_tell_1to1_troupe_dedicated(benchmark::State& s) {
  tell_n_to_1(s, Execution::dedicated_thread, 1);
}
void BM_tell_4to1_troupe(benchmark::State& s) {
  tell_n_to_1(s, Execution::shared, kProducers4);
}
void BM_tell_4to1_troupe_dedicated(benchmark::State& s) {
  tell_n_to_1(s, Execution::dedicated_thread, kProducers4);
}

struct Echo {
  std::uint64_t value;
  ReplyTo<std::uint64_t> reply;
};
using EchoMsg = std::variant<Echo>;

class Echoer : public Actor<EchoMsg> {
 public:
  void on_message(EchoMsg& m) override {
    auto& e = std::get<Echo>(m);
    e.reply.send(e.value);
  }
};

boost::asio::awaitable<void> ping_loop(ActorRef<EchoMsg> ref,
                                       std::vector<Clock::duration>& samples) {
  for (std::uint64_t i = 0; i < kPingPongRounds; ++i) {
    auto t0 = Clock::now();
    auto r = co_await ref.ask(Echo{i, {}});
    samples.push_back(Clock::now() - t0);
    benchmark::DoNotOptimize(r);
  }
}

void BM_ask_pingpong_troupe(benchmark::State& state) {
  ActorSystem sys(SystemOptions{.threads = 1});
  auto ref = sys.spawn<Echoer>({});
  std::vector<Clock::duration> samples;
  samples.reserve(kPingPongRounds * 8);
  std::uint64_t rounds = 0;
  for (auto _ : state) {
    boost::asio::co_spawn(sys.io_context(), ping_loop(ref, samples), boost::asio::use_future).get();
    rounds += kPingPongRounds;
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(rounds));
  report_latency(state, samples);
}

void BM_ask_blocking_troupe(benchmark::State& state) {
  ActorSystem sys(SystemOptions{.threads = 1});
  auto ref = sys.spawn<Echoer>({});
  std::vector<Clock::duration> samples;
  std::uint64_t rounds = 0;
  for (auto _ : state) {
    for (std::uint64_t i = 0; i < kPingPongRounds / 4; ++i) {
      auto t0 = Clock::now();
      auto r = ref.ask_blocking(Echo{i, {}}, std::chrono::seconds(10));
      samples.push_back(Clock::now() - t0);
      benchmark::DoNotOptimize(r);
    }
    rounds += kPingPongRounds / 4;
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(rounds));
  report_latency(state, samples);
}

class Idle : public Actor<CountMsg> {
 public:
  explicit Idle(Latch* started) : started_(started) {}
  void on_start() override { started_->add(); }
  void on_stop(const ExitReason&) override { started_->add(); }
  void on_message(CountMsg&) override {}

 private:
  Latch* started_;
};

void BM_spawn_stop_troupe(benchmark::State& state) {
  ActorSystem sys(SystemOptions{.threads = 2});
  Latch events;  // +1 at start, +1 at stop
  std::uint64_t target = 0;
  std::vector<ActorRef<CountMsg>> refs;
  refs.reserve(kSpawnBatch);
  for (auto _ : state) {
    for (std::size_t i = 0; i < kSpawnBatch; ++i)
      refs.push_back(sys.spawn<Idle>({}, &events));
    for (auto& r : refs)
      r.request_stop(StopMode::drop);
    target += 2 * kSpawnBatch;
    events.wait_for(target);
    refs.clear();
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * kSpawnBatch));
}

void BM_idle_memory_troupe(benchmark::State& state) {
  double per_actor = 0;
  for (auto _ : state) {
    ActorSystem sys(SystemOptions{.threads = 1});
    Latch started;
    std::vector<ActorRef<CountMsg>> refs;
    refs.reserve(kIdleActors);
    const std::size_t before = heap_in_use();
    for (std::size_t i = 0; i < kIdleActors; ++i)
      refs.push_back(sys.spawn<Idle>({}, &started));
    started.wait_for(kIdleActors);
    per_actor = double(heap_in_use() - before) / double(kIdleActors);
  }
  state.counters["bytes_per_actor"] = per_actor;
}

struct Token {
  std::uint64_t hops_left;
};
using TokenMsg = std::variant<Token>;

class RingMember : public Actor<TokenMsg> {
 public:
  RingMember(std::shared_ptr<ActorRef<TokenMsg>> next, Latch* done) : next_(next), done_(done) {}
  void on_message(TokenMsg& m) override {
    auto& t = std::get<Token>(m);
    if (t.hops_left == 0) {
      done_->add();
    } else {
      next_->tell(Token{t.hops_left - 1});
    }
  }

 private:
  std::shared_ptr<ActorRef<TokenMsg>> next_;  // set once before the first token
  Latch* done_;
};

void BM_ring_troupe(benchmark::State& state) {
  ActorSystem sys(SystemOptions{.threads = 2});
  Latch done;
  std::vector<std::shared_ptr<ActorRef<TokenMsg>>> nexts;
  std::vector<ActorRef<TokenMsg>> ring;
  for (std::size_t i = 0; i < kRingSize; ++i) {
    nexts.push_back(std::make_shared<ActorRef<TokenMsg>>());
    ring.push_back(sys.spawn<RingMember>({}, nexts.back(), &done));
  }
  for (std::size_t i = 0; i < kRingSize; ++i)
    *nexts[i] = ring[(i + 1) % kRingSize];
  std::uint64_t rounds = 0;
  for (auto _ : state) {
    ring[0].tell(Token{kRingHops});
    done.wait_for(++rounds);
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(rounds * kRingHops));
  sys.shutdown(StopMode::drop);
  for (auto& n : nexts)
    *n = {};  // break the reference cycle
}

}  // namespace

BENCHMARK(BM_tell_1to1_troupe)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_tell_1to1_troupe_dedicated)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_tell_4to1_troupe)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_tell_4to1_troupe_dedicated)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_ask_pingpong_troupe)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_ask_blocking_troupe)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_spawn_stop_troupe)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_idle_memory_troupe)->Iterations(1)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_ring_troupe)->Unit(benchmark::kMillisecond)->UseRealTime();

}  // namespace troupe::actor::bench
