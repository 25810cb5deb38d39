// Counting allocator (tests/support/alloc_counter.hpp): a tell allocates nothing in steady
// state.
#include <gtest/gtest.h>

#include <atomic>

#include "support/alloc_counter.hpp"
#include "test_node.hpp"

namespace troupe::remote {
namespace {

using namespace test;

TEST(Alloc, TellAllocatesNothingInSteadyState) {
  Signal sig;
  TestNode a(fast_options(), &sig);
  std::atomic<std::uint64_t> received{0};
  a->publish("sink", [&](Envelope&) { received.fetch_add(1, std::memory_order_relaxed); });
  TestNode b(fast_options({a->address()}), &sig);
  ASSERT_TRUE(sig.wait([&] { return b.knows("sink"); }));
  RemoteRef ref = b->lookup("sink").value();
  std::array<std::byte, 64> payload{};

  auto send = [&](std::uint64_t n) {
    for (std::uint64_t i = 0; i < n;) {
      auto r = ref.tell_raw(payload);
      if (r.ok())
        ++i;
      else if (r.error().code != Errc::overloaded)
        return false;
    }
    return true;
  };
  ASSERT_TRUE(send(20000));  // warm-up: connections, buffers, thread caches
  ASSERT_TRUE(sig.wait([&] { return received.load() == 20000; }));

  constexpr std::uint64_t kTells = 100000;
  std::uint64_t process_before = ::troupe::test::allocation_count();
  std::uint64_t thread_before = ::troupe::test::thread_allocation_count();
  bool sent = send(kTells);
  std::uint64_t t_allocations = ::troupe::test::thread_allocation_count() - thread_before;
  ASSERT_TRUE(sent);
  ASSERT_TRUE(sig.wait([&] { return received.load() == 20000 + kTells; }));
  std::uint64_t g_allocations = ::troupe::test::allocation_count() - process_before;
  std::printf("allocations during %llu tells: caller thread %llu, whole process %llu\n",
              static_cast<unsigned long long>(kTells),
              static_cast<unsigned long long>(t_allocations),
              static_cast<unsigned long long>(g_allocations));
  EXPECT_EQ(t_allocations, 0u);
  // Both nodes' I/O threads (writer, reader, dispatch) included; a few may come from asio's
  // first use of a code path, never one per message.
  EXPECT_LT(g_allocations, kTells / 100);
}

}  // namespace
}  // namespace troupe::remote
