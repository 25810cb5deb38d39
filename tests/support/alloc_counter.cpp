// The counting operator new behind alloc_counter.hpp. It forwards to malloc/aligned_alloc
// and counts each call twice: once in a process-wide relaxed atomic and once in a
// thread-local counter. (Program-wide mutable state by necessity: a replacement operator new
// has nowhere else to keep its counters.)
#include "support/alloc_counter.hpp"

#include <atomic>
#include <cstdlib>
#include <new>

namespace {

std::atomic<std::uint64_t> g_allocations{0};
// initial-exec: a plain TLS slot of the executable, so counting never calls into the
// dynamic loader (which could allocate) from inside operator new.
__attribute__((tls_model("initial-exec"))) thread_local std::uint64_t t_allocations = 0;

void count() noexcept {
  ++t_allocations;
  g_allocations.fetch_add(1, std::memory_order_relaxed);
}

void* counted_alloc_or_null(std::size_t n) noexcept {
  count();
  return std::malloc(n ? n : 1);
}

void* counted_alloc(std::size_t n) {
  if (void* p = counted_alloc_or_null(n))
    return p;
  throw std::bad_alloc();
}

void* counted_aligned_alloc_or_null(std::size_t n, std::align_val_t al) noexcept {
  count();
  auto align = static_cast<std::size_t>(al);
  // aligned_alloc wants a size that is a multiple of the alignment.
  std::size_t size = ((n ? n : 1) + align - 1) / align * align;
  return std::aligned_alloc(align, size);
}

void* counted_aligned_alloc(std::size_t n, std::align_val_t al) {
  if (void* p = counted_aligned_alloc_or_null(n, al))
    return p;
  throw std::bad_alloc();
}

}  // namespace

namespace troupe::test {

std::uint64_t allocation_count() noexcept {
  return g_allocations.load(std::memory_order_relaxed);
}

std::uint64_t thread_allocation_count() noexcept {
  return t_allocations;
}

}  // namespace troupe::test

// Every form, the nothrow ones included: libstdc++'s nothrow forms would call the throwing
// ones, but a sanitizer's runtime defines each form itself, and its nothrow new paired with
// the free() below is an alloc-dealloc mismatch (std::stable_sort's temporary buffer).
void* operator new(std::size_t n) {
  return counted_alloc(n);
}
void* operator new[](std::size_t n) {
  return counted_alloc(n);
}
void* operator new(std::size_t n, std::align_val_t al) {
  return counted_aligned_alloc(n, al);
}
void* operator new[](std::size_t n, std::align_val_t al) {
  return counted_aligned_alloc(n, al);
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
void operator delete(void* p, std::align_val_t) noexcept {
  std::free(p);
}
void operator delete[](void* p, std::align_val_t) noexcept {
  std::free(p);
}
void operator delete(void* p, std::size_t, std::align_val_t) noexcept {
  std::free(p);
}
void operator delete[](void* p, std::size_t, std::align_val_t) noexcept {
  std::free(p);
}
void* operator new(std::size_t n, const std::nothrow_t&) noexcept {
  return counted_alloc_or_null(n);
}
void* operator new[](std::size_t n, const std::nothrow_t&) noexcept {
  return counted_alloc_or_null(n);
}
void* operator new(std::size_t n, std::align_val_t al, const std::nothrow_t&) noexcept {
  return counted_aligned_alloc_or_null(n, al);
}
void* operator new[](std::size_t n, std::align_val_t al, const std::nothrow_t&) noexcept {
  return counted_aligned_alloc_or_null(n, al);
}
void operator delete(void* p, const std::nothrow_t&) noexcept {
  std::free(p);
}
void operator delete[](void* p, const std::nothrow_t&) noexcept {
  std::free(p);
}
void operator delete(void* p, std::align_val_t, const std::nothrow_t&) noexcept {
  std::free(p);
}
void operator delete[](void* p, std::align_val_t, const std::nothrow_t&) noexcept {
  std::free(p);
}
