#pragma once
// Test certificates for mutual TLS, made with OpenSSL's API (no openssl CLI needed): a CA
// and node certificates it signs, as PEM files in a directory. Used by the TLS tests and by
// remote_bench --tls.
//
//   auto dir = make_temp_dir("tls");
//   auto ca = make_ca(dir, "ca");
//   TlsOptions tls = make_node_cert(ca, dir, "node-a");   // cert_file, key_file, ca_file
//
// Thread-safety: plain functions; each call writes its own files.

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>

#include "remote/tls.hpp"

namespace troupe::remote::test {

struct TestCa {
  std::string cert_file;
  std::string key_file;
};

namespace certs_detail {

struct KeyFree {
  void operator()(EVP_PKEY* k) const { EVP_PKEY_free(k); }
};
struct CertFree {
  void operator()(X509* c) const { X509_free(c); }
};
using Key = std::unique_ptr<EVP_PKEY, KeyFree>;
using Cert = std::unique_ptr<X509, CertFree>;

inline void check(bool ok, const char* what) {
  if (!ok)
    throw std::runtime_error(std::string("test certificates: ") + what);
}

inline Key new_key() {
  Key k(EVP_EC_gen("P-256"));
  check(k != nullptr, "EVP_EC_gen");
  return k;
}

inline void add_ext(X509* cert, X509* issuer, int nid, const char* value) {
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, issuer, cert, nullptr, nullptr, 0);
  X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value);
  check(ext != nullptr, "X509V3_EXT_conf_nid");
  X509_add_ext(cert, ext, -1);
  X509_EXTENSION_free(ext);
}

// A certificate for `key` named `cn`, signed by `issuer_key` (issuer: self when null).
inline Cert new_cert(EVP_PKEY* key, const std::string& cn, X509* issuer, EVP_PKEY* issuer_key,
                     bool ca, long serial) {
  Cert c(X509_new());
  check(c != nullptr, "X509_new");
  X509_set_version(c.get(), 2);
  ASN1_INTEGER_set(X509_get_serialNumber(c.get()), serial);
  X509_gmtime_adj(X509_getm_notBefore(c.get()), -3600);
  X509_gmtime_adj(X509_getm_notAfter(c.get()), 7 * 24 * 3600);
  X509_set_pubkey(c.get(), key);
  X509_NAME* name = X509_get_subject_name(c.get());
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>(cn.c_str()), -1, -1, 0);
  X509* iss = issuer ? issuer : c.get();
  X509_set_issuer_name(c.get(), X509_get_subject_name(iss));
  if (ca) {
    add_ext(c.get(), iss, NID_basic_constraints, "critical,CA:TRUE");
    add_ext(c.get(), iss, NID_key_usage, "critical,keyCertSign,cRLSign");
  } else {
    add_ext(c.get(), iss, NID_basic_constraints, "critical,CA:FALSE");
    add_ext(c.get(), iss, NID_ext_key_usage, "serverAuth,clientAuth");
  }
  check(X509_sign(c.get(), issuer_key ? issuer_key : key, EVP_sha256()) > 0, "X509_sign");
  return c;
}

inline void write_key(const std::string& path, EVP_PKEY* key) {
  FILE* f = std::fopen(path.c_str(), "w");
  check(f != nullptr, "open key file");
  bool ok = PEM_write_PrivateKey(f, key, nullptr, nullptr, 0, nullptr, nullptr) == 1;
  std::fclose(f);
  check(ok, "PEM_write_PrivateKey");
}

inline void write_cert(const std::string& path, X509* cert) {
  FILE* f = std::fopen(path.c_str(), "w");
  check(f != nullptr, "open certificate file");
  bool ok = PEM_write_X509(f, cert) == 1;
  std::fclose(f);
  check(ok, "PEM_write_X509");
}

template <class T, class Read>
T read_pem(const std::string& path, Read read) {
  FILE* f = std::fopen(path.c_str(), "r");
  check(f != nullptr, "open PEM file");
  T v(read(f, nullptr, nullptr, nullptr));
  std::fclose(f);
  check(v != nullptr, "read PEM file");
  return v;
}

}  // namespace certs_detail

// A fresh, empty directory under the system's temporary directory.
inline std::filesystem::path make_temp_dir(const std::string& tag) {
  std::string pattern =
      (std::filesystem::temp_directory_path() / ("troupe-" + tag + "-XXXXXX")).string();
  if (!::mkdtemp(pattern.data()))
    throw std::runtime_error("mkdtemp failed");
  return pattern;
}

// A self-signed CA ("<name>.crt", "<name>.key" in `dir`).
inline TestCa make_ca(const std::filesystem::path& dir, const std::string& name) {
  using namespace certs_detail;
  Key key = new_key();
  Cert cert = new_cert(key.get(), "troupe test CA " + name, nullptr, nullptr, true, 1);
  TestCa ca{(dir / (name + ".crt")).string(), (dir / (name + ".key")).string()};
  write_cert(ca.cert_file, cert.get());
  write_key(ca.key_file, key.get());
  return ca;
}

// A node certificate signed by `ca`, and the TlsOptions that use it with `ca` as the trust
// anchor.
inline TlsOptions make_node_cert(const TestCa& ca, const std::filesystem::path& dir,
                                 const std::string& name) {
  using namespace certs_detail;
  auto ca_cert = read_pem<Cert>(ca.cert_file, PEM_read_X509);
  auto ca_key = read_pem<Key>(ca.key_file, PEM_read_PrivateKey);
  Key key = new_key();
  long serial = 2 + static_cast<long>(std::hash<std::string>{}(name)&0x7fffffff);
  Cert cert = new_cert(key.get(), name, ca_cert.get(), ca_key.get(), false, serial);
  TlsOptions o{(dir / (name + ".crt")).string(), (dir / (name + ".key")).string(), ca.cert_file};
  write_cert(o.cert_file, cert.get());
  write_key(o.key_file, key.get());
  return o;
}

}  // namespace troupe::remote::test
