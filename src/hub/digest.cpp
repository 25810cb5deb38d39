#include "hub/digest.hpp"

#include <openssl/evp.h>

#include <stdexcept>

namespace troupe::hub {

struct Digest::Ctx {
  struct Free {
    void operator()(EVP_MD_CTX* c) const { EVP_MD_CTX_free(c); }
  };
  std::unique_ptr<EVP_MD_CTX, Free> md{EVP_MD_CTX_new()};
};

Digest::Digest(const RemoteFile& file)
    : ctx_(std::make_unique<Ctx>()),
      sha256_(!file.sha256.empty()),
      size_(file.size),
      expected_(sha256_ ? file.sha256 : file.git_oid) {
  if (!ctx_->md)
    throw std::bad_alloc();
  reset();
}

Digest::~Digest() = default;

void Digest::reset() {
  if (EVP_DigestInit_ex(ctx_->md.get(), sha256_ ? EVP_sha256() : EVP_sha1(), nullptr) != 1)
    throw std::runtime_error("EVP_DigestInit_ex failed");
  if (!sha256_)
    update("blob " + std::to_string(size_) + std::string(1, '\0'));
}

void Digest::update(std::string_view bytes) {
  EVP_DigestUpdate(ctx_->md.get(), bytes.data(), bytes.size());
}

std::string Digest::hex() {
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  EVP_DigestFinal_ex(ctx_->md.get(), out, &n);
  static constexpr char kHex[] = "0123456789abcdef";
  std::string s;
  for (unsigned int i = 0; i < n; ++i) {
    s += kHex[out[i] >> 4];
    s += kHex[out[i] & 0xf];
  }
  return s;
}

std::string_view Digest::name() const noexcept {
  return sha256_ ? "sha256" : "git blob sha1";
}

}  // namespace troupe::hub
