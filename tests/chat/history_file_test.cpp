#include "chat/history_file.hpp"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>

namespace troupe::chat {
namespace {
namespace fs = std::filesystem;

class HistoryFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    dir_ = fs::path(TROUPE_BINARY_DIR) / "chat_test_tmp" / info->name();
    fs::remove_all(dir_);
    path_ = (dir_ / "sub" / "history").string();
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::string contents() const {
    std::ifstream f(path_);
    std::stringstream s;
    s << f.rdbuf();
    return s.str();
  }

  fs::path dir_;
  std::string path_;
};

TEST(HistoryEscaping, EntriesWithNewlinesAndBackslashesRoundTrip) {
  for (std::string entry :
       {"plain", "two\nlines", R"(back\slash)", R"(literal \n text)", "trailing\\", "\n\n", ""}) {
    const std::string line = escape_entry(entry);
    EXPECT_EQ(line.find('\n'), std::string::npos) << entry;
    EXPECT_EQ(unescape_entry(line), entry);
  }
}

TEST_F(HistoryFileTest, MissingFileIsAnEmptyHistory) {
  HistoryFile h(path_, 10);
  auto loaded = h.load();
  ASSERT_TRUE(loaded.ok());
  EXPECT_TRUE(loaded.value().empty());
}

TEST_F(HistoryFileTest, AddedEntriesPersistAcrossInstancesAndCreateTheFolder) {
  {
    HistoryFile h(path_, 10);
    ASSERT_TRUE(h.load().ok());
    EXPECT_TRUE(h.add("first question").value());
    EXPECT_TRUE(h.add("multi\nline").value());
  }
  EXPECT_EQ(contents(), "first question\nmulti\\nline\n");
  HistoryFile again(path_, 10);
  auto loaded = again.load();
  ASSERT_TRUE(loaded.ok());
  EXPECT_EQ(loaded.value(), (std::vector<std::string>{"first question", "multi\nline"}));
}

TEST_F(HistoryFileTest, BlankAndRepeatedEntriesAreSkipped) {
  HistoryFile h(path_, 10);
  EXPECT_TRUE(h.add("same").value());
  EXPECT_FALSE(h.add("same").value());
  EXPECT_FALSE(h.add("  \n").value());
  EXPECT_TRUE(h.add("other").value());
  EXPECT_TRUE(h.add("same").value());
  EXPECT_EQ(h.entries(), (std::vector<std::string>{"same", "other", "same"}));
}

TEST_F(HistoryFileTest, LoadKeepsTheNewestEntriesAndCompactsALongFile) {
  {
    HistoryFile h(path_, 100);
    for (int i = 0; i < 7; ++i)
      ASSERT_TRUE(h.add("q" + std::to_string(i)).ok());
  }
  HistoryFile small(path_, 3);
  auto loaded = small.load();
  ASSERT_TRUE(loaded.ok());
  EXPECT_EQ(loaded.value(), (std::vector<std::string>{"q4", "q5", "q6"}));
  EXPECT_EQ(contents(), "q4\nq5\nq6\n");  // 7 lines > 2 * 3: rewritten
}

TEST_F(HistoryFileTest, EmptyPathRemembersOnlyInMemory) {
  HistoryFile h("", 10);
  EXPECT_TRUE(h.load().ok());
  EXPECT_TRUE(h.add("x").value());
  EXPECT_EQ(h.entries().size(), 1u);
}

TEST_F(HistoryFileTest, UnreadableFileIsAnError) {
  fs::create_directories(path_);  // a folder where the file should be
  HistoryFile h(path_, 10);
  auto loaded = h.load();
  EXPECT_TRUE(loaded.ok() || loaded.error().code == Errc::unavailable);
  auto added = h.add("x");
  ASSERT_FALSE(added.ok());
  EXPECT_NE(added.error().message.find(path_), std::string::npos);
}

}  // namespace
}  // namespace troupe::chat
