#include "util/log.hpp"

#include <gtest/gtest.h>
#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>

#include <sstream>

namespace troupe {
namespace {

TEST(Log, UnknownLevelIsRefused) {
  EXPECT_FALSE(configure_logging("loud", LogFormat::text));
}

TEST(Log, JsonFormatEscapesTheMessage) {
  ASSERT_TRUE(configure_logging("info", LogFormat::text));
  std::ostringstream out;
  auto sink = std::make_shared<spdlog::sinks::ostream_sink_mt>(out);
  auto logger = spdlog::default_logger();
  logger->sinks().push_back(sink);
  ASSERT_TRUE(configure_logging("info", LogFormat::json));  // formats every sink
  spdlog::info("say \"hi\"\n\tnow\\");
  logger->sinks().pop_back();
  const std::string line = out.str();
  EXPECT_NE(line.find(R"("msg":"say \"hi\"\n\tnow\\")"), std::string::npos) << line;
  EXPECT_NE(line.find(R"("level":"info")"), std::string::npos) << line;
}

}  // namespace
}  // namespace troupe
