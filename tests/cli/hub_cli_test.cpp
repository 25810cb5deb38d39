// troupe pull / list / rm and serve --hf-repo as a user meets them, against a fake Hugging Face
// hub on loopback (HF_ENDPOINT) with the cache in the build tree (TROUPE_CACHE).

#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>
#include <string>

#include "cli/raw_http.hpp"
#include "cli/run_troupe.hpp"
#include "cluster/child_process.hpp"
#include "hub/fake_hub.hpp"
#include "support/test_models.hpp"

namespace troupe::cli {
namespace {

namespace fs = std::filesystem;
using cluster::test::ChildProcess;
using invoke::has;
using invoke::run_troupe;

std::string read(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

const std::regex kBanner("troupe is serving on http://127\\.0\\.0\\.1:([0-9]+)");

// The server on `port` lists the pulled model and answers with it.
void expect_serves_the_pulled_model(int port) {
  const std::string models = raw::http(port, "GET", "/v1/models");
  EXPECT_TRUE(has(models, "tiny-Q8_0")) << models;
  const std::string answer = raw::http(port, "POST", "/v1/completions",
                                       R"({"prompt":"Once","max_tokens":3,"ignore_eos":true})");
  EXPECT_TRUE(has(answer, R"("completion_tokens":3)")) << answer;
}

class HubCli : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    cache_ = fs::path(TROUPE_BINARY_DIR) / "cli_test_tmp" / (std::string("hub-") + info->name());
    fs::remove_all(cache_);
    model_ = read(test::generated_model("tiny"));
    fake_.add_file("o/tiny", "tiny-Q8_0.gguf", model_);
    fake_.add_file("o/tiny", "tiny-F16.gguf", "not this one");
    // Every troupe this test starts inherits these.
    ::setenv("HF_ENDPOINT", fake_.endpoint().c_str(), 1);
    ::setenv("TROUPE_CACHE", cache_.c_str(), 1);
    ::unsetenv("HF_TOKEN");
  }

  fs::path cache_;
  std::string model_;
  hub::test::FakeHub fake_;
};

TEST_F(HubCli, PullListServeFromTheCacheAndRemove) {
  auto r = run_troupe("pull o/tiny:q8_0");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const fs::path file = cache_ / "hub/o/tiny/tiny-Q8_0.gguf";
  EXPECT_TRUE(has(r.output, file.string())) << r.output;
  EXPECT_TRUE(has(r.output, "tiny-Q8_0.gguf: 100%")) << r.output;  // plain progress lines
  EXPECT_TRUE(has(r.output, "troupe serve --hf-repo o/tiny --hf-file tiny-Q8_0.gguf"));
  EXPECT_EQ(read(file), model_);

  r = run_troupe("list");
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_TRUE(std::regex_search(r.output, std::regex(R"(o/tiny\s+tiny-Q8_0\.gguf\s+[0-9.]+ MiB)")))
      << r.output;

  // Served from the cache: the hub is not asked again (it would fail now).
  fake_.fail_with(503, "offline");
  const auto asked = fake_.requests().size();
  ChildProcess p({"serve", "-hf", "o/tiny:Q8_0", "--port", "0", "--threads", "1", "--parallel", "1",
                  "-c", "256"},
                 "serve");
  auto banner = p.wait_for(kBanner, 0, std::chrono::seconds(120));
  ASSERT_TRUE(banner) << p.output();
  const int port = std::stoi((*banner)[1].str());
  expect_serves_the_pulled_model(port);
  p.terminate();
  EXPECT_EQ(p.wait(), 0) << p.output();
  EXPECT_EQ(fake_.requests().size(), asked);

  r = run_troupe("rm o/tiny:Q8_0");
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_TRUE(has(r.output, "removed o/tiny/tiny-Q8_0.gguf")) << r.output;
  EXPECT_FALSE(fs::exists(file));
  r = run_troupe("list");
  EXPECT_TRUE(has(r.output, "No models in the cache")) << r.output;
  r = run_troupe("rm o/tiny");
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_TRUE(has(r.output, "nothing in the cache")) << r.output;
}

TEST_F(HubCli, ServeDownloadsWhatTheCacheLacks) {
  ChildProcess p({"serve", "--hf-repo", "o/tiny", "--hf-file", "tiny-Q8_0.gguf", "--port", "0",
                  "--threads", "1", "--parallel", "1", "-c", "256"},
                 "serve");
  ASSERT_TRUE(p.wait_for(kBanner, 0, std::chrono::seconds(120))) << p.output();
  EXPECT_TRUE(has(p.output(), "pulling o/tiny/tiny-Q8_0.gguf")) << p.output();
  p.terminate();
  EXPECT_EQ(p.wait(), 0) << p.output();
  EXPECT_EQ(read(cache_ / "hub/o/tiny/tiny-Q8_0.gguf"), model_);
}

// A worker takes the same flags: it pulls the model, then serves it to the cluster (and on its
// direct HTTP port, asked here).
TEST_F(HubCli, AWorkerServesAModelFromTheHub) {
  ChildProcess w(
      {"worker", "--hf-repo", "o/tiny:Q8_0", "--listen", "127.0.0.1:0", "--cluster-secret",
       "hub-test", "--port", "0", "--threads", "1", "--parallel", "1", "-c", "256"},
      "worker");
  auto http = w.wait_for(std::regex("worker: direct HTTP on http://127\\.0\\.0\\.1:([0-9]+)"), 0,
                         std::chrono::seconds(120));
  ASSERT_TRUE(http) << w.output();
  ASSERT_TRUE(w.wait_for(std::regex("worker: ready"), 0, std::chrono::seconds(120))) << w.output();
  EXPECT_TRUE(has(w.output(), "pulling o/tiny/tiny-Q8_0.gguf")) << w.output();
  EXPECT_EQ(read(cache_ / "hub/o/tiny/tiny-Q8_0.gguf"), model_);
  const int port = std::stoi((*http)[1].str());
  expect_serves_the_pulled_model(port);
  w.terminate();
  EXPECT_EQ(w.wait(), 0) << w.output();
}

TEST_F(HubCli, ErrorsAreClear) {
  auto r = run_troupe("pull o/nothing");
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_TRUE(has(r.output, "troupe pull: o/nothing (revision main): 404 Not Found")) << r.output;
  r = run_troupe("pull o/tiny:Q5_K_M");
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_TRUE(has(r.output, "no GGUF file matches 'Q5_K_M'")) << r.output;
  EXPECT_TRUE(has(r.output, "  tiny-F16.gguf\n  tiny-Q8_0.gguf")) << r.output;
  r = run_troupe("pull not-a-repo");
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_TRUE(has(r.output, "write owner/name[:QUANT]")) << r.output;
  fake_.set_token("secret");
  r = run_troupe("pull o/tiny");
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_TRUE(has(r.output, "401 Unauthorized")) << r.output;
  EXPECT_TRUE(has(r.output, "set HF_TOKEN")) << r.output;
  r = run_troupe("serve --hf-repo o/nothing --port 0");
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_TRUE(has(r.output, "o/nothing (revision main): 40")) << r.output;
  r = run_troupe("serve --hf-repo o/tiny -m x.gguf --port 0");
  EXPECT_NE(r.exit_code, 0) << r.output;
  EXPECT_TRUE(has(r.output, "excludes")) << r.output;
  r = run_troupe("serve --hf-file x.gguf --port 0");
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_TRUE(has(r.output, "--hf-file needs --hf-repo")) << r.output;
}

// A presets section may name its model on the hub: it is fetched into the cache before the
// server listens and served beside a local file, loaded on demand like any model of a set.
TEST_F(HubCli, APresetNamesAModelOnTheHub) {
  fs::create_directories(cache_);
  const fs::path preset = cache_ / "models.ini";
  {
    std::ofstream out(preset);
    out << "[chat]\nhf-repo = o/tiny:Q8_0\nctx-size = 256\n\n[local]\npath = "
        << test::generated_model("tiny") << "\nctx-size = 256\n";
  }
  ChildProcess p({"serve", "--models-preset", preset.string(), "--port", "0", "--threads", "1",
                  "--parallel", "1"},
                 "serve");
  auto banner = p.wait_for(kBanner, 0, std::chrono::seconds(120));
  ASSERT_TRUE(banner) << p.output();
  const int port = std::stoi((*banner)[1].str());
  EXPECT_EQ(read(cache_ / "hub/o/tiny/tiny-Q8_0.gguf"), model_);
  const std::string models = raw::http(port, "GET", "/v1/models");
  EXPECT_TRUE(has(models, R"("id":"chat")")) << models;
  EXPECT_TRUE(has(models, R"("id":"local")")) << models;
  const std::string answer =
      raw::http(port, "POST", "/v1/completions",
                R"({"model":"chat","prompt":"Once","max_tokens":3,"ignore_eos":true})");
  EXPECT_TRUE(has(answer, R"("completion_tokens":3)")) << answer;
  p.terminate();
  EXPECT_EQ(p.wait(), 0) << p.output();

  // The command line's --hf-repo names a single model's; a section cannot have both kinds.
  auto r = run_troupe("serve --hf-repo o/tiny --models-preset " + preset.string() + " --port 0");
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_TRUE(has(r.output, "give a presets section `hf-repo")) << r.output;
  {
    std::ofstream out(preset);
    out << "[both]\npath = x.gguf\nhf-repo = o/tiny\n";
  }
  r = run_troupe("serve --models-preset " + preset.string() + " --port 0");
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_TRUE(has(r.output, "[both] has both a file and hf-repo/hf-file")) << r.output;
}

}  // namespace
}  // namespace troupe::cli
