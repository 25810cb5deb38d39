// A tell allocates nothing in steady state: the mailbox recycles its nodes and a light
// actor's scheduling operation lives in storage owned by the actor. Proven by counting every
// allocation in the process (operator new is replaced for this test binary).

#include <gtest/gtest.h>

#include <atomic>
#include <cstdlib>
#include <new>
#include <variant>

#include "actor/actor_system.hpp"
#include "test_support.hpp"

// The replacements below pair malloc with free correctly; GCC cannot see that through inlining.
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"

namespace {
// Process-wide by necessity: operator new is global. Only ever incremented.
std::atomic<std::uint64_t> g_allocations{0};
}  // namespace

void* operator new(std::size_t n) {
  g_allocations.fetch_add(1, std::memory_order_relaxed);
  if (void* p = std::malloc(n == 0 ? 1 : n))
    return p;
  throw std::bad_alloc();
}
void* operator new(std::size_t n, std::align_val_t a) {
  g_allocations.fetch_add(1, std::memory_order_relaxed);
  std::size_t align = static_cast<std::size_t>(a);
  if (void* p = std::aligned_alloc(align, (n + align - 1) / align * align))
    return p;
  throw std::bad_alloc();
}
void operator delete(void* p) noexcept {
  std::free(p);
}
void operator delete(void* p, std::size_t) noexcept {
  std::free(p);
}
void operator delete(void* p, std::align_val_t) noexcept {
  std::free(p);
}
void operator delete(void* p, std::size_t, std::align_val_t) noexcept {
  std::free(p);
}

namespace troupe::actor {
namespace {

struct Hold {};
struct Small {
  std::uint64_t a, b;
};
using Msg = std::variant<Hold, Small>;

struct Gate {
  std::atomic<bool> open{false};
  std::atomic<bool> entered{false};
  std::atomic<std::uint64_t> handled{0};
};

class Counting : public Actor<Msg> {
 public:
  explicit Counting(std::shared_ptr<Gate> g) : g_(std::move(g)) {}
  void on_message(Msg& m) override {
    if (std::holds_alternative<Hold>(m)) {
      g_->entered.store(true);
      g_->entered.notify_all();
      g_->open.wait(false);
    }
    g_->handled.fetch_add(1);
    g_->handled.notify_all();
  }

 private:
  std::shared_ptr<Gate> g_;
};

void wait_handled(Gate& g, std::uint64_t n) {
  for (std::uint64_t h = g.handled.load(); h < n; h = g.handled.load())
    g.handled.wait(h);
}

class AllocTest : public ::testing::TestWithParam<Execution> {};

TEST_P(AllocTest, SteadyStateTellAllocatesNothing) {
  constexpr std::uint64_t kBatch = 1000;
  const std::uint64_t at_start = g_allocations.load();
  ActorSystem sys;
  auto g = std::make_shared<Gate>();
  auto ref = sys.spawn<Counting>(SpawnOptions{.execution = GetParam()}, g);
  // Warm-up: with the actor held, kBatch messages are in flight at once, so the mailbox's
  // pool ends up with at least kBatch nodes.
  ref.tell(Hold{});
  g->entered.wait(false);
  for (std::uint64_t i = 0; i < kBatch; ++i)
    ASSERT_EQ(ref.tell(Small{i, i}), SendStatus::ok);
  g->open.store(true);
  g->open.notify_all();
  wait_handled(*g, kBatch + 1);

  const std::uint64_t before = g_allocations.load();
  ASSERT_GT(before, at_start);  // the counter does count (the warm-up allocated nodes)
  std::uint64_t ok = 0;
  for (int round = 0; round < 20; ++round) {
    for (std::uint64_t i = 0; i < kBatch; ++i)
      ok += ref.tell(Small{i, i}) == SendStatus::ok;
    wait_handled(*g, kBatch + 1 + (round + 1) * kBatch);
  }
  const std::uint64_t after = g_allocations.load();
  EXPECT_EQ(ok, 20 * kBatch);
  EXPECT_EQ(after - before, 0u) << "allocations per tell: "
                                << double(after - before) / double(20 * kBatch);
}

INSTANTIATE_TEST_SUITE_P(Executions, AllocTest,
                         ::testing::Values(Execution::shared, Execution::dedicated_thread),
                         [](const auto& info) {
                           return info.param == Execution::shared ? "shared" : "dedicated";
                         });

}  // namespace
}  // namespace troupe::actor
