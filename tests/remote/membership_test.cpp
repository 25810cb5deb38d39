// SWIM membership driven by a fake clock and a fake, instantaneous transport that can crash
// nodes and cut links.
#include "remote/membership.hpp"

#include <gtest/gtest.h>

#include <deque>
#include <memory>
#include <set>

namespace troupe::remote {
namespace {

using namespace std::chrono_literals;

MembershipOptions fast_options() {
  MembershipOptions o;
  o.probe_interval = 100ms;
  o.probe_timeout = 40ms;
  o.suspect_timeout = 300ms;
  o.rejoin_interval = 500ms;
  o.dead_retention = 60s;
  return o;
}

class SimCluster {
 public:
  Clock::time_point now = Clock::time_point{} + 1h;

  Membership& add(NodeId id, std::vector<std::string> seeds = {"n1"}) {
    return add_at(id, "n" + std::to_string(id), std::move(seeds));
  }
  // A node with id `id` listening at `addr` (replacing whatever ran there).
  Membership& add_at(NodeId id, const std::string& addr, std::vector<std::string> seeds) {
    MemberRecord self{id, addr, 0, MemberState::alive, {{"role", "worker"}}, {}};
    nodes_[addr] = std::make_unique<Membership>(self, std::move(seeds), fast_options(), id);
    down_.erase(addr);
    return *nodes_[addr];
  }
  Membership& node(NodeId id) { return *nodes_.at("n" + std::to_string(id)); }
  void crash(NodeId id) { down_.insert("n" + std::to_string(id)); }
  void revive(NodeId id) { down_.erase("n" + std::to_string(id)); }
  void cut(NodeId a, NodeId b) {
    cuts_.insert({"n" + std::to_string(a), "n" + std::to_string(b)});
    cuts_.insert({"n" + std::to_string(b), "n" + std::to_string(a)});
  }
  void heal() { cuts_.clear(); }

  // State of `target` in `viewer`'s table (nullopt when unknown).
  std::optional<MemberState> state(NodeId viewer, NodeId target) {
    const MemberRecord* r = node(viewer).find(target);
    return r ? std::optional(r->state) : std::nullopt;
  }

  // Advances the clock in 5 ms steps until `pred` holds or `limit` passes; returns the time
  // it took (or limit + 1ms when it never held).
  template <class Pred>
  Clock::duration run_until(Pred pred, Clock::duration limit) {
    auto start = now;
    while (now - start <= limit) {
      if (pred())
        return now - start;
      now += 5ms;
      for (auto& [addr, m] : nodes_) {
        if (down_.count(addr))
          continue;
        Effects fx;
        m->tick(now, fx);
        collect(addr, fx);
      }
      deliver();
    }
    return limit + 1ms;
  }

  void apply(const std::string& addr, Effects& fx) {
    collect(addr, fx);
    deliver();
  }

  std::vector<MemberEvent> events;

 private:
  void collect(const std::string& from, Effects& fx) {
    for (auto& o : fx.sends)
      queue_.push_back({from, std::move(o)});
    for (auto& e : fx.events)
      events.push_back(std::move(e));
  }
  void deliver() {
    while (!queue_.empty()) {
      auto [from, out] = std::move(queue_.front());
      queue_.pop_front();
      auto it = nodes_.find(out.address);
      if (it == nodes_.end() || down_.count(from) || down_.count(out.address) ||
          cuts_.count({from, out.address})) {
        continue;
      }
      Effects fx;
      it->second->receive(out.message, now, fx);
      collect(out.address, fx);
    }
  }

  std::map<std::string, std::unique_ptr<Membership>> nodes_;
  std::set<std::string> down_;
  std::set<std::pair<std::string, std::string>> cuts_;
  std::deque<std::pair<std::string, Outgoing>> queue_;
};

bool all_alive(SimCluster& c, const std::vector<NodeId>& ids) {
  for (NodeId a : ids) {
    for (NodeId b : ids) {
      if (a != b && c.state(a, b) != MemberState::alive)
        return false;
    }
  }
  return true;
}

TEST(Membership, NodesJoinThroughASeedAndSeeEachOther) {
  SimCluster c;
  c.add(1, {});
  c.add(2);
  c.add(3);
  c.add(4);
  EXPECT_LT(c.run_until([&] { return all_alive(c, {1, 2, 3, 4}); }, 2s), 2s);
  EXPECT_EQ(c.node(2).find(3)->meta.at("role"), "worker");
}

TEST(Membership, CrashedNodeIsDeclaredDeadWithinTheDetectionTime) {
  SimCluster c;
  c.add(1, {});
  c.add(2);
  c.add(3);
  ASSERT_LT(c.run_until([&] { return all_alive(c, {1, 2, 3}); }, 2s), 2s);
  c.crash(3);
  // Worst case: probed within n rounds, suspected after a round, then suspect_timeout.
  auto bound = 3 * 100ms + 100ms + 300ms;
  auto took = c.run_until(
      [&] { return c.state(1, 3) == MemberState::dead && c.state(2, 3) == MemberState::dead; },
      bound);
  EXPECT_LE(took, bound);
  EXPECT_EQ(c.state(1, 2), MemberState::alive);
}

TEST(Membership, IndirectProbeKeepsANodeReachableThroughOthersAlive) {
  SimCluster c;
  c.add(1, {});
  c.add(2);
  c.add(3);
  ASSERT_LT(c.run_until([&] { return all_alive(c, {1, 2, 3}); }, 2s), 2s);
  c.cut(1, 3);
  c.events.clear();
  c.run_until([] { return false; }, 2s);
  EXPECT_NE(c.state(1, 3), MemberState::dead);
  EXPECT_NE(c.state(3, 1), MemberState::dead);
}

TEST(Membership, ANodeWeHearFromIsNotSuspectedWhenItsAcksAreLate) {
  SimCluster c;
  c.add(1, {});
  c.add(2);
  ASSERT_LT(c.run_until([&] { return all_alive(c, {1, 2}); }, 2s), 2s);
  c.cut(1, 2);  // probes are lost both ways, but node 2 keeps sending us data frames
  c.run_until(
      [&] {
        c.node(1).heard_from(2, c.now);
        return false;
      },
      2s);
  EXPECT_EQ(c.state(1, 2), MemberState::alive);
  EXPECT_NE(c.state(2, 1), MemberState::alive);  // node 2 heard nothing from node 1
}

TEST(Membership, SuspectedNodeRefutesWithAHigherIncarnation) {
  SimCluster c;
  c.add(1, {});
  c.add(2);
  ASSERT_LT(c.run_until([&] { return all_alive(c, {1, 2}); }, 2s), 2s);
  c.crash(2);  // unreachable for a moment, not long enough to be declared dead
  ASSERT_LT(c.run_until([&] { return c.state(1, 2) == MemberState::suspect; }, 1s), 1s);
  c.revive(2);  // back: it was paused, not restarted
  EXPECT_LT(c.run_until([&] { return c.state(1, 2) == MemberState::alive; }, 1s), 1s);
  EXPECT_GT(c.node(1).find(2)->incarnation, 0u);
}

TEST(Membership, PartitionedSidesDeclareEachOtherDeadAndMergeAfterHealing) {
  SimCluster c;
  c.add(1, {});
  c.add(2);
  c.add(3);
  ASSERT_LT(c.run_until([&] { return all_alive(c, {1, 2, 3}); }, 2s), 2s);
  c.cut(1, 2);
  c.cut(1, 3);
  ASSERT_LT(c.run_until(
                [&] {
                  return c.state(1, 2) == MemberState::dead && c.state(2, 1) == MemberState::dead &&
                         c.state(3, 1) == MemberState::dead;
                },
                3s),
            3s);
  EXPECT_EQ(c.state(2, 3), MemberState::alive);
  c.heal();
  EXPECT_LT(c.run_until([&] { return all_alive(c, {1, 2, 3}); }, 3s), 3s);
}

TEST(Membership, LeaveIsSeenAtOnce) {
  SimCluster c;
  c.add(1, {});
  c.add(2);
  c.add(3);
  ASSERT_LT(c.run_until([&] { return all_alive(c, {1, 2, 3}); }, 2s), 2s);
  Effects fx;
  c.node(3).leave(fx);
  c.apply("n3", fx);
  EXPECT_EQ(c.state(1, 3), MemberState::left);
  EXPECT_EQ(c.state(2, 3), MemberState::left);
}

TEST(Membership, SelfUpdatesSpreadMetadataAndActors) {
  SimCluster c;
  c.add(1, {});
  c.add(2);
  c.add(3);
  ASSERT_LT(c.run_until([&] { return all_alive(c, {1, 2, 3}); }, 2s), 2s);
  Effects fx;
  c.node(2).update_self({{"load", "7"}}, {{"engine/tiny", 42}}, fx);
  c.apply("n2", fx);
  for (NodeId v : {1, 3}) {
    const MemberRecord* r = c.node(v).find(2);
    ASSERT_NE(r, nullptr);
    EXPECT_EQ(r->meta.at("load"), "7");
    ASSERT_EQ(r->actors.size(), 1u);
    EXPECT_EQ(r->actors[0].actor, 42u);
  }
}

TEST(Membership, RestartedNodeAtTheSameAddressReplacesTheOldOne) {
  SimCluster c;
  c.add(1, {});
  c.add(2);
  ASSERT_LT(c.run_until([&] { return all_alive(c, {1, 2}); }, 2s), 2s);
  // Node 2 restarts with a new id (9) at its old address "n2".
  c.crash(2);
  c.add_at(9, "n2", {"n1"});
  EXPECT_LT(c.run_until([&] { return c.state(1, 9) == MemberState::alive; }, 2s), 2s);
  EXPECT_EQ(c.state(1, 2), MemberState::dead);
}

TEST(Membership, GossipMessagesRoundTripAndRejectGarbage) {
  GossipMessage m{GossipType::ping_req,
                  5,
                  1,
                  "a:1",
                  2,
                  "b:2",
                  {MemberRecord{3, "c:3", 4, MemberState::suspect, {{"k", "v"}}, {{"x", 7}}}}};
  auto bytes = encode_gossip(m);
  auto back = decode_gossip(bytes);
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(*back, m);
  bytes.push_back(std::byte{0});
  EXPECT_FALSE(decode_gossip(bytes).ok());
  bytes.pop_back();
  bytes[0] = std::byte{99};
  EXPECT_FALSE(decode_gossip(bytes).ok());
}

}  // namespace
}  // namespace troupe::remote
