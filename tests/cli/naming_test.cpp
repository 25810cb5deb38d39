// One name per concept across commands, read from every command's --help: the HTTP port is
// --port, -c is the context size, every time option is a DURATION with a unit; old spellings
// still parse but are not shown.

#include <gtest/gtest.h>

#include <regex>
#include <sstream>
#include <string>
#include <vector>

#include "cli/run_troupe.hpp"
#include "cluster/child_process.hpp"

namespace troupe::cli {
namespace {

using invoke::has;
using invoke::run_troupe;

const std::vector<std::string> kCommands = {"serve",        "worker", "gateway", "bench",
                                            "bench report", "chat",   "mkmodel", "version",
                                            "pull",         "list",   "rm"};

struct HelpOption {
  std::string spellings;  // "-c,--ctx-size"
  std::string type;       // "INT", "DURATION", "" for flags
  std::string line;
};

// The option lines of `troupe <command> --help`.
std::vector<HelpOption> options_of(const std::string& command) {
  auto r = run_troupe(command + " --help");
  EXPECT_EQ(r.exit_code, 0) << command << ": " << r.output;
  static const std::regex kOption(R"(^\s+((?:-{1,2}[A-Za-z0-9][\w-]*,?)+)(?:\s+([A-Z]+))?)");
  std::vector<HelpOption> out;
  std::istringstream lines(r.output);
  for (std::string line; std::getline(lines, line);) {
    std::smatch m;
    if (std::regex_search(line, m, kOption))
      out.push_back({m[1].str(), m[2].str(), line});
  }
  EXPECT_FALSE(out.empty()) << command;
  return out;
}

bool ends_with_any(const std::string& s, std::initializer_list<const char*> tails) {
  for (const char* t : tails) {
    if (s.ends_with(t))
      return true;
  }
  return false;
}

TEST(Naming, EveryTimeOptionIsADurationWithAUnit) {
  int durations = 0;
  for (const auto& command : kCommands) {
    for (const auto& o : options_of(command)) {
      const bool timeish = ends_with_any(
          o.spellings, {"-timeout", "-interval", "-grace", "-duration", "-spin", "--timeout"});
      if (timeish) {
        ++durations;
        EXPECT_EQ(o.type, "DURATION") << command << ": " << o.line;
      }
      if (o.type == "DURATION") {
        // Its default, when shown, carries a unit.
        static const std::regex kDefault(R"(DURATION=([0-9.]+)(us|ms|s|m|h)\b)");
        if (has(o.line, "DURATION=")) {
          EXPECT_TRUE(std::regex_search(o.line, kDefault)) << command << ": " << o.line;
        }
      }
      // No number option is documented in a time unit.
      if (o.type == "INT" || o.type == "FLOAT" || o.type == "UINT") {
        static const std::regex kUnitWord(R"(\s(ms|us|seconds|milliseconds)\s)");
        EXPECT_FALSE(std::regex_search(o.line, kUnitWord)) << command << ": " << o.line;
      }
    }
  }
  EXPECT_GE(durations, 10);  // the HTTP timeouts, the membership timings, bench's
}

TEST(Naming, TheHttpPortIsPortEverywhere) {
  for (const std::string command : {"serve", "worker", "gateway"}) {
    bool port = false;
    for (const auto& o : options_of(command)) {
      port = port || o.spellings == "--port";
      EXPECT_FALSE(has(o.spellings, "http-port")) << command << ": " << o.line;
    }
    EXPECT_TRUE(port) << command;
  }
  // The old spelling still works, hidden: a worker serves its engine over HTTP with it.
  for (const std::string flag : {"--port", "--http-port"}) {
    cluster::test::ChildProcess worker({"worker", "--engine", "sim", "--listen", "127.0.0.1:0",
                                        "--cluster-secret", "naming", flag, "0"},
                                       "worker");
    EXPECT_TRUE(worker.wait_for(std::regex("worker: direct HTTP on http://127\\.0\\.0\\.1:[0-9]+")))
        << flag;
    EXPECT_TRUE(worker.wait_for(std::regex("worker: ready"))) << flag;
    worker.terminate();
    EXPECT_EQ(worker.wait(), 0) << flag;
  }
}

TEST(Naming, DashCIsTheContextSizeWhereverItIsShown) {
  for (const auto& command : kCommands) {
    for (const auto& o : options_of(command)) {
      if (o.spellings.starts_with("-c,") || o.spellings == "-c") {
        EXPECT_EQ(o.spellings, "-c,--ctx-size") << command << ": " << o.line;
      }
    }
  }
  // bench's old -c (concurrency) still parses, as --concurrency does.
  for (const std::string flag : {"-c", "--concurrency"}) {
    auto r = run_troupe("bench " + flag + " 0 --url http://127.0.0.1:9");
    EXPECT_EQ(r.exit_code, 2) << r.output;
    EXPECT_TRUE(has(r.output, "--concurrency")) << r.output;
  }
}

TEST(Naming, DurationsTakeUnitsAndBareNumbersKeepTheirOldUnit) {
  auto r = run_troupe("serve --engine sim --header-timeout 5x");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_TRUE(has(r.output, "--header-timeout")) << r.output;
  EXPECT_TRUE(has(r.output, "not a duration")) << r.output;
  r = run_troupe("gateway --probe-interval 100ms --probe-timeout 200ms --port 0");
  EXPECT_EQ(r.exit_code, 2) << r.output;  // the timeout must be below the interval
  EXPECT_TRUE(has(r.output, "--probe-timeout must be less than --probe-interval")) << r.output;
  r = run_troupe("gateway --probe-interval 0.1s --probe-timeout 200 --port 0");  // 200 = 200ms
  EXPECT_TRUE(has(r.output, "--probe-timeout must be less than --probe-interval")) << r.output;
  r = run_troupe("worker --reader-spin 2ms --engine sim");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_TRUE(has(r.output, "at most 1ms")) << r.output;
}

}  // namespace
}  // namespace troupe::cli
