#pragma once
// Optional mutual TLS for every link between nodes (OpenSSL through boost::asio::ssl).
//
// With TLS on, each connection first completes a TLS 1.3 handshake in which both ends
// present a certificate signed by the cluster CA (`ca_file`) and verify the other's; the
// HMAC challenge-response of handshake.hpp then runs inside the encrypted channel, so a peer
// needs both a certificate from the cluster CA and the cluster secret. Certificates need not
// name the address a node is dialled at (peers dial IP addresses): the CA is the trust
// anchor. A node with TLS refuses plaintext peers and a plaintext node refuses TLS peers
// (one log line each, counted in NodeStats::handshake_failures).
//
// This header is light (no OpenSSL or asio::ssl includes): NodeOptions carries TlsOptions.
// tls_stream.hpp has the stream type the connection code uses.
//
// Thread-safety: TlsOptions is a plain value; make_tls_context may be called from any thread.

#include <memory>
#include <string>

#include "util/result.hpp"

namespace boost::asio::ssl {
class context;
}

namespace troupe::remote {

struct TlsOptions {
  std::string cert_file;  // PEM: this node's certificate (chain), signed by the cluster CA
  std::string key_file;   // PEM: its private key
  std::string ca_file;    // PEM: the CA certificate(s) every peer's certificate must chain to
  // TLS is on when any file is given; Node::start then requires all three.
  bool enabled() const { return !cert_file.empty() || !key_file.empty() || !ca_file.empty(); }
};

// One context for both roles of every link: TLS 1.3 only, peer certificate required and
// verified against ca_file, no session tickets (a link's acceptor never writes after the
// handshakes). Errors: invalid_request (a file missing from the options, unreadable or
// invalid, or a key that does not match the certificate).
Result<std::shared_ptr<boost::asio::ssl::context>> make_tls_context(const TlsOptions& options);

}  // namespace troupe::remote
