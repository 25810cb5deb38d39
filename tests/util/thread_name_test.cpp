#include "util/thread_name.hpp"

#include <gtest/gtest.h>

#include <fstream>
#include <string>
#include <thread>

namespace troupe::util {
namespace {

TEST(ThreadName, SetsAndReadsTheCallingThreadsName) {
  std::string seen;
  std::thread([&] {
    set_thread_name("troupe-test");
    seen = thread_name();
  }).join();
  EXPECT_EQ(seen, "troupe-test");
}

TEST(ThreadName, CutsLongNamesToTheKernelsFifteenBytes) {
  std::string seen;
  std::thread([&] {
    set_thread_name("a-name-longer-than-fifteen-bytes");
    seen = thread_name();
  }).join();
  EXPECT_EQ(seen, "a-name-longer-t");
}

TEST(ThreadName, ScopedNameIsInheritedByThreadsStartedInsideAndThenRestored) {
  std::string before, child, after;
  std::thread([&] {
    set_thread_name("outer");
    before = thread_name();
    {
      ScopedThreadName scope("lib-worker");
      std::thread([&] { child = thread_name(); }).join();
    }
    after = thread_name();
  }).join();
  EXPECT_EQ(before, "outer");
  EXPECT_EQ(child, "lib-worker");
  EXPECT_EQ(after, "outer");
}

}  // namespace
}  // namespace troupe::util
