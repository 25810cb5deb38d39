// Real model families offline: random weights with a real tokenizer (llama.cpp's test
// vocabularies) and that family's real chat template (the release's reference templates).
// Each family renders a two-turn tool conversation whose markup becomes the tokenizer's
// special tokens, and generates from it through the whole engine.

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "engine/coordinator.hpp"
#include "engine_test_util.hpp"
#include "mkmodel/model_spec.hpp"

namespace troupe::engine {
namespace {

using testing::collect;
using testing::run_sync;

struct Family {
  const char* name;
  const char* vocab;   // third_party/llama/testdata/vocab/ggml-vocab-<vocab>.gguf
  const char* tmpl;    // third_party/llama/testdata/templates/<tmpl>
  const char* marker;  // a piece of the template's markup that is one special token
};

const Family families[] = {
    {"llama3", "llama-bpe", "meta-llama-Llama-3.1-8B-Instruct.jinja", "<|start_header_id|>"},
    {"qwen25", "qwen2", "Qwen-Qwen2.5-7B-Instruct.jinja", "<|im_start|>"},
    {"qwen3", "qwen2", "Qwen-Qwen3-0.6B.jinja", "<|im_start|>"},
    {"qwen35", "qwen35", "Qwen3.5-4B.jinja", "<|im_start|>"},
    {"deepseek-r1", "llama-bpe", "deepseek-ai-DeepSeek-R1-Distill-Llama-8B.jinja",
     "<|begin_of_text|>"},
    {"gemma4", "gemma-4", "google-gemma-4-31B-it.jinja", "<|turn>"},
};

std::string read(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// The family's model, written once into the build tree (to a temporary name, then renamed).
std::string family_model(const Family& f) {
  const auto dir = std::filesystem::path(TROUPE_BINARY_DIR) / "test-models";
  std::filesystem::create_directories(dir);
  const auto path = dir / fmt::format("family-{}.gguf", f.name);
  if (std::filesystem::exists(path))
    return path.string();
  const std::filesystem::path data(TROUPE_LLAMA_TESTDATA);
  mkmodel::ModelSpec spec;
  spec.shape = mkmodel::shape_by_name("tiny").value();
  spec.seed = 1;
  spec.vocab_file = (data / "vocab" / fmt::format("ggml-vocab-{}.gguf", f.vocab)).string();
  spec.chat_template = read(data / "templates" / f.tmpl);
  const auto tmp = path.string() + fmt::format(".{}.tmp", ::getpid());
  auto ok = mkmodel::write_model(spec, tmp);
  EXPECT_TRUE(ok) << (ok ? "" : ok.error().message);
  std::filesystem::rename(tmp, path);
  return path.string();
}

Task two_turns() {
  Task t;
  ChatMessage call{"assistant", ""};
  call.tool_calls.push_back({"a1b2c3d4e", "get_time", R"({"city":"Paris"})"});
  ChatMessage result{"tool", "10:30"};
  result.tool_call_id = "a1b2c3d4e";
  result.name = "get_time";
  t.prompt = std::vector<ChatMessage>{{"user", "What time is it in Paris?"}, call, result};
  t.chat.tools = {
      {"get_time", "The time in a city",
       R"({"type":"object","properties":{"city":{"type":"string"}},"required":["city"]})"}};
  t.sampling.temperature = 0.0f;
  t.stop.max_tokens = 6;
  t.stop.ignore_eos = true;
  return t;
}

class ChatFamily : public ::testing::TestWithParam<Family> {};

TEST_P(ChatFamily, ATwoTurnToolConversationRendersIntoSpecialTokensAndGenerates) {
  const Family& f = GetParam();
  EngineOptions o;
  o.model_path = family_model(f);
  o.model_id = f.name;
  o.n_threads = 1;
  o.n_parallel = 1;
  o.n_ctx = 2048;
  Coordinator c(std::move(o));
  ASSERT_EQ(c.wait_loaded().state, HealthState::ready) << c.health().message;

  auto prompt = run_sync(c.apply_template(two_turns()));
  ASSERT_TRUE(prompt) << prompt.error().message;
  EXPECT_NE(prompt->find("10:30"), std::string::npos) << *prompt;
  EXPECT_NE(prompt->find(f.marker), std::string::npos) << *prompt;
  auto marker = run_sync(c.tokenize({}, f.marker, false, true));
  ASSERT_TRUE(marker);
  EXPECT_EQ(marker->size(), 1u) << f.marker << " is one special token of the " << f.vocab
                                << " vocabulary";

  auto s = run_sync(c.generate(two_turns()));
  auto r = collect(s);
  ASSERT_TRUE(r.finished) << (r.error ? r.error->message : "");
  EXPECT_EQ(r.finished->usage.completion_tokens, 6);
  EXPECT_GT(r.finished->usage.prompt_tokens, 20);
}

INSTANTIATE_TEST_SUITE_P(Families, ChatFamily, ::testing::ValuesIn(families), [](const auto& info) {
  std::string n = info.param.name;
  std::replace(n.begin(), n.end(), '-', '_');
  return n;
});

}  // namespace
}  // namespace troupe::engine
