#include "util/cpu_set.hpp"

#include <gtest/gtest.h>

#include <thread>

namespace troupe::util {
namespace {

std::string round_trip(std::string_view list) {
  auto set = parse_cpu_list(list);
  return set ? format_cpu_list(*set) : "error: " + set.error().message;
}

TEST(CpuSet, ParsesSinglesRangesAndMixes) {
  EXPECT_EQ(round_trip("0"), "0");
  EXPECT_EQ(round_trip("3-5"), "3-5");
  EXPECT_EQ(round_trip("0-3,8,10-11"), "0-3,8,10-11");
  EXPECT_EQ(round_trip(" 1 , 4 - 6 "), "1,4-6");
  EXPECT_EQ(round_trip("2,0,1"), "0-2");  // order and overlap do not matter
  EXPECT_EQ(round_trip("1-1,1"), "1");
  EXPECT_EQ(round_trip("1023"), "1023");  // CPU_SETSIZE - 1
}

TEST(CpuSet, RefusesWhatIsNotAListAndNamesTheItem) {
  for (const char* bad : {"", " ", ",", "1,", ",1", "a", "1-", "-1", "1-x", "3-1", "1.5", "0x1",
                          "1024", "99999999999", "1--2", "+1"}) {
    auto set = parse_cpu_list(bad);
    ASSERT_FALSE(set) << '"' << bad << "\" parsed as " << format_cpu_list(*set);
    EXPECT_EQ(set.error().code, Errc::invalid_request) << bad;
    EXPECT_NE(set.error().message.find(bad), std::string::npos) << set.error().message;
  }
  EXPECT_NE(parse_cpu_list("3-1").error().message.find("reversed"), std::string::npos);
}

TEST(CpuSet, PinningIsInheritedByLaterThreadsAndAnEmptySetIsRefused) {
  std::string seen, refused;
  std::thread([&] {
    cpu_set_t mine;
    ASSERT_EQ(sched_getaffinity(0, sizeof mine, &mine), 0);
    int first = 0;
    while (!CPU_ISSET(first, &mine))
      ++first;
    cpu_set_t one;
    CPU_ZERO(&one);
    CPU_SET(first, &one);
    ASSERT_TRUE(pin_calling_thread(one));
    std::thread([&] {
      cpu_set_t child;
      sched_getaffinity(0, sizeof child, &child);
      seen = format_cpu_list(child);
    }).join();
    EXPECT_EQ(seen, std::to_string(first));
    cpu_set_t none;
    CPU_ZERO(&none);
    auto r = pin_calling_thread(none);
    ASSERT_FALSE(r);
    refused = r.error().message;
  }).join();
  EXPECT_NE(refused.find("cannot pin"), std::string::npos) << refused;
}

}  // namespace
}  // namespace troupe::util
