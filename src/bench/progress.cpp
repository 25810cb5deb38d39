#include "bench/progress.hpp"

#include <unistd.h>

#include <algorithm>

#include "bench/runner.hpp"

namespace troupe::bench {

Progress::Progress(std::FILE* out, ProgressMode mode) : out_(out) {
  off_ = mode == ProgressMode::off;
  bar_ = mode == ProgressMode::bar ||
         (mode == ProgressMode::automatic && out != nullptr && isatty(fileno(out)) != 0);
}

std::chrono::milliseconds Progress::interval() const {
  return std::chrono::milliseconds(bar_ ? 250 : 5000);
}

void Progress::start(const std::string& label, std::int64_t total, double duration_s) {
  label_ = label;
  total_ = total;
  duration_s_ = duration_s;
  last_done_ = 0;
  last_t_ = 0;
  rate_ = 0;
  if (enabled() && !bar_)
    std::fprintf(out_, "bench: %s: started\n", label.c_str());
}

std::string Progress::line(std::int64_t done, std::int64_t errors, std::int64_t in_flight,
                           double elapsed_s) const {
  char buf[256];
  std::string count =
      total_ > 0 ? std::to_string(done) + "/" + std::to_string(total_) : std::to_string(done);
  std::snprintf(buf, sizeof buf, "%s  %s req  %.1f req/s  %lld in flight  %lld errors  %.1fs",
                label_.c_str(), count.c_str(), rate_, static_cast<long long>(in_flight),
                static_cast<long long>(errors), elapsed_s);
  return buf;
}

void Progress::update(std::int64_t done, std::int64_t errors, std::int64_t in_flight,
                      double elapsed_s) {
  if (!enabled())
    return;
  // The current rate, over windows of 2 s (250 ms ticks would jump between 0 and bursts).
  if (rate_ == 0 || elapsed_s - last_t_ >= 2.0) {
    if (elapsed_s > last_t_) {
      rate_ = static_cast<double>(done - last_done_) / (elapsed_s - last_t_);
    }
    last_done_ = done;
    last_t_ = elapsed_s;
  }
  if (!bar_) {
    std::fprintf(out_, "bench: %s\n", line(done, errors, in_flight, elapsed_s).c_str());
    std::fflush(out_);
    return;
  }
  double frac = total_ > 0 ? static_cast<double>(done) / static_cast<double>(total_)
                           : (duration_s_ > 0 ? elapsed_s / duration_s_ : 0);
  int width = 24;
  int filled = static_cast<int>(std::clamp(frac, 0.0, 1.0) * width);
  std::string bar(static_cast<std::size_t>(filled), '#');
  bar.resize(static_cast<std::size_t>(width), '.');
  std::fprintf(out_, "\r\033[K[%s] %s", bar.c_str(),
               line(done, errors, in_flight, elapsed_s).c_str());
  std::fflush(out_);
}

void Progress::finish(std::int64_t done, std::int64_t errors, double elapsed_s) {
  if (!enabled())
    return;
  if (bar_)
    std::fprintf(out_, "\r\033[K");
  std::fprintf(out_, "bench: %s: %lld requests, %lld errors in %.1fs\n", label_.c_str(),
               static_cast<long long>(done), static_cast<long long>(errors), elapsed_s);
  std::fflush(out_);
}

}  // namespace troupe::bench
