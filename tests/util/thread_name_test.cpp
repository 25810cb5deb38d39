#include "util/thread_name.hpp"

#include <gtest/gtest.h>
#include <pthread.h>

#include <fstream>
#include <future>
#include <string>
#include <thread>

namespace troupe::util {
namespace {

// The name a fresh thread reads back after naming itself `name`.
std::string named_and_read_back(std::string_view name) {
  std::string seen;
  std::thread([&] {
    set_thread_name(name);
    seen = thread_name();
  }).join();
  return seen;
}

TEST(ThreadName, SetsAndReadsTheCallingThreadsName) {
  EXPECT_EQ(named_and_read_back("troupe-test"), "troupe-test");
}

TEST(ThreadName, CutsLongNamesToTheKernelsFifteenBytes) {
  EXPECT_EQ(named_and_read_back("a-name-longer-than-fifteen-bytes"), "a-name-longer-t");
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

// The name must be in /proc before the new thread has run at all: a reader that looks right
// after creation (a test, `top -H`) must not see the creator's name.
TEST(ThreadName, NamedThreadCarriesItsNameBeforeItRuns) {
  std::promise<void> go;
  std::string creator_after;
  std::string seen_from_outside;
  std::thread([&] {
    set_thread_name("creator");
    std::thread t = named_thread("io-worker", [f = go.get_future()]() mutable { f.wait(); });
    creator_after = thread_name();
    char buf[16] = {};
    pthread_getname_np(t.native_handle(), buf, sizeof buf);  // reads the thread's comm
    seen_from_outside = buf;
    go.set_value();
    t.join();
  }).join();
  EXPECT_EQ(creator_after, "creator");
  EXPECT_EQ(seen_from_outside, "io-worker");
}

}  // namespace
}  // namespace troupe::util
