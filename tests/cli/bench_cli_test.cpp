// `troupe bench` as a user meets it against a real `troupe serve`: a run whose requests all
// fail exits non-zero and says the server's reason; --html without -o still writes a report.

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <regex>
#include <string>

#include "cli/run_troupe.hpp"
#include "cluster/child_process.hpp"

namespace troupe::cli {
namespace {

namespace fs = std::filesystem;
using cluster::test::ChildProcess;
using invoke::has;
using invoke::run_troupe;

// A sim-engine server on a free port; its port.
int start_sim(ChildProcess& p) {
  auto banner = p.wait_for(std::regex("troupe is serving on http://127\\.0\\.0\\.1:([0-9]+)"), 0,
                           std::chrono::seconds(60));
  return banner ? std::stoi((*banner)[1].str()) : -1;
}

fs::path fresh_dir(const std::string& name) {
  const auto dir = fs::path(TROUPE_BINARY_DIR) / "cli_test_tmp" / name;
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir;
}

std::string bench_args(int port) {
  return "bench --url http://127.0.0.1:" + std::to_string(port) +
         " -s 'D(8,4)' --concurrency 1 -n 3 --warmup 0 --progress off";
}

TEST(BenchCli, EveryRequestFailingExitsNonZeroWithTheServersMessage) {
  ChildProcess serve({"serve", "--engine", "sim", "--port", "0"}, "serve");
  const int port = start_sim(serve);
  ASSERT_GT(port, 0);
  const auto dir = fresh_dir("bench-fail");
  // A field troupe refuses: every request is a 400 naming it.
  std::ofstream(dir / "extra.json") << R"({"best_of": 2})";
  auto r = run_troupe(bench_args(port) + " --extra-body " + (dir / "extra.json").string());
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_TRUE(has(r.output, "every request of point")) << r.output;
  EXPECT_TRUE(has(r.output, "http_400")) << r.output;
  EXPECT_TRUE(has(r.output, "best_of")) << r.output;  // the server's own message

  // The same run without the bad field succeeds.
  r = run_troupe(bench_args(port));
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_FALSE(has(r.output, "every request of point")) << r.output;
  serve.terminate();
  EXPECT_EQ(serve.wait(), 0);
}

TEST(BenchCli, HtmlWithoutOutputDirWritesADefaultOne) {
  ChildProcess serve({"serve", "--engine", "sim", "--port", "0"}, "serve");
  const int port = start_sim(serve);
  ASSERT_GT(port, 0);
  const auto dir = fresh_dir("bench-html");
  auto r = run_troupe(bench_args(port) + " --html", dir.string());
  EXPECT_EQ(r.exit_code, 0) << r.output;
  int reports = 0;
  for (const auto& e : fs::directory_iterator(dir)) {
    if (e.is_directory() && e.path().filename().string().starts_with("bench-")) {
      EXPECT_TRUE(fs::exists(e.path() / "report.html")) << e.path();
      EXPECT_TRUE(fs::exists(e.path() / "results.json")) << e.path();
      ++reports;
    }
  }
  EXPECT_EQ(reports, 1) << r.output;
  serve.terminate();
  EXPECT_EQ(serve.wait(), 0);
}

}  // namespace
}  // namespace troupe::cli
