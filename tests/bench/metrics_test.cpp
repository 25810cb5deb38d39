#include "bench/metrics.hpp"

#include <gtest/gtest.h>

namespace troupe::bench {
namespace {

// A request sent at t=1.0 whose deltas arrive at 1.5, 1.6, 1.8, 2.1 and which ends at 2.1
// with usage 4 output tokens.
RequestRecord scripted() {
  RequestRecord r;
  RequestTimer t(r, 1.0);
  for (double at : {1.5, 1.6, 1.8, 2.1})
    t.on_delta(at);
  t.on_done(2.1, 10, 4);
  return r;
}

TEST(Metrics, TtftE2eTpotAndItlFromScriptedTimings) {
  auto r = scripted();
  EXPECT_DOUBLE_EQ(r.ttft_s, 0.5);
  EXPECT_DOUBLE_EQ(r.e2e_s, 1.1);
  ASSERT_TRUE(r.tpot());
  EXPECT_NEAR(*r.tpot(), (1.1 - 0.5) / 3, 1e-12);  // (E2E - TTFT) / (out - 1)
  ASSERT_EQ(r.itl_s.size(), 3u);
  EXPECT_NEAR(r.itl_s[0], 0.1, 1e-12);
  EXPECT_NEAR(r.itl_s[1], 0.2, 1e-12);
  EXPECT_NEAR(r.itl_s[2], 0.3, 1e-12);
  EXPECT_EQ(r.output_tokens, 4);
  EXPECT_EQ(r.input_tokens, 10);
  EXPECT_EQ(r.deltas, 4);
}

TEST(Metrics, TokensWithoutUsageAreCountedAndTpotNeedsTwo) {
  RequestRecord r;
  RequestTimer t(r, 0);
  t.on_delta(0.2);
  t.on_done(0.3, std::nullopt, std::nullopt);
  EXPECT_EQ(r.output_tokens, 1);
  EXPECT_FALSE(r.usage_reported);
  EXPECT_FALSE(r.tpot());
}

TEST(Metrics, AggregateCountsErrorsThroughputAndGoodput) {
  std::vector<RequestRecord> rs;
  rs.push_back(scripted());
  auto second = scripted();
  second.start_s = 2.0;
  second.end_s = 3.0;
  second.ttft_s = 0.1;
  second.e2e_s = 1.0;
  rs.push_back(second);
  RequestRecord failed;
  RequestTimer(failed, 1.5).on_error(2.5, "http_429", "busy");
  rs.push_back(failed);
  RequestRecord warm = scripted();
  warm.measured = false;
  rs.push_back(warm);
  auto slo = parse_slo("ttft=200ms");
  ASSERT_TRUE(slo.ok());
  auto p = aggregate(rs, slo.value());
  EXPECT_EQ(p.requests, 3u);
  EXPECT_EQ(p.completed, 2u);
  EXPECT_EQ(p.failed, 1u);
  EXPECT_EQ(p.errors.at("http_429"), 1u);
  EXPECT_DOUBLE_EQ(p.duration_s, 2.0);  // 1.0 .. 3.0
  EXPECT_DOUBLE_EQ(p.rps, 1.0);
  EXPECT_DOUBLE_EQ(p.output_tps, 4.0);
  EXPECT_DOUBLE_EQ(p.input_tps, 10.0);
  EXPECT_NEAR(p.error_rate, 1.0 / 3, 1e-12);
  EXPECT_EQ(p.good, 1u);  // only the second meets ttft <= 200 ms
  EXPECT_DOUBLE_EQ(p.goodput_rps, 0.5);
  EXPECT_EQ(p.itl.count, 6u);
  EXPECT_EQ(p.ttft_cdf.size(), 101u);
}

TEST(Metrics, UsageMismatchIsCounted) {
  RequestRecord r;
  RequestTimer t(r, 0);
  t.on_delta(0.1);
  t.on_done(0.2, 3, 5);  // usage says 5 tokens, one delta seen
  auto p = aggregate(std::vector<RequestRecord>{r}, Slo{});
  EXPECT_EQ(p.usage_mismatch, 1u);
}

TEST(Metrics, ParseSlo) {
  auto s = parse_slo("ttft=500ms,tpot=50ms,e2e=2s");
  ASSERT_TRUE(s.ok());
  EXPECT_DOUBLE_EQ(*s->ttft_s, 0.5);
  EXPECT_DOUBLE_EQ(*s->tpot_s, 0.05);
  EXPECT_DOUBLE_EQ(*s->e2e_s, 2.0);
  EXPECT_FALSE(parse_slo("ttft").ok());
  EXPECT_FALSE(parse_slo("latency=5s").ok());
  EXPECT_FALSE(parse_slo("ttft=fast").ok());
}

}  // namespace
}  // namespace troupe::bench
