#pragma once
// Fixed-layout, little-endian encoding for remote messages (see docs/remote.md for why not
// FlatBuffers). A message type T is sendable when it has a `Codec<T>` specialisation:
//
//   template <> struct troupe::remote::Codec<Ping> {
//     static constexpr std::uint32_t type_id = 17;      // stable, unique per protocol
//     static void encode(const Ping& m, WireWriter& w) { w.u64(m.seq); w.str(m.note); }
//     static bool decode(WireReader& r, Ping& m) { m.seq = r.u64(); m.note = r.str(); return
//     r.ok(); }
//   };
//
// Encoding runs twice per message: once with a counting writer (no buffer) to learn the size,
// once into the destination buffer; so encode() must be deterministic and side-effect free.
// Readers never read past the input: a short or malformed input sets the reader's error flag
// and every later read returns zero/empty values.
//
// Thread-safety: WireWriter and WireReader are plain values used by one thread at a time.

#include <concepts>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <string>
#include <string_view>

namespace troupe::remote {

template <class T>
struct Codec;  // specialised per message type

// Writes into a caller-owned buffer, or only counts bytes when constructed without one.
class WireWriter {
 public:
  WireWriter() = default;  // counting mode
  explicit WireWriter(std::span<std::byte> out) : out_(out), counting_(false) {}

  void u8(std::uint8_t v) { put(&v, 1); }
  void u16(std::uint16_t v) { put_le(v); }
  void u32(std::uint32_t v) { put_le(v); }
  void u64(std::uint64_t v) { put_le(v); }
  void i64(std::int64_t v) { put_le(static_cast<std::uint64_t>(v)); }
  void f64(double v) {
    std::uint64_t u;
    std::memcpy(&u, &v, 8);
    put_le(u);
  }
  // u32 length then the bytes.
  void str(std::string_view s) {
    u32(static_cast<std::uint32_t>(s.size()));
    put(s.data(), s.size());
  }
  void bytes(std::span<const std::byte> b) {
    u32(static_cast<std::uint32_t>(b.size()));
    put(b.data(), b.size());
  }

  // Bytes written (or counted) so far.
  std::size_t size() const noexcept { return pos_; }
  // False when a write did not fit the buffer (the buffer then holds a prefix).
  bool ok() const noexcept { return ok_; }

 private:
  template <class U>
  void put_le(U v) {
    unsigned char b[sizeof(U)];
    for (std::size_t i = 0; i < sizeof(U); ++i)
      b[i] = static_cast<unsigned char>(v >> (8 * i));
    put(b, sizeof(U));
  }
  void put(const void* p, std::size_t n) {
    if (!counting_) {
      if (n > out_.size() - pos_ || pos_ > out_.size()) {
        ok_ = false;
        return;
      }
      if (n)
        std::memcpy(out_.data() + pos_, p, n);
    }
    pos_ += n;
  }

  std::span<std::byte> out_;
  std::size_t pos_ = 0;
  bool counting_ = true;
  bool ok_ = true;
};

// Reads from a borrowed buffer that must outlive the reader and any string_view it returned.
class WireReader {
 public:
  explicit WireReader(std::span<const std::byte> in) : in_(in) {}

  std::uint8_t u8() { return get_le<std::uint8_t>(); }
  std::uint16_t u16() { return get_le<std::uint16_t>(); }
  std::uint32_t u32() { return get_le<std::uint32_t>(); }
  std::uint64_t u64() { return get_le<std::uint64_t>(); }
  std::int64_t i64() { return static_cast<std::int64_t>(get_le<std::uint64_t>()); }
  double f64() {
    std::uint64_t u = get_le<std::uint64_t>();
    double d;
    std::memcpy(&d, &u, 8);
    return d;
  }
  // A view into the input (zero-copy); empty on error.
  std::string_view str_view() {
    auto b = bytes_view();
    return {reinterpret_cast<const char*>(b.data()), b.size()};
  }
  std::string str() { return std::string(str_view()); }
  std::span<const std::byte> bytes_view() {
    std::uint32_t n = u32();
    if (!ok_ || n > in_.size() - pos_) {
      ok_ = false;
      return {};
    }
    auto s = in_.subspan(pos_, n);
    pos_ += n;
    return s;
  }

  bool ok() const noexcept { return ok_; }
  bool at_end() const noexcept { return pos_ == in_.size(); }
  std::size_t remaining() const noexcept { return ok_ ? in_.size() - pos_ : 0; }
  // Marks the input malformed (for semantic checks in decoders).
  void fail() noexcept { ok_ = false; }

 private:
  template <class U>
  U get_le() {
    if (!ok_ || sizeof(U) > in_.size() - pos_) {
      ok_ = false;
      return 0;
    }
    U v = 0;
    for (std::size_t i = 0; i < sizeof(U); ++i) {
      v |= static_cast<U>(static_cast<U>(std::to_integer<unsigned char>(in_[pos_ + i])) << (8 * i));
    }
    pos_ += sizeof(U);
    return v;
  }

  std::span<const std::byte> in_;
  std::size_t pos_ = 0;
  bool ok_ = true;
};

template <class T>
concept Encodable = requires(const T& m, WireWriter& w) {
  { Codec<T>::type_id } -> std::convertible_to<std::uint32_t>;
  Codec<T>::encode(m, w);
};

// Encoded size of `m`.
template <class T>
std::size_t encoded_size(const T& m) {
  WireWriter counter;
  Codec<T>::encode(m, counter);
  return counter.size();
}

}  // namespace troupe::remote
