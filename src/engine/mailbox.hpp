#pragma once
// Mailbox<T>: the BatchEngine's inbox. Any thread may push; the one owner drains everything
// queued at once, blocking on a condition variable when asked to (no polling, no timers: an
// idle engine thread sleeps until a message arrives).
//
// Bound: the messages are admissions (at most n_parallel in flight, the Coordinator holds the
// rest in its bounded queue), releases (at most one per admission) and rare control messages,
// so the inbox needs no bound of its own.
//
// Thread-safety: push() from any thread; drain() from the owner thread only.

#include <condition_variable>
#include <mutex>
#include <utility>
#include <vector>

namespace troupe::engine {

template <class T>
class Mailbox {
 public:
  void push(T msg) {
    {
      std::lock_guard lock(mu_);
      inbox_.push_back(std::move(msg));
    }
    cv_.notify_one();
  }

  // Moves every queued message into `out` (cleared first; its capacity is kept, so a steady
  // state allocates nothing). With `block`, waits until at least one message is queued.
  void drain(std::vector<T>& out, bool block) {
    out.clear();
    std::unique_lock lock(mu_);
    if (block)
      cv_.wait(lock, [&] { return !inbox_.empty(); });
    out.swap(inbox_);
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<T> inbox_;  // guarded by mu_
};

}  // namespace troupe::engine
