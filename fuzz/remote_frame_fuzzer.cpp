// libFuzzer target: the remote frame decoder (fed in chunks of varying size, as a socket
// would) and the payload decoders behind it (gossip messages, hellos).
#include <cstddef>
#include <cstdint>
#include <cstring>

#include "remote/detail/frame.hpp"
#include "remote/detail/handshake.hpp"
#include "remote/membership_protocol.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace troupe::remote;
  if (size == 0)
    return 0;
  std::size_t chunk = 1 + data[0] % 64;
  FrameDecoder dec(1 << 16, 64);
  std::size_t pos = 1;
  while (pos < size) {
    std::size_t n = std::min(chunk, size - pos);
    auto buf = dec.prepare(n);
    std::memcpy(buf.data(), data + pos, n);
    dec.commit(n);
    pos += n;
    for (;;) {
      auto f = dec.next();
      if (!f)
        return 0;  // malformed: the connection would close
      if (!f->has)
        break;
      if (f->frame.header.kind == FrameKind::gossip)
        (void)decode_gossip(f->frame.payload);
      if (f->frame.header.kind == FrameKind::hello)
        (void)decode_hello(f->frame.payload);
    }
  }
  return 0;
}
