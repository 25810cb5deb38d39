#pragma once
// SendQueue: the bounded lock-free MPSC queue of frames waiting for one connection's writer.
//
// A ring of preallocated slots (Vyukov's bounded queue): a producer claims a position with
// one compare-and-swap, writes the 32-byte header and, when the payload fits kInlinePayload,
// the payload right behind it into the slot, then publishes the slot with a release store.
// Nothing is allocated for such a frame: the slots are the node pool. A larger payload is
// moved into the slot as an owned buffer (or copied into a new one), so the writer sends
// header and payload as two iovecs without joining them.
//
// The single consumer looks at a run of published slots in place (peek), writes them with
// one writev, and only then releases them (release), so nothing is copied on the way out.
//
// Bound: `capacity` frames (a power of two). push() on a full queue returns false at once and
// counts the rejection; the caller turns that into Errc::overloaded. Never blocks.
//
// Thread-safety: push*() from any number of threads. peek(), release(), front_ready() and the
// destructor from the one consumer at a time (the holder of the connection's writer role,
// which hands the role over with acquire/release operations).

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <span>
#include <vector>

#include "remote/detail/frame.hpp"

namespace troupe::remote {

inline constexpr std::size_t kInlinePayload = 224;  // slot = 256 bytes of header + payload

class SendQueue {
 public:
  struct Slot {
    std::atomic<std::uint64_t> seq{0};
    std::uint32_t inline_len = 0;  // header + inline payload bytes in `data`
    std::vector<std::byte> big;    // payload when it did not fit inline
    alignas(64) std::byte data[kHeaderSize + kInlinePayload];
  };

  // `capacity` is rounded up to a power of two (at least 2).
  explicit SendQueue(std::size_t capacity);
  SendQueue(const SendQueue&) = delete;
  SendQueue& operator=(const SendQueue&) = delete;

  // Enqueues a frame whose payload is copied (inline when small, else into a new buffer).
  // The header's length is set from the payload. False when full.
  bool push(FrameHeader h, std::span<const std::byte> payload);

  // Enqueues a frame taking ownership of `payload` (no copy). False when full; `payload` is
  // then left untouched.
  bool push(FrameHeader h, std::vector<std::byte>&& payload);

  // Enqueues a frame of `len` payload bytes that `fill(std::span<std::byte>)` writes in place
  // (inline when small, else into a new buffer). `fill` must not throw or push to this queue.
  template <class Fill>
  bool push_with(FrameHeader h, std::size_t len, Fill&& fill) {
    Slot* s = claim();
    if (!s)
      return false;
    h.length = static_cast<std::uint32_t>(len);
    encode_header(h, s->data);
    if (len <= kInlinePayload) {
      fill(std::span<std::byte>(s->data + kHeaderSize, len));
      s->inline_len = static_cast<std::uint32_t>(kHeaderSize + len);
    } else {
      s->big.resize(len);
      fill(std::span<std::byte>(s->big.data(), len));
      s->inline_len = kHeaderSize;
    }
    publish(s);
    return true;
  }

  // Consumer: the i-th unreleased slot if it is published, else nullptr. Slots are published
  // in order of their positions, so the first nullptr ends the run.
  Slot* peek(std::size_t i) noexcept;
  bool front_ready() noexcept { return peek(0) != nullptr; }

  // Consumer: frees the first `n` peeked slots for producers.
  void release(std::size_t n) noexcept;

  // Positions: every push so far, and every frame released by the consumer so far. Any thread.
  std::uint64_t pushed() const noexcept { return enqueue_pos_.load(std::memory_order_acquire); }
  std::uint64_t released() const noexcept { return released_.load(std::memory_order_acquire); }

  std::size_t capacity() const noexcept { return mask_ + 1; }
  std::uint64_t rejected() const noexcept { return rejected_.load(std::memory_order_relaxed); }

 private:
  Slot* claim() noexcept;
  void publish(Slot* s) noexcept;

  std::unique_ptr<Slot[]> slots_;
  std::size_t mask_;
  alignas(64) std::atomic<std::uint64_t> enqueue_pos_{0};
  alignas(64) std::uint64_t dequeue_pos_ = 0;  // consumer only
  std::atomic<std::uint64_t> released_{0};
  std::atomic<std::uint64_t> rejected_{0};
};

}  // namespace troupe::remote
