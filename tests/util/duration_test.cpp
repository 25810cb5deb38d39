#include "util/duration.hpp"

#include <gtest/gtest.h>

namespace troupe::util {
namespace {

using namespace std::chrono_literals;

std::chrono::nanoseconds parsed(std::string_view text, DurationUnit bare) {
  auto d = parse_duration(text, bare);
  EXPECT_TRUE(d) << text;
  return d ? d.value() : -1ns;
}

TEST(Duration, ReadsEveryUnit) {
  EXPECT_EQ(parsed("250us", DurationUnit::seconds), 250us);
  EXPECT_EQ(parsed("500ms", DurationUnit::seconds), 500ms);
  EXPECT_EQ(parsed("1.5s", DurationUnit::milliseconds), 1500ms);
  EXPECT_EQ(parsed("5m", DurationUnit::milliseconds), 5min);
  EXPECT_EQ(parsed("2h", DurationUnit::microseconds), 2h);
  EXPECT_EQ(parsed("0", DurationUnit::seconds), 0ns);
}

TEST(Duration, BareNumbersKeepTheOptionsOldUnit) {
  EXPECT_EQ(parsed("10", DurationUnit::seconds), 10s);
  EXPECT_EQ(parsed("2.5", DurationUnit::seconds), 2500ms);
  EXPECT_EQ(parsed("500", DurationUnit::milliseconds), 500ms);
  EXPECT_EQ(parsed("50", DurationUnit::microseconds), 50us);
}

TEST(Duration, RefusesWhatIsNotADuration) {
  for (std::string_view bad :
       {"", "s", "ms", "-1s", "1x", "1 s", "abc", "1e400s", "inf", "nan", "1e12h", "5mss", " 5s"}) {
    auto d = parse_duration(bad, DurationUnit::seconds);
    ASSERT_FALSE(d) << bad;
    EXPECT_NE(d.error().message.find("not a duration"), std::string::npos) << bad;
  }
}

TEST(Duration, FormatsWithTheLargestFittingUnit) {
  EXPECT_EQ(format_duration(0ns), "0s");
  EXPECT_EQ(format_duration(500ms), "500ms");
  EXPECT_EQ(format_duration(10s), "10s");
  EXPECT_EQ(format_duration(1500ms), "1.5s");
  EXPECT_EQ(format_duration(2min), "2m");
  EXPECT_EQ(format_duration(600s), "10m");
  EXPECT_EQ(format_duration(50us), "50us");
  EXPECT_EQ(format_duration(1h), "1h");
}

TEST(Duration, FormattedTextReadsBackTheSame) {
  for (auto d : {0ns, std::chrono::nanoseconds(50us), std::chrono::nanoseconds(1500ms),
                 std::chrono::nanoseconds(10s), std::chrono::nanoseconds(90min),
                 std::chrono::nanoseconds(1234ms)}) {
    EXPECT_EQ(parsed(format_duration(d), DurationUnit::seconds), d) << format_duration(d);
  }
}

}  // namespace
}  // namespace troupe::util
