// The server's access log (issue 19 item 2): one line per request at info,
// 4xx/5xx included, with the generation's model and token counts; the line is
// JSON with --log-format json; the log options work after the command too.

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <regex>
#include <string>

#include "cli/raw_http.hpp"
#include "cluster/child_process.hpp"

namespace troupe::cli {
namespace {

using cluster::test::ChildProcess;

using raw::http;

const std::regex kListening("listening on http://127\\.0\\.0\\.1:([0-9]+)");
const std::chrono::seconds kLimit(120);

TEST(AccessLog, OneLinePerRequestErrorsIncluded) {
  ChildProcess p(
      {"serve", "--engine", "sim", "-a", "simmy", "--port", "0", "--sim-decode-tps", "1000"},
      "serve");
  auto listening = p.wait_for(kListening, 0, kLimit);
  ASSERT_TRUE(listening) << p.output();
  const int port = std::stoi((*listening)[1].str());

  ASSERT_NE(http(port, "GET", "/v1/models").find("200 OK"), std::string::npos);
  EXPECT_TRUE(p.wait_for(std::regex(R"(info .* 127\.0\.0\.1:[0-9]+ GET /v1/models 200 [0-9.]+ ms)"),
                         0, kLimit))
      << p.output();

  http(port, "GET", "/nope");
  EXPECT_TRUE(p.wait_for(std::regex(R"(GET /nope 404 [0-9.]+ ms error=".+")"), 0, kLimit))
      << p.output();

  http(port, "POST", "/v1/chat/completions", R"({"messages":[],"max_tokens":"x"})");
  EXPECT_TRUE(
      p.wait_for(std::regex(R"(POST /v1/chat/completions 400 [0-9.]+ ms.* error=".+")"), 0, kLimit))
      << p.output();

  const std::string chat =
      R"({"model":"simmy","messages":[{"role":"user","content":"hello there"}],"max_tokens":5})";
  ASSERT_NE(http(port, "POST", "/v1/chat/completions", chat).find("200 OK"), std::string::npos);
  EXPECT_TRUE(
      p.wait_for(std::regex(R"(POST /v1/chat/completions 200 [0-9.]+ ms model=simmy )"
                            R"(prompt_tokens=[1-9][0-9]* completion_tokens=5 ttft_ms=[0-9.]+)"),
                 0, kLimit))
      << p.output();

  const std::string streamed =
      R"({"messages":[{"role":"user","content":"hi"}],"max_tokens":3,"stream":true})";
  ASSERT_NE(http(port, "POST", "/v1/chat/completions", streamed).find("[DONE]"), std::string::npos);
  EXPECT_TRUE(p.wait_for(
      std::regex(
          R"(POST /v1/chat/completions 200 [0-9.]+ ms model=.* completion_tokens=3 ttft_ms=)"),
      0, kLimit))
      << p.output();
  p.terminate();
  EXPECT_EQ(p.wait(), 0);
}

TEST(AccessLog, JsonFormatAndLevelAfterTheCommand) {
  ChildProcess p(
      {"serve", "--engine", "sim", "--port", "0", "--log-format", "json", "--log-level", "info"},
      "serve");
  auto listening =
      p.wait_for(std::regex(R"(listening on http://127\.0\.0\.1:([0-9]+))"), 0, kLimit);
  ASSERT_TRUE(listening) << p.output();
  const int port = std::stoi((*listening)[1].str());
  http(port, "GET", "/health");
  EXPECT_TRUE(p.wait_for(
      std::regex(
          R"(^\{"time":"[^"]+","level":"info",.*"msg":"127\.0\.0\.1:[0-9]+ GET /health 200 [0-9.]+ ms"\}$)"),
      0, kLimit))
      << p.output();
  p.terminate();
  EXPECT_EQ(p.wait(), 0);
}

}  // namespace
}  // namespace troupe::cli
