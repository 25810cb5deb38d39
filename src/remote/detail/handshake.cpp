#include "remote/detail/handshake.hpp"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include <cstring>
#include <stdexcept>

#include "remote/wire.hpp"

namespace troupe::remote {

namespace {
constexpr std::string_view kLabel = "troupe/1";
constexpr std::size_t kMaxAddress = 255;

Role other(Role r) {
  return r == Role::dialer ? Role::acceptor : Role::dialer;
}
}  // namespace

std::vector<std::byte> encode_hello(const Hello& h) {
  std::vector<std::byte> out(8 + 4 + h.address.size() + h.nonce.size());
  WireWriter w(out);
  w.u64(h.node);
  w.str(h.address);
  for (std::byte b : h.nonce)
    w.u8(std::to_integer<std::uint8_t>(b));
  return out;
}

Result<Hello> decode_hello(std::span<const std::byte> payload) {
  WireReader r(payload);
  Hello h;
  h.node = r.u64();
  auto addr = r.str_view();
  for (auto& b : h.nonce)
    b = std::byte{r.u8()};
  if (!r.ok() || !r.at_end() || addr.size() > kMaxAddress || h.node == 0) {
    return Error{Errc::invalid_request, "malformed hello"};
  }
  h.address = std::string(addr);
  return h;
}

Mac compute_proof(std::string_view secret, Role prover, const Nonce& verifier_nonce,
                  const Nonce& prover_nonce, NodeId prover_node) {
  std::array<std::byte, 8 + 1 + 32 + 32 + 8> msg{};
  WireWriter w(msg);
  for (char c : kLabel)
    w.u8(static_cast<std::uint8_t>(c));
  w.u8(static_cast<std::uint8_t>(prover));
  for (std::byte b : verifier_nonce)
    w.u8(std::to_integer<std::uint8_t>(b));
  for (std::byte b : prover_nonce)
    w.u8(std::to_integer<std::uint8_t>(b));
  w.u64(prover_node);
  Mac mac{};
  unsigned int len = 0;
  HMAC(EVP_sha256(), secret.data(), static_cast<int>(secret.size()),
       reinterpret_cast<const unsigned char*>(msg.data()), msg.size(),
       reinterpret_cast<unsigned char*>(mac.data()), &len);
  return mac;
}

Nonce random_nonce() {
  Nonce n{};
  if (RAND_bytes(reinterpret_cast<unsigned char*>(n.data()), static_cast<int>(n.size())) != 1) {
    throw std::runtime_error("RAND_bytes failed");  // unexpected: no entropy source
  }
  return n;
}

Handshake::Handshake(Role role, std::string secret, Hello self)
    : role_(role), secret_(std::move(secret)), self_(std::move(self)) {}

Result<Mac> Handshake::on_hello(std::span<const std::byte> payload) {
  auto h = decode_hello(payload);
  if (!h)
    return h.error();
  if (h->nonce == self_.nonce || h->node == self_.node) {
    return Error{Errc::unauthorized, "peer echoed our hello"};
  }
  peer_ = std::move(h.value());
  have_peer_ = true;
  return compute_proof(secret_, role_, peer_.nonce, self_.nonce, self_.node);
}

Result<void> Handshake::on_proof(std::span<const std::byte> payload) const {
  if (!have_peer_)
    return Error{Errc::invalid_request, "proof before hello"};
  Mac want = compute_proof(secret_, other(role_), self_.nonce, peer_.nonce, peer_.node);
  if (payload.size() != want.size() ||
      CRYPTO_memcmp(payload.data(), want.data(), want.size()) != 0) {
    return Error{Errc::unauthorized, "wrong cluster secret"};
  }
  return {};
}

}  // namespace troupe::remote
