// The embedded chat page: every file of src/webui is in the binary byte for byte, at its URL,
// with its content type and an ETag that changes with its bytes.

#include "webui/assets.hpp"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

namespace troupe::webui {
namespace {

namespace fs = std::filesystem;

const fs::path kSources = fs::path(TROUPE_SOURCE_DIR) / "src" / "webui";

std::string read(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

std::string url_of(const std::string& file) {
  return file == "index.html" ? "/" : "/webui/" + file;
}

TEST(WebUiAssets, EveryPageFileIsEmbeddedExactly) {
  std::set<std::string> served;
  for (const auto& entry : fs::directory_iterator(kSources)) {
    const std::string name = entry.path().filename().string();
    const std::string ext = entry.path().extension().string();
    if (ext != ".html" && ext != ".js" && ext != ".css" && ext != ".svg")
      continue;
    const Asset* a = find_asset(url_of(name));
    ASSERT_NE(a, nullptr) << name << " is not in src/webui/CMakeLists.txt";
    EXPECT_EQ(a->body, read(entry.path())) << name;
    served.insert(std::string(a->path));
  }
  EXPECT_EQ(served.size(), assets().size());
  EXPECT_TRUE(served.count("/"));
  EXPECT_TRUE(served.count("/webui/app.js"));
}

TEST(WebUiAssets, ContentTypesFollowTheExtension) {
  EXPECT_EQ(find_asset("/")->content_type, "text/html; charset=utf-8");
  EXPECT_EQ(find_asset("/webui/app.js")->content_type, "text/javascript; charset=utf-8");
  EXPECT_EQ(find_asset("/webui/markdown.js")->content_type, "text/javascript; charset=utf-8");
  EXPECT_EQ(find_asset("/webui/style.css")->content_type, "text/css; charset=utf-8");
  EXPECT_EQ(find_asset("/webui/icon.svg")->content_type, "image/svg+xml");
}

TEST(WebUiAssets, FindsByPathIgnoringTheQuery) {
  EXPECT_EQ(find_asset("/index.html"), find_asset("/"));
  EXPECT_EQ(find_asset("/?conversation=1"), find_asset("/"));
  EXPECT_EQ(find_asset("/webui/app.js?v=2"), find_asset("/webui/app.js"));
  EXPECT_EQ(find_asset("/webui/nope.js"), nullptr);
  EXPECT_EQ(find_asset("/app.js"), nullptr);
  EXPECT_EQ(find_asset("/webui/"), nullptr);
  EXPECT_EQ(find_asset("/webui/../index.html"), nullptr);
}

TEST(WebUiAssets, EtagsAreQuotedAndDistinct) {
  std::set<std::string_view> tags;
  for (const Asset& a : assets()) {
    ASSERT_EQ(a.etag.size(), 22u) << a.path;
    EXPECT_EQ(a.etag.front(), '"');
    EXPECT_EQ(a.etag.back(), '"');
    tags.insert(a.etag);
  }
  EXPECT_EQ(tags.size(), assets().size());
}

TEST(WebUiAssets, IfNoneMatchComparesWeaklyOverAList) {
  const std::string_view tag = "\"abc\"";
  EXPECT_TRUE(etag_matches("\"abc\"", tag));
  EXPECT_TRUE(etag_matches("W/\"abc\"", tag));
  EXPECT_TRUE(etag_matches("\"x\", \"abc\"", tag));
  EXPECT_TRUE(etag_matches("*", tag));
  EXPECT_FALSE(etag_matches("", tag));
  EXPECT_FALSE(etag_matches("\"abcd\"", tag));
  EXPECT_FALSE(etag_matches("abc", tag));
  EXPECT_FALSE(etag_matches(" , ", tag));
}

}  // namespace
}  // namespace troupe::webui
