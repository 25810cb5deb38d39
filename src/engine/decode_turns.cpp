#include "engine/decode_turns.hpp"

#include <utility>

#include "engine/threadpool.hpp"

namespace troupe::engine {

DecodeTurns& DecodeTurns::process() {
  static DecodeTurns turns;
  return turns;
}

DecodeTurns::Turn DecodeTurns::take(CpuThreadpool* pool) {
  std::unique_lock lock(mutex_);
  const std::uint64_t ticket = next_ticket_++;
  if (ticket != serving_) {
    waits_.fetch_add(1, std::memory_order_relaxed);
    lock.unlock();
    if (pool)
      pool->pause();
    lock.lock();
    served_.wait(lock, [&] { return serving_ == ticket; });
  }
  return Turn(*this, pool);
}

void DecodeTurns::end_turn(CpuThreadpool* pool) {
  std::unique_lock lock(mutex_);
  const bool others_wait = next_ticket_ > serving_ + 1;
  if (others_wait && pool) {
    // The workers would poll for the next graph while the waiting engine's graph runs.
    lock.unlock();
    pool->pause();
    lock.lock();
  }
  ++serving_;
  lock.unlock();
  if (others_wait)
    served_.notify_all();
}

DecodeTurns::Turn::Turn(Turn&& other) noexcept
    : turns_(std::exchange(other.turns_, nullptr)), pool_(other.pool_) {}

DecodeTurns::Turn::~Turn() {
  if (turns_)
    turns_->end_turn(pool_);
}

}  // namespace troupe::engine
