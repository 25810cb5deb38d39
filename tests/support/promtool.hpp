#pragma once
// `promtool check metrics` (Prometheus's own linter) over an exposition text. promtool comes
// from Debian's prometheus package, unpacked into third_party/promtool by
// `scripts/bootstrap.sh --test-tools` (scripts/test.sh does that); $TROUPE_PROMTOOL or PATH
// also work. Tests GTEST_SKIP() with a message when it is nowhere.

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <optional>
#include <string>

namespace troupe::test {

inline std::optional<std::string> find_promtool() {
  namespace fs = std::filesystem;
  if (const char* env = std::getenv("TROUPE_PROMTOOL"); env != nullptr && fs::exists(env))
    return std::string(env);
  const fs::path bundled = fs::path(TROUPE_SOURCE_DIR) / "third_party/promtool/promtool";
  if (fs::exists(bundled))
    return bundled.string();
  if (std::system("command -v promtool >/dev/null 2>&1") == 0)
    return std::string("promtool");
  return std::nullopt;
}

struct PromtoolResult {
  int exit_code = -1;
  std::string output;  // what promtool printed (problems, one per line)
};

// Runs `promtool check metrics` with `text` on its standard input.
inline PromtoolResult promtool_check_metrics(const std::string& promtool, const std::string& text) {
  const auto dir = std::filesystem::temp_directory_path();
  const auto input = dir / ("troupe-metrics-" + std::to_string(::getpid()) + ".txt");
  std::ofstream(input) << text;
  const std::string cmd = "'" + promtool + "' check metrics < '" + input.string() + "' 2>&1";
  PromtoolResult r;
  if (FILE* p = ::popen(cmd.c_str(), "r")) {
    char buf[512];
    while (std::fgets(buf, sizeof buf, p) != nullptr)
      r.output += buf;
    const int status = ::pclose(p);
    r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  }
  std::filesystem::remove(input);
  return r;
}

}  // namespace troupe::test

// Fails the test with promtool's findings, or skips when promtool is not installed.
#define TROUPE_EXPECT_PROMTOOL_ACCEPTS(text)                                                  \
  do {                                                                                        \
    const auto troupe_promtool = ::troupe::test::find_promtool();                             \
    if (!troupe_promtool)                                                                     \
      GTEST_SKIP() << "promtool not found: run scripts/bootstrap.sh --test-tools";            \
    const auto troupe_check = ::troupe::test::promtool_check_metrics(*troupe_promtool, text); \
    EXPECT_EQ(troupe_check.exit_code, 0) << troupe_check.output << "\n--- input:\n" << text;  \
  } while (0)
