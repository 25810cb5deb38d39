// Supervision (one-for-one restart with a limit, or stop; the supervisor is told why) and
// monitoring (watch -> Down with the reason).

#include <gtest/gtest.h>

#include <stdexcept>
#include <string>
#include <variant>
#include <vector>

#include "actor/actor_system.hpp"
#include "test_support.hpp"

namespace troupe::actor {
namespace {

using namespace std::chrono_literals;

struct Fail {};
struct Count {
  ReplyTo<int> reply;
};
struct Bye {};
using WorkerMsg = std::variant<Fail, Count, Bye>;

// Counts messages since its (re)start; throws on Fail.
class Worker : public Actor<WorkerMsg> {
 public:
  explicit Worker(std::shared_ptr<std::atomic<int>> starts) : starts_(starts) {}
  void on_start() override { starts_->fetch_add(1); }
  void on_message(WorkerMsg& m) override {
    ++seen_;
    std::visit(test::Overloaded{[&](Fail&) { throw std::runtime_error("worker broke"); },
                                [&](Count& c) { c.reply.send(seen_); },
                                [&](Bye&) {
                                  quit(ExitReason{ExitKind::normal, "bye"});
                                }},
               m);
  }

 private:
  std::shared_ptr<std::atomic<int>> starts_;
  int seen_ = 0;
};

struct Nothing {};
using SupMsg = std::variant<Nothing>;

// Records what it hears about its children and watched actors.
class Supervisor : public Actor<SupMsg> {
 public:
  Supervisor(test::Event<std::vector<ChildFailed>> failures, std::size_t want,
             test::Event<Down> down)
      : failures_(failures), want_(want), down_(down) {}
  void on_message(SupMsg&) override {}
  void on_child_failed(const ChildFailed& f) override {
    seen_.push_back(f);
    if (seen_.size() == want_)
      failures_.set(seen_);
  }
  void on_down(const Down& d) override { down_.set(d); }

 private:
  test::Event<std::vector<ChildFailed>> failures_;
  std::size_t want_;
  std::vector<ChildFailed> seen_;
  test::Event<Down> down_;
};

struct WatchMsg {
  ActorHandle target;
};
using WatcherMsg = std::variant<WatchMsg>;

class Watcher : public Actor<WatcherMsg> {
 public:
  explicit Watcher(test::Event<Down> down) : down_(down) {}
  void on_message(WatcherMsg& m) override { watch(std::get<WatchMsg>(m).target); }
  void on_down(const Down& d) override { down_.set(d); }

 private:
  test::Event<Down> down_;
};

TEST(Supervision, RestartsWithinLimitKeepingTheMailboxAndRef) {
  ActorSystem sys(SystemOptions{.threads = 2});
  test::Event<std::vector<ChildFailed>> failures;
  auto sup = sys.spawn<Supervisor>({}, failures, 2, test::Event<Down>{});
  auto starts = std::make_shared<std::atomic<int>>(0);
  auto w = sys.spawn<Worker>(
      SpawnOptions{.name = "w", .supervisor = sup, .restart = {.max_restarts = 2, .within = 1h}},
      starts);
  w.tell(Fail{});
  w.tell(Fail{});
  // Fresh state after the second restart: only Count itself was seen.
  Result<int> seen = w.ask_blocking(Count{}, 10s);
  ASSERT_TRUE(seen.ok());
  EXPECT_EQ(*seen, 1);
  EXPECT_EQ(starts->load(), 3);
  auto f = failures.get();
  ASSERT_EQ(f.size(), 2u);
  EXPECT_EQ(f[0].action, SupervisionAction::restarted);
  EXPECT_EQ(f[0].what, "worker broke");
  EXPECT_EQ(f[0].name, "w");
  EXPECT_EQ(f[0].id, w.id());
  EXPECT_EQ(f[1].restarts, 2u);
  EXPECT_FALSE(w.stopped());
}

TEST(Supervision, StopsWhenTheRestartLimitIsReached) {
  ActorSystem sys;
  test::Event<std::vector<ChildFailed>> failures;
  test::Event<Down> down;
  auto sup = sys.spawn<Supervisor>({}, failures, 2, down);
  auto starts = std::make_shared<std::atomic<int>>(0);
  auto w = sys.spawn<Worker>(
      SpawnOptions{.supervisor = sup, .restart = {.max_restarts = 1, .within = 1h}}, starts);
  auto watcher_down = test::Event<Down>{};
  auto watcher = sys.spawn<Watcher>({}, watcher_down);
  watcher.tell(WatchMsg{w});
  w.tell(Fail{});  // restarted
  w.tell(Fail{});  // limit reached: stopped
  auto f = failures.get();
  EXPECT_EQ(f[0].action, SupervisionAction::restarted);
  EXPECT_EQ(f[1].action, SupervisionAction::stopped);
  Down d = watcher_down.get();
  EXPECT_EQ(d.id, w.id());
  EXPECT_EQ(d.reason.kind, ExitKind::failed);
  EXPECT_EQ(d.reason.what, "worker broke");
  EXPECT_TRUE(w.stopped());
  EXPECT_EQ(w.tell(Count{}), SendStatus::stopped);
}

TEST(Supervision, DefaultPolicyStopsOnFirstFailureAndTheProcessLivesOn) {
  ActorSystem sys;
  auto starts = std::make_shared<std::atomic<int>>(0);
  auto w = sys.spawn<Worker>({}, starts);
  test::Event<Down> down;
  auto watcher = sys.spawn<Watcher>({}, down);
  watcher.tell(WatchMsg{w});
  w.tell(Fail{});
  EXPECT_EQ(down.get().reason.kind, ExitKind::failed);
  EXPECT_EQ(starts->load(), 1);
}

TEST(Monitor, DownCarriesTheReason) {
  ActorSystem sys;
  auto starts = std::make_shared<std::atomic<int>>(0);
  auto w = sys.spawn<Worker>(SpawnOptions{.name = "leaver"}, starts);
  test::Event<Down> down;
  auto watcher = sys.spawn<Watcher>({}, down);
  watcher.tell(WatchMsg{w});
  w.tell(Bye{});
  Down d = down.get();
  EXPECT_EQ(d.id, w.id());
  EXPECT_EQ(d.name, "leaver");
  EXPECT_EQ(d.reason, (ExitReason{ExitKind::normal, "bye"}));
}

TEST(Monitor, WatchingAStoppedActorDeliversDownAtOnce) {
  ActorSystem sys;
  auto starts = std::make_shared<std::atomic<int>>(0);
  auto w = sys.spawn<Worker>({}, starts);
  test::Event<Down> first;
  sys.spawn<Watcher>({}, first).tell(WatchMsg{w});
  w.tell(Bye{});
  first.get();
  test::Event<Down> late;
  sys.spawn<Watcher>({}, late).tell(WatchMsg{w});
  EXPECT_EQ(late.get().reason.what, "bye");
}

TEST(Monitor, ShutdownReasonReachesWatchersOfDedicatedActors) {
  ActorSystem sys;
  auto starts = std::make_shared<std::atomic<int>>(0);
  auto w = sys.spawn<Worker>(SpawnOptions{.execution = Execution::dedicated_thread}, starts);
  test::Event<Down> down;
  auto watcher = sys.spawn<Watcher>({}, down);
  watcher.tell(WatchMsg{w});
  ASSERT_TRUE(w.ask_blocking(Count{}, 10s).ok());
  w.request_stop(StopMode::drain);
  EXPECT_EQ(down.get().reason.kind, ExitKind::normal);
}

}  // namespace
}  // namespace troupe::actor
