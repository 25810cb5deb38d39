#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstdint>

#include "remote/detail/tls_stream.hpp"

namespace troupe::remote {

namespace asio = boost::asio;
namespace ssl = boost::asio::ssl;
using boost::system::error_code;

namespace {

Error tls_error(const std::string& what, const error_code& ec) {
  return Error{Errc::invalid_request, "tls: " + what + ": " + ec.message()};
}

// A write-only source/sink BIO over a non-blocking socket: send() with MSG_NOSIGNAL (a peer
// that went away must not raise SIGPIPE), EAGAIN as "retry write".
int send_bio_write(BIO* b, const char* data, int len) {
  BIO_clear_retry_flags(b);
  int fd = static_cast<int>(reinterpret_cast<std::intptr_t>(BIO_get_data(b)));
  ssize_t n;
  do {
    n = ::send(fd, data, static_cast<std::size_t>(len), MSG_NOSIGNAL | MSG_DONTWAIT);
  } while (n < 0 && errno == EINTR);
  if (n < 0) {
    if (errno == EAGAIN || errno == EWOULDBLOCK)
      BIO_set_retry_write(b);
    return -1;
  }
  return static_cast<int>(n);
}

long send_bio_ctrl(BIO*, int cmd, long, void*) {
  return cmd == BIO_CTRL_FLUSH ? 1 : 0;  // nothing is buffered here
}

int send_bio_create(BIO* b) {
  BIO_set_init(b, 1);
  return 1;
}

const BIO_METHOD* send_bio_method() {
  // Created once and kept for the life of the program (OpenSSL's own methods are static too).
  static BIO_METHOD* const method = [] {
    BIO_METHOD* m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "troupe send");
    BIO_meth_set_write(m, send_bio_write);
    BIO_meth_set_ctrl(m, send_bio_ctrl);
    BIO_meth_set_create(m, send_bio_create);
    return m;
  }();
  return method;
}

}  // namespace

Result<std::shared_ptr<ssl::context>> make_tls_context(const TlsOptions& o) {
  if (o.cert_file.empty() || o.key_file.empty() || o.ca_file.empty()) {
    return Error{Errc::invalid_request, "tls: cert_file, key_file and ca_file are all required"};
  }
  auto ctx = std::make_shared<ssl::context>(ssl::context::tls);
  SSL_CTX* native = ctx->native_handle();
  SSL_CTX_set_min_proto_version(native, TLS1_3_VERSION);
  SSL_CTX_set_num_tickets(native, 0);
  SSL_CTX_set_session_cache_mode(native, SSL_SESS_CACHE_OFF);
  error_code ec;
  ctx->use_certificate_chain_file(o.cert_file, ec);
  if (ec)
    return tls_error("cannot use certificate " + o.cert_file, ec);
  ctx->use_private_key_file(o.key_file, ssl::context::pem, ec);
  if (ec)
    return tls_error("cannot use private key " + o.key_file, ec);
  if (SSL_CTX_check_private_key(native) != 1) {
    ERR_clear_error();
    return Error{Errc::invalid_request,
                 "tls: private key " + o.key_file + " does not match " + o.cert_file};
  }
  ctx->load_verify_file(o.ca_file, ec);
  if (ec)
    return tls_error("cannot load CA " + o.ca_file, ec);
  ctx->set_verify_mode(ssl::verify_peer | ssl::verify_fail_if_no_peer_cert, ec);
  if (ec)
    return tls_error("cannot set verify mode", ec);
  return ctx;
}

void write_records_to_socket(TlsStream& s, int fd) {
  SSL* ssl = s.native_handle();
  BIO* bio = BIO_new(send_bio_method());
  BIO_set_data(bio, reinterpret_cast<void*>(static_cast<std::intptr_t>(fd)));
  // asio's engine set one BIO (its end of a pair) as both rbio and wbio, holding a reference
  // for each; this drops the wbio one, and the pair stays as the (unused) rbio.
  SSL_set0_wbio(ssl, bio);
  SSL_clear_mode(ssl, SSL_MODE_RELEASE_BUFFERS);
}

void keep_tls_buffers(TlsStream& s) {
  SSL_clear_mode(s.native_handle(), SSL_MODE_RELEASE_BUFFERS);
}

}  // namespace troupe::remote
