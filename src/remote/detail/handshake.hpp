#pragma once
// The HMAC-SHA256 challenge-response that opens every connection. Nothing else is processed
// from a peer until it has proved it knows the cluster secret.
//
//   both sides send   hello: node id, advertised address, a fresh 32-byte random nonce
//   both sides send   proof: HMAC(secret, "troupe/1" | own role | peer nonce | own nonce | own id)
//   each side checks  the peer's proof with the roles swapped, in constant time
//
// The role byte (dialer/acceptor) and the refusal of a peer echoing our own nonce stop a
// reflection of our messages back at us; fresh nonces on both sides stop replays. A failed
// check refuses the connection (Errc::unauthorized).
//
// Thread-safety: a Handshake is a plain value used by one connection's coroutine.

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "remote/node_id.hpp"
#include "util/result.hpp"

namespace troupe::remote {

using Nonce = std::array<std::byte, 32>;
using Mac = std::array<std::byte, 32>;

enum class Role : std::uint8_t { dialer = 1, acceptor = 2 };

// What a hello carries.
struct Hello {
  NodeId node = 0;
  std::string address;  // "host:port" the node listens on (advertised)
  Nonce nonce{};
};

// Serialised hello payload, and its parser (Errc::invalid_request when malformed; an address
// longer than 255 bytes is malformed).
std::vector<std::byte> encode_hello(const Hello& h);
Result<Hello> decode_hello(std::span<const std::byte> payload);

// HMAC-SHA256 of the proof fields with `secret`.
Mac compute_proof(std::string_view secret, Role prover, const Nonce& verifier_nonce,
                  const Nonce& prover_nonce, NodeId prover_node);

// A fresh nonce from OpenSSL's CSPRNG.
Nonce random_nonce();

class Handshake {
 public:
  // `self` carries our id, advertised address and nonce (random_nonce()).
  Handshake(Role role, std::string secret, Hello self);

  std::vector<std::byte> hello_payload() const { return encode_hello(self_); }

  // Takes the peer's hello; returns our proof to send. Errors: malformed hello
  // (invalid_request), the peer echoed our nonce or our node id (unauthorized).
  Result<Mac> on_hello(std::span<const std::byte> payload);

  // Checks the peer's proof (after on_hello). Errors: unauthorized (wrong size or MAC),
  // invalid_request when called before on_hello.
  Result<void> on_proof(std::span<const std::byte> payload) const;

  const Hello& peer() const noexcept { return peer_; }
  const Hello& self() const noexcept { return self_; }
  Role role() const noexcept { return role_; }

 private:
  Role role_;
  std::string secret_;
  Hello self_;
  Hello peer_;
  bool have_peer_ = false;
};

}  // namespace troupe::remote
