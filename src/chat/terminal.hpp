#pragma once
// Terminal output for the chat: where answer text goes (one write(2) per call, so one token
// per write), the escape sequences used when the output is a terminal, and the terminal mode
// while an answer streams.
//
// Thread-safety: Output implementations are not synchronised; the chat uses one from its
// event-loop thread only. The free functions are safe from any thread.

#include <termios.h>

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "util/result.hpp"

namespace troupe::chat {

// A sink for terminal bytes.
class Output {
 public:
  virtual ~Output() = default;
  // Writes all of `bytes` (nothing for empty input). Errors: unavailable (e.g. the terminal or
  // pipe went away). Blocks only as long as the terminal needs to take the bytes.
  virtual Result<void> write(std::string_view bytes) = 0;
};

// Writes to a file descriptor it does not own: one write(2) per call unless the kernel takes
// fewer bytes (then it continues with the rest), retrying EINTR, and waiting in poll(2) when
// the descriptor is non-blocking and full.
class FdOutput final : public Output {
 public:
  explicit FdOutput(int fd) noexcept : fd_(fd) {}
  Result<void> write(std::string_view bytes) override;
  int fd() const noexcept { return fd_; }

 private:
  int fd_;
};

// Collects every write, for tests.
class RecordingOutput final : public Output {
 public:
  Result<void> write(std::string_view bytes) override {
    if (!bytes.empty())
      writes_.emplace_back(bytes);
    return {};
  }
  const std::vector<std::string>& writes() const noexcept { return writes_; }
  std::string text() const;

 private:
  std::vector<std::string> writes_;
};

// SGR escape sequences, or empty strings when output is not a terminal.
struct Style {
  bool enabled = false;
  std::string_view dim() const noexcept { return enabled ? "\x1b[2m" : ""; }
  std::string_view bold() const noexcept { return enabled ? "\x1b[1m" : ""; }
  std::string_view red() const noexcept { return enabled ? "\x1b[31m" : ""; }
  std::string_view green() const noexcept { return enabled ? "\x1b[32m" : ""; }
  std::string_view reset() const noexcept { return enabled ? "\x1b[0m" : ""; }
};

// isatty(fd).
bool is_terminal(int fd) noexcept;

// The terminal's width in columns, 0 when `fd` is not a terminal or does not say.
int terminal_columns(int fd) noexcept;

// Turns off local echo on a terminal while alive (keys typed while an answer streams are not
// echoed into it; they are still read at the next prompt). Signals stay on, so Ctrl-C still
// raises SIGINT. Does nothing for a descriptor that is not a terminal. Non-copyable.
class EchoOff {
 public:
  explicit EchoOff(int fd) noexcept;
  ~EchoOff();
  EchoOff(const EchoOff&) = delete;
  EchoOff& operator=(const EchoOff&) = delete;

 private:
  int fd_;
  bool active_ = false;
  termios saved_{};
};

}  // namespace troupe::chat
