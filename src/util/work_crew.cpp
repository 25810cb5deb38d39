#include "util/work_crew.hpp"

#include <string>

#include "util/thread_name.hpp"

namespace troupe::util {

WorkCrew::WorkCrew(std::int32_t helpers) {
  threads_.reserve(static_cast<std::size_t>(helpers > 0 ? helpers : 0));
  for (std::int32_t w = 1; w <= helpers; ++w)
    threads_.emplace_back([this, w] { helper(w); });
}

WorkCrew::~WorkCrew() {
  stop_.store(true, std::memory_order_relaxed);
  round_.fetch_add(1, std::memory_order_release);
  round_.notify_all();
  for (auto& t : threads_)
    t.join();
}

void WorkCrew::run_erased(std::int32_t n, void* fn, Trampoline call) {
  if (n <= 0)
    return;
  fn_ = fn;
  call_ = call;
  n_ = n;
  next_.store(0, std::memory_order_relaxed);
  if (n == 1 || threads_.empty()) {  // nothing to share
    work(0);
    return;
  }
  busy_.store(helpers(), std::memory_order_relaxed);
  round_.fetch_add(1, std::memory_order_release);  // publishes fn_, call_, n_, next_, busy_
  round_.notify_all();
  work(0);
  // Every helper checks in before fn_ may change, those that found nothing left included.
  for (std::int32_t left = busy_.load(std::memory_order_acquire); left != 0;
       left = busy_.load(std::memory_order_acquire))
    busy_.wait(left, std::memory_order_acquire);
}

void WorkCrew::work(std::int32_t worker) {
  for (std::int32_t item = next_.fetch_add(1, std::memory_order_relaxed); item < n_;
       item = next_.fetch_add(1, std::memory_order_relaxed))
    call_(fn_, item, worker);
}

void WorkCrew::helper(std::int32_t worker) {
  set_thread_name("troupe-crew-" + std::to_string(worker));
  std::uint32_t seen = 0;
  for (;;) {
    round_.wait(seen, std::memory_order_acquire);
    seen = round_.load(std::memory_order_acquire);
    if (stop_.load(std::memory_order_relaxed))
      return;
    work(worker);
    if (busy_.fetch_sub(1, std::memory_order_acq_rel) == 1)
      busy_.notify_one();
  }
}

}  // namespace troupe::util
