#include "hub/download.hpp"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <memory>
#include <vector>

#include "hub/digest.hpp"
#include "hub/metadata.hpp"

namespace troupe::hub {
namespace fs = std::filesystem;

namespace {

struct FileClose {
  void operator()(std::FILE* f) const { std::fclose(f); }
};
using File = std::unique_ptr<std::FILE, FileClose>;

// Feeds the part's first `size` bytes to the digest. Returns false when they cannot be read.
bool hash_existing(const fs::path& part, std::uint64_t size, Digest& digest) {
  File in(std::fopen(part.c_str(), "rb"));
  if (!in)
    return false;
  std::vector<char> buf(1 << 20);
  while (size > 0) {
    const auto n = std::fread(buf.data(), 1, std::min<std::uint64_t>(size, buf.size()), in.get());
    if (n == 0)
      return false;
    digest.update({buf.data(), n});
    size -= n;
  }
  return true;
}

// The start of a 206's Content-Range ("bytes 100-199/200" -> 100), or -1.
long long range_start(std::string_view content_range) {
  if (!content_range.starts_with("bytes "))
    return -1;
  content_range.remove_prefix(6);
  long long v = 0;
  bool any = false;
  for (const char c : content_range) {
    if (c < '0' || c > '9')
      break;
    v = v * 10 + (c - '0');
    any = true;
  }
  return any ? v : -1;
}

// The state of one transfer: the part open for appending, the digest, the bytes done.
class Transfer {
 public:
  Transfer(const DownloadJob& job, Progress& progress)
      : job_(job), progress_(progress), digest_(job.file) {}

  // Opens and locks the part (another process downloading the same file holds the lock) and
  // hashes what it holds. Returns the offset to ask for.
  Result<std::uint64_t> open() {
    const int fd = ::open(job_.part.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0)
      return cannot_write();
    out_.reset(::fdopen(fd, "r+b"));
    if (!out_) {
      ::close(fd);
      return cannot_write();
    }
    if (::flock(fd, LOCK_EX | LOCK_NB) != 0)
      return Error{Errc::overloaded,
                   fmt::format("{}: another process is downloading it ({} is locked)", job_.what,
                               job_.part.string())};
    struct stat st {};
    std::uint64_t have = ::fstat(fd, &st) == 0 ? static_cast<std::uint64_t>(st.st_size) : 0;
    if (have > job_.file.size || !hash_existing(job_.part, have, digest_)) {
      digest_.reset();
      have = 0;
    }
    if (::ftruncate(fd, static_cast<off_t>(have)) != 0 ||
        ::fseeko(out_.get(), static_cast<off_t>(have), SEEK_SET) != 0)
      return cannot_write();
    done_ = have;
    return have;
  }

  Result<void> on_head(const ResponseHead& head, std::uint64_t asked) {
    if (head.status == 206 && range_start(head.content_range) == static_cast<long long>(asked))
      return {};
    if (head.status == 206)
      return Error{Errc::unavailable, fmt::format("{}: the server resumed at the wrong place "
                                                  "(Content-Range '{}')",
                                                  job_.what, head.content_range)};
    if (head.status != 200)
      return Error{Errc::unavailable,
                   fmt::format("{}: unexpected status {}", job_.what, head.status)};
    if (done_ > 0) {
      if (!restart())  // the server ignored the Range: the whole file comes again
        return cannot_write();
    }
    return {};
  }

  Result<void> on_body(std::string_view piece) {
    if (done_ + piece.size() > job_.file.size)
      return Error{Errc::invalid_request,
                   fmt::format("{}: the server sent more than the file's {} bytes", job_.what,
                               job_.file.size)};
    if (std::fwrite(piece.data(), 1, piece.size(), out_.get()) != piece.size())
      return cannot_write();
    digest_.update(piece);
    done_ += piece.size();
    progress_.update(done_);
    return {};
  }

  // Closes the part and checks it. Deletes it when it is wrong (more would not help).
  Result<void> finish() {
    const bool flushed = std::fflush(out_.get()) == 0;
    out_.reset();
    if (!flushed)
      return cannot_write();
    if (done_ < job_.file.size)
      return Error{Errc::unavailable, fmt::format("{}: the transfer ended after {} of {} bytes",
                                                  job_.what, done_, job_.file.size)};
    progress_.finish(done_);
    const std::string got = digest_.hex();
    if (got != digest_.expected()) {
      std::error_code ec;
      fs::remove(job_.part, ec);
      return Error{Errc::invalid_request,
                   fmt::format("{}: checksum mismatch: the repository says {} {}, the download "
                               "has {}; the download was deleted",
                               job_.what, digest_.name(), digest_.expected(), got)};
    }
    return {};
  }

  std::uint64_t done() const noexcept { return done_; }

 private:
  bool restart() {
    digest_.reset();
    done_ = 0;
    return std::fflush(out_.get()) == 0 && ::ftruncate(::fileno(out_.get()), 0) == 0 &&
           ::fseeko(out_.get(), 0, SEEK_SET) == 0;
  }

  Error cannot_write() const {
    return Error{Errc::internal, fmt::format("cannot write {}", job_.part.string())};
  }

  const DownloadJob& job_;
  Progress& progress_;
  Digest digest_;
  File out_;
  std::uint64_t done_ = 0;
};

// One transfer. `resumed_from` gets the offset it continued from.
Result<std::string> transfer_once(const DownloadJob& job, const HttpOptions& http,
                                  Progress& progress, std::uint64_t& resumed_from) {
  Transfer t(job, progress);
  auto offset = t.open();
  if (!offset)
    return offset.error();
  resumed_from = *offset;
  std::string commit;
  if (*offset < job.file.size) {
    auto head = http_get(
        job.url, http, *offset, [&](const ResponseHead& h) { return t.on_head(h, *offset); },
        [&](std::string_view piece) { return t.on_body(piece); });
    if (!head)
      return head.error();
    if (head->status == 416) {
      // What the part holds is not a prefix of this file: start over next time.
      std::error_code ec;
      fs::remove(job.part, ec);
      return Error{Errc::unavailable,
                   fmt::format("{}: the server refused to resume (416)", job.what)};
    }
    if (head->status < 200 || head->status >= 300)
      return status_error(*head, job.what, !http.token.empty());
    commit = head->commit;
  }
  if (auto r = t.finish(); !r)
    return r.error();
  return commit;
}

}  // namespace

Result<std::string> download_part(const DownloadJob& job, const HttpOptions& http,
                                  Progress& progress) {
  std::uint64_t resumed_from = 0;
  auto commit = transfer_once(job, http, progress, resumed_from);
  std::error_code ec;
  if (!commit && commit.error().code == Errc::invalid_request && resumed_from > 0 &&
      !fs::exists(job.part, ec)) {
    // The digest did not match after a resume: the part may have held bytes of an older
    // version of the file. It is deleted, so one more transfer starts from nothing.
    commit = transfer_once(job, http, progress, resumed_from);
  }
  return commit;
}

Error status_error(const ResponseHead& head, std::string_view what, bool token_sent) {
  std::string says = head.error_message.empty() ? error_message_of(head.body) : head.error_message;
  if (!says.empty())
    says = fmt::format(" (the server says: {})", says);
  const std::string token_hint =
      token_sent ? "an access token was sent (HF_TOKEN, else Hugging Face's token file): check "
                   "that it can read this repository"
                 : "set HF_TOKEN (or log in with `hf auth login`) to an access token that can "
                   "read it";
  switch (head.status) {
    case 401:
      return Error{Errc::unauthorized,
                   fmt::format("{}: 401 Unauthorized{}: the repository is private or gated, or "
                               "does not exist; {}",
                               what, says, token_hint)};
    case 403:
      return Error{Errc::unauthorized,
                   fmt::format("{}: 403 Forbidden{}: a gated model needs its conditions "
                               "accepted on its page; {}",
                               what, says, token_hint)};
    case 404:
      return Error{Errc::not_found, fmt::format("{}: 404 Not Found{}: no such repository, "
                                                "revision or file",
                                                what, says)};
    case 429:
      return Error{Errc::overloaded,
                   fmt::format("{}: 429 Too Many Requests{}: try again later", what, says)};
    default:
      return Error{Errc::unavailable,
                   fmt::format("{}: the server answered {}{}", what, head.status, says)};
  }
}

}  // namespace troupe::hub
