// libFuzzer target: the acceptor side of the handshake given an attacker's hello and proof.
// A random proof must never be accepted.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <span>

#include "remote/detail/handshake.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace troupe::remote;
  if (size < 2)
    return 0;
  std::size_t split = std::min<std::size_t>(data[0], size - 1);
  auto bytes = std::span(reinterpret_cast<const std::byte*>(data + 1), size - 1);
  Handshake hs(Role::acceptor, "fuzz-secret", Hello{42, "127.0.0.1:7000", Nonce{}});
  auto proof = hs.on_hello(bytes.first(split));
  auto ok = hs.on_proof(bytes.subspan(split));
  if (ok.ok())
    std::abort();  // forged without the secret
  (void)proof;
  return 0;
}
