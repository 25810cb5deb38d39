// Registry: names to actors, typed lookups, and readers running while a writer writes.

#include <gtest/gtest.h>

#include <atomic>
#include <string>
#include <thread>
#include <variant>
#include <vector>

#include "actor/actor_system.hpp"

namespace troupe::actor {
namespace {

struct Ping {};
using PingMsg = std::variant<Ping>;
struct Other {};
using OtherMsg = std::variant<Other>;

class Sink : public Actor<PingMsg> {
 public:
  void on_message(PingMsg&) override {}
};

TEST(Registry, PutFindEraseReplace) {
  ActorSystem sys;
  auto a = sys.spawn<Sink>({});
  auto b = sys.spawn<Sink>({});
  Registry& reg = sys.registry();
  EXPECT_TRUE(reg.put("engine", a));
  EXPECT_FALSE(reg.put("engine", b));
  EXPECT_EQ(reg.find_as<PingMsg>("engine"), a);
  EXPECT_FALSE(reg.find_as<OtherMsg>("engine"));  // wrong protocol: empty
  EXPECT_FALSE(reg.find("missing"));
  EXPECT_TRUE(reg.put("engine", b, /*replace=*/true));
  EXPECT_EQ(reg.find("engine"), ActorHandle(b));
  EXPECT_EQ(reg.names(), std::vector<std::string>{"engine"});
  EXPECT_TRUE(reg.erase("engine"));
  EXPECT_FALSE(reg.erase("engine"));
  EXPECT_FALSE(reg.find("engine"));
}

TEST(Registry, ReadersRunWhileAWriterWrites) {
  ActorSystem sys;
  auto a = sys.spawn<Sink>({});
  Registry& reg = sys.registry();
  ASSERT_TRUE(reg.put("stable", a));
  std::atomic<bool> stop{false};
  std::atomic<std::uint64_t> misses{0};
  std::vector<std::thread> readers;
  for (int r = 0; r < 2; ++r) {
    readers.emplace_back([&] {
      while (!stop.load()) {
        if (reg.find_as<PingMsg>("stable") != a)
          misses.fetch_add(1);
      }
    });
  }
  for (int i = 0; i < 2000; ++i) {
    reg.put("k" + std::to_string(i % 50), a, true);
    if (i % 3 == 0)
      reg.erase("k" + std::to_string(i % 50));
  }
  stop.store(true);
  for (auto& t : readers)
    t.join();
  EXPECT_EQ(misses.load(), 0u);
}

}  // namespace
}  // namespace troupe::actor
