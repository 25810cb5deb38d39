#pragma once
// A counting replacement of the global operator new, for the tests and benchmarks that prove
// a path allocates nothing (the remote tell path, ...).
//
// Link the object library `troupe_test_alloc_counter` into the executable: its operator new
// and operator delete replace the default ones for the whole program (the object library
// makes sure they are always linked in). Every allocation through operator new is counted,
// from the start of the program; measure a stretch by taking the difference of two readings:
//
//   auto before = troupe::test::thread_allocation_count();
//   hot_path();
//   EXPECT_EQ(troupe::test::thread_allocation_count() - before, 0u);
//
// Thread-safety: both functions may be called from any thread. allocation_count() is one
// relaxed atomic counter (exact once the threads being measured have synchronised with the
// reader); thread_allocation_count() counts the calling thread's allocations only.

#include <cstdint>

namespace troupe::test {

// Allocations by every thread of the process so far.
std::uint64_t allocation_count() noexcept;
// Allocations by the calling thread so far.
std::uint64_t thread_allocation_count() noexcept;

}  // namespace troupe::test
