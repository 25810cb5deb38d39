#include "engine/decode_turns.hpp"

#include <utility>

#include "engine/threadpool.hpp"

namespace troupe::engine {

DecodeTurns& DecodeTurns::process() {
  static DecodeTurns turns;
  return turns;
}

DecodeTurns::Turn DecodeTurns::take(CpuThreadpool* pool) {
  if (!mutex_.try_lock()) {
    waits_.fetch_add(1, std::memory_order_relaxed);
    waiting_.fetch_add(1, std::memory_order_relaxed);
    if (pool)
      pool->pause();
    mutex_.lock();
    waiting_.fetch_sub(1, std::memory_order_relaxed);
  }
  return Turn(*this, pool);
}

DecodeTurns::Turn::Turn(Turn&& other) noexcept
    : turns_(std::exchange(other.turns_, nullptr)), pool_(other.pool_) {}

DecodeTurns::Turn::~Turn() {
  if (!turns_)
    return;
  // The workers would poll for the next graph while the waiting engine's graph runs.
  if (pool_ && turns_->waiting_.load(std::memory_order_relaxed) > 0)
    pool_->pause();
  turns_->mutex_.unlock();
}

}  // namespace troupe::engine
