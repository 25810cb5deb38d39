#include "hub/progress.hpp"

#include <fmt/format.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>

namespace troupe::hub {

std::string human_bytes(std::uint64_t n) {
  static constexpr const char* kUnits[] = {"KiB", "MiB", "GiB", "TiB"};
  if (n < 1024)
    return fmt::format("{} B", n);
  double v = static_cast<double>(n) / 1024;
  int unit = 0;
  while (v >= 1024 && unit < 3) {
    v /= 1024;
    ++unit;
  }
  return fmt::format("{:.1f} {}", v, kUnits[unit]);
}

Progress::Progress(std::FILE* out, bool terminal, std::string label, std::uint64_t total)
    : out_(out), terminal_(terminal), label_(std::move(label)), total_(total) {}

bool Progress::stderr_is_terminal() {
  const char* ci = std::getenv("CI");
  const char* term = std::getenv("TERM");
  if ((ci != nullptr && *ci != '\0') || (term != nullptr && std::strcmp(term, "dumb") == 0))
    return false;
  return ::isatty(STDERR_FILENO) == 1;
}

void Progress::update(std::uint64_t done) {
  if (!started_) {
    started_ = true;
    start_done_ = done;
    start_ = std::chrono::steady_clock::now();
  }
  const int steps = terminal_ ? 1000 : 10;
  const int now = total_ > 0 ? static_cast<int>(static_cast<double>(done) / total_ * steps) : -1;
  const bool complete = total_ > 0 && done >= total_;  // finish() draws that one
  if (now != shown_ && (terminal_ || now >= 0) && !complete) {
    shown_ = now;
    draw(done, false);
  }
}

void Progress::finish(std::uint64_t done) {
  if (!started_)
    update(done);
  draw(done, true);
}

void Progress::draw(std::uint64_t done, bool last) {
  if (out_ == nullptr)
    return;
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  const std::string speed =
      seconds > 0.2 ? human_bytes(static_cast<std::uint64_t>((done - start_done_) / seconds)) + "/s"
                    : std::string("--");
  const std::string size = total_ > 0
                               ? fmt::format("{} / {}", human_bytes(done), human_bytes(total_))
                               : human_bytes(done);
  const double fraction = total_ > 0 ? static_cast<double>(done) / total_ : 0;
  if (!terminal_) {
    fmt::print(out_, "{}: {:3.0f}% {} {}\n", label_, fraction * 100, size, last ? "done" : speed);
  } else {
    constexpr int kWidth = 30;
    const int filled = static_cast<int>(fraction * kWidth);
    fmt::print(out_, "\r{} [{}{}] {:5.1f}% {} {}\x1b[K{}", label_, std::string(filled, '#'),
               std::string(kWidth - filled, ' '), fraction * 100, size, speed, last ? "\n" : "");
  }
  std::fflush(out_);
}

}  // namespace troupe::hub
