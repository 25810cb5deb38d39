// The web chat page as `troupe serve` and `troupe gateway` serve it: "/" and its files with
// their content types, HEAD, revalidation with the ETag, no key needed for the page itself,
// and --no-webui turning it off (404, as before the page existed).

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>
#include <string>

#include "cli/raw_http.hpp"
#include "cluster/child_process.hpp"

namespace troupe::cli {
namespace {

using cluster::test::ChildProcess;
using raw::http;

// The port a started `serve` or `gateway` logged; -1 when it never did.
int port_of(ChildProcess& p) {
  auto m = p.wait_for(std::regex("(?:serving|listening) on http://127\\.0\\.0\\.1:([0-9]+)"), 0,
                      std::chrono::seconds(60));
  return m ? std::stoi((*m)[1].str()) : -1;
}

ChildProcess serve(std::vector<std::string> extra = {}) {
  std::vector<std::string> args{"serve", "--engine", "sim", "--port", "0"};
  args.insert(args.end(), extra.begin(), extra.end());
  return ChildProcess(std::move(args), "serve");
}

ChildProcess gateway(std::vector<std::string> extra = {}) {
  std::vector<std::string> args{"gateway", "--listen",         "127.0.0.1:0",      "--port",
                                "0",       "--cluster-secret", "webui-test-secret"};
  args.insert(args.end(), extra.begin(), extra.end());
  return ChildProcess(std::move(args), "gateway");
}

std::string source(const std::string& name) {
  std::ifstream in(std::filesystem::path(TROUPE_SOURCE_DIR) / "src" / "webui" / name,
                   std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

int status_of(const std::string& answer) {
  return answer.size() > 12 ? std::stoi(answer.substr(9, 3)) : 0;
}

// A header's value ("" when absent); names compared as sent by the server.
std::string header(const std::string& answer, const std::string& name) {
  std::smatch m;
  if (std::regex_search(answer, m, std::regex("\r\n" + name + ": ([^\r]*)\r\n", std::regex::icase)))
    return m[1].str();
  return {};
}

std::string body_of(const std::string& answer) {
  const auto at = answer.find("\r\n\r\n");
  return at == std::string::npos ? std::string() : answer.substr(at + 4);
}

// What both commands must do at "/" with the page on.
void expect_page_served(int port) {
  const auto page = http(port, "GET", "/");
  ASSERT_EQ(status_of(page), 200) << page;
  EXPECT_EQ(header(page, "Content-Type"), "text/html; charset=utf-8");
  EXPECT_EQ(body_of(page), source("index.html"));
  EXPECT_EQ(header(page, "Cache-Control"), "no-cache");
  EXPECT_NE(header(page, "Content-Security-Policy").find("connect-src 'self'"), std::string::npos);
  const std::string etag = header(page, "ETag");
  ASSERT_FALSE(etag.empty());

  const auto head = http(port, "HEAD", "/");
  EXPECT_EQ(status_of(head), 200) << head;
  EXPECT_EQ(header(head, "Content-Length"), std::to_string(source("index.html").size()));
  EXPECT_EQ(header(head, "ETag"), etag);
  EXPECT_EQ(body_of(head), "");

  const auto again = http(port, "GET", "/", {}, "If-None-Match: " + etag + "\r\n");
  EXPECT_EQ(status_of(again), 304) << again;
  EXPECT_EQ(body_of(again), "");

  const auto js = http(port, "GET", "/webui/app.js");
  EXPECT_EQ(status_of(js), 200) << js;
  EXPECT_EQ(header(js, "Content-Type"), "text/javascript; charset=utf-8");
  EXPECT_EQ(body_of(js), source("app.js"));
  const auto css = http(port, "GET", "/webui/style.css?v=1");
  EXPECT_EQ(header(css, "Content-Type"), "text/css; charset=utf-8");

  EXPECT_EQ(status_of(http(port, "GET", "/webui/missing.js")), 404);
  EXPECT_EQ(status_of(http(port, "GET", "/nope")), 404);
  const auto post = http(port, "POST", "/", "{}");
  EXPECT_EQ(status_of(post), 405) << post;
  EXPECT_EQ(header(post, "Allow"), "GET, HEAD");
}

TEST(WebUi, ServeAndGatewayServeThePageAndItsFiles) {
  auto s = serve();
  auto g = gateway();
  for (ChildProcess* p : {&s, &g}) {
    const int port = port_of(*p);
    ASSERT_GT(port, 0);
    expect_page_served(port);
    p->terminate();
    EXPECT_EQ(p->wait(), 0);
  }
}

TEST(WebUi, ThePageNeedsNoKeyButTheApiDoes) {
  auto p = serve({"--api-key", "sk-webui"});
  const int port = port_of(p);
  ASSERT_GT(port, 0);
  EXPECT_EQ(status_of(http(port, "GET", "/")), 200);
  EXPECT_EQ(status_of(http(port, "GET", "/webui/app.js")), 200);
  EXPECT_EQ(status_of(http(port, "GET", "/v1/models")), 401);
  EXPECT_EQ(status_of(http(port, "GET", "/v1/models", {}, "Authorization: Bearer sk-webui\r\n")),
            200);
  p.terminate();
  EXPECT_EQ(p.wait(), 0);
}

TEST(WebUi, NoWebuiAnswers404ForServeAndGateway) {
  auto s = serve({"--no-webui"});
  auto g = gateway({"--no-webui"});
  for (const int port : {port_of(s), port_of(g)}) {
    ASSERT_GT(port, 0);
    const auto page = http(port, "GET", "/");
    EXPECT_EQ(status_of(page), 404) << page;
    EXPECT_NE(page.find("not_found"), std::string::npos) << page;
    EXPECT_EQ(status_of(http(port, "GET", "/webui/app.js")), 404);
    EXPECT_EQ(status_of(http(port, "GET", "/v1/models")), 200);
  }
}

}  // namespace
}  // namespace troupe::cli
