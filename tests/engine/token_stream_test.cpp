#include "engine/token_stream.hpp"

#include <gtest/gtest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_future.hpp>
#include <thread>

namespace troupe::engine {
namespace {

namespace asio = boost::asio;

TEST(TokenStream, AsyncNextDeliversEventsInOrderThenEnds) {
  auto [writer, stream] = make_stream();
  asio::io_context io;
  std::vector<std::size_t> kinds;
  asio::co_spawn(
      io,
      [&, s = std::move(stream)]() mutable -> asio::awaitable<void> {
        while (auto ev = co_await s.next())
          kinds.push_back(ev->index());
      },
      asio::detached);
  writer.push(Started{3, 0});
  writer.push(Delta{"hi", {1}, {}, {}});
  writer.push(Finished{});
  io.run();
  EXPECT_EQ(kinds, (std::vector<std::size_t>{0, 1, 2}));
}

TEST(TokenStream, AsyncNextWaitsForAPushFromAnotherThread) {
  auto [writer, stream] = make_stream();
  asio::io_context io;
  std::optional<StreamEvent> got;
  asio::co_spawn(
      io,
      [&, s = std::move(stream)]() mutable -> asio::awaitable<void> { got = co_await s.next(); },
      asio::detached);
  io.poll();  // the coroutine is now waiting
  EXPECT_FALSE(got);
  std::thread producer([w = std::move(writer)]() mutable { w.push(Started{1, 0}); });
  io.run();
  producer.join();
  ASSERT_TRUE(got);
  EXPECT_TRUE(std::holds_alternative<Started>(*got));
}

// The final event handed straight to a waiting consumer still ends the stream: the next wait
// completes with nullopt instead of waiting forever.
TEST(TokenStream, FinalEventDeliveredToAWaiterEndsTheStream) {
  auto [writer, stream] = make_stream();
  asio::io_context io;
  int events = 0;
  bool ended = false;
  asio::co_spawn(
      io,
      [&, s = std::move(stream)]() mutable -> asio::awaitable<void> {
        while (co_await s.next())
          ++events;
        ended = true;
      },
      asio::detached);
  io.poll();  // the consumer now waits
  writer.push(Finished{});
  io.run();
  EXPECT_EQ(events, 1);
  EXPECT_TRUE(ended);
}

TEST(TokenStream, BlockingNextAndTryNext) {
  auto [writer, stream] = make_stream();
  EXPECT_FALSE(stream.try_next());
  std::thread producer([w = std::move(writer)]() mutable {
    w.push(Started{});
    w.push(Finished{FinishReason::length, {}, {}});
  });
  auto a = stream.next_blocking();
  auto b = stream.next_blocking();
  producer.join();
  ASSERT_TRUE(a && b);
  EXPECT_TRUE(std::holds_alternative<Started>(*a));
  EXPECT_EQ(std::get<Finished>(*b).reason, FinishReason::length);
  EXPECT_FALSE(stream.next_blocking());  // drained after the final event
}

TEST(TokenStream, DroppingTheStreamRunsOnCancelOnceAndRefusesPushes) {
  auto [writer, stream] = make_stream();
  int calls = 0;
  writer.on_cancel([&] { ++calls; });
  EXPECT_FALSE(writer.cancelled());
  { auto s = std::move(stream); }
  EXPECT_EQ(calls, 1);
  EXPECT_TRUE(writer.cancelled());
  EXPECT_FALSE(writer.push(Delta{}));
  EXPECT_EQ(calls, 1);
}

TEST(TokenStream, OnCancelSetAfterCancellationRunsAtOnce) {
  auto [writer, stream] = make_stream();
  stream.cancel();
  int calls = 0;
  writer.on_cancel([&] { ++calls; });
  EXPECT_EQ(calls, 1);
}

TEST(TokenStream, NoCancelCallbackAfterTheFinalEvent) {
  auto [writer, stream] = make_stream();
  int calls = 0;
  writer.on_cancel([&] { ++calls; });
  writer.push(Finished{});
  stream.cancel();
  EXPECT_EQ(calls, 0);
}

TEST(TokenStream, CancellingAWaitThroughItsSlotLeavesEventsQueued) {
  using namespace asio::experimental::awaitable_operators;
  auto [writer, stream] = make_stream();
  asio::io_context io;
  bool timer_won = false;
  asio::co_spawn(
      io,
      [&]() -> asio::awaitable<void> {
        asio::steady_timer t(io, std::chrono::milliseconds(1));
        auto r = co_await (stream.next() || t.async_wait(asio::use_awaitable));
        timer_won = r.index() == 1;
      },
      asio::detached);
  io.run();
  EXPECT_TRUE(timer_won);
  EXPECT_FALSE(writer.cancelled());  // a cancelled wait is not a cancelled stream
  writer.push(Started{7, 0});
  auto ev = stream.try_next();
  ASSERT_TRUE(ev);
  EXPECT_EQ(std::get<Started>(*ev).prompt_tokens, 7);
}

TEST(TokenStream, WriterDroppedWithoutFinalEventDeliversFailed) {
  auto [writer, stream] = make_stream();
  writer.push(Started{});
  { auto w = std::move(writer); }
  auto a = stream.try_next();
  auto b = stream.try_next();
  ASSERT_TRUE(a && b);
  EXPECT_TRUE(std::holds_alternative<Started>(*a));
  ASSERT_TRUE(std::holds_alternative<Failed>(*b));
  EXPECT_EQ(std::get<Failed>(*b).error.code, Errc::internal);
}

TEST(TokenStream, FailedStreamHoldsOnlyTheError) {
  auto s = failed_stream(Error{Errc::overloaded, "busy"});
  auto ev = s.next_blocking();
  ASSERT_TRUE(ev);
  EXPECT_EQ(std::get<Failed>(*ev).error.code, Errc::overloaded);
  EXPECT_FALSE(s.next_blocking());
}

TEST(TokenStream, AttachedResourcesLiveAsLongAsTheStreamAndGoAfterTheCancel) {
  auto [w, s] = make_stream();
  bool cancelled = false;
  w.on_cancel([&] { cancelled = true; });
  struct Probe {
    bool* cancelled;
    bool* seen_cancel;
    ~Probe() { *seen_cancel = *cancelled; }
  };
  bool seen_cancel = false;
  auto probe = std::make_shared<Probe>(Probe{&cancelled, &seen_cancel});
  std::weak_ptr<Probe> weak = probe;
  s.attach(std::move(probe));
  EXPECT_FALSE(weak.expired());
  TokenStream moved = std::move(s);
  EXPECT_FALSE(weak.expired());  // moved with the stream
  moved = TokenStream();
  EXPECT_TRUE(weak.expired());
  EXPECT_TRUE(seen_cancel);  // released after the request was cancelled
  EXPECT_TRUE(w.valid());    // the producer's end does not hold it
}

}  // namespace
}  // namespace troupe::engine
