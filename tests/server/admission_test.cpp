// ConnectionTable: per-address limits, reclaiming the oldest idle or header-sending
// connection, refusals, and the per-state gauges it keeps in Metrics.

#include "server/admission.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <random>
#include <thread>
#include <vector>

namespace troupe::server {
namespace {

using Clock = ConnectionTable::Clock;
using namespace std::chrono_literals;

struct Table {
  explicit Table(AdmissionLimits limits) : table(limits, metrics) {}
  Metrics metrics;
  ConnectionTable table;
  Clock::time_point t0 = Clock::now();
  int tick = 0;
  // Admits with a clock that moves 1 ms per call, so "oldest" is well defined.
  ConnectionTable::Decision admit(const std::string& address) {
    return table.admit(address, nullptr, t0 + std::chrono::milliseconds(++tick));
  }
  bool enter(const ConnectionTable::SlotPtr& s, ConnState to) {
    return table.enter(*s, to, t0 + std::chrono::milliseconds(++tick));
  }
};

TEST(ConnectionTable, AdmitsUpToThePerAddressLimitThenRefuses) {
  Table t({.max_connections = 100, .max_per_ip = 2, .max_pending_per_ip = 0});
  auto a = t.admit("10.0.0.1");
  auto b = t.admit("10.0.0.1");
  ASSERT_TRUE(a.slot && b.slot);
  auto c = t.admit("10.0.0.1");
  EXPECT_FALSE(c.slot);
  EXPECT_EQ(c.refused, RefusalCause::per_ip_limit);
  EXPECT_TRUE(c.reclaimed.empty());
  EXPECT_TRUE(t.admit("10.0.0.2").slot) << "another address has its own budget";
  t.table.release(a.slot);
  EXPECT_TRUE(t.admit("10.0.0.1").slot);
  EXPECT_EQ(t.metrics.refusals(RefusalCause::per_ip_limit), 1);
  EXPECT_EQ(t.table.open_from("10.0.0.1"), 2u);
}

TEST(ConnectionTable, PendingLimitRefusesAndReclaimsNothing) {
  Table t({.max_connections = 100, .max_per_ip = 0, .max_pending_per_ip = 3});
  auto a = t.admit("10.0.0.1");
  auto b = t.admit("10.0.0.1");
  auto c = t.admit("10.0.0.1");
  auto d = t.admit("10.0.0.1");
  EXPECT_FALSE(d.slot);
  EXPECT_EQ(d.refused, RefusalCause::pending_per_ip);
  EXPECT_TRUE(d.reclaimed.empty());
  EXPECT_TRUE(t.admit("10.0.0.9").slot) << "another address has its own budget";
  ASSERT_TRUE(t.enter(a.slot, ConnState::reading_headers));
  ASSERT_TRUE(t.enter(a.slot, ConnState::answering));  // a complete request: not pending
  EXPECT_EQ(t.table.pending_from("10.0.0.1"), 2u);
  EXPECT_TRUE(t.admit("10.0.0.1").slot);
  EXPECT_EQ(t.metrics.refusals(RefusalCause::pending_per_ip), 1);
  EXPECT_EQ(t.table.open(), 5u);
  EXPECT_TRUE(b.slot && c.slot);
}

TEST(ConnectionTable, ConnectionsWithARequestAreNeitherPendingNorReclaimed) {
  Table t({.max_connections = 100, .max_per_ip = 0, .max_pending_per_ip = 2});
  auto a = t.admit("10.0.0.1");
  auto b = t.admit("10.0.0.1");
  ASSERT_TRUE(t.enter(a.slot, ConnState::reading_headers));
  ASSERT_TRUE(t.enter(a.slot, ConnState::reading_body));
  ASSERT_TRUE(t.enter(b.slot, ConnState::reading_headers));
  ASSERT_TRUE(t.enter(b.slot, ConnState::reading_body));
  auto c = t.admit("10.0.0.1");  // two bodies pending, neither reclaimable
  EXPECT_FALSE(c.slot);
  EXPECT_EQ(c.refused, RefusalCause::pending_per_ip);
  ASSERT_TRUE(t.enter(a.slot, ConnState::answering));  // a's request is complete
  auto d = t.admit("10.0.0.1");
  ASSERT_TRUE(d.slot);
  EXPECT_TRUE(d.reclaimed.empty());
  ASSERT_TRUE(t.enter(a.slot, ConnState::streaming));
  EXPECT_EQ(t.table.pending_from("10.0.0.1"), 2u);
  EXPECT_EQ(t.metrics.connections_in(ConnState::streaming), 1);
  EXPECT_EQ(t.metrics.connections_in(ConnState::reading_body), 1);
  EXPECT_EQ(t.metrics.connections_in(ConnState::idle), 1);
}

TEST(ConnectionTable, AtTheConnectionLimitTheOldestIdleOrHeaderSendingOneMakesRoom) {
  Table t({.max_connections = 3, .max_per_ip = 0, .max_pending_per_ip = 0});
  auto busy = t.admit("10.0.0.1");
  auto idle = t.admit("10.0.0.2");
  auto headers = t.admit("10.0.0.3");
  ASSERT_TRUE(t.enter(busy.slot, ConnState::answering));  // the oldest, but busy
  ASSERT_TRUE(t.enter(headers.slot, ConnState::reading_headers));
  ASSERT_TRUE(t.enter(idle.slot, ConnState::idle));
  // idle entered its state before headers did: it goes first.
  auto d = t.admit("10.0.0.4");
  ASSERT_TRUE(d.slot);
  ASSERT_EQ(d.reclaimed.size(), 1u);
  EXPECT_EQ(d.reclaimed[0], idle.slot);
  auto e = t.admit("10.0.0.5");
  ASSERT_EQ(e.reclaimed.size(), 1u);
  EXPECT_EQ(e.reclaimed[0], headers.slot);
  ASSERT_TRUE(t.enter(d.slot, ConnState::reading_body));
  ASSERT_TRUE(t.enter(e.slot, ConnState::streaming));
  auto f = t.admit("10.0.0.6");
  EXPECT_FALSE(f.slot);
  EXPECT_EQ(f.refused, RefusalCause::connection_limit);
  EXPECT_EQ(t.metrics.reclaims(ReclaimCause::connection_limit), 2);
  EXPECT_EQ(t.metrics.refusals(RefusalCause::connection_limit), 1);
}

TEST(ConnectionTable, PressureStartsAtThreeQuartersOfTheLimit) {
  Table t({.max_connections = 4, .max_per_ip = 0, .max_pending_per_ip = 0});
  auto a = t.admit("a");
  auto b = t.admit("b");
  EXPECT_FALSE(t.table.under_pressure());
  auto c = t.admit("c");
  EXPECT_TRUE(t.table.under_pressure());
  t.table.release(c.slot);
  t.table.release(c.slot);  // idempotent
  EXPECT_FALSE(t.table.under_pressure());
  EXPECT_EQ(t.table.open(), 2u);
}

// Many threads admit, move through states and release at once; afterwards every count is
// back to zero. (Run under TSan for the locking.)
TEST(ConnectionTable, ConcurrentUseLeavesConsistentCounts) {
  Metrics metrics;
  ConnectionTable table({.max_connections = 64, .max_per_ip = 24, .max_pending_per_ip = 8},
                        metrics);
  std::atomic<int> admitted{0}, refused{0};
  std::vector<std::thread> threads;
  for (int id = 0; id < 4; ++id) {
    threads.emplace_back([&, id] {
      std::mt19937 rng(static_cast<unsigned>(id));
      std::vector<ConnectionTable::SlotPtr> mine;
      for (int i = 0; i < 3000; ++i) {
        const std::string address = "10.0.0." + std::to_string(rng() % 3);
        auto d = table.admit(address);
        if (d.slot) {
          ++admitted;
          mine.push_back(d.slot);
        } else {
          ++refused;
        }
        for (auto& v : d.reclaimed)
          table.release(v);  // as the session of a reclaimed slot ends
        if (!mine.empty()) {
          auto& s = mine[rng() % mine.size()];
          static constexpr ConnState states[] = {ConnState::reading_headers,
                                                 ConnState::reading_body, ConnState::answering,
                                                 ConnState::streaming, ConnState::idle};
          table.enter(*s, states[rng() % 5]);
        }
        if (mine.size() > 10 || (rng() % 3 == 0 && !mine.empty())) {
          table.release(mine.front());
          mine.erase(mine.begin());
        }
      }
      for (auto& s : mine)
        table.release(s);
    });
  }
  for (auto& t : threads)
    t.join();
  EXPECT_GT(admitted.load(), 0);
  EXPECT_EQ(table.open(), 0u);
  EXPECT_EQ(table.size(), 0u);
  for (std::size_t i = 0; i < kConnStates; ++i)
    EXPECT_EQ(metrics.connections_in(static_cast<ConnState>(i)), 0) << kConnStateNames[i];
  std::int64_t refusals = 0;
  for (std::size_t i = 0; i < kRefusalCauses; ++i)
    refusals += metrics.refusals(static_cast<RefusalCause>(i));
  EXPECT_EQ(refusals, refused.load());
}

}  // namespace
}  // namespace troupe::server
