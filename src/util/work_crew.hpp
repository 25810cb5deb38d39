#pragma once
// WorkCrew: the calling thread and a few helper threads share out the items of one loop
// (`run(n, fn)`: fn(item, worker) once for each item in [0, n)), for a thread that has a burst
// of independent work between long waits, such as the engine thread sampling every sequence
// of a step. Items are claimed one at a time from a shared counter, so an item that costs
// more does not hold the others up behind it.
//
// The helpers sleep (a futex wait on an atomic) between runs: idle, they use no CPU; waking
// them costs a few microseconds, so a run is worth it only for work of much more than that.
// `run` does not allocate. `worker` is 0 on the calling thread and 1..helpers() on the
// helpers, so that each can use buffers of its own.
//
// Thread-safety: run() from one thread at a time (the owner's); the destructor joins.

#include <atomic>
#include <cstdint>
#include <thread>
#include <type_traits>
#include <vector>

namespace troupe::util {

class WorkCrew {
 public:
  explicit WorkCrew(std::int32_t helpers);
  ~WorkCrew();
  WorkCrew(const WorkCrew&) = delete;
  WorkCrew& operator=(const WorkCrew&) = delete;

  std::int32_t helpers() const { return static_cast<std::int32_t>(threads_.size()); }

  // fn(std::int32_t item, std::int32_t worker) for every item in [0, n), on this thread and
  // the helpers; returns when all are done. Exceptions must not leave fn.
  template <class Fn>
  void run(std::int32_t n, Fn& fn) {
    static_assert(std::is_invocable_v<Fn&, std::int32_t, std::int32_t>);
    run_erased(n, &fn, [](void* f, std::int32_t item, std::int32_t worker) {
      (*static_cast<Fn*>(f))(item, worker);
    });
  }

 private:
  using Trampoline = void (*)(void*, std::int32_t, std::int32_t);
  void run_erased(std::int32_t n, void* fn, Trampoline call);
  void work(std::int32_t worker);
  void helper(std::int32_t worker);

  std::vector<std::thread> threads_;
  void* fn_ = nullptr;
  Trampoline call_ = nullptr;
  std::int32_t n_ = 0;
  std::atomic<std::int32_t> next_{0};    // the next unclaimed item
  std::atomic<std::int32_t> busy_{0};    // helpers still in this run
  std::atomic<std::uint32_t> round_{0};  // bumped to start a run; helpers wait on it
  std::atomic<bool> stop_{false};
};

}  // namespace troupe::util
