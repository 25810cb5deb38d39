#include "util/thread_name.hpp"

#include <pthread.h>

#include <algorithm>
#include <array>

namespace troupe::util {

namespace {
constexpr std::size_t kMax = 15;  // the kernel's limit, without the terminating NUL
}

void set_thread_name(std::string_view name) noexcept {
  std::array<char, kMax + 1> buf{};
  const std::size_t n = std::min(name.size(), kMax);
  std::copy_n(name.data(), n, buf.data());
  pthread_setname_np(pthread_self(), buf.data());
}

std::string thread_name() {
  std::array<char, kMax + 1> buf{};
  if (pthread_getname_np(pthread_self(), buf.data(), buf.size()) != 0)
    return {};
  return buf.data();
}

}  // namespace troupe::util
