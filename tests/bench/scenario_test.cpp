#include "bench/scenario.hpp"

#include <gtest/gtest.h>

namespace troupe::bench {
namespace {

TEST(Scenario, ParsesDeterministic) {
  auto s = parse_scenario("D(100, 200)");
  ASSERT_TRUE(s.ok()) << s.error().message;
  EXPECT_EQ(s->kind, Scenario::Kind::deterministic);
  EXPECT_EQ(s->text, "D(100,200)");
  std::mt19937_64 rng(1);
  auto t = s->sample(rng);
  EXPECT_EQ(t.input, 100);
  EXPECT_EQ(t.output, 200);
}

TEST(Scenario, ParsesNormalAndUniform) {
  auto n = parse_scenario("N(480,240)/(300,150)");
  ASSERT_TRUE(n.ok());
  EXPECT_EQ(n->kind, Scenario::Kind::normal);
  EXPECT_EQ(n->in_a, 480);
  EXPECT_EQ(n->out_b, 150);
  auto u = parse_scenario("U(50,100)/(200,250)");
  ASSERT_TRUE(u.ok());
  std::mt19937_64 rng(7);
  for (int i = 0; i < 1000; ++i) {
    auto t = u->sample(rng);
    ASSERT_GE(t.input, 50);
    ASSERT_LE(t.input, 100);
    ASSERT_GE(t.output, 200);
    ASSERT_LE(t.output, 250);
  }
  auto u2 = parse_scenario("U(100,20)");
  ASSERT_TRUE(u2.ok());
  for (int i = 0; i < 1000; ++i) {
    auto t = u2->sample(rng);
    ASSERT_GE(t.input, 1);
    ASSERT_LE(t.input, 100);
    ASSERT_LE(t.output, 20);
  }
}

TEST(Scenario, NormalSamplesAreAtLeastOneAndNearTheMean) {
  auto n = parse_scenario("N(10,20)/(100,5)");
  ASSERT_TRUE(n.ok());
  std::mt19937_64 rng(3);
  double sum = 0;
  for (int i = 0; i < 20000; ++i) {
    auto t = n->sample(rng);
    ASSERT_GE(t.input, 1);
    sum += t.output;
  }
  EXPECT_NEAR(sum / 20000, 100, 0.5);
}

TEST(Scenario, InvalidStringsSayWhatWasExpected) {
  for (const char* bad :
       {"", "D", "D(100)", "D(100,)", "D(a,b)", "D(0,10)", "D(1.5,2)", "X(1,2)", "N(1,2)",
        "N(1,2)/(3)", "U(10,5)/(1,2)", "D(1,2)/(3,4)", "D(-1,2)", "U(1,2)/(3,4", "N(0,1)/(5,1)"}) {
    auto s = parse_scenario(bad);
    EXPECT_FALSE(s.ok()) << bad;
    if (!s.ok()) {
      EXPECT_NE(s.error().message.find("invalid scenario"), std::string::npos);
      EXPECT_EQ(s.error().code, Errc::invalid_request);
    }
  }
  auto e = parse_scenario("D(100)");
  EXPECT_NE(e.error().message.find("expected D(input,output)"), std::string::npos);
}

}  // namespace
}  // namespace troupe::bench
