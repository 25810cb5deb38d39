#include "hub/select.hpp"

#include <gtest/gtest.h>

namespace troupe::hub {
namespace {

std::vector<RemoteFile> files(std::initializer_list<const char*> paths) {
  std::vector<RemoteFile> out;
  for (const char* p : paths)
    out.push_back({p, 1, "", "oid"});
  return out;
}

std::string pick(const std::vector<RemoteFile>& fs, const std::string& ref) {
  auto r = pick_gguf(fs, *parse_repo_ref(ref));
  return r ? r->path : "error: " + r.error().message;
}

TEST(RepoRef, ParsesOwnerNameAndQuant) {
  auto r = parse_repo_ref("bartowski/Qwen2.5-0.5B-Instruct-GGUF:q4_k_m");
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(r->repo, "bartowski/Qwen2.5-0.5B-Instruct-GGUF");
  EXPECT_EQ(r->quant, "q4_k_m");
  r = parse_repo_ref("a/b");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->quant, "");
}

TEST(RepoRef, RefusesWhatIsNotARepository) {
  for (const char* bad : {"model.gguf", "a/b/c", "../x", "a/..", "a/.b", "/b", "a/",
                          "a/b:", "a/b:Q4 K", "a b/c", "a/b:x/y"}) {
    auto r = parse_repo_ref(bad);
    ASSERT_FALSE(r) << bad;
    EXPECT_EQ(r.error().code, Errc::invalid_request);
    EXPECT_NE(r.error().message.find(bad), std::string::npos) << r.error().message;
  }
}

TEST(SafePath, RefusesTraversalAndOddPaths) {
  for (const char* ok : {"a.gguf", "Q4_K_M/a-00001-of-00002.gguf", "a b.gguf"})
    EXPECT_TRUE(safe_relative_path(ok)) << ok;
  for (const char* bad : {"", "/etc/passwd", "../a", "a/../b", "a//b", "./a", "a\\b", "a\nb", "a/"})
    EXPECT_FALSE(safe_relative_path(bad)) << bad;
}

TEST(PickGguf, QuantMatchesCaseInsensitively) {
  const auto fs = files({"README.md", "m-Q4_K_M.gguf", "m-Q8_0.gguf", "m-F16.gguf"});
  EXPECT_EQ(pick(fs, "o/m:q8_0"), "m-Q8_0.gguf");
  EXPECT_EQ(pick(fs, "o/m:f16"), "m-F16.gguf");
}

TEST(PickGguf, WithoutQuantTheOnlyOneThenQ4KMThenTheFirst) {
  EXPECT_EQ(pick(files({"x.gguf", "README.md"}), "o/m"), "x.gguf");
  EXPECT_EQ(pick(files({"m-Q8_0.gguf", "m-Q4_K_M.gguf", "m-Q2_K.gguf"}), "o/m"), "m-Q4_K_M.gguf");
  EXPECT_EQ(pick(files({"m-Q8_0.gguf", "m-Q2_K.gguf"}), "o/m"), "m-Q2_K.gguf");
}

TEST(PickGguf, AWholeWordWinsOverALongerQuant) {
  const auto fs = files({"m-Q4_K.gguf", "m-Q4_K_M.gguf", "m-Q4_K_S.gguf"});
  EXPECT_EQ(pick(fs, "o/m:Q4_K"), "m-Q4_K.gguf");
  EXPECT_EQ(pick(fs, "o/m:Q4_K_S"), "m-Q4_K_S.gguf");
}

TEST(PickGguf, AmbiguousAndMissingQuantsListTheFiles) {
  const auto fs = files({"m-Q4_K_M.gguf", "m-Q4_K_S.gguf", "notes.txt"});
  auto r = pick_gguf(fs, *parse_repo_ref("o/m:Q4"));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, Errc::invalid_request);
  EXPECT_NE(r.error().message.find("matches several files"), std::string::npos);
  EXPECT_NE(r.error().message.find("  m-Q4_K_M.gguf\n  m-Q4_K_S.gguf"), std::string::npos)
      << r.error().message;
  r = pick_gguf(fs, *parse_repo_ref("o/m:Q5_K_M"));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, Errc::not_found);
  EXPECT_NE(r.error().message.find("no GGUF file matches 'Q5_K_M'"), std::string::npos);
  EXPECT_NE(r.error().message.find("m-Q4_K_S.gguf"), std::string::npos) << r.error().message;
  EXPECT_EQ(r.error().message.find("notes.txt"), std::string::npos) << r.error().message;
  r = pick_gguf(files({"a.safetensors"}), *parse_repo_ref("o/m"));
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("has no .gguf file"), std::string::npos) << r.error().message;
}

TEST(PickGguf, SkipsProjectorsAndLaterSplitParts) {
  const auto fs = files(
      {"mmproj-m-f16.gguf", "Q8_0/m-Q8_0-00002-of-00002.gguf", "Q8_0/m-Q8_0-00001-of-00002.gguf"});
  EXPECT_EQ(pick(fs, "o/m"), "Q8_0/m-Q8_0-00001-of-00002.gguf");
  EXPECT_EQ(pick(fs, "o/m:q8_0"), "Q8_0/m-Q8_0-00001-of-00002.gguf");
}

TEST(SplitParts, TheFirstPartBringsItsSiblingsInOrder) {
  const auto fs = files(
      {"m-00003-of-00003.gguf", "m-00001-of-00003.gguf", "m-00002-of-00003.gguf", "other.gguf"});
  auto parts = split_parts(fs, fs[1]);
  ASSERT_TRUE(parts) << parts.error().message;
  ASSERT_EQ(parts->size(), 3u);
  EXPECT_EQ((*parts)[1].path, "m-00002-of-00003.gguf");
  EXPECT_EQ((*parts)[2].path, "m-00003-of-00003.gguf");
  EXPECT_EQ(split_parts(fs, fs[3])->size(), 1u);
  auto missing = split_parts(files({"m-00001-of-00002.gguf"}), {"m-00001-of-00002.gguf"});
  ASSERT_FALSE(missing);
  EXPECT_NE(missing.error().message.find("m-00002-of-00002.gguf"), std::string::npos);
}

TEST(FindFile, NamesTheMissingFileAndListsTheGgufs) {
  const auto fs = files({"a.gguf", "b.gguf"});
  EXPECT_EQ(find_file(fs, "o/m", "b.gguf")->path, "b.gguf");
  auto r = find_file(fs, "o/m", "c.gguf");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, Errc::not_found);
  EXPECT_NE(r.error().message.find("no file 'c.gguf'"), std::string::npos);
  EXPECT_NE(r.error().message.find("  a.gguf\n  b.gguf"), std::string::npos) << r.error().message;
}

}  // namespace
}  // namespace troupe::hub
