// /metrics output must parse as Prometheus text exposition format: a small parser checks the
// grammar of every line, that each sample follows its # TYPE, and histogram consistency.

#include "server/metrics.hpp"

#include <gtest/gtest.h>

#include <map>
#include <regex>
#include <sstream>

#include "support/prometheus_text.hpp"
#include "support/promtool.hpp"

namespace troupe::server {
namespace {

using Family = test::PromFamily;
using test::parse_prometheus;

void expect_histogram(const Family& f, const std::string& name) {
  ASSERT_EQ(f.type, "histogram") << name;
  double last = 0, inf = -1;
  for (const auto& [labels, value] : f.samples) {
    if (labels.rfind("le=", 0) != 0)
      continue;
    EXPECT_GE(value, last) << name << " buckets must be cumulative";
    last = value;
    if (labels == "le=\"+Inf\"")
      inf = value;
  }
  // Samples end with _sum, _count: the +Inf bucket equals _count.
  EXPECT_EQ(inf, f.samples.back().second) << name;
}

TEST(Metrics, RendersParseableExposition) {
  Metrics m;
  m.count_request("chat_completions", 200);
  m.count_request("chat_completions", 400);
  m.time_to_first_token.observe(0.02);
  m.time_to_first_token.observe(3);
  m.inter_token_latency.observe(0.008);
  m.e2e_request_latency.observe(100);  // above every bound: +Inf only
  engine::BackendStats stats;
  stats.requests_running = 2;
  stats.sequences_per_step = {0, 5, 3, 0, 1};
  stats.kv_cache_usage_ratio = 0.5;
  stats.decode_us_total = 2'500'000;
  stats.sample_us_total = 125'000;
  stats.host_cache_bytes = 3 << 20;
  stats.spec_accepted_tokens_total = 7;
  const auto families = parse_prometheus(m.render(stats));
  for (const char* name : {"troupe_requests_total",
                           "troupe_requests_running",
                           "troupe_requests_queued",
                           "troupe_prompt_tokens_total",
                           "troupe_generation_tokens_total",
                           "troupe_prefix_cache_hits_total",
                           "troupe_prefix_cache_queries_total",
                           "troupe_decode_steps_total",
                           "troupe_decode_seconds_total",
                           "troupe_sampling_seconds_total",
                           "troupe_kv_cache_usage_ratio",
                           "troupe_pad_rows_total",
                           "troupe_host_cache_stores_total",
                           "troupe_host_cache_restores_total",
                           "troupe_host_cache_hits_total",
                           "troupe_host_cache_bytes",
                           "troupe_host_cache_entries",
                           "troupe_context_checkpoint_restores_total",
                           "troupe_context_checkpoint_bytes",
                           "troupe_cache_reuse_tokens_total",
                           "troupe_spec_draft_tokens_total",
                           "troupe_spec_accepted_tokens_total"}) {
    EXPECT_EQ(families.count(name), 1u) << name;
  }
  for (const char* name :
       {"troupe_sequences_per_step", "troupe_time_to_first_token_seconds",
        "troupe_inter_token_latency_seconds", "troupe_e2e_request_latency_seconds",
        "troupe_request_queue_time_seconds"}) {
    ASSERT_EQ(families.count(name), 1u) << name;
    expect_histogram(families.at(name), name);
  }
  const auto& req = families.at("troupe_requests_total");
  ASSERT_EQ(req.samples.size(), 2u);
  EXPECT_EQ(req.samples[0].first, R"(endpoint="chat_completions",code="200")");
  const auto& seq = families.at("troupe_sequences_per_step").samples;
  EXPECT_EQ(seq.back().second, 9);  // _count: 9 steps
  EXPECT_DOUBLE_EQ(families.at("troupe_decode_seconds_total").samples.at(0).second, 2.5);
  EXPECT_DOUBLE_EQ(families.at("troupe_sampling_seconds_total").samples.at(0).second, 0.125);
  EXPECT_DOUBLE_EQ(families.at("troupe_host_cache_bytes").samples.at(0).second, 3 << 20);
  EXPECT_EQ(families.at("troupe_host_cache_bytes").type, "gauge");
  EXPECT_DOUBLE_EQ(families.at("troupe_spec_accepted_tokens_total").samples.at(0).second, 7);
}

// Prometheus's own linter agrees: names, types, HELP lines, counter suffixes, histograms.
TEST(Metrics, PromtoolAcceptsTheExposition) {
  Metrics m;
  m.count_request("completions", 200);
  m.count_request("chat_completions", 503);
  m.time_to_first_token.observe(0.02);
  m.inter_token_latency.observe(0.008);
  m.e2e_request_latency.observe(1.5);
  engine::BackendStats stats;
  stats.requests_running = 1;
  stats.sequences_per_step = {0, 2, 1};
  stats.kv_cache_usage_ratio = 0.125;
  TROUPE_EXPECT_PROMTOOL_ACCEPTS(m.render(stats));
}

// promtool must be able to fail: a counter without _total and a sample of no declared family.
TEST(Metrics, PromtoolRejectsBadExposition) {
  TROUPE_EXPECT_PROMTOOL_ACCEPTS(
      std::string("# HELP ok_total fine\n# TYPE ok_total counter\nok_total 1\n"));
  const auto promtool = test::find_promtool();
  ASSERT_TRUE(promtool);
  const auto bad = test::promtool_check_metrics(
      *promtool, "# HELP requests counted\n# TYPE requests counter\nrequests 1\n");
  EXPECT_NE(bad.exit_code, 0) << bad.output;
}

TEST(Histogram, CountsIntoTheFirstBucketThatHolds) {
  Histogram h({1, 2});
  h.observe(0.5);
  h.observe(1);
  h.observe(1.5);
  h.observe(7);
  auto s = h.snapshot();
  EXPECT_EQ(s.cumulative, (std::vector<std::int64_t>{2, 3, 4}));
  EXPECT_EQ(s.count, 4);
  EXPECT_DOUBLE_EQ(s.sum, 10);
}

}  // namespace
}  // namespace troupe::server
