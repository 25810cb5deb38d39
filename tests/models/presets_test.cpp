#include "models/presets.hpp"

#include <gtest/gtest.h>

namespace troupe::models {
namespace {

bool has(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

TEST(Presets, ReadsSectionsKeysAndLines) {
  const auto presets = parse_presets(
      "# models\n"
      "[qwen]\n"
      "path = /m/qwen.gguf   # the file\n"
      "alias = q, small\n"
      "\n"
      "; another\n"
      "[llama]\n"
      "ctx-size=8192\n"
      "temp = 0.5\n",
      "p.ini");
  ASSERT_TRUE(presets) << presets.error().message;
  ASSERT_EQ(presets->size(), 2u);
  const Preset& q = (*presets)[0];
  EXPECT_EQ(q.id, "qwen");
  EXPECT_EQ(q.line, 2);
  ASSERT_NE(q.find("path"), nullptr);
  EXPECT_EQ(q.find("path")->value, "/m/qwen.gguf");
  EXPECT_EQ(q.find("alias")->value, "q, small");
  EXPECT_EQ(q.find("alias")->line, 4);
  EXPECT_EQ(q.find("temp"), nullptr);
  const Preset& l = (*presets)[1];
  EXPECT_EQ(l.id, "llama");
  EXPECT_EQ(l.find("ctx-size")->value, "8192");
  EXPECT_EQ(l.find("temp")->line, 9);
}

TEST(Presets, AnEmptyFileHasNoPresets) {
  auto p = parse_presets("\n# nothing\n", "p.ini");
  ASSERT_TRUE(p);
  EXPECT_TRUE(p->empty());
}

TEST(Presets, EveryErrorNamesTheFileTheLineAndWhat) {
  struct Case {
    const char* text;
    const char* says;
  };
  for (const auto& c : std::vector<Case>{
           {"[a]\nctx_size = 5\n", "p.ini:2: unknown key 'ctx_size'"},
           {"[a]\n\n\nfrobnicate = 1\n", "p.ini:4: unknown key 'frobnicate'"},
           {"temp = 1\n[a]\n", "p.ini:1: 'temp' comes before any [model-id] section"},
           {"[a]\npath\n", "p.ini:2: expected [model-id] or key = value"},
           {"[a]\ntemp =\n", "p.ini:2: 'temp' has no value"},
           {"[a]\ntemp = 1\ntemp = 2\n", "p.ini:3: 'temp' is set twice in [a] (first on line 2)"},
           {"[a]\n[b]\n[a]\n", "p.ini:3: [a] is given twice (first on line 1)"},
           {"[]\n", "p.ini:1: empty section name"},
           {"[a\n", "p.ini:1: a section header must end with ']'"},
       }) {
    auto p = parse_presets(c.text, "p.ini");
    ASSERT_FALSE(p) << c.text;
    EXPECT_EQ(p.error().code, Errc::invalid_request);
    EXPECT_TRUE(has(p.error().message, c.says)) << p.error().message;
  }
}

TEST(Presets, KnownKeysAreTheServeFlagNames) {
  const auto& keys = preset_keys();
  for (const char* k :
       {"path", "hf-repo", "hf-file", "alias", "ctx-size", "parallel", "chat-template",
        "n-gpu-layers", "gpu-layers", "cache-type-k", "cache-type-v", "temp", "top-k", "top-p"})
    EXPECT_NE(std::find(keys.begin(), keys.end(), k), keys.end()) << k;
}

TEST(Presets, AMissingFileIsAnError) {
  auto p = load_presets("/nope/presets.ini");
  ASSERT_FALSE(p);
  EXPECT_TRUE(has(p.error().message, "/nope/presets.ini")) << p.error().message;
}

}  // namespace
}  // namespace troupe::models
