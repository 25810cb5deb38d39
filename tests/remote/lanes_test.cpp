// The control lane: membership gossip is written before queued data, so a flood of tells on
// a link neither delays probes behind the queue nor gets a live node suspected.
#include <gtest/gtest.h>

#include <atomic>
#include <condition_variable>
#include <mutex>
#include <thread>

#include "test_node.hpp"

namespace troupe::remote {
namespace {

using namespace test;

// Whether the snapshot (which lists this node too) shows `key` in member `id`'s metadata.
bool has_meta(const RegistrySnapshot& snap, NodeId id, const std::string& key) {
  for (const auto& m : snap.members) {
    if (m.id == id && m.meta.count(key))
      return true;
  }
  return false;
}

// B's reader is held inside the handler of the first big tell while A queues many more
// (far more than the kernel's socket buffers hold) and then changes its metadata. The
// gossip carrying the change must reach B before the queued tells, not after all of them.
TEST(Lanes, GossipOvertakesQueuedData) {
  Signal sig;
  constexpr int kTells = 48;
  constexpr std::size_t kBytes = 1 << 20;
  auto bopt = fast_options();
  bopt.membership.probe_timeout = 2s * kSlowdown;  // B stalls its own thread for a moment
  bopt.membership.suspect_timeout = 10s * kSlowdown;
  TestNode b(bopt, &sig);

  std::mutex mu;
  std::condition_variable cv;
  bool entered = false, open = false;
  std::atomic<int> received{0};
  std::atomic<int> received_at_update{-1};
  b->publish("big", [&](Envelope&) {
    if (received.load() == 0) {
      std::unique_lock lock(mu);
      entered = true;
      cv.notify_all();
      cv.wait(lock, [&] { return open; });
    }
    received.fetch_add(1);
    sig.notify();
  });

  auto aopt = fast_options({b->address()});
  aopt.send_queue_capacity = 64;
  aopt.membership.probe_timeout = 2s * kSlowdown;
  aopt.membership.suspect_timeout = 10s * kSlowdown;
  TestNode a(aopt, &sig);
  NodeId a_id = a->id();
  b->on_member_event([&](const MemberEvent& e) {
    if (e.member.id == a_id && e.member.meta.count("mark") && received_at_update.load() < 0)
      received_at_update = received.load();
    sig.notify();
  });
  ASSERT_TRUE(sig.wait([&] { return a.knows("big"); }));
  auto ref = a->lookup("big").value();

  std::vector<std::vector<std::byte>> payloads(kTells, std::vector<std::byte>(kBytes));
  ASSERT_TRUE(ref.tell_raw(std::move(payloads[0])).ok());
  {
    std::unique_lock lock(mu);
    ASSERT_TRUE(cv.wait_for(lock, kDeadline, [&] { return entered; }));
  }
  for (int i = 1; i < kTells; ++i)
    ASSERT_TRUE(ref.tell_raw(std::move(payloads[i])).ok());
  a->set_metadata("mark", "1");
  // A's own record changes before its gossip is queued, in the same turn of A's strand.
  ASSERT_TRUE(sig.wait([&] { return has_meta(*a->snapshot(), a_id, "mark"); }));
  {
    std::lock_guard lock(mu);
    open = true;
  }
  cv.notify_all();

  ASSERT_TRUE(sig.wait([&] { return received.load() == kTells && received_at_update >= 0; }));
  std::printf("metadata gossip arrived after %d of %d queued 1 MiB tells\n",
              received_at_update.load(), kTells);
  // Without the control lane it would arrive after all of them. What may come first: the
  // tells already in the kernel's socket buffers and the one being written.
  EXPECT_LT(received_at_update.load(), kTells / 2);
}

// A flood of large tells on A's link to B for many probe rounds: membership must keep both
// nodes alive (A's acks to B's probes travel on the flooded link).
TEST(Lanes, FloodKeepsBothNodesAlive) {
  Signal sig;
  auto opt = fast_options();
  // A member is suspected when nothing came from it within one probe interval. The interval is
  // wide enough that a busy 2-core machine's scheduling does not look like a lost node; the
  // flood still spans several probes.
  opt.membership.probe_interval = 300ms * kSlowdown;
  opt.membership.probe_timeout = 150ms * kSlowdown;
  opt.membership.suspect_timeout = 1s * kSlowdown;
  opt.send_queue_capacity = 512;  // up to 128 MiB of 256 KiB tells waiting in A's queue
  std::atomic<int> bad_events{0};
  auto watch = [&](const MemberEvent& e) {
    if (e.kind == MemberEventKind::suspect || e.kind == MemberEventKind::dead ||
        e.kind == MemberEventKind::left) {
      std::printf("unexpected member event: %s\n", std::string(member_event_name(e.kind)).c_str());
      bad_events.fetch_add(1);
    }
    sig.notify();
  };
  TestNode b(opt, &sig);
  b->on_member_event(watch);
  std::atomic<std::uint64_t> received{0};
  b->publish("sink", [&](Envelope& e) {
    if (e.payload.size() == 256 * 1024)
      received.fetch_add(1);
  });
  auto aopt = opt;
  aopt.seeds = {b->address()};
  TestNode a(aopt, &sig);
  a->on_member_event(watch);
  ASSERT_TRUE(sig.wait([&] { return a.knows("sink") && b.sees_alive(a->id()); }));
  auto ref = a->lookup("sink").value();

  // The flood lasts 5 probe intervals (a workload length, not a measurement).
  std::vector<std::byte> payload(256 * 1024, std::byte{1});
  std::uint64_t sent = 0;
  auto until = std::chrono::steady_clock::now() + 5 * opt.membership.probe_interval;
  while (std::chrono::steady_clock::now() < until) {
    auto r = ref.tell_raw(payload);
    if (r.ok()) {
      ++sent;
      continue;
    }
    ASSERT_EQ(r.error().code, Errc::overloaded) << r.error().message;
    // Queue full: wait until B has taken a quarter of it.
    std::uint64_t target = sent - opt.send_queue_capacity * 3 / 4;
    ASSERT_TRUE(sig.wait([&] { return received.load() >= target; }));
  }
  ASSERT_TRUE(sig.wait([&] { return received.load() == sent; }));
  std::printf("flood: %llu tells of 256 KiB\n", static_cast<unsigned long long>(sent));
  EXPECT_EQ(bad_events.load(), 0);
  EXPECT_TRUE(a.sees_alive(b->id()));
  EXPECT_TRUE(b.sees_alive(a->id()));
}

}  // namespace
}  // namespace troupe::remote
