#include "remote/detail/send_queue.hpp"

#include <bit>

namespace troupe::remote {

SendQueue::SendQueue(std::size_t capacity)
    : slots_(std::make_unique<Slot[]>(std::bit_ceil(std::max<std::size_t>(capacity, 2)))),
      mask_(std::bit_ceil(std::max<std::size_t>(capacity, 2)) - 1) {
  for (std::size_t i = 0; i <= mask_; ++i)
    slots_[i].seq.store(i, std::memory_order_relaxed);
}

SendQueue::Slot* SendQueue::claim() noexcept {
  std::uint64_t pos = enqueue_pos_.load(std::memory_order_relaxed);
  for (;;) {
    Slot* s = &slots_[pos & mask_];
    std::uint64_t seq = s->seq.load(std::memory_order_acquire);
    auto diff = static_cast<std::int64_t>(seq - pos);
    if (diff == 0) {
      if (enqueue_pos_.compare_exchange_weak(pos, pos + 1, std::memory_order_relaxed))
        return s;
    } else if (diff < 0) {
      rejected_.fetch_add(1, std::memory_order_relaxed);
      return nullptr;  // full
    } else {
      pos = enqueue_pos_.load(std::memory_order_relaxed);
    }
  }
}

void SendQueue::publish(Slot* s) noexcept {
  // The slot's position is its current seq; publishing makes it seq + 1.
  s->seq.store(s->seq.load(std::memory_order_relaxed) + 1, std::memory_order_release);
}

bool SendQueue::push(FrameHeader h, std::span<const std::byte> payload) {
  return push_with(h, payload.size(), [&](std::span<std::byte> out) {
    if (!payload.empty())
      std::memcpy(out.data(), payload.data(), payload.size());
  });
}

bool SendQueue::push(FrameHeader h, std::vector<std::byte>&& payload) {
  if (payload.size() <= kInlinePayload)
    return push(h, std::span<const std::byte>(payload));
  Slot* s = claim();
  if (!s)
    return false;
  h.length = static_cast<std::uint32_t>(payload.size());
  encode_header(h, s->data);
  s->inline_len = kHeaderSize;
  s->big = std::move(payload);
  publish(s);
  return true;
}

SendQueue::Slot* SendQueue::peek(std::size_t i) noexcept {
  std::uint64_t pos = dequeue_pos_ + i;
  if (i > mask_)
    return nullptr;
  Slot* s = &slots_[pos & mask_];
  return s->seq.load(std::memory_order_acquire) == pos + 1 ? s : nullptr;
}

void SendQueue::release(std::size_t n) noexcept {
  for (std::size_t i = 0; i < n; ++i) {
    Slot* s = &slots_[(dequeue_pos_ + i) & mask_];
    if (!s->big.empty())
      std::vector<std::byte>().swap(s->big);
    s->seq.store(dequeue_pos_ + i + mask_ + 1, std::memory_order_release);
  }
  dequeue_pos_ += n;
  released_.store(dequeue_pos_, std::memory_order_release);
}

}  // namespace troupe::remote
