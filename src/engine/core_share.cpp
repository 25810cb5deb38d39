#include "engine/core_share.hpp"

#include <algorithm>
#include <bit>
#include <utility>

namespace troupe::engine {
namespace {

std::uint64_t bit(int index) {
  return std::uint64_t{1} << static_cast<unsigned>(index);
}

}  // namespace

CoreShare& CoreShare::process() {
  static CoreShare share;
  return share;
}

std::optional<CoreShare::Seat> CoreShare::take_seat() {
  std::uint64_t taken = seats_.load(std::memory_order_relaxed);
  while (taken != ~std::uint64_t{0}) {
    const int index = std::countr_one(taken);
    if (seats_.compare_exchange_weak(taken, taken | bit(index), std::memory_order_acq_rel))
      return Seat(*this, index);
  }
  return std::nullopt;
}

int CoreShare::busy_count() const noexcept {
  return std::popcount(busy_.load(std::memory_order_relaxed));
}

std::int32_t CoreShare::share_of(std::int32_t n_threads, int busy, int rank) noexcept {
  busy = std::max(busy, 1);
  const std::int32_t even = n_threads / busy;
  const std::int32_t extra = rank < n_threads % busy ? 1 : 0;
  return std::max<std::int32_t>(1, even + extra);
}

CoreShare::Seat::Seat(Seat&& other) noexcept
    : share_(std::exchange(other.share_, nullptr)), index_(other.index_), busy_(other.busy_) {}

CoreShare::Seat::~Seat() {
  if (!share_)
    return;
  idle();
  share_->seats_.fetch_and(~bit(index_), std::memory_order_acq_rel);
}

void CoreShare::Seat::busy() noexcept {
  if (busy_)
    return;
  share_->busy_.fetch_or(bit(index_), std::memory_order_relaxed);
  busy_ = true;
}

void CoreShare::Seat::idle() noexcept {
  if (!busy_)
    return;
  share_->busy_.fetch_and(~bit(index_), std::memory_order_relaxed);
  busy_ = false;
}

std::int32_t CoreShare::Seat::threads(std::int32_t n_threads) const noexcept {
  const std::uint64_t busy = share_->busy_.load(std::memory_order_relaxed) | bit(index_);
  const int rank = std::popcount(busy & (bit(index_) - 1));
  return share_of(n_threads, std::popcount(busy), rank);
}

}  // namespace troupe::engine
