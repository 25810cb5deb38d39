#pragma once
// The remote wire frame: a fixed 32-byte little-endian header followed by `length` payload
// bytes.
//
//   offset size field
//        0    2 magic        0x5254 ("TR")
//        2    1 version      kProtocolVersion; a peer with another version is refused
//        3    1 kind         FrameKind
//        4    4 length       payload bytes that follow the header
//        8    8 target       actor id on the receiving node (0 for control frames)
//       16    8 correlation  ask id (ask, reply, error); 0 otherwise
//       24    4 type         message type id (Codec<T>::type_id; 0 = raw bytes)
//       28    4 status       Errc + 1 on FrameKind::error; 0 otherwise
//
// Thread-safety: plain values and pure functions.

#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string_view>

#include "util/result.hpp"

namespace troupe::remote {

inline constexpr std::uint16_t kFrameMagic = 0x5254;
inline constexpr std::uint8_t kProtocolVersion = 2;  // 2: replies travel on the ask's connection
inline constexpr std::size_t kHeaderSize = 32;

enum class FrameKind : std::uint8_t {
  hello = 1,   // handshake: node identity and challenge nonce (handshake.hpp)
  proof = 2,   // handshake: HMAC over the peer's challenge
  tell = 3,    // one-way message to `target`
  ask = 4,     // request to `target`; answered by reply or error with the same correlation
  reply = 5,   // successful answer to an ask
  error = 6,   // failed ask: status holds the Errc, payload the message text
  gossip = 7,  // membership protocol (membership_protocol.hpp)
};

struct FrameHeader {
  FrameKind kind = FrameKind::tell;
  std::uint32_t length = 0;
  std::uint64_t target = 0;
  std::uint64_t correlation = 0;
  std::uint32_t type = 0;
  std::uint32_t status = 0;
  friend bool operator==(const FrameHeader&, const FrameHeader&) = default;
};

using HeaderBytes = std::array<std::byte, kHeaderSize>;

// Writes `h` into exactly kHeaderSize bytes at `out`.
void encode_header(const FrameHeader& h, std::byte* out) noexcept;

inline HeaderBytes encode_header(const FrameHeader& h) noexcept {
  HeaderBytes b;
  encode_header(h, b.data());
  return b;
}

// Parses and validates a header from `in` (at least kHeaderSize bytes). Errors
// (Errc::invalid_request): bad magic, unknown version or kind, length above `max_payload`.
Result<FrameHeader> decode_header(std::span<const std::byte> in, std::uint32_t max_payload);

// A frame viewed in place: `payload` points into the decoder's buffer and is valid only until
// the decoder is used again.
struct FrameView {
  FrameHeader header;
  std::span<const std::byte> payload;
};

// Incremental decoder over one reusable buffer: the reader appends what the socket gave, then
// takes complete frames out in place; a partial frame stays for the next read. The buffer
// grows to the largest frame seen (at most kHeaderSize + max_payload) and never shrinks, so a
// steady stream of frames costs no allocation.
//
// Thread-safety: one thread at a time (the connection's reader).
class FrameDecoder {
 public:
  explicit FrameDecoder(std::uint32_t max_payload,
                        std::size_t initial_capacity = std::size_t{64} * 1024);

  // Where the next read should put bytes: at least `min_free` bytes (compacting or growing the
  // buffer first). Then call commit(n) with the number of bytes read.
  std::span<std::byte> prepare(std::size_t min_free = 4096);
  void commit(std::size_t n) noexcept { end_ += n; }

  // The next complete frame, or an empty optional-like result: Result holds false in `has`
  // when more bytes are needed. A malformed header is an error; the connection must close.
  struct Next {
    bool has = false;
    FrameView frame;
  };
  Result<Next> next();

  // Changes the limit for frames not yet decoded (e.g. raised once a handshake is done).
  void set_max_payload(std::uint32_t max_payload) noexcept { max_payload_ = max_payload; }

  // Bytes still missing to complete the frame at the front (at least 1 when the buffer holds
  // only part of a header); 0 when a complete frame is buffered.
  std::size_t missing() const noexcept;

  // Bytes buffered but not yet returned as frames.
  std::size_t buffered() const noexcept { return end_ - begin_; }

 private:
  std::uint32_t max_payload_;
  std::unique_ptr<std::byte[]> buf_;
  std::size_t capacity_;
  std::size_t begin_ = 0;  // first unconsumed byte
  std::size_t end_ = 0;    // one past the last received byte
};

}  // namespace troupe::remote
