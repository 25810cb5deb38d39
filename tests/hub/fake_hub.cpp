#include "hub/fake_hub.hpp"

#include <arpa/inet.h>
#include <fmt/format.h>
#include <netinet/in.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdlib>
#include <set>
#include <stdexcept>

namespace troupe::hub::test {
namespace {

std::string digest_hex(const EVP_MD* md, const std::string& data) {
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  EVP_Digest(data.data(), data.size(), out, &n, md, nullptr);
  std::string s;
  for (unsigned int i = 0; i < n; ++i)
    s += fmt::format("{:02x}", out[i]);
  return s;
}

}  // namespace

// One accepted connection, plain or TLS.
struct FakeHub::Conn {
  int fd = -1;
  SSL* ssl = nullptr;

  explicit Conn(int socket) : fd(socket) {}
  Conn(const Conn&) = delete;
  Conn& operator=(const Conn&) = delete;
  ~Conn() {
    if (ssl != nullptr) {
      SSL_shutdown(ssl);
      SSL_free(ssl);
    }
    if (fd >= 0)
      ::close(fd);
  }
  bool recv1(char& c) {
    if (ssl != nullptr)
      return SSL_read(ssl, &c, 1) == 1;
    return ::recv(fd, &c, 1, 0) == 1;
  }
  bool send_all(std::string_view data) {
    while (!data.empty()) {
      const long n = ssl != nullptr ? SSL_write(ssl, data.data(), static_cast<int>(data.size()))
                                    : ::send(fd, data.data(), data.size(), MSG_NOSIGNAL);
      if (n <= 0)
        return false;
      data.remove_prefix(static_cast<std::size_t>(n));
    }
    return true;
  }
};

namespace {

std::string lower(std::string s) {
  for (auto& c : s)
    c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

// Reads one request head; false when the peer closed first.
template <class Conn>
bool read_request(Conn& conn, SeenRequest& r) {
  std::string head;
  char c;
  while (head.find("\r\n\r\n") == std::string::npos) {
    if (!conn.recv1(c))
      return false;
    if (head.empty() && c == 0x16)
      return false;  // a TLS hello: this is a plain-HTTP server
    head += c;
  }
  const auto sp1 = head.find(' ');
  const auto sp2 = head.find(' ', sp1 + 1);
  r.target = head.substr(sp1 + 1, sp2 - sp1 - 1);
  for (std::size_t at = head.find("\r\n") + 2; at < head.size();) {
    const auto end = head.find("\r\n", at);
    const auto line = head.substr(at, end - at);
    const auto colon = line.find(':');
    if (colon != std::string::npos)
      r.headers[lower(line.substr(0, colon))] = line.substr(line.find_first_not_of(' ', colon + 1));
    at = end + 2;
  }
  return true;
}

std::string decode(std::string_view s) {
  std::string out;
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%' && i + 2 < s.size()) {
      out += static_cast<char>(std::strtol(std::string(s.substr(i + 1, 2)).c_str(), nullptr, 16));
      i += 2;
    } else {
      out += s[i];
    }
  }
  return out;
}

std::string response(int status, std::string_view reason, const std::string& body,
                     const std::string& extra = {}) {
  return fmt::format("HTTP/1.1 {} {}\r\nContent-Length: {}\r\nConnection: close\r\n{}\r\n{}",
                     status, reason, body.size(), extra, body);
}

std::string json_error(int status, std::string_view reason, const std::string& message) {
  return response(status, reason, fmt::format("{{\"error\":\"{}\"}}", message),
                  "Content-Type: application/json\r\nX-Error-Message: " + message + "\r\n");
}

}  // namespace

std::string FakeHub::sha256(const std::string& content) {
  return digest_hex(EVP_sha256(), content);
}

FakeHub::FakeHub(const FakeTls& tls) {
  if (!tls.cert_file.empty()) {
    tls_ = SSL_CTX_new(TLS_server_method());
    if (tls_ == nullptr || SSL_CTX_use_certificate_chain_file(tls_, tls.cert_file.c_str()) != 1 ||
        SSL_CTX_use_PrivateKey_file(tls_, tls.key_file.c_str(), SSL_FILETYPE_PEM) != 1)
      throw std::runtime_error("FakeHub: cannot load the certificate");
  }
  start(origin_, false);
  start(cdn_, true);
}

FakeHub::~FakeHub() {
  for (auto* l : {&origin_, &cdn_}) {
    ::shutdown(l->fd, SHUT_RDWR);
    if (l->thread.joinable())
      l->thread.join();
    ::close(l->fd);
  }
  SSL_CTX_free(tls_);
}

void FakeHub::start(Listener& l, bool cdn) {
  l.fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  if (l.fd < 0 || ::bind(l.fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 ||
      ::listen(l.fd, 16) != 0 || ::getsockname(l.fd, reinterpret_cast<sockaddr*>(&a), &len) != 0)
    throw std::runtime_error("FakeHub: cannot listen");
  l.port = ntohs(a.sin_port);
  l.thread = std::thread([this, fd = l.fd, cdn] {
    for (;;) {
      Conn c(::accept(fd, nullptr, nullptr));
      if (c.fd < 0)
        return;  // shut down
      if (tls_ != nullptr && !cdn) {
        c.ssl = SSL_new(tls_);
        SSL_set_fd(c.ssl, c.fd);
        if (SSL_accept(c.ssl) != 1)
          continue;  // the client refused the certificate
      }
      serve(c, cdn);
    }
  });
}

std::string FakeHub::endpoint() const {
  return tls_ != nullptr ? fmt::format("https://localhost:{}", origin_.port)
                         : fmt::format("http://127.0.0.1:{}", origin_.port);
}

void FakeHub::serve(Conn& c, bool cdn) {
  SeenRequest r;
  r.cdn = cdn;
  if (!read_request(c, r))
    return;
  std::string out;
  {
    std::lock_guard lock(mu_);
    seen_.push_back(r);
  }
  out = answer(r, c);
  c.send_all(out);
  if (c.ssl == nullptr)
    ::shutdown(c.fd, SHUT_WR);
}

std::string FakeHub::answer(const SeenRequest& r, Conn& c) {
  std::unique_lock lock(mu_);
  if (!r.cdn && fail_status_ != 0)
    return json_error(fail_status_, "Failed", fail_message_);
  if (!r.cdn && !token_.empty()) {
    const auto auth = r.headers.find("authorization");
    if (auth == r.headers.end() || auth->second != "Bearer " + token_)
      return json_error(401, "Unauthorized", "Invalid credentials in Authorization header");
  }
  std::string target = r.target;
  const auto q = target.find('?');
  const std::string query = q == std::string::npos ? "" : target.substr(q + 1);
  target = decode(target.substr(0, q));
  // /api/models/{o}/{n}/tree/{rev}
  if (target.starts_with("/api/models/")) {
    const auto rest = target.substr(12);
    const auto t = rest.find("/tree/");
    if (t == std::string::npos || !repos_.contains(rest.substr(0, t)))
      return json_error(404, "Not Found", "Repository not found");
    return tree(rest.substr(0, t), query);
  }
  // [/renamed]/{o}/{n}/resolve/{rev}/{path} on the origin; /cdn/{o}/{n}/{path} on the CDN
  const bool renamed = target.starts_with("/renamed/");
  if (renamed)
    target = target.substr(8);
  std::string repo;
  std::string path;
  if (r.cdn && target.starts_with("/cdn/")) {
    const auto parts = target.substr(5);
    const auto second = parts.find('/', parts.find('/') + 1);
    repo = parts.substr(0, second);
    path = parts.substr(second + 1);
  } else if (const auto res = target.find("/resolve/"); !r.cdn && res != std::string::npos) {
    repo = target.substr(1, res - 1);
    const auto after = target.substr(res + 9);
    path = after.substr(after.find('/') + 1);
  }
  const auto rp = repos_.find(repo);
  if (rp == repos_.end() || !rp->second.contains(path))
    return json_error(404, "Not Found", "Entry not found");
  if (!r.cdn && relative_redirect_ && !renamed)
    return response(307, "Temporary Redirect", "", "Location: /renamed" + r.target + "\r\n");
  if (!r.cdn && cdn_redirect_)
    return response(302, "Found", "",
                    fmt::format("Location: http://127.0.0.1:{}/cdn/{}/{}\r\nX-Repo-Commit: "
                                "c0ffee\r\n",
                                cdn_.port, repo, path));
  const File file = rp->second.at(path);
  lock.unlock();
  return send_file(r, file, c);
}

std::string FakeHub::tree(const std::string& repo, const std::string& query) {
  std::vector<std::string> entries;
  std::set<std::string> dirs;
  for (const auto& [path, f] : repos_.at(repo)) {
    for (auto slash = path.find('/'); slash != std::string::npos; slash = path.find('/', slash + 1))
      dirs.insert(path.substr(0, slash));
    const std::string lfs =
        f.lfs ? fmt::format(",\"lfs\":{{\"oid\":\"{}\",\"size\":{},\"pointerSize\":134}}",
                            f.listed_sha256.empty() ? sha256(f.content) : f.listed_sha256,
                            f.content.size())
              : "";
    const std::string oid = digest_hex(
        EVP_sha1(), "blob " + std::to_string(f.content.size()) + std::string(1, '\0') + f.content);
    entries.push_back(fmt::format(R"({{"type":"file","oid":"{}","size":{},"path":"{}"{}}})", oid,
                                  f.content.size(), path, lfs));
  }
  for (const auto& d : dirs)
    entries.push_back(fmt::format(R"({{"type":"directory","oid":"0","size":0,"path":"{}"}})", d));
  std::size_t from = 0;
  if (const auto c = query.find("cursor="); c != std::string::npos)
    from = std::strtoul(query.c_str() + c + 7, nullptr, 10);
  const std::size_t n = page_size_ == 0 ? entries.size() : page_size_;
  std::string body = "[";
  for (std::size_t i = from; i < entries.size() && i < from + n; ++i)
    body += (i > from ? "," : "") + entries[i];
  body += "]";
  std::string link;
  if (from + n < entries.size())
    link =
        fmt::format("Link: <{}/api/models/{}/tree/main?recursive=true&cursor={}>; rel=\"next\"\r\n",
                    endpoint(), repo, from + n);
  return response(200, "OK", body, "Content-Type: application/json\r\n" + link);
}

std::string FakeHub::send_file(const SeenRequest& r, const File& f, Conn& c) {
  std::size_t from = 0;
  bool ranged = false;
  bool cut = false;
  std::size_t cut_bytes = 0;
  {
    std::lock_guard lock(mu_);
    if (const auto range = r.headers.find("range"); range != r.headers.end() && !ignore_range_) {
      from = std::strtoul(range->second.c_str() + 6, nullptr, 10);  // "bytes=N-"
      ranged = true;
    }
    if (cut_times_ > 0) {
      --cut_times_;
      cut = true;
      cut_bytes = cut_bytes_;
    }
  }
  const std::size_t size = f.content.size();
  if (ranged && from >= size)
    return response(416, "Range Not Satisfiable", "",
                    fmt::format("Content-Range: bytes */{}\r\n", size));
  const std::string extra =
      "X-Repo-Commit: c0ffee\r\n" +
      (ranged ? fmt::format("Content-Range: bytes {}-{}/{}\r\n", from, size - 1, size)
              : std::string());
  const std::string body = f.content.substr(from);
  std::string out =
      ranged ? response(206, "Partial Content", body, extra) : response(200, "OK", body, extra);
  if (cut) {
    c.send_all(out.substr(0, out.size() - body.size() + std::min(cut_bytes, body.size())));
    return {};
  }
  return out;
}

void FakeHub::add_file(const std::string& repo, const std::string& path, std::string content,
                       bool lfs) {
  std::lock_guard lock(mu_);
  repos_[repo][path] = File{std::move(content), lfs, {}};
}

void FakeHub::set_listed_sha256(const std::string& repo, const std::string& path,
                                std::string sha256) {
  std::lock_guard lock(mu_);
  repos_.at(repo).at(path).listed_sha256 = std::move(sha256);
}

void FakeHub::set_token(std::string token) {
  std::lock_guard lock(mu_);
  token_ = std::move(token);
}

void FakeHub::set_cdn(bool on) {
  std::lock_guard lock(mu_);
  cdn_redirect_ = on;
}

void FakeHub::set_relative_redirect(bool on) {
  std::lock_guard lock(mu_);
  relative_redirect_ = on;
}

void FakeHub::cut_downloads(std::size_t bytes, int times) {
  std::lock_guard lock(mu_);
  cut_bytes_ = bytes;
  cut_times_ = times;
}

void FakeHub::set_ignore_range(bool on) {
  std::lock_guard lock(mu_);
  ignore_range_ = on;
}

void FakeHub::set_page_size(std::size_t n) {
  std::lock_guard lock(mu_);
  page_size_ = n;
}

void FakeHub::fail_with(int status, std::string message) {
  std::lock_guard lock(mu_);
  fail_status_ = status;
  fail_message_ = std::move(message);
}

std::vector<SeenRequest> FakeHub::requests() const {
  std::lock_guard lock(mu_);
  return seen_;
}

}  // namespace troupe::hub::test
