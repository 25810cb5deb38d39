// DecodeTurns: one engine decodes at a time, and turns go in the order they were asked for.
// The waits below (for another thread to be queued) synchronise on the turns' own count of
// waiting takers; nothing here depends on timing.
#include "engine/decode_turns.hpp"

#include <gtest/gtest.h>

#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

namespace troupe::engine {
namespace {

class Order {
 public:
  void add(std::string who) {
    std::lock_guard lock(mu_);
    seen_.push_back(std::move(who));
  }
  std::vector<std::string> seen() {
    std::lock_guard lock(mu_);
    return seen_;
  }

 private:
  std::mutex mu_;
  std::vector<std::string> seen_;
};

// Until `n` takers have had to wait.
void until_waiting(const DecodeTurns& turns, std::uint64_t n) {
  while (turns.waits() < n)
    std::this_thread::yield();
}

// A thread that asks for a turn while this one holds it (seen queued: the `waits`-th to wait),
// then adds `name` to `order` in its turn.
std::thread queued(DecodeTurns& turns, Order& order, std::string name, std::uint64_t waits) {
  std::thread t([&turns, &order, name = std::move(name)] {
    auto turn = turns.take(nullptr);
    order.add(name);
  });
  until_waiting(turns, waits);
  return t;
}

TEST(DecodeTurns, TurnsAreServedInTheOrderAsked) {
  DecodeTurns turns;
  Order order;
  std::optional<DecodeTurns::Turn> first(turns.take(nullptr));
  std::thread b = queued(turns, order, "b", 1);
  std::thread c = queued(turns, order, "c", 2);
  order.add("a");
  first.reset();
  b.join();
  c.join();
  EXPECT_EQ(order.seen(), (std::vector<std::string>{"a", "b", "c"}));
}

// A plain mutex fails this most of the time: the thread that unlocks takes it again first.
TEST(DecodeTurns, AnEngineThatEndsATurnQueuesBehindOneThatWaits) {
  DecodeTurns turns;
  Order order;
  std::optional<DecodeTurns::Turn> first(turns.take(nullptr));
  std::thread b = queued(turns, order, "b", 1);
  first.reset();
  {
    auto again = turns.take(nullptr);  // b asked first: this waits for b's turn to end
    order.add("a again");
  }
  b.join();
  EXPECT_EQ(order.seen(), (std::vector<std::string>{"b", "a again"}));
}

TEST(DecodeTurns, AnUncontendedTurnDoesNotWait) {
  DecodeTurns turns;
  for (int i = 0; i < 3; ++i)
    auto t = turns.take(nullptr);
  EXPECT_EQ(turns.waits(), 0u);
}

}  // namespace
}  // namespace troupe::engine
