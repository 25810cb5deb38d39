// End-to-end runs of the load generator against the scripted server of tests/client, which
// answers max_tokens tokens "t0 t1 ..." with usage, and counts one token per prompt byte.

#include "bench/runner.hpp"

#include <gtest/gtest.h>

#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/json.hpp>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "bench/options.hpp"
#include "bench/report.hpp"
#include "bench/results.hpp"
#include "server_thread.hpp"

namespace troupe::bench {
namespace {

namespace asio = boost::asio;

// The fake's answers, each generation request held for `delay` first (a slow server).
test::FakeHandler slow_handler(int fail_every, std::chrono::milliseconds delay) {
  auto inner = test::openai_handler(fail_every);
  if (delay.count() == 0)
    return inner;
  return [inner, delay](const test::FakeRequest& req,
                        asio::ip::tcp::socket& s) -> asio::awaitable<bool> {
    if (req.target.starts_with("/v1/") && req.target != "/v1/models") {
      asio::steady_timer t(s.get_executor(), delay);
      co_await t.async_wait(asio::use_awaitable);
    }
    co_return co_await inner(req, s);
  };
}

// The scripted server, optionally failing every fail_every-th and slow, on its own thread.
class ServerThread : public testing::ServerThread {
 public:
  explicit ServerThread(int fail_every = 0, std::chrono::milliseconds delay = {})
      : testing::ServerThread(slow_handler(fail_every, delay)) {}
};

BenchConfig config(const std::string& url, BenchFlags f) {
  f.url = url;
  f.progress = "off";
  auto c = make_config(f);
  EXPECT_TRUE(c.ok()) << c.error().message;
  return c.value();
}

std::string read(const std::filesystem::path& p) {
  std::ifstream in(p);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

TEST(Runner, ClosedLoopSweepCountsMatchAndReportIsWritten) {
  ServerThread server;
  BenchFlags f;
  f.scenarios = {"D(40,5)", "U(10,20)/(2,4)"};
  f.concurrency = "1,3";
  f.max_requests = 7;
  f.warmup = 2;
  f.cooldown = 1;
  f.slo = "ttft=10s";
  auto run = run_benchmark(config(server.url(), f), nullptr);
  ASSERT_TRUE(run.ok()) << run.error().message;
  ASSERT_EQ(run->points.size(), 4u);
  EXPECT_TRUE(run->exact_prompts);
  EXPECT_EQ(run->model, "fake");
  for (const auto& p : run->points) {
    SCOPED_TRACE(p.spec.label());
    EXPECT_EQ(p.records.size(), 10u);  // 2 warm-up + 7 measured + 1 cool-down
    EXPECT_EQ(p.stats.requests, 7u);
    EXPECT_EQ(p.stats.completed, 7u);
    EXPECT_EQ(p.stats.good, 7u);
    EXPECT_EQ(p.output_len_mismatch, 0);
    EXPECT_EQ(p.stats.usage_mismatch, 0u);
    EXPECT_LE(p.max_in_flight, p.spec.concurrency);
    for (const auto& r : p.records) {
      EXPECT_TRUE(r.ok()) << r.error_message;
      EXPECT_EQ(r.input_tokens, r.target_input);  // exact prompt lengths
      EXPECT_EQ(r.output_tokens, r.target_output);
      EXPECT_EQ(r.deltas, r.target_output);
    }
  }
  EXPECT_EQ(run->points[0].records[0].target_input, 40);

  auto dir = std::filesystem::path(TROUPE_BINARY_DIR) / "bench_test_out" / "closed";
  std::filesystem::remove_all(dir);
  ASSERT_TRUE(write_results(run.value(), dir.string()).ok());
  auto results = boost::json::parse(read(dir / "results.json")).as_object();
  const auto& points = results.at("points").as_array();
  ASSERT_EQ(points.size(), 4u);
  std::int64_t out_tokens = 0;
  for (const auto& r : run->points[0].records)
    out_tokens += r.measured ? r.output_tokens : 0;
  EXPECT_EQ(points[0].at("requests").to_number<std::uint64_t>(), 7u);
  EXPECT_EQ(points[0].at("output_tokens").at("count").to_number<std::uint64_t>(), 7u);
  EXPECT_DOUBLE_EQ(points[0].at("output_tokens").at("mean").to_number<double>() * 7, out_tokens);
  EXPECT_EQ(results.at("config").at("seed").to_number<std::uint64_t>(), 42u);
  auto csv = read(dir / "requests_0.csv");
  EXPECT_EQ(std::count(csv.begin(), csv.end(), '\n'), 11);  // header + 10 requests

  auto html = dir / "report.html";
  ASSERT_TRUE(write_report({dir.string(), dir.string()}, html.string()).ok());
  auto page = read(html);
  std::size_t svgs = 0;
  for (auto at = page.find("<svg"); at != std::string::npos; at = page.find("<svg", at + 1))
    ++svgs;
  EXPECT_GE(svgs, 7u);
  EXPECT_EQ(page.find("<script"), std::string::npos);  // self-contained: nothing to fetch
  EXPECT_NE(page.find("<polyline"), std::string::npos);
}

TEST(Runner, OpenLoopRateWithErrorsAndCompletions) {
  ServerThread server(/*fail_every=*/4);
  BenchFlags f;
  f.scenarios = {"D(8,3)"};
  f.request_rate = "200";
  f.arrival = "constant";
  f.endpoint = "completions";
  f.max_requests = 8;
  f.max_concurrency = 2;
  auto run = run_benchmark(config(server.url(), f), nullptr);
  ASSERT_TRUE(run.ok()) << run.error().message;
  ASSERT_EQ(run->points.size(), 1u);
  const auto& p = run->points[0];
  EXPECT_EQ(p.stats.requests, 8u);
  EXPECT_EQ(p.stats.failed, 2u);  // every 4th generation request fails
  EXPECT_EQ(p.stats.errors.at("http_500"), 2u);
  EXPECT_LE(p.max_in_flight, 2);
  for (std::size_t i = 1; i < p.records.size(); ++i) {
    EXPECT_NEAR(p.records[i].scheduled_s - p.records[i - 1].scheduled_s, 1.0 / 200, 1e-9);
  }
}

TEST(Runner, WarmupAndCooldownRequestsAreSentButNotMeasured) {
  // One worker, so request i is the server's (i+1)-th: every 4th fails, i.e. indices 3 and 7,
  // the last warm-up request and the cool-down one. The measured statistics see no failure.
  ServerThread server(/*fail_every=*/4);
  BenchFlags f;
  f.scenarios = {"D(8,2)"};
  f.concurrency = "1";
  f.warmup = 4;
  f.max_requests = 3;
  f.cooldown = 1;
  auto run = run_benchmark(config(server.url(), f), nullptr);
  ASSERT_TRUE(run.ok()) << run.error().message;
  const auto& p = run->points.at(0);
  ASSERT_EQ(p.records.size(), 8u);
  for (const auto& r : p.records) {
    SCOPED_TRACE(r.index);
    EXPECT_EQ(r.measured, r.index >= 4 && r.index < 7);
    EXPECT_EQ(r.ok(), r.index != 3 && r.index != 7);
  }
  EXPECT_EQ(p.stats.requests, 3u);
  EXPECT_EQ(p.stats.completed, 3u);
  EXPECT_EQ(p.stats.failed, 0u);
  EXPECT_TRUE(p.stats.errors.empty());
  EXPECT_EQ(p.stats.ttft.count, 3u);
}

TEST(Runner, MaxConcurrencyHoldsLaterSendsAndReportsThemLate) {
  // 1000 requests/s at most one in flight against a server that takes 30 ms: requests 1..3
  // (due at 1, 2, 3 ms) can only go when the one before has ended, at least 29 ms late.
  ServerThread server(0, std::chrono::milliseconds(30));
  BenchFlags f;
  f.scenarios = {"D(8,2)"};
  f.request_rate = "1000";
  f.arrival = "constant";
  f.endpoint = "completions";
  f.max_requests = 4;
  f.max_concurrency = 1;
  auto run = run_benchmark(config(server.url(), f), nullptr);
  ASSERT_TRUE(run.ok()) << run.error().message;
  const auto& p = run->points.at(0);
  EXPECT_EQ(p.stats.completed, 4u);
  EXPECT_EQ(p.max_in_flight, 1);
  EXPECT_GE(p.late_sends, 3);
  EXPECT_GE(p.max_late_s, 0.029);
  for (std::size_t i = 1; i < p.records.size(); ++i) {
    EXPECT_GE(p.records[i].start_s, p.records[i - 1].end_s);  // never two at once
  }
  bool reported = false;
  for (const auto& w : run->warnings)
    reported = reported || w.find("sends were more than 10 ms late") != std::string::npos;
  EXPECT_TRUE(reported);
}

TEST(Runner, SaturationWarningsNameThePointAndTheCause) {
  PointResult p;
  p.spec.scenario = parse_scenario("D(10,10)").value();
  p.spec.open_loop = true;
  p.spec.rate = 50;
  p.client_cpu = 0.5;
  EXPECT_TRUE(point_warnings(p).empty());
  p.client_cpu = 0.95;
  p.late_sends = 12;
  auto w = point_warnings(p);
  ASSERT_EQ(w.size(), 2u);
  EXPECT_EQ(w[0], "rate=50 D(10,10): the client used 95% of its core: it may be the bottleneck");
  EXPECT_EQ(w[1],
            "rate=50 D(10,10): 12 sends were more than 10 ms late (client saturated or "
            "capped)");
}

TEST(Runner, SameSeedSamePrompts) {
  ServerThread server;
  BenchFlags f;
  f.scenarios = {"U(5,50)/(1,3)"};
  f.max_requests = 5;
  auto a = run_benchmark(config(server.url(), f), nullptr);
  auto b = run_benchmark(config(server.url(), f), nullptr);
  ASSERT_TRUE(a.ok() && b.ok());
  for (std::size_t i = 0; i < 5; ++i) {
    EXPECT_EQ(a->points[0].records[i].target_input, b->points[0].records[i].target_input);
    EXPECT_EQ(a->points[0].records[i].target_output, b->points[0].records[i].target_output);
  }
}

TEST(Runner, UnreachableServerIsAnError) {
  asio::io_context probe;
  asio::ip::tcp::acceptor a(probe, {asio::ip::make_address("127.0.0.1"), 0});
  auto url = "http://127.0.0.1:" + std::to_string(a.local_endpoint().port());
  a.close();
  auto run = run_benchmark(config(url, BenchFlags{}), nullptr);
  ASSERT_FALSE(run.ok());
  EXPECT_NE(run.error().message.find("connection refused"), std::string::npos)
      << run.error().message;
}

TEST(Options, InvalidFlagsAreClearErrors) {
  auto check = [](BenchFlags f, const std::string& needle) {
    auto c = make_config(f);
    ASSERT_FALSE(c.ok()) << needle;
    EXPECT_NE(c.error().message.find(needle), std::string::npos) << c.error().message;
  };
  BenchFlags f;
  f.scenarios = {"D(1)"};
  check(f, "invalid scenario");
  f = {};
  f.concurrency = "1,x";
  check(f, "--concurrency");
  f = {};
  f.url = "https://example.com";
  check(f, "only http://");
  f = {};
  f.arrival = "weird";
  check(f, "expected poisson");
  f = {};
  f.slo = "ttft=abc";
  check(f, "invalid SLO");
  f = {};
  f.headers = {"no colon here"};
  check(f, "--header");
  f = {};
  f.max_duration = "soon";
  check(f, "--max-duration");
  f = {};
  f.dataset = "prompts.txt";
  f.tokenizer = "model.gguf";
  check(f, "--tokenizer");
}

}  // namespace
}  // namespace troupe::bench
