#include "hub/progress.hpp"

#include <gtest/gtest.h>

#include <cstdio>
#include <string>

namespace troupe::hub {
namespace {

// What `draw` writes to a temporary file.
template <class F>
std::string written(F draw) {
  std::FILE* f = std::tmpfile();
  draw(f);
  std::string out(static_cast<std::size_t>(std::ftell(f)), '\0');
  std::rewind(f);
  out.resize(std::fread(out.data(), 1, out.size(), f));
  std::fclose(f);
  return out;
}

std::size_t count(const std::string& s, std::string_view what) {
  std::size_t n = 0;
  for (auto at = s.find(what); at != std::string::npos; at = s.find(what, at + 1))
    ++n;
  return n;
}

TEST(Progress, PlainLinesAtEveryTenthThenDone) {
  const auto out = written([](std::FILE* f) {
    Progress p(f, false, "m.gguf", 1000);
    for (std::uint64_t done = 0; done <= 1000; done += 7)
      p.update(done);
    p.finish(1000);
  });
  EXPECT_EQ(count(out, "\n"), 11u) << out;  // 0%..90%, then the done line
  EXPECT_EQ(out.find('\r'), std::string::npos);
  EXPECT_NE(out.find("m.gguf:  50% 504 B / 1000 B"), std::string::npos) << out;
  EXPECT_NE(out.find("m.gguf: 100% 1000 B / 1000 B done\n"), std::string::npos) << out;
}

TEST(Progress, ATerminalGetsOneRedrawnLine) {
  const auto out = written([](std::FILE* f) {
    Progress p(f, true, "m.gguf", 2048);
    p.update(1024);
    p.update(1024);  // nothing visible changed: no redraw
    p.finish(2048);
  });
  EXPECT_EQ(count(out, "\r"), 2u) << out;
  EXPECT_EQ(count(out, "\n"), 1u) << out;
  EXPECT_NE(out.find("[###############               ]  50.0%"), std::string::npos) << out;
  EXPECT_NE(out.find("100.0% 2.0 KiB / 2.0 KiB"), std::string::npos) << out;
}

TEST(Progress, ResumedBytesCountAsDone) {
  const auto out = written([](std::FILE* f) {
    Progress p(f, false, "m.gguf", 100);
    p.update(60);
    p.finish(100);
  });
  EXPECT_NE(out.find("m.gguf:  60%"), std::string::npos) << out;
}

TEST(HumanBytes, PicksTheUnit) {
  EXPECT_EQ(human_bytes(12), "12 B");
  EXPECT_EQ(human_bytes(1536), "1.5 KiB");
  EXPECT_EQ(human_bytes(320ull << 20), "320.0 MiB");
  EXPECT_EQ(human_bytes(3ull << 30), "3.0 GiB");
}

}  // namespace
}  // namespace troupe::hub
