#pragma once
// Live progress of a benchmark: a redrawn bar on a terminal, plain lines every few seconds
// otherwise (logs, CI), or nothing.
//
// Thread-safety: one owner (the benchmark's io thread).

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <string>

namespace troupe::bench {

enum class ProgressMode;

class Progress {
 public:
  // `out` may be null (no progress). `automatic` picks bar when `out` is a terminal.
  Progress(std::FILE* out, ProgressMode mode);

  bool enabled() const { return out_ != nullptr && !off_; }
  std::chrono::milliseconds interval() const;

  // A point begins: `total` requests (0 when bounded by `duration_s` only).
  void start(const std::string& label, std::int64_t total, double duration_s);
  void update(std::int64_t done, std::int64_t errors, std::int64_t in_flight, double elapsed_s);
  void finish(std::int64_t done, std::int64_t errors, double elapsed_s);

 private:
  std::string line(std::int64_t done, std::int64_t errors, std::int64_t in_flight,
                   double elapsed_s) const;

  std::FILE* out_;
  bool bar_ = false;
  bool off_ = false;
  std::string label_;
  std::int64_t total_ = 0;
  double duration_s_ = 0;
  std::int64_t last_done_ = 0;
  double last_t_ = 0;
  double rate_ = 0;
};

}  // namespace troupe::bench
