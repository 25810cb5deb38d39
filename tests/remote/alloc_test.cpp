// Counting allocator: a tell allocates nothing in steady state.
//
// This file replaces the global operator new for the whole test binary; it only counts while
// a test switches counting on. (Test-only mutable globals: the allocator has nowhere else to
// keep its counters.)
#include <gtest/gtest.h>

#include <atomic>
#include <cstdlib>
#include <new>

#include "test_node.hpp"

namespace {
std::atomic<bool> g_counting{false};
std::atomic<std::uint64_t> g_allocations{0};
thread_local bool t_counting = false;
thread_local std::uint64_t t_allocations = 0;

void* counted_alloc(std::size_t n) {
  if (t_counting)
    ++t_allocations;
  if (g_counting.load(std::memory_order_relaxed))
    g_allocations.fetch_add(1);
  if (void* p = std::malloc(n ? n : 1))
    return p;
  throw std::bad_alloc();
}
}  // namespace

void* operator new(std::size_t n) {
  return counted_alloc(n);
}
void* operator new[](std::size_t n) {
  return counted_alloc(n);
}
void operator delete(void* p) noexcept {
  std::free(p);
}
void operator delete[](void* p) noexcept {
  std::free(p);
}
void operator delete(void* p, std::size_t) noexcept {
  std::free(p);
}
void operator delete[](void* p, std::size_t) noexcept {
  std::free(p);
}

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
  g_counting = true;
  t_counting = true;
  bool sent = send(kTells);
  t_counting = false;
  ASSERT_TRUE(sent);
  ASSERT_TRUE(sig.wait([&] { return received.load() == 20000 + kTells; }));
  g_counting = false;
  std::printf("allocations during %llu tells: caller thread %llu, whole process %llu\n",
              static_cast<unsigned long long>(kTells),
              static_cast<unsigned long long>(t_allocations),
              static_cast<unsigned long long>(g_allocations.load()));
  EXPECT_EQ(t_allocations, 0u);
  // Both nodes' I/O threads (writer, reader, dispatch) included; a few may come from asio's
  // first use of a code path, never one per message.
  EXPECT_LT(g_allocations.load(), kTells / 100);
}

}  // namespace
}  // namespace troupe::remote
