#include "cluster/child_process.hpp"

#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>

extern char** environ;

namespace troupe::cluster::test {

ChildProcess::ChildProcess(std::vector<std::string> args, std::string name)
    : name_(std::move(name)) {
  int fds[2];
  if (::pipe(fds) != 0)
    std::abort();
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, fds[1], 1);
  posix_spawn_file_actions_adddup2(&fa, fds[1], 2);
  posix_spawn_file_actions_addclose(&fa, fds[0]);
  const std::string exe = std::string(TROUPE_BINARY_DIR) + "/troupe";
  args.insert(args.begin(), exe);
  std::vector<char*> argv;
  for (auto& a : args)
    argv.push_back(a.data());
  argv.push_back(nullptr);
  if (posix_spawn(&pid_, exe.c_str(), &fa, nullptr, argv.data(), environ) != 0) {
    std::fprintf(stderr, "cannot start %s\n", exe.c_str());
    std::abort();
  }
  posix_spawn_file_actions_destroy(&fa);
  ::close(fds[1]);
  reader_ = std::thread([this, fd = fds[0]] { read_loop(fd); });
}

ChildProcess::~ChildProcess() {
  if (status_ < 0) {
    kill();
    wait();
  }
  if (reader_.joinable())
    reader_.join();
}

void ChildProcess::read_loop(int fd) {
  std::string partial;
  char buf[4096];
  for (;;) {
    const ssize_t n = ::read(fd, buf, sizeof buf);
    if (n <= 0)
      break;
    partial.append(buf, static_cast<std::size_t>(n));
    std::size_t nl;
    while ((nl = partial.find('\n')) != std::string::npos) {
      std::string line = partial.substr(0, nl);
      partial.erase(0, nl + 1);
      if (std::getenv("TROUPE_TEST_VERBOSE"))
        std::fprintf(stderr, "[%s] %s\n", name_.c_str(), line.c_str());
      std::lock_guard lock(mu_);
      lines_.push_back(std::move(line));
      cv_.notify_all();
    }
  }
  ::close(fd);
  std::lock_guard lock(mu_);
  eof_ = true;
  cv_.notify_all();
}

std::optional<std::smatch> ChildProcess::wait_for(const std::regex& re, std::size_t from,
                                                  std::chrono::seconds limit, std::size_t* index) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  std::unique_lock lock(mu_);
  for (std::size_t i = from;;) {
    for (; i < lines_.size(); ++i) {
      std::smatch m;
      matched_.push_back(lines_[i]);
      if (std::regex_search(matched_.back(), m, re)) {
        if (index)
          *index = i;
        return m;
      }
      matched_.pop_back();
    }
    if (eof_ || std::chrono::steady_clock::now() >= deadline)
      return std::nullopt;
    cv_.wait_until(lock, deadline);
  }
}

std::vector<std::string> ChildProcess::lines() const {
  std::lock_guard lock(mu_);
  return lines_;
}

std::string ChildProcess::output() const {
  std::string out;
  for (const auto& l : lines())
    out += l + "\n";
  return out;
}

std::size_t ChildProcess::line_count() const {
  std::lock_guard lock(mu_);
  return lines_.size();
}

void ChildProcess::kill() {
  if (status_ < 0)
    ::kill(pid_, SIGKILL);
}

void ChildProcess::terminate() {
  if (status_ < 0)
    ::kill(pid_, SIGTERM);
}

int ChildProcess::wait() {
  if (status_ >= 0)
    return status_;
  int st = 0;
  ::waitpid(pid_, &st, 0);
  status_ = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
  return status_;
}

}  // namespace troupe::cluster::test
