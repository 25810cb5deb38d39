#include "bench/arrival.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <vector>

namespace troupe::bench {
namespace {

struct Moments {
  double mean = 0, var = 0, min = 1e300, max = 0;
};

Moments sample(ArrivalKind k, double rate, double burstiness, int n = 200000) {
  ArrivalProcess p(k, rate, burstiness, 1234);
  std::vector<double> v(static_cast<std::size_t>(n));
  Moments m;
  for (auto& x : v) {
    x = p.next_gap();
    m.mean += x;
    m.min = std::min(m.min, x);
    m.max = std::max(m.max, x);
  }
  m.mean /= n;
  for (double x : v)
    m.var += (x - m.mean) * (x - m.mean);
  m.var /= n;
  return m;
}

TEST(Arrival, PoissonHasExponentialGaps) {
  auto m = sample(ArrivalKind::poisson, 4.0, 1.0);
  EXPECT_NEAR(m.mean, 0.25, 0.25 * 0.01);
  EXPECT_NEAR(m.var, 0.0625, 0.0625 * 0.03);  // variance = mean^2
  EXPECT_GE(m.min, 0.0);
}

TEST(Arrival, GammaKeepsTheMeanAndScalesTheVarianceByBurstiness) {
  for (double b : {0.25, 1.0, 4.0}) {
    auto m = sample(ArrivalKind::gamma, 10.0, b);
    EXPECT_NEAR(m.mean, 0.1, 0.1 * 0.015) << b;
    double expected_var = 0.01 / b;  // mean^2 / shape
    EXPECT_NEAR(m.var, expected_var, expected_var * 0.06) << b;
    EXPECT_GE(m.min, 0.0);
  }
}

TEST(Arrival, ConstantIsExact) {
  auto m = sample(ArrivalKind::constant, 8.0, 1.0, 1000);
  EXPECT_DOUBLE_EQ(m.min, 0.125);
  EXPECT_DOUBLE_EQ(m.max, 0.125);
}

TEST(Arrival, UniformStaysWithinItsBounds) {
  auto m = sample(ArrivalKind::uniform, 2.0, 1.0);
  EXPECT_NEAR(m.mean, 0.5, 0.005);
  EXPECT_NEAR(m.var, 1.0 / 12.0, (1.0 / 12.0) * 0.02);  // (b-a)^2/12 with b-a = 1
  EXPECT_GE(m.min, 0.0);
  EXPECT_LE(m.max, 1.0);
}

TEST(Arrival, NormalIsTruncatedAtZero) {
  auto m = sample(ArrivalKind::normal, 1.0, 1.0);
  EXPECT_GE(m.min, 0.0);
  // Truncating N(1, 0.5) at 0 removes 2.3% of the mass and raises the mean slightly.
  EXPECT_NEAR(m.mean, 1.0 + 0.5 * 0.0540 / 0.9772, 0.01);
}

TEST(Arrival, SameSeedSameGaps) {
  ArrivalProcess a(ArrivalKind::gamma, 3.0, 0.5, 99), b(ArrivalKind::gamma, 3.0, 0.5, 99);
  for (int i = 0; i < 100; ++i)
    ASSERT_EQ(a.next_gap(), b.next_gap());
}

TEST(Arrival, ParseNamesAndRejectsOthers) {
  EXPECT_EQ(parse_arrival("gamma").value(), ArrivalKind::gamma);
  auto bad = parse_arrival("bursty");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.error().message.find("expected poisson"), std::string::npos);
}

}  // namespace
}  // namespace troupe::bench
