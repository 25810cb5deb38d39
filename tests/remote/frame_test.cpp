#include "remote/detail/frame.hpp"

#include <gtest/gtest.h>

#include <cstring>
#include <vector>

#include "remote/wire.hpp"

namespace troupe::remote {
namespace {

std::vector<std::byte> frame_bytes(FrameHeader h, std::size_t payload_len, std::byte fill) {
  h.length = static_cast<std::uint32_t>(payload_len);
  std::vector<std::byte> out(kHeaderSize + payload_len, fill);
  encode_header(h, out.data());
  return out;
}

TEST(Frame, HeaderRoundTrips) {
  FrameHeader h{FrameKind::ask, 77, 0x0102030405060708, 0xfedcba9876543210, 42, 3};
  auto b = encode_header(h);
  auto d = decode_header(b, 1000);
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(*d, h);
  EXPECT_EQ(std::to_integer<int>(b[0]), 0x54);  // little-endian magic "TR"
  EXPECT_EQ(std::to_integer<int>(b[1]), 0x52);
}

TEST(Frame, RejectsBadMagicVersionKindAndSize) {
  FrameHeader h{FrameKind::tell, 10};
  auto good = encode_header(h);
  auto bad = good;
  bad[0] = std::byte{0};
  EXPECT_FALSE(decode_header(bad, 100).ok());
  bad = good;
  bad[2] = std::byte{9};
  EXPECT_FALSE(decode_header(bad, 100).ok());
  bad = good;
  bad[3] = std::byte{0};
  EXPECT_FALSE(decode_header(bad, 100).ok());
  bad[3] = std::byte{8};
  EXPECT_FALSE(decode_header(bad, 100).ok());
  EXPECT_FALSE(decode_header(good, 9).ok());  // oversized
  EXPECT_TRUE(decode_header(good, 10).ok());
  EXPECT_FALSE(decode_header(std::span(good).first(31), 100).ok());
}

TEST(FrameDecoder, DecodesFramesSplitAtEveryByte) {
  std::vector<std::byte> stream;
  for (int i = 0; i < 3; ++i) {
    auto f = frame_bytes({FrameKind::tell, 0, static_cast<std::uint64_t>(i)}, 5 + i * 100,
                         std::byte(i + 1));
    stream.insert(stream.end(), f.begin(), f.end());
  }
  FrameDecoder dec(1024, 16);
  int seen = 0;
  for (std::byte b : stream) {
    auto buf = dec.prepare(1);
    buf[0] = b;
    dec.commit(1);
    for (;;) {
      auto n = dec.next();
      ASSERT_TRUE(n.ok());
      if (!n->has)
        break;
      EXPECT_EQ(n->frame.header.target, static_cast<std::uint64_t>(seen));
      EXPECT_EQ(n->frame.payload.size(), 5u + seen * 100);
      for (auto p : n->frame.payload)
        EXPECT_EQ(p, std::byte(seen + 1));
      ++seen;
    }
  }
  EXPECT_EQ(seen, 3);
  EXPECT_EQ(dec.buffered(), 0u);
}

TEST(FrameDecoder, MissingTellsHowMuchToRead) {
  auto f = frame_bytes({FrameKind::tell}, 5000, std::byte{1});
  FrameDecoder dec(1 << 20, 64);
  EXPECT_EQ(dec.missing(), kHeaderSize);
  auto buf = dec.prepare(40);
  std::memcpy(buf.data(), f.data(), 40);
  dec.commit(40);
  EXPECT_EQ(dec.missing(), f.size() - 40);
  buf = dec.prepare(dec.missing());
  ASSERT_GE(buf.size(), f.size() - 40);
  std::memcpy(buf.data(), f.data() + 40, f.size() - 40);
  dec.commit(f.size() - 40);
  auto n = dec.next();
  ASSERT_TRUE(n.ok() && n->has);
  EXPECT_EQ(n->frame.payload.size(), 5000u);
}

TEST(FrameDecoder, OversizedFrameIsAnError) {
  auto f = frame_bytes({FrameKind::tell}, 2000, std::byte{1});
  FrameDecoder dec(1000, 4096);
  auto buf = dec.prepare(kHeaderSize);
  std::memcpy(buf.data(), f.data(), kHeaderSize);
  dec.commit(kHeaderSize);
  EXPECT_FALSE(dec.next().ok());
}

TEST(Wire, ReaderStopsAtEndOfInput) {
  std::vector<std::byte> buf(64);
  WireWriter w(buf);
  w.u32(7);
  w.str("hello");
  w.u64(9);
  WireReader r{std::span<const std::byte>(buf).first(w.size())};
  EXPECT_EQ(r.u32(), 7u);
  EXPECT_EQ(r.str(), "hello");
  EXPECT_EQ(r.u64(), 9u);
  EXPECT_TRUE(r.ok() && r.at_end());
  EXPECT_EQ(r.u8(), 0u);
  EXPECT_FALSE(r.ok());

  std::vector<std::byte> lying(4);
  WireWriter lw(lying);
  lw.u32(1000);  // a string length far beyond the input
  WireReader lr(lying);
  EXPECT_TRUE(lr.str().empty());
  EXPECT_FALSE(lr.ok());
}

}  // namespace
}  // namespace troupe::remote
