#pragma once
// Names for the process's threads, so that `top -H`, `perf`, gdb and /proc/<pid>/task show
// which thread is the engine, a ggml worker, an I/O thread. Linux keeps 15 bytes of a name;
// longer names are cut. A thread created by another starts with its creator's name.

#include <string>
#include <string_view>
#include <thread>
#include <utility>

namespace troupe::util {

// Names the calling thread. Never fails visibly: naming is a debugging aid.
void set_thread_name(std::string_view name) noexcept;

// The calling thread's name ("" if it cannot be read).
std::string thread_name();

// Renames the calling thread for a scope and restores its name at the end: threads that a
// library starts inside the scope inherit the scope's name.
class ScopedThreadName {
 public:
  explicit ScopedThreadName(std::string_view name) : saved_(thread_name()) {
    set_thread_name(name);
  }
  ~ScopedThreadName() { set_thread_name(saved_); }
  ScopedThreadName(const ScopedThreadName&) = delete;
  ScopedThreadName& operator=(const ScopedThreadName&) = delete;

 private:
  std::string saved_;
};

// Starts a thread that carries `name` from its first instruction: Linux copies the creator's
// name into a new thread, so the creator takes the name for the moment of creation. A thread
// that names itself would be unnamed until the scheduler first runs it.
template <class F>
std::thread named_thread(std::string_view name, F&& body) {
  ScopedThreadName scope(name);
  return std::thread(std::forward<F>(body));
}

}  // namespace troupe::util
