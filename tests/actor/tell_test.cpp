// tell: per-sender ordering, exact counts under many producers, stopped targets, bounded
// mailboxes, for both light and dedicated-thread actors.

#include <gtest/gtest.h>

#include <atomic>
#include <cstdint>
#include <thread>
#include <variant>
#include <vector>

#include "actor/actor_system.hpp"
#include "test_support.hpp"

namespace troupe::actor {
namespace {

struct Seq {
  std::uint32_t producer;
  std::uint64_t seq;
};
struct Finish {};
using SeqMsg = std::variant<Seq, Finish>;

struct SeqResult {
  std::uint64_t received = 0;
  std::uint64_t order_violations = 0;
};

// Checks that each producer's sequence numbers arrive in order, without gaps, and reports
// once `expected` messages arrived.
class SeqChecker : public Actor<SeqMsg> {
 public:
  SeqChecker(std::uint32_t producers, std::uint64_t expected, test::Event<SeqResult> done)
      : next_(producers, 0), expected_(expected), done_(done) {}

  void on_message(SeqMsg& m) override {
    if (auto* s = std::get_if<Seq>(&m)) {
      if (s->seq != next_[s->producer])
        ++result_.order_violations;
      next_[s->producer] = s->seq + 1;
      if (++result_.received == expected_)
        done_.set(result_);
    }
  }

 private:
  std::vector<std::uint64_t> next_;
  std::uint64_t expected_;
  test::Event<SeqResult> done_;
  SeqResult result_;
};

SeqResult run_producers(ActorSystem& sys, Execution exec, std::uint32_t producers,
                        std::uint64_t per_producer) {
  test::Event<SeqResult> done;
  auto ref = sys.spawn<SeqChecker>(SpawnOptions{.name = "checker", .execution = exec}, producers,
                                   producers * per_producer, done);
  std::vector<std::thread> threads;
  for (std::uint32_t p = 0; p < producers; ++p) {
    threads.emplace_back([ref, p, per_producer] {
      for (std::uint64_t i = 0; i < per_producer; ++i) {
        EXPECT_EQ(ref.tell(Seq{p, i}), SendStatus::ok);
      }
    });
  }
  for (auto& t : threads)
    t.join();
  return done.get();
}

class TellTest : public ::testing::TestWithParam<Execution> {};

TEST_P(TellTest, OneProducerKeepsOrder) {
  ActorSystem sys(SystemOptions{.threads = 2});
  SeqResult r = run_producers(sys, GetParam(), 1, 50'000);
  EXPECT_EQ(r.received, 50'000u);
  EXPECT_EQ(r.order_violations, 0u);
}

TEST_P(TellTest, EightProducersExactCountsAndPerSenderOrder) {
  ActorSystem sys(SystemOptions{.threads = 2});
  SeqResult r = run_producers(sys, GetParam(), 8, 100'000);
  EXPECT_EQ(r.received, 800'000u);
  EXPECT_EQ(r.order_violations, 0u);
  auto report = sys.shutdown(StopMode::drain);
  EXPECT_EQ(report.dropped, 0u);
  EXPECT_EQ(sys.stats().processed, 800'000u);
}

INSTANTIATE_TEST_SUITE_P(Executions, TellTest,
                         ::testing::Values(Execution::shared, Execution::dedicated_thread),
                         [](const auto& info) {
                           return info.param == Execution::shared ? "shared" : "dedicated";
                         });

struct Ping {};
using PingMsg = std::variant<Ping>;

class Sink : public Actor<PingMsg> {
 public:
  void on_message(PingMsg&) override {}
};

TEST(Tell, NullRefIsReported) {
  ActorRef<PingMsg> ref;
  EXPECT_EQ(ref.tell(Ping{}), SendStatus::null_ref);
  EXPECT_TRUE(ref.stopped());
}

TEST(Tell, StoppedActorRejectsAndCounts) {
  ActorSystem sys;
  auto ref = sys.spawn<Sink>({});
  test::Event<Down> down;
  class Watcher : public Actor<PingMsg> {
   public:
    Watcher(ActorHandle target, test::Event<Down> e) : target_(target), e_(e) {}
    void on_start() override { watch(target_); }
    void on_message(PingMsg&) override {}
    void on_down(const Down& d) override { e_.set(d); }
    ActorHandle target_;
    test::Event<Down> e_;
  };
  sys.spawn<Watcher>({}, ref.handle(), down);
  ref.request_stop();
  EXPECT_EQ(down.get().reason.kind, ExitKind::normal);
  EXPECT_TRUE(ref.stopped());
  EXPECT_EQ(ref.tell(Ping{}), SendStatus::stopped);
  EXPECT_EQ(ref.stats().rejected, 1u);
  EXPECT_EQ(sys.stats().rejected, 1u);
}

// The handler blocks on a gate so that the bounded mailbox fills up deterministically.
struct Hold {};
using GateMsg = std::variant<Hold, Ping>;

class Gated : public Actor<GateMsg> {
 public:
  Gated(std::shared_ptr<std::atomic<bool>> open, test::Event<bool> entered,
        std::shared_ptr<std::atomic<int>> pings)
      : open_(open), entered_(entered), pings_(pings) {}
  void on_message(GateMsg& m) override {
    if (std::holds_alternative<Hold>(m)) {
      entered_.set(true);
      open_->wait(false);
    } else {
      pings_->fetch_add(1);
    }
  }

 private:
  std::shared_ptr<std::atomic<bool>> open_;
  test::Event<bool> entered_;
  std::shared_ptr<std::atomic<int>> pings_;
};

TEST(Tell, BoundedMailboxRejectsWhenFullAndCounts) {
  ActorSystem sys;
  auto open = std::make_shared<std::atomic<bool>>(false);
  auto pings = std::make_shared<std::atomic<int>>(0);
  test::Event<bool> entered;
  auto ref = sys.spawn<Gated>(SpawnOptions{.mailbox_capacity = 4}, open, entered, pings);
  ASSERT_EQ(ref.tell(Hold{}), SendStatus::ok);
  entered.get();  // Hold is being handled: the mailbox is empty again
  for (int i = 0; i < 4; ++i)
    EXPECT_EQ(ref.tell(Ping{}), SendStatus::ok);
  EXPECT_EQ(ref.tell(Ping{}), SendStatus::mailbox_full);
  EXPECT_EQ(ref.tell(Ping{}), SendStatus::mailbox_full);
  EXPECT_EQ(ref.stats().rejected, 2u);
  open->store(true);
  open->notify_all();
  sys.shutdown(StopMode::drain);
  EXPECT_EQ(pings->load(), 4);
  EXPECT_EQ(sys.stats().dropped, 0u);
}

TEST(Tell, RefsCompareByIdentityAndConvertToHandles) {
  ActorSystem sys;
  auto a = sys.spawn<Sink>({});
  auto b = sys.spawn<Sink>({});
  auto a2 = a;
  EXPECT_EQ(a, a2);
  EXPECT_FALSE(a == b);
  ActorHandle h = a;
  EXPECT_EQ(h.id(), a.id());
  EXPECT_EQ(h.as<PingMsg>(), a);
  EXPECT_FALSE(h.as<GateMsg>());
}

}  // namespace
}  // namespace troupe::actor
