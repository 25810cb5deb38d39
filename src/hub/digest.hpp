#pragma once
// Incremental digests of a download (OpenSSL's EVP): the sha256 of an LFS file, or the git
// blob id (sha1 of "blob <size>\0" + content) of a file kept in git.
//
// Thread-safety: a Digest is used by one thread at a time.

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "hub/select.hpp"

namespace troupe::hub {

class Digest {
 public:
  // The digest that checks `file`: sha256 when it has one, else its git blob id.
  explicit Digest(const RemoteFile& file);
  ~Digest();
  Digest(const Digest&) = delete;
  Digest& operator=(const Digest&) = delete;

  // Starts over (a server that ignored a Range request sends the whole file again).
  void reset();
  void update(std::string_view bytes);
  // Lowercase hex of what was fed since the last reset. Ends this digest until reset().
  std::string hex();
  // What the file's metadata says it must be.
  const std::string& expected() const noexcept { return expected_; }
  // "sha256" or "git blob sha1", for messages.
  std::string_view name() const noexcept;

 private:
  struct Ctx;
  std::unique_ptr<Ctx> ctx_;
  bool sha256_;
  std::uint64_t size_;
  std::string expected_;
};

}  // namespace troupe::hub
