#include "hub/metadata.hpp"

#include <gtest/gtest.h>

namespace troupe::hub {
namespace {

const std::string kSha(64, 'a');

TEST(ParseTree, ReadsFilesWithTheirDigestsAndSkipsDirectories) {
  const std::string json = R"([
    {"type":"directory","oid":"d1","size":0,"path":"Q8_0"},
    {"type":"file","oid":"b7","size":1519,"path":"README.md"},
    {"type":"file","oid":"c3","size":4000000000,"path":"Q8_0/m.gguf",
     "lfs":{"oid":")" + kSha +
                           R"(","size":4000000000,"pointerSize":135}}])";
  auto files = parse_tree(json);
  ASSERT_TRUE(files) << files.error().message;
  ASSERT_EQ(files->size(), 2u);
  EXPECT_EQ((*files)[0].path, "README.md");
  EXPECT_EQ((*files)[0].sha256, "");
  EXPECT_EQ((*files)[0].git_oid, "b7");
  EXPECT_EQ((*files)[1].size, 4000000000u);
  EXPECT_EQ((*files)[1].sha256, kSha);
}

TEST(ParseTree, RefusesMalformedEntriesAndUnsafePaths) {
  for (const std::string bad :
       {R"({"a":1})", "not json", R"([{"type":"file","oid":"x","path":"a"}])",
        R"([{"type":"file","oid":"x","size":1,"path":"../../etc/passwd"}])",
        R"([{"type":"file","oid":"x","size":1,"path":"a","lfs":{"oid":"XYZ","size":1}}])",
        R"([{"type":"file","oid":"x","size":-1,"path":"a"}])", R"([1])"}) {
    auto r = parse_tree(bad);
    ASSERT_FALSE(r) << bad;
    EXPECT_EQ(r.error().code, Errc::invalid_request);
  }
}

TEST(NextLink, FindsRelNext) {
  EXPECT_EQ(next_link(R"(<https://h/api?cursor=2>; rel="next")"), "https://h/api?cursor=2");
  EXPECT_EQ(next_link(R"(<https://h/p1>; rel="prev", <https://h/p3>; rel="next")"), "https://h/p3");
  EXPECT_EQ(next_link(R"(<https://h/p1>; rel="prev")"), "");
  EXPECT_EQ(next_link(""), "");
}

TEST(ErrorMessage, ReadsTheErrorField) {
  EXPECT_EQ(error_message_of(R"({"error":"Repository not found"})"), "Repository not found");
  EXPECT_EQ(error_message_of("<html>"), "");
}

TEST(FileRecord, RoundTripsAndRefusesBrokenRecords) {
  FileRecord r{"o/m", "Q8_0/m.gguf", "main", "c0ffee", 12345, kSha, "b7"};
  auto back = parse_record(record_json(r));
  ASSERT_TRUE(back) << back.error().message;
  EXPECT_EQ(*back, r);
  EXPECT_FALSE(parse_record("{}"));
  EXPECT_FALSE(parse_record("[]"));
  r.file = "../x";
  EXPECT_FALSE(parse_record(record_json(r)));
}

}  // namespace
}  // namespace troupe::hub
