#include "chat/terminal.hpp"

#include <poll.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace troupe::chat {

Result<void> FdOutput::write(std::string_view bytes) {
  while (!bytes.empty()) {
    const ssize_t n = ::write(fd_, bytes.data(), bytes.size());
    if (n >= 0) {
      bytes.remove_prefix(static_cast<std::size_t>(n));
      continue;
    }
    if (errno == EINTR)
      continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) {
      pollfd p{fd_, POLLOUT, 0};
      ::poll(&p, 1, -1);
      continue;
    }
    return Error(Errc::unavailable,
                 std::string("write to terminal failed: ") + std::strerror(errno));
  }
  return {};
}

std::string RecordingOutput::text() const {
  std::string all;
  for (const auto& w : writes_)
    all += w;
  return all;
}

int terminal_columns(int fd) noexcept {
  winsize ws{};
  if (::ioctl(fd, TIOCGWINSZ, &ws) != 0)
    return 0;
  return ws.ws_col;
}

bool is_terminal(int fd) noexcept {
  return ::isatty(fd) == 1;
}

EchoOff::EchoOff(int fd) noexcept : fd_(fd) {
  if (::tcgetattr(fd_, &saved_) != 0)
    return;
  termios quiet = saved_;
  quiet.c_lflag &= static_cast<tcflag_t>(~(ECHO | ECHONL));
  active_ = ::tcsetattr(fd_, TCSANOW, &quiet) == 0;
}

EchoOff::~EchoOff() {
  if (active_)
    ::tcsetattr(fd_, TCSANOW, &saved_);
}

}  // namespace troupe::chat
