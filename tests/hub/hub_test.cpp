// Hub against FakeHub on loopback: downloads with their checks, redirects and the token,
// interrupted and resumed transfers, errors, the cache (offline use, list, remove).

#include "hub/hub.hpp"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/file.h>
#include <unistd.h>

#include <fstream>
#include <random>
#include <sstream>

#include "hub/fake_hub.hpp"
#include "remote/test_certs.hpp"

namespace troupe::hub {
namespace {

namespace fs = std::filesystem;
using test::FakeHub;

std::string bytes(std::size_t n, unsigned seed) {
  std::mt19937 gen(seed);
  std::string s(n, '\0');
  for (auto& c : s)
    c = static_cast<char>(gen());
  return s;
}

std::string read(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

class HubTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    root_ = fs::path(TROUPE_BINARY_DIR) / "hub_test_tmp" / info->name();
    fs::remove_all(root_);
    q4_ = bytes(600 << 10, 1);
    q8_ = bytes(300 << 10, 2);
    fake_.add_file("o/m", "m-Q4_K_M.gguf", q4_);
    fake_.add_file("o/m", "m-Q8_0.gguf", q8_);
    fake_.add_file("o/m", "README.md", "hello", false);
  }

  HubOptions options(std::string token = {}) const {
    HubOptions o;
    o.endpoint = fake_.endpoint();
    o.token = std::move(token);
    o.cache_root = root_;
    o.retries = 0;
    o.retry_delay = std::chrono::milliseconds(0);
    return o;
  }

  Hub hub(std::string token = {}) const { return Hub(options(std::move(token))); }

  // The requests for files (not the file list), and their Range headers.
  std::vector<test::SeenRequest> downloads() const {
    std::vector<test::SeenRequest> out;
    for (const auto& r : fake_.requests()) {
      if (r.target.find("/api/") == std::string::npos)
        out.push_back(r);
    }
    return out;
  }

  fs::path root_;
  std::string q4_;
  std::string q8_;
  FakeHub fake_;
};

TEST_F(HubTest, PullsTheDefaultQuantChecksItAndRecordsIt) {
  auto got = hub().pull(*parse_repo_ref("o/m"));
  ASSERT_TRUE(got) << got.error().message;
  ASSERT_EQ(got->size(), 1u);
  const auto& file = got->front();
  EXPECT_EQ(file.path, root_ / "hub/o/m/m-Q4_K_M.gguf");
  EXPECT_EQ(read(file.path), q4_);
  EXPECT_EQ(file.record.sha256, FakeHub::sha256(q4_));
  EXPECT_EQ(file.record.commit, "c0ffee");
  EXPECT_FALSE(fs::exists(root_ / "hub/o/m/m-Q4_K_M.gguf.part"));
  const auto reqs = fake_.requests();
  ASSERT_EQ(reqs.size(), 2u);
  EXPECT_EQ(reqs[0].target, "/api/models/o/m/tree/main?recursive=true");
  EXPECT_EQ(reqs[1].target, "/o/m/resolve/main/m-Q4_K_M.gguf");
  EXPECT_EQ(reqs[1].headers.count("authorization"), 0u);
  EXPECT_EQ(reqs[1].headers.count("range"), 0u);

  // Pulled again: the digest matches, nothing is downloaded.
  ASSERT_TRUE(hub().pull(*parse_repo_ref("o/m")));
  EXPECT_EQ(downloads().size(), 1u);
}

TEST_F(HubTest, AQuantOrAFilePicksTheFile) {
  auto got = hub().pull(*parse_repo_ref("o/m:q8_0"));
  ASSERT_TRUE(got) << got.error().message;
  EXPECT_EQ(read(got->front().path), q8_);
  got = hub().pull(*parse_repo_ref("o/m"), "README.md");  // a git file: its blob id checks it
  ASSERT_TRUE(got) << got.error().message;
  EXPECT_EQ(read(got->front().path), "hello");
  EXPECT_EQ(got->front().record.sha256, "");
}

TEST_F(HubTest, QuantErrorsListTheFiles) {
  fake_.add_file("o/m", "m-Q4_K_S.gguf", "x");
  auto r = hub().pull(*parse_repo_ref("o/m:Q4_K"));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, Errc::invalid_request);
  EXPECT_NE(r.error().message.find("m-Q4_K_M.gguf\n  m-Q4_K_S.gguf"), std::string::npos)
      << r.error().message;
  r = hub().pull(*parse_repo_ref("o/m:IQ2_XS"));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, Errc::not_found);
  EXPECT_NE(r.error().message.find("m-Q8_0.gguf"), std::string::npos) << r.error().message;
  r = hub().pull(*parse_repo_ref("o/m"), "nope.gguf");
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("no file 'nope.gguf'"), std::string::npos);
  EXPECT_TRUE(downloads().empty());
}

TEST_F(HubTest, TheTokenGoesToTheHubButNotToTheCdn) {
  fake_.set_token("secret");
  fake_.set_cdn(true);
  auto got = hub("secret").pull(*parse_repo_ref("o/m:Q8_0"));
  ASSERT_TRUE(got) << got.error().message;
  EXPECT_EQ(read(got->front().path), q8_);
  EXPECT_EQ(got->front().record.commit, "c0ffee");  // from the hop that redirected
  const auto reqs = fake_.requests();
  ASSERT_EQ(reqs.size(), 3u);
  EXPECT_EQ(reqs[0].headers.at("authorization"), "Bearer secret");
  EXPECT_EQ(reqs[1].headers.at("authorization"), "Bearer secret");
  EXPECT_TRUE(reqs[2].cdn);
  EXPECT_EQ(reqs[2].target, "/cdn/o/m/m-Q8_0.gguf");
  EXPECT_EQ(reqs[2].headers.count("authorization"), 0u);
}

TEST_F(HubTest, ARelativeRedirectKeepsTheToken) {
  fake_.set_token("secret");
  fake_.set_relative_redirect(true);
  auto got = hub("secret").pull(*parse_repo_ref("o/m:Q8_0"));
  ASSERT_TRUE(got) << got.error().message;
  const auto d = downloads();
  ASSERT_EQ(d.size(), 2u);
  EXPECT_EQ(d[1].target, "/renamed/o/m/resolve/main/m-Q8_0.gguf");
  EXPECT_EQ(d[1].headers.at("authorization"), "Bearer secret");
}

TEST_F(HubTest, UnauthorizedSaysWhatToDoAboutTheToken) {
  fake_.set_token("secret");
  auto r = hub().pull(*parse_repo_ref("o/m"));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, Errc::unauthorized);
  EXPECT_NE(r.error().message.find("401"), std::string::npos) << r.error().message;
  EXPECT_NE(r.error().message.find("set HF_TOKEN"), std::string::npos) << r.error().message;
  EXPECT_NE(r.error().message.find("Invalid credentials"), std::string::npos);
  r = hub("wrong").pull(*parse_repo_ref("o/m"));
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("an access token was sent"), std::string::npos)
      << r.error().message;
}

// huggingface_hub's places for the token `hf auth login` saves, in its order; HF_TOKEN first.
TEST_F(HubTest, TheTokenComesFromHfTokenElseTheTokenFile) {
  fs::create_directories(root_ / "hf-home");
  std::ofstream(root_ / "hf-home" / "token") << "from-home\n";
  std::ofstream(root_ / "elsewhere") << "from-path";
  for (const char* v : {"HF_TOKEN", "HF_TOKEN_PATH", "HF_HOME", "XDG_CACHE_HOME"})
    ::unsetenv(v);
  ::setenv("HOME", (root_ / "no-home").c_str(), 1);
  EXPECT_EQ(token_file(), root_ / "no-home" / ".cache" / "huggingface" / "token");
  EXPECT_EQ(token_from_env(), "");  // no file: no token
  ::setenv("XDG_CACHE_HOME", (root_ / "xdg").c_str(), 1);
  EXPECT_EQ(token_file(), root_ / "xdg" / "huggingface" / "token");
  ::setenv("HF_HOME", (root_ / "hf-home").c_str(), 1);
  EXPECT_EQ(token_from_env(), "from-home");  // the newline dropped
  ::setenv("HF_TOKEN_PATH", (root_ / "elsewhere").c_str(), 1);
  EXPECT_EQ(token_from_env(), "from-path");
  ::setenv("HF_TOKEN", "from-env", 1);
  EXPECT_EQ(options_from_env().token, "from-env");
  ::unsetenv("HF_TOKEN");
  // The file's token reaches the hub like HF_TOKEN's.
  fake_.set_token("from-path");
  auto got = hub(options_from_env().token).pull(*parse_repo_ref("o/m:Q8_0"));
  EXPECT_TRUE(got) << got.error().message;
}

TEST_F(HubTest, AMissingRepositoryIsNotFound) {
  auto r = hub().pull(*parse_repo_ref("o/nothing"));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, Errc::not_found);
  EXPECT_NE(r.error().message.find("o/nothing (revision main): 404"), std::string::npos)
      << r.error().message;
  EXPECT_NE(r.error().message.find("Repository not found"), std::string::npos);
  fake_.fail_with(500, "boom");
  r = hub().pull(*parse_repo_ref("o/m"));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, Errc::unavailable);
  EXPECT_NE(r.error().message.find("answered 500 (the server says: boom)"), std::string::npos)
      << r.error().message;
}

TEST_F(HubTest, AnInterruptedDownloadKeepsItsPartAndTheNextPullResumesIt) {
  fake_.cut_downloads(100000);
  auto r = hub().pull(*parse_repo_ref("o/m:Q8_0"));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, Errc::unavailable);
  EXPECT_NE(r.error().message.find("run the command again to resume"), std::string::npos)
      << r.error().message;
  const auto part = root_ / "hub/o/m/m-Q8_0.gguf.part";
  ASSERT_TRUE(fs::exists(part));
  EXPECT_EQ(fs::file_size(part), 100000u);
  EXPECT_FALSE(fs::exists(root_ / "hub/o/m/m-Q8_0.gguf"));
  EXPECT_TRUE(hub().cache().list().empty());

  auto got = hub().pull(*parse_repo_ref("o/m:Q8_0"));
  ASSERT_TRUE(got) << got.error().message;
  EXPECT_EQ(read(got->front().path), q8_);
  const auto d = downloads();
  ASSERT_EQ(d.size(), 2u);
  EXPECT_EQ(d[1].headers.at("range"), "bytes=100000-");
}

TEST_F(HubTest, ABrokenTransferIsResumedByTheRetries) {
  fake_.cut_downloads(5000, 2);
  auto o = options();
  o.retries = 2;
  auto got = Hub(o).pull(*parse_repo_ref("o/m:Q8_0"));
  ASSERT_TRUE(got) << got.error().message;
  EXPECT_EQ(read(got->front().path), q8_);
  const auto d = downloads();
  ASSERT_EQ(d.size(), 3u);
  EXPECT_EQ(d[1].headers.at("range"), "bytes=5000-");
  EXPECT_EQ(d[2].headers.at("range"), "bytes=10000-");
}

TEST_F(HubTest, AServerIgnoringRangeRestartsTheFileCleanly) {
  fake_.cut_downloads(100000);
  ASSERT_FALSE(hub().pull(*parse_repo_ref("o/m:Q8_0")));
  fake_.set_ignore_range(true);
  auto got = hub().pull(*parse_repo_ref("o/m:Q8_0"));
  ASSERT_TRUE(got) << got.error().message;
  EXPECT_EQ(read(got->front().path), q8_);
  EXPECT_EQ(downloads().back().headers.at("range"), "bytes=100000-");
}

TEST_F(HubTest, APartOfAnOlderFileIsDroppedAndTheFileDownloadedAgain) {
  const auto part = root_ / "hub/o/m/m-Q8_0.gguf.part";
  fs::create_directories(part.parent_path());
  std::ofstream(part, std::ios::binary) << bytes(1000, 9);  // not a prefix of this file
  auto got = hub().pull(*parse_repo_ref("o/m:Q8_0"));
  ASSERT_TRUE(got) << got.error().message;
  EXPECT_EQ(read(got->front().path), q8_);
  const auto d = downloads();
  ASSERT_EQ(d.size(), 2u);
  EXPECT_EQ(d[0].headers.at("range"), "bytes=1000-");
  EXPECT_EQ(d[1].headers.count("range"), 0u);
}

TEST_F(HubTest, TwoDownloadsOfOneFileDoNotMix) {
  const auto part = root_ / "hub/o/m/m-Q8_0.gguf.part";
  fs::create_directories(part.parent_path());
  const int fd = ::open(part.c_str(), O_RDWR | O_CREAT, 0644);
  ASSERT_EQ(::flock(fd, LOCK_EX), 0);  // as another troupe pulling it holds it
  auto r = hub().pull(*parse_repo_ref("o/m:Q8_0"));
  ::close(fd);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, Errc::overloaded);
  EXPECT_NE(r.error().message.find("another process is downloading it"), std::string::npos)
      << r.error().message;
  EXPECT_TRUE(downloads().empty());
  EXPECT_TRUE(hub().pull(*parse_repo_ref("o/m:Q8_0")));
}

TEST_F(HubTest, AChecksumMismatchDeletesTheDownloadAndSaysSo) {
  fake_.set_listed_sha256("o/m", "m-Q8_0.gguf", std::string(64, 'b'));
  auto r = hub().pull(*parse_repo_ref("o/m:Q8_0"));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, Errc::invalid_request);
  EXPECT_NE(r.error().message.find("checksum mismatch"), std::string::npos) << r.error().message;
  EXPECT_NE(r.error().message.find(std::string(64, 'b')), std::string::npos);
  EXPECT_NE(r.error().message.find(FakeHub::sha256(q8_)), std::string::npos);
  EXPECT_FALSE(fs::exists(root_ / "hub/o/m/m-Q8_0.gguf.part"));
  EXPECT_FALSE(fs::exists(root_ / "hub/o/m/m-Q8_0.gguf"));
}

TEST_F(HubTest, FollowsTheFileListsPages) {
  fake_.set_page_size(1);
  auto got = hub().pull(*parse_repo_ref("o/m:Q8_0"));
  ASSERT_TRUE(got) << got.error().message;
  EXPECT_EQ(fake_.requests().size() - downloads().size(), 3u);
}

TEST_F(HubTest, ASplitModelBringsEveryPart) {
  fake_.add_file("o/split", "Q8_0/s-00001-of-00002.gguf", "first");
  fake_.add_file("o/split", "Q8_0/s-00002-of-00002.gguf", "second");
  auto path = hub().resolve(*parse_repo_ref("o/split"));
  ASSERT_TRUE(path) << path.error().message;
  EXPECT_EQ(*path, root_ / "hub/o/split/Q8_0/s-00001-of-00002.gguf");
  EXPECT_EQ(read(root_ / "hub/o/split/Q8_0/s-00002-of-00002.gguf"), "second");
}

TEST_F(HubTest, ResolveUsesTheCacheWithoutTheNetwork) {
  ASSERT_TRUE(hub().pull(*parse_repo_ref("o/m:Q8_0")));
  const auto before = fake_.requests().size();
  fake_.fail_with(500, "offline");
  auto path = hub().resolve(*parse_repo_ref("o/m"));
  ASSERT_TRUE(path) << path.error().message;
  EXPECT_EQ(*path, root_ / "hub/o/m/m-Q8_0.gguf");
  EXPECT_TRUE(hub().resolve(*parse_repo_ref("o/m"), "m-Q8_0.gguf"));
  EXPECT_EQ(fake_.requests().size(), before);
  // Another quant is not in the cache: it needs the hub.
  auto r = hub().resolve(*parse_repo_ref("o/m:Q4_K_M"));
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("offline"), std::string::npos);
}

TEST_F(HubTest, OfflineUsesTheCacheOnly) {
  ASSERT_TRUE(hub().pull(*parse_repo_ref("o/m:Q8_0")));
  const auto before = fake_.requests().size();
  auto o = options();
  o.offline = true;
  EXPECT_TRUE(Hub(o).resolve(*parse_repo_ref("o/m:Q8_0")));
  auto r = Hub(o).resolve(*parse_repo_ref("o/m:Q4_K_M"));
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("HF_HUB_OFFLINE"), std::string::npos) << r.error().message;
  EXPECT_EQ(fake_.requests().size(), before);
}

TEST_F(HubTest, ListAndRemove) {
  ASSERT_TRUE(hub().pull(*parse_repo_ref("o/m:Q8_0")));
  ASSERT_TRUE(hub().pull(*parse_repo_ref("o/m:Q4_K_M")));
  fake_.add_file("p/n", "n.gguf", "n");
  ASSERT_TRUE(hub().pull(*parse_repo_ref("p/n")));
  auto all = hub().cache().list();
  ASSERT_EQ(all.size(), 3u);
  EXPECT_EQ(all[0].record.file, "m-Q4_K_M.gguf");
  EXPECT_EQ(all[0].record.size, q4_.size());
  EXPECT_EQ(all[2].record.repo, "p/n");

  auto gone = hub().remove("o/m:q8_0");
  ASSERT_TRUE(gone) << gone.error().message;
  ASSERT_EQ(gone->size(), 1u);
  EXPECT_FALSE(fs::exists(root_ / "hub/o/m/m-Q8_0.gguf"));
  EXPECT_FALSE(fs::exists(root_ / "hub/o/m/m-Q8_0.gguf.troupe.json"));
  EXPECT_EQ(hub().cache().list().size(), 2u);

  gone = hub().remove("n.gguf");
  ASSERT_TRUE(gone) << gone.error().message;
  EXPECT_FALSE(fs::exists(root_ / "hub/p"));  // empty folders go too

  fake_.cut_downloads(10);
  ASSERT_FALSE(hub().pull(*parse_repo_ref("o/m:Q8_0")));  // leaves a part
  gone = hub().remove("o/m");
  ASSERT_TRUE(gone) << gone.error().message;
  EXPECT_EQ(gone->size(), 1u);
  EXPECT_FALSE(fs::exists(root_ / "hub/o"));

  auto none = hub().remove("o/m");
  ASSERT_FALSE(none);
  EXPECT_EQ(none.error().code, Errc::not_found);
  EXPECT_NE(none.error().message.find("troupe list"), std::string::npos);
}

TEST_F(HubTest, NetworkFailuresAreClearErrors) {
  auto o = options();
  o.endpoint = "http://127.0.0.1:1";
  auto r = Hub(o).pull(*parse_repo_ref("o/m"));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, Errc::unavailable);
  EXPECT_NE(r.error().message.find("cannot connect"), std::string::npos) << r.error().message;
  // https to a plain-HTTP port: the TLS handshake fails, with a message.
  o.endpoint = "https" + fake_.endpoint().substr(4);
  r = Hub(o).pull(*parse_repo_ref("o/m"));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, Errc::unavailable);
  EXPECT_NE(r.error().message.find("TLS"), std::string::npos) << r.error().message;
  o.endpoint = "ftp://example.org";
  r = Hub(o).pull(*parse_repo_ref("o/m"));
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("not an http(s) URL"), std::string::npos) << r.error().message;
}

}  // namespace
}  // namespace troupe::hub

namespace troupe::hub {
namespace {

// https against a fake hub with a certificate from a test CA: trusted through SSL_CERT_FILE
// (OpenSSL's default verify paths), refused when the name does not match or the CA is unknown.
class HubTls : public ::testing::Test {
 protected:
  static test::FakeTls certificate(const std::string& name, const remote::test::TestCa& ca,
                                   const fs::path& dir) {
    auto o = remote::test::make_node_cert(ca, dir, name);
    return {o.cert_file, o.key_file};
  }
  void SetUp() override {
    dir_ = remote::test::make_temp_dir("hub-tls");
    ca_ = remote::test::make_ca(dir_, "ca");
    root_ = dir_ / "cache";
  }
  void TearDown() override { fs::remove_all(dir_); }

  Result<std::vector<CachedFile>> pull(const FakeHub& fake) const {
    HubOptions o;
    o.endpoint = fake.endpoint();
    o.cache_root = root_;
    o.retries = 0;
    o.token = "secret";
    return Hub(o).pull(*parse_repo_ref("o/m"));
  }

  fs::path dir_;
  remote::test::TestCa ca_;
  fs::path root_;
};

TEST_F(HubTls, DownloadsOverVerifiedHttps) {
  FakeHub fake(certificate("localhost", ca_, dir_));
  fake.add_file("o/m", "m.gguf", bytes(100000, 3));
  ::setenv("SSL_CERT_FILE", ca_.cert_file.c_str(), 1);
  auto got = pull(fake);
  ASSERT_TRUE(got) << got.error().message;
  EXPECT_EQ(read(got->front().path), bytes(100000, 3));
  EXPECT_EQ(fake.requests().back().headers.at("authorization"), "Bearer secret");

  // A redirect from https to http is refused (the token and the content would go in clear).
  fake.set_cdn(true);
  ASSERT_TRUE(Hub({.endpoint = fake.endpoint(), .cache_root = root_}).remove("o/m"));
  auto r = pull(fake);
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("refusing a redirect from https to http"), std::string::npos)
      << r.error().message;
}

TEST_F(HubTls, RefusesACertificateForAnotherName) {
  FakeHub fake(certificate("elsewhere.example", ca_, dir_));
  fake.add_file("o/m", "m.gguf", "x");
  ::setenv("SSL_CERT_FILE", ca_.cert_file.c_str(), 1);
  auto r = pull(fake);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, Errc::unavailable);
  EXPECT_NE(r.error().message.find("TLS certificate not trusted (hostname mismatch)"),
            std::string::npos)
      << r.error().message;
  EXPECT_TRUE(fake.requests().empty());
}

TEST_F(HubTls, RefusesAnUnknownAuthority) {
  FakeHub fake(certificate("localhost", ca_, dir_));
  fake.add_file("o/m", "m.gguf", "x");
  const auto other = remote::test::make_ca(dir_, "other");
  ::setenv("SSL_CERT_FILE", other.cert_file.c_str(), 1);
  auto r = pull(fake);
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("TLS certificate not trusted"), std::string::npos)
      << r.error().message;
  EXPECT_TRUE(fake.requests().empty());
}

}  // namespace
}  // namespace troupe::hub
