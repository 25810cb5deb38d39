#pragma once
// FakeHub: a Hugging Face hub on loopback for the hub and CLI tests (no network): the tree API
// (paginated when asked), /resolve/ downloads with Range, a CDN on a second port that
// /resolve/ can redirect to, a relative redirect, a required token, a download cut short, a
// server that ignores Range, a listed digest that does not match.
//
// Thread-safety: each listener runs on its own thread and serves one connection at a time; the
// setters and requests() take a mutex and may be called from the test's thread at any time.

#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

typedef struct ssl_ctx_st SSL_CTX;

namespace troupe::hub::test {

struct SeenRequest {
  bool cdn = false;  // at the CDN's port
  std::string target;
  std::map<std::string, std::string> headers;  // names lower-cased
};

// A certificate and key (PEM files) that make the origin speak https; the CDN stays http.
struct FakeTls {
  std::string cert_file;
  std::string key_file;
};

class FakeHub {
 public:
  explicit FakeHub(const FakeTls& tls = {});
  ~FakeHub();
  FakeHub(const FakeHub&) = delete;
  FakeHub& operator=(const FakeHub&) = delete;

  std::string endpoint() const;  // "http://127.0.0.1:PORT" ("https://localhost:PORT" with TLS)

  // A file of a repository (the repository exists once it has a file). `lfs`: listed with a
  // sha256; otherwise with its git blob id only.
  void add_file(const std::string& repo, const std::string& path, std::string content,
                bool lfs = true);
  // Lists `path` with this sha256 instead of its own.
  void set_listed_sha256(const std::string& repo, const std::string& path, std::string sha256);
  // The origin answers 401 to requests without "Authorization: Bearer <token>".
  void set_token(std::string token);
  // /resolve/ answers 302 to the CDN's port.
  void set_cdn(bool on);
  // /resolve/ first answers 307 with a relative Location on the same origin.
  void set_relative_redirect(bool on);
  // The next `times` downloads send `bytes` of the body, then close the connection.
  void cut_downloads(std::size_t bytes, int times = 1);
  // Downloads answer 200 with the whole file even when asked for a Range.
  void set_ignore_range(bool on);
  // The tree API answers `n` entries per page (0: all at once).
  void set_page_size(std::size_t n);
  // Every request to the origin answers this status and message (0: normal service).
  void fail_with(int status, std::string message);

  std::vector<SeenRequest> requests() const;

  // sha256 of `content`, lowercase hex (OpenSSL).
  static std::string sha256(const std::string& content);

 private:
  struct File {
    std::string content;
    bool lfs = true;
    std::string listed_sha256;
  };
  struct Listener {
    int fd = -1;
    std::uint16_t port = 0;
    std::thread thread;
  };

  struct Conn;
  void start(Listener& l, bool cdn);
  void serve(Conn& c, bool cdn);
  std::string answer(const SeenRequest& r, Conn& c);
  std::string tree(const std::string& repo, const std::string& query);
  std::string send_file(const SeenRequest& r, const File& f, Conn& c);

  SSL_CTX* tls_ = nullptr;  // owned; null: plain http

  mutable std::mutex mu_;
  std::map<std::string, std::map<std::string, File>> repos_;
  std::string token_;
  bool cdn_redirect_ = false;
  bool relative_redirect_ = false;
  std::size_t cut_bytes_ = 0;
  int cut_times_ = 0;
  bool ignore_range_ = false;
  std::size_t page_size_ = 0;
  int fail_status_ = 0;
  std::string fail_message_;
  std::vector<SeenRequest> seen_;
  Listener origin_;
  Listener cdn_;
};

}  // namespace troupe::hub::test
