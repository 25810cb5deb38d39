// ask: replies (coroutine and blocking), timeout, cancellation, stopped and failing targets.
// Every failure mode must complete the ask with an error, never hang it.

#include <gtest/gtest.h>

#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_future.hpp>
#include <chrono>
#include <optional>
#include <stdexcept>
#include <variant>

#include "actor/actor_system.hpp"
#include "test_support.hpp"

namespace troupe::actor {
namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;

struct Add {
  int n;
};
struct Get {
  ReplyTo<int> reply;
};
struct Throw {
  ReplyTo<int> reply;
};
struct Ignore {
  ReplyTo<int> reply;
};
struct Defer {
  ReplyTo<int> reply;
};
struct Release {};
struct Quit {};
using CounterMsg = std::variant<Add, Get, Throw, Ignore, Defer, Release, Quit>;

class Counter : public Actor<CounterMsg> {
 public:
  explicit Counter(test::Event<bool> deferred = {}) : deferred_(deferred) {}

  void on_message(CounterMsg& m) override {
    std::visit(test::Overloaded{
                   [&](Add& a) { sum_ += a.n; },
                   [&](Get& g) { g.reply.send(sum_); },
                   [&](Throw&) { throw std::runtime_error("boom"); },
                   [&](Ignore&) {},
                   [&](Defer& d) {
                     held_ = std::move(d.reply);
                     deferred_.set(true);
                   },
                   [&](Release&) { held_.send(sum_); },
                   [&](Quit&) { quit(); },
               },
               m);
  }

 private:
  int sum_ = 0;
  ReplyTo<int> held_;
  test::Event<bool> deferred_;
};

template <class Awaitable>
auto run_coro(ActorSystem& sys, Awaitable a) {
  return asio::co_spawn(sys.io_context(), std::move(a), asio::use_future).get();
}

TEST(Ask, CoroutineGetsTheReply) {
  ActorSystem sys;
  auto ref = sys.spawn<Counter>({});
  ref.tell(Add{40});
  ref.tell(Add{2});
  Result<int> r = run_coro(sys, ref.ask(Get{}, 10s));
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(*r, 42);
}

TEST(Ask, BlockingGetsTheReplyFromBothExecutionKinds) {
  ActorSystem sys;
  for (Execution e : {Execution::shared, Execution::dedicated_thread}) {
    auto ref = sys.spawn<Counter>(SpawnOptions{.execution = e});
    ref.tell(Add{7});
    Result<int> r = ref.ask_blocking(Get{}, 10s);
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(*r, 7);
  }
}

TEST(Ask, DeferredReplyArrivesLater) {
  ActorSystem sys;
  test::Event<bool> deferred;
  auto ref = sys.spawn<Counter>({}, deferred);
  auto fut = asio::co_spawn(sys.io_context(), ref.ask(Defer{}), asio::use_future);
  deferred.get();
  ref.tell(Add{5});
  ref.tell(Release{});
  Result<int> r = fut.get();
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(*r, 5);
}

TEST(Ask, TimesOutWhenNoReplyComes) {
  ActorSystem sys;
  auto ref = sys.spawn<Counter>({});
  Result<int> r = run_coro(sys, ref.ask(Defer{}, 20ms));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, Errc::timeout);
  Result<int> b = ref.ask_blocking(Defer{}, 20ms);
  ASSERT_FALSE(b.ok());
  EXPECT_EQ(b.error().code, Errc::timeout);
  // The actor is still fine.
  EXPECT_TRUE(ref.ask_blocking(Get{}, 10s).ok());
}

TEST(Ask, CancellationCompletesTheAsk) {
  ActorSystem sys(SystemOptions{.threads = 1});
  test::Event<bool> deferred;
  auto ref = sys.spawn<Counter>({}, deferred);
  asio::cancellation_signal cancel;
  auto fut = asio::co_spawn(sys.io_context(), ref.ask(Defer{}),
                            asio::bind_cancellation_slot(cancel.slot(), asio::use_future));
  deferred.get();  // the message was handled: the coroutine waits for the reply
  asio::post(sys.io_context(), [&] { cancel.emit(asio::cancellation_type::terminal); });
  Result<int> r = fut.get();
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, Errc::cancelled);
}

TEST(Ask, StoppedActorYieldsUnavailable) {
  ActorSystem sys;
  auto ref = sys.spawn<Counter>({});
  ASSERT_TRUE(ref.ask_blocking(Get{}, 10s).ok());
  ref.request_stop(StopMode::drop);
  sys.shutdown(StopMode::drop);  // returns once every actor has stopped
  ASSERT_TRUE(ref.stopped());
  Result<int> r = run_coro(sys, ref.ask(Get{}, 10s));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, Errc::unavailable);
  Result<int> b = ref.ask_blocking(Get{}, 10s);
  ASSERT_FALSE(b.ok());
  EXPECT_EQ(b.error().code, Errc::unavailable);
}

TEST(Ask, QueuedAskIsFailedWhenTheActorQuitsBeforeIt) {
  ActorSystem sys;
  auto ref = sys.spawn<Counter>(SpawnOptions{.execution = Execution::dedicated_thread});
  // Queue Quit then Get in one go, so Get is still queued when the actor quits.
  ref.tell(Quit{});
  auto r = ref.ask_blocking(Get{}, 10s);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, Errc::unavailable);
}

TEST(Ask, ThrowingHandlerYieldsInternalError) {
  ActorSystem sys;
  auto ref = sys.spawn<Counter>(SpawnOptions{.restart = {.max_restarts = 10}});
  Result<int> r = run_coro(sys, ref.ask(Throw{}, 10s));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, Errc::internal);
  EXPECT_NE(r.error().message.find("boom"), std::string::npos);
  Result<int> b = ref.ask_blocking(Throw{}, 10s);
  ASSERT_FALSE(b.ok());
  EXPECT_EQ(b.error().code, Errc::internal);
}

TEST(Ask, DroppedReplyYieldsInternalError) {
  ActorSystem sys;
  auto ref = sys.spawn<Counter>({});
  Result<int> r = ref.ask_blocking(Ignore{}, 10s);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, Errc::internal);
}

TEST(Ask, HeldReplyFailsWhenTheActorStops) {
  ActorSystem sys;
  test::Event<bool> deferred;
  auto ref = sys.spawn<Counter>({}, deferred);
  auto fut = asio::co_spawn(sys.io_context(), ref.ask(Defer{}), asio::use_future);
  deferred.get();
  ref.tell(Quit{});
  Result<int> r = fut.get();
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, Errc::internal);
}

TEST(Ask, NullRefYieldsUnavailable) {
  ActorSystem sys;
  ActorRef<CounterMsg> ref;
  EXPECT_EQ(run_coro(sys, ref.ask(Get{}, 1s)).error().code, Errc::unavailable);
  EXPECT_EQ(ref.ask_blocking(Get{}, 1s).error().code, Errc::unavailable);
}

}  // namespace
}  // namespace troupe::actor
