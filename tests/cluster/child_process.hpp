#pragma once
// ChildProcess: a `troupe` subcommand run as a separate process for end-to-end tests. Its
// stdout and stderr are read line by line on a thread; tests wait for a line (a readiness
// log line) with a deadline instead of sleeping.
//
// Thread-safety: wait_for() and lines() from any thread; kill()/terminate()/wait() from the
// owning thread.

#include <sys/types.h>

#include <chrono>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <optional>
#include <regex>
#include <string>
#include <thread>
#include <vector>

namespace troupe::cluster::test {

class ChildProcess {
 public:
  // Starts TROUPE_BINARY_DIR/troupe with `args`. Aborts the test binary if it cannot.
  explicit ChildProcess(std::vector<std::string> args, std::string name);
  ~ChildProcess();  // SIGKILL if still running, then reaps it
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;

  // Waits for an output line at index >= `from` matching `re`; returns its submatches and
  // sets *index to the line's index. nullopt at the deadline or when the process ended.
  std::optional<std::smatch> wait_for(const std::regex& re, std::size_t from = 0,
                                      std::chrono::seconds limit = std::chrono::seconds(60),
                                      std::size_t* index = nullptr);
  // Output lines so far.
  std::vector<std::string> lines() const;
  // The same, each ended by '\n' (for test failure messages).
  std::string output() const;
  std::size_t line_count() const;

  void kill();       // SIGKILL
  void terminate();  // SIGTERM
  int wait();        // the exit status (or 128 + signal)
  pid_t pid() const noexcept { return pid_; }

 private:
  void read_loop(int fd);

  std::string name_;
  pid_t pid_ = -1;
  int status_ = -1;
  std::thread reader_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::vector<std::string> lines_;
  std::deque<std::string> matched_;  // storage that smatch results point into (stable)
  bool eof_ = false;
};

}  // namespace troupe::cluster::test
