#include "remote/detail/frame.hpp"

#include <algorithm>
#include <cstring>

#include "remote/wire.hpp"

namespace troupe::remote {

void encode_header(const FrameHeader& h, std::byte* out) noexcept {
  WireWriter w({out, kHeaderSize});
  w.u16(kFrameMagic);
  w.u8(kProtocolVersion);
  w.u8(static_cast<std::uint8_t>(h.kind));
  w.u32(h.length);
  w.u64(h.target);
  w.u64(h.correlation);
  w.u32(h.type);
  w.u32(h.status);
}

Result<FrameHeader> decode_header(std::span<const std::byte> in, std::uint32_t max_payload) {
  if (in.size() < kHeaderSize)
    return Error{Errc::invalid_request, "short frame header"};
  WireReader r(in.first(kHeaderSize));
  if (r.u16() != kFrameMagic)
    return Error{Errc::invalid_request, "bad frame magic"};
  if (r.u8() != kProtocolVersion)
    return Error{Errc::invalid_request, "unsupported version"};
  std::uint8_t kind = r.u8();
  if (kind < 1 || kind > static_cast<std::uint8_t>(FrameKind::gossip)) {
    return Error{Errc::invalid_request, "unknown frame kind"};
  }
  FrameHeader h;
  h.kind = static_cast<FrameKind>(kind);
  h.length = r.u32();
  h.target = r.u64();
  h.correlation = r.u64();
  h.type = r.u32();
  h.status = r.u32();
  if (h.length > max_payload)
    return Error{Errc::invalid_request, "frame too large"};
  return h;
}

FrameDecoder::FrameDecoder(std::uint32_t max_payload, std::size_t initial_capacity)
    : max_payload_(max_payload),
      buf_(std::make_unique<std::byte[]>(initial_capacity)),
      capacity_(initial_capacity) {}

std::span<std::byte> FrameDecoder::prepare(std::size_t min_free) {
  if (capacity_ - end_ >= min_free)
    return {buf_.get() + end_, capacity_ - end_};
  // Compact: move the partial frame to the front.
  std::size_t live = end_ - begin_;
  if (begin_ > 0) {
    std::memmove(buf_.get(), buf_.get() + begin_, live);
    begin_ = 0;
    end_ = live;
  }
  if (capacity_ - end_ < min_free) {
    std::size_t want = std::max(capacity_ * 2, end_ + min_free);
    auto bigger = std::make_unique<std::byte[]>(want);
    std::memcpy(bigger.get(), buf_.get(), live);
    buf_ = std::move(bigger);
    capacity_ = want;
  }
  return {buf_.get() + end_, capacity_ - end_};
}

Result<FrameDecoder::Next> FrameDecoder::next() {
  std::size_t avail = end_ - begin_;
  if (avail < kHeaderSize) {
    if (avail == 0)
      begin_ = end_ = 0;  // cheap reset keeps reads at the front
    return Next{};
  }
  std::span<const std::byte> in{buf_.get() + begin_, avail};
  auto h = decode_header(in, max_payload_);
  if (!h)
    return h.error();
  std::size_t total = kHeaderSize + h->length;
  if (avail < total)
    return Next{};
  Next n{true, FrameView{*h, in.subspan(kHeaderSize, h->length)}};
  begin_ += total;
  return n;
}

std::size_t FrameDecoder::missing() const noexcept {
  std::size_t avail = end_ - begin_;
  if (avail < kHeaderSize)
    return kHeaderSize - avail;
  WireReader r({buf_.get() + begin_ + 4, 4});
  std::size_t total = kHeaderSize + r.u32();
  return total > avail ? total - avail : 0;
}

}  // namespace troupe::remote
