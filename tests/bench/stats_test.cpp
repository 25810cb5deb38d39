#include "bench/stats.hpp"

#include <gtest/gtest.h>

#include <cmath>

namespace troupe::bench {
namespace {

TEST(Stats, ExactPercentilesOnKnownInput) {
  // 1..101 shuffled: the q-th percentile is exactly 1 + q.
  std::vector<double> v;
  for (int i = 101; i >= 1; --i)
    v.push_back(i);
  auto s = summarize(v);
  EXPECT_EQ(s.count, 101u);
  EXPECT_DOUBLE_EQ(s.min, 1);
  EXPECT_DOUBLE_EQ(s.max, 101);
  EXPECT_DOUBLE_EQ(s.mean, 51);
  EXPECT_DOUBLE_EQ(s.p25, 26);
  EXPECT_DOUBLE_EQ(s.p50, 51);
  EXPECT_DOUBLE_EQ(s.p75, 76);
  EXPECT_DOUBLE_EQ(s.p90, 91);
  EXPECT_DOUBLE_EQ(s.p95, 96);
  EXPECT_DOUBLE_EQ(s.p99, 100);
}

TEST(Stats, InterpolatesLikeNumpy) {
  // numpy.percentile([1, 2, 3, 4], [25, 50, 90]) == [1.75, 2.5, 3.7]
  auto s = summarize({4, 1, 3, 2});
  EXPECT_DOUBLE_EQ(s.p25, 1.75);
  EXPECT_DOUBLE_EQ(s.p50, 2.5);
  EXPECT_NEAR(s.p90, 3.7, 1e-12);
  EXPECT_NEAR(s.stddev, std::sqrt(1.25), 1e-12);  // population stddev
}

TEST(Stats, EmptyAndSingle) {
  EXPECT_EQ(summarize({}).count, 0u);
  auto one = summarize({7});
  EXPECT_DOUBLE_EQ(one.p99, 7);
  EXPECT_DOUBLE_EQ(one.stddev, 0);
}

TEST(Stats, QuantilesForCdf) {
  auto q = quantiles({0, 10}, 10);
  ASSERT_EQ(q.size(), 11u);
  EXPECT_DOUBLE_EQ(q[3], 3);
  EXPECT_TRUE(quantiles({}).empty());
}

}  // namespace
}  // namespace troupe::bench
