#pragma once
// A download's progress for people: on a terminal one line redrawn in place (a bar, percent,
// bytes, speed); elsewhere (a pipe, a log, CI) plain lines at every tenth of the file, so logs
// stay short.
//
// Thread-safety: a Progress is used by one thread.

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <string>

namespace troupe::hub {

class Progress {
 public:
  // Writes to `out` (not owned; nullptr: writes nothing). `total` 0: unknown size.
  Progress(std::FILE* out, bool terminal, std::string label, std::uint64_t total);
  // The bytes done so far (resumed bytes included); redraws when something visible changed.
  void update(std::uint64_t done);
  // The last line (ends it on a terminal).
  void finish(std::uint64_t done);

  // True when stderr is a terminal and the environment does not say CI (CI or TERM=dumb).
  static bool stderr_is_terminal();

 private:
  void draw(std::uint64_t done, bool last);

  std::FILE* out_;
  bool terminal_;
  std::string label_;
  std::uint64_t total_;
  std::uint64_t start_done_ = 0;
  bool started_ = false;
  int shown_ = -1;  // per mille on a terminal, tenths elsewhere
  std::chrono::steady_clock::time_point start_;
};

// "1.5 GiB", "320.0 MiB", "12 B".
std::string human_bytes(std::uint64_t n);

}  // namespace troupe::hub
