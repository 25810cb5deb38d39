// `troupe serve` with many models, as a user meets it: --models-dir, a presets file and its
// errors, the flags of a set refused without one. Every wait is for a line of output or the
// process's exit, bounded by a generous deadline.

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <regex>
#include <string>

#include "cli/raw_http.hpp"
#include "cli/run_troupe.hpp"
#include "cluster/child_process.hpp"
#include "support/test_models.hpp"

namespace troupe::cli {
namespace {

namespace fs = std::filesystem;
using cluster::test::ChildProcess;
using invoke::has;
using raw::http;

const std::regex kBanner("troupe is serving on http://127\\.0\\.0\\.1:([0-9]+)");

fs::path models_dir(const std::string& name) {
  const auto dir = fs::path(TROUPE_BINARY_DIR) / "cli_test_tmp" / name;
  fs::remove_all(dir);
  fs::create_directories(dir);
  fs::copy_file(test::generated_model("tiny", mkmodel::WeightType::f32, 1), dir / "alpha.gguf");
  fs::copy_file(test::generated_model("tiny", mkmodel::WeightType::f32, 2), dir / "beta.gguf");
  return dir;
}

std::string chat(int port, const std::string& model) {
  return http(
      port, "POST", "/v1/chat/completions",
      R"({"model":")" + model +
          R"(","max_tokens":3,"ignore_eos":true,"messages":[{"role":"user","content":"hi"}]})");
}

TEST(ServeModels, ServesEveryModelOfTheDirectoryOnDemand) {
  const auto dir = models_dir("models-dir");
  const auto preset = dir.parent_path() / "models-dir.ini";
  std::ofstream(preset) << "[beta]\nalias = b\nctx-size = 256\n";
  ChildProcess p(
      {"serve", "--models-dir", dir.string(), "--models-preset", preset.string(), "--port", "0",
       "--threads", "1", "--parallel", "1", "-c", "512", "--max-loaded", "1"},
      "serve");
  auto banner = p.wait_for(kBanner, 0, std::chrono::seconds(120));
  ASSERT_TRUE(banner) << p.output();
  const int port = std::stoi((*banner)[1].str());
  const auto models = http(port, "GET", "/v1/models", "");
  EXPECT_TRUE(has(models, R"("id":"alpha")")) << models;
  EXPECT_TRUE(has(models, R"("id":"beta")")) << models;
  EXPECT_TRUE(has(models, R"("status":{"value":"unloaded"})")) << models;
  EXPECT_TRUE(has(chat(port, "alpha"), R"("completion_tokens":3)"));
  const auto b = chat(port, "b");  // the preset's alias, its context
  EXPECT_TRUE(has(b, R"("model":"beta")")) << b;
  const auto after = http(port, "GET", "/v1/models", "");
  EXPECT_TRUE(has(after, R"("id":"beta","object":"model")")) << after;
  EXPECT_TRUE(has(after, R"("meta":{"n_ctx":256},"aliases":["b"],"status":{"value":"loaded"})"))
      << after;
  EXPECT_TRUE(p.wait_for(std::regex("model alpha: unloaded"), 0)) << p.output();
  EXPECT_TRUE(p.wait_for(std::regex("model beta: loaded in"), 0)) << p.output();
  p.terminate();
  EXPECT_EQ(p.wait(), 0) << p.output();
}

// A preset chooses the KV layout as the command line does, either way: alpha keeps the
// default's 4 sequences but a stream each (512 / 4, padded to 256), beta shares its pool
// although it names --parallel.
TEST(ServeModels, APresetChoosesTheKvPoolEitherWay) {
  const auto dir = models_dir("models-kv");
  const auto preset = dir.parent_path() / "models-kv.ini";
  std::ofstream(preset) << "[alpha]\nkv-unified = false\nctx-size = 512\n"
                        << "[beta]\nkv-unified = true\nparallel = 2\nctx-size = 512\n";
  ChildProcess p({"serve", "--models-dir", dir.string(), "--models-preset", preset.string(),
                  "--port", "0", "--threads", "1"},
                 "serve");
  auto banner = p.wait_for(kBanner, 0, std::chrono::seconds(120));
  ASSERT_TRUE(banner) << p.output();
  const int port = std::stoi((*banner)[1].str());
  EXPECT_TRUE(has(chat(port, "alpha"), R"("completion_tokens":3)"));
  EXPECT_TRUE(has(chat(port, "beta"), R"("completion_tokens":3)"));
  const auto models = http(port, "GET", "/v1/models", "");
  EXPECT_TRUE(has(models, R"("id":"alpha","object":"model")")) << models;
  EXPECT_TRUE(has(models, R"("meta":{"n_ctx":256})")) << models;
  EXPECT_TRUE(has(models, R"("meta":{"n_ctx":512})")) << models;
  EXPECT_TRUE(p.wait_for(std::regex("model alpha ready: 4 sequences x 256 tokens"), 0))
      << p.output();
  EXPECT_TRUE(p.wait_for(std::regex("model beta ready: 2 sequences sharing 512 KV cells"), 0))
      << p.output();
  p.terminate();
  EXPECT_EQ(p.wait(), 0) << p.output();
}

// A preset's `lora` gives one model of a set its adapter; /lora-adapters?model= names it.
TEST(ServeModels, APresetGivesAModelItsLoraAdapter) {
  const auto dir = models_dir("models-lora");
  const auto preset = dir.parent_path() / "models-lora.ini";
  const std::string adapter =
      test::generated_lora(test::generated_model("tiny", mkmodel::WeightType::f32, 1), 7);
  std::ofstream(preset) << "[alpha]\nlora-scaled = " << adapter << ":0.5\n";
  ChildProcess p({"serve", "--models-dir", dir.string(), "--models-preset", preset.string(),
                  "--port", "0", "--threads", "1", "--parallel", "1", "-c", "512"},
                 "serve");
  auto banner = p.wait_for(kBanner, 0, std::chrono::seconds(120));
  ASSERT_TRUE(banner) << p.output();
  const int port = std::stoi((*banner)[1].str());
  const auto alpha = http(port, "GET", "/lora-adapters?model=alpha", "");
  EXPECT_TRUE(has(alpha, R"("id":0,"path":")" + adapter + R"(","scale":0.5)")) << alpha;
  EXPECT_TRUE(has(http(port, "GET", "/lora-adapters?model=beta", ""), "[]"));
  const auto body = [](const std::string& model, const std::string& lora) {
    return R"({"model":")" + model + R"(","prompt":"Once upon a time","n_predict":6,)" +
           R"("temperature":0,"ignore_eos":true,"lora":)" + lora + "}";
  };
  // The answer's tokens (return_tokens): the adapter at 1 and at 0 answer differently.
  const auto tokens = [&](const std::string& lora) {
    auto b = body("alpha", lora);
    b.insert(b.size() - 1, R"(,"return_tokens":true)");
    const auto r = http(port, "POST", "/completion", b);
    const auto at = r.find(R"("tokens":[)");
    return at == std::string::npos ? r : r.substr(at, r.find(']', at) - at);
  };
  const auto on = tokens(R"([{"id":0,"scale":1}])");
  const auto off = tokens(R"([{"id":0,"scale":0}])");
  EXPECT_TRUE(on.starts_with(R"("tokens":[)")) << on;
  EXPECT_TRUE(off.starts_with(R"("tokens":[)")) << off;
  EXPECT_NE(on, off);
  EXPECT_EQ(tokens(R"([{"id":0,"scale":1}])"), on);
  EXPECT_TRUE(has(http(port, "POST", "/completion", body("beta", R"([{"id":0,"scale":1}])")),
                  "no LoRA adapter has id 0"));
  EXPECT_TRUE(p.wait_for(std::regex("model alpha: LoRA adapter 0: .* at scale 0.5"), 0))
      << p.output();
  p.terminate();
  EXPECT_EQ(p.wait(), 0) << p.output();
}

TEST(ServeModels, PresetErrorsNameTheFileLineAndKey) {
  const auto dir = models_dir("models-preset-errors");
  const auto preset = (dir.parent_path() / "bad.ini").string();
  struct Case {
    std::string text;
    std::string says;
  };
  for (const auto& c : std::vector<Case>{
           {"[alpha]\nctx-size = 64\ncontext = 5\n", preset + ":3: unknown key 'context'"},
           {"[alpha]\n\nctx-size = lots\n", preset + ":3: ctx-size = lots"},
           {"[alpha]\ncache-type-k = f17\n", preset + ":2: cache-type-k = f17"},
           {"[alpha]\ntemp = 300\n", "[alpha]: --temp must be in [0, 100]"},
           {"[gamma]\nctx-size = 64\n", preset + ":1: [gamma] has no path"},
       }) {
    std::ofstream(preset) << c.text;
    auto r = invoke::run_troupe("serve --port 0 --models-dir " + dir.string() +
                                " --models-preset " + preset);
    EXPECT_NE(r.exit_code, 0) << c.text << r.output;
    EXPECT_TRUE(has(r.output, c.says)) << c.text << "\n" << r.output;
    EXPECT_FALSE(has(r.output, "troupe is serving")) << r.output;
  }
}

TEST(ServeModels, FlagsOfASetNeedASetAndHelpDescribesThem) {
  for (const std::string flags :
       {"--max-loaded 2", "--idle-unload 5m", "--models-memory-budget 8GiB"}) {
    auto r = invoke::run_troupe("serve --engine sim --port 0 " + flags);
    EXPECT_NE(r.exit_code, 0) << flags;
    EXPECT_TRUE(has(r.output, "apply to a set of models")) << flags << "\n" << r.output;
  }
  const auto dir = models_dir("models-bad-flags");
  for (const auto& [flags, says] : std::vector<std::pair<std::string, std::string>>{
           {"--idle-unload soon", "--idle-unload"},
           {"--models-memory-budget lots", "--models-memory-budget: 'lots' is not a byte count"},
           {"-a name", "--alias names the one model"},
           {"--engine sim", "several models need --engine llama"},
           {"--lora " + test::generated_lora(test::generated_model("tiny")),
            "give a --models-preset section `lora = FILE`"}}) {
    auto r = invoke::run_troupe("serve --port 0 --models-dir " + dir.string() + " " + flags);
    EXPECT_NE(r.exit_code, 0) << flags;
    EXPECT_TRUE(has(r.output, says)) << flags << "\n" << r.output;
  }
  const auto help = invoke::run_troupe("serve --help").output;
  for (const char* flag : {"--models-dir", "--models-preset", "--max-loaded", "--idle-unload",
                           "--models-memory-budget", "repeat it to serve several"})
    EXPECT_TRUE(has(help, flag)) << flag;
}

}  // namespace
}  // namespace troupe::cli
