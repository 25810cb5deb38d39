// A local actor::ActorRef exported on one node and driven through RemoteActorRef from another.
#include "remote/remote_actor.hpp"

#include <gtest/gtest.h>

#include "actor/actor.hpp"
#include "actor/actor_system.hpp"
#include "test_node.hpp"

namespace troupe::remote {
namespace {

struct Total {
  std::uint64_t value = 0;
};
struct Add {
  std::uint64_t n = 0;
};
struct Get {
  actor::ReplyTo<Total> reply;
};
using CounterProtocol = std::variant<Add, Get>;

class CounterActor : public actor::Actor<CounterProtocol> {
 public:
  void on_message(CounterProtocol& msg) override {
    if (auto* a = std::get_if<Add>(&msg))
      sum_ += a->n;
    if (auto* g = std::get_if<Get>(&msg))
      g->reply.send(Total{sum_});
  }

 private:
  std::uint64_t sum_ = 0;
};

}  // namespace

template <>
struct Codec<Add> {
  static constexpr std::uint32_t type_id = 101;
  static void encode(const Add& m, WireWriter& w) { w.u64(m.n); }
  static bool decode(WireReader& r, Add& m) {
    m.n = r.u64();
    return r.ok();
  }
};
template <>
struct Codec<Get> {
  static constexpr std::uint32_t type_id = 102;
  static void encode(const Get&, WireWriter&) {}
  static bool decode(WireReader& r, Get&) { return r.ok(); }
};
template <>
struct Codec<Total> {
  static constexpr std::uint32_t type_id = 103;
  static void encode(const Total& m, WireWriter& w) { w.u64(m.value); }
  static bool decode(WireReader& r, Total& m) {
    m.value = r.u64();
    return r.ok();
  }
};

namespace {

using namespace test;

TEST(RemoteActor, TypedTellAndAskReachALocalActorOnAnotherNode) {
  Signal sig;
  actor::ActorSystem system;
  auto counter = system.spawn<CounterActor>(actor::SpawnOptions{.name = "counter"});
  {
    TestNode a(fast_options(), &sig);
    publish_actor(*a, "counter", counter);
    TestNode b(fast_options({a->address()}), &sig);
    ASSERT_TRUE(sig.wait([&] { return b.knows("counter"); }));
    auto remote = lookup_actor<CounterProtocol>(*b, "counter");
    ASSERT_TRUE(remote.ok());
    constexpr std::uint64_t kTells = 5000;
    for (std::uint64_t i = 0; i < kTells;) {
      auto st = remote->tell(Add{1});
      if (st == actor::SendStatus::ok)
        ++i;
      else
        ASSERT_EQ(st, actor::SendStatus::mailbox_full);
    }
    auto total = remote->ask_blocking(Get{}, 5s);
    ASSERT_TRUE(total.ok()) << total.error().message;
    EXPECT_EQ(total->value, kTells);  // the ask is handled after every earlier tell
    EXPECT_EQ(remote->tell(CounterProtocol(Add{2})), actor::SendStatus::ok);
    EXPECT_EQ(remote->ask_blocking(Get{}, 5s)->value, kTells + 2);
    EXPECT_EQ(RemoteActorRef<CounterProtocol>().tell(Add{1}), actor::SendStatus::null_ref);
  }
  system.shutdown();
}

}  // namespace
}  // namespace troupe::remote
