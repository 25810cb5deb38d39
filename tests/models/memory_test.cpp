#include "models/memory.hpp"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "engine/memory_use.hpp"
#include "mkmodel/model_spec.hpp"
#include "models/model_set.hpp"
#include "support/test_models.hpp"

namespace troupe::models {
namespace {

TEST(MemoryEstimate, WeightsAreTheFileAndKvFollowsTheShape) {
  const auto path = test::generated_model("tiny");
  const auto shape = mkmodel::shape_by_name("tiny").value();
  const std::uint64_t head = shape.n_embd / shape.n_head;
  const std::uint64_t gqa = head * shape.n_head_kv;
  auto e = estimate_memory(path, 512, "f16", "f16");
  ASSERT_TRUE(e) << e.error().message;
  EXPECT_EQ(e->weights, std::filesystem::file_size(path));
  EXPECT_EQ(e->kv_cache, shape.n_layer * 512u * (gqa * 2 + gqa * 2));
  EXPECT_EQ(e->total(), e->weights + e->kv_cache);
  // A context of 0 is the trained one; q8_0 packs 32 values in 34 bytes.
  auto trained = estimate_memory(path, 0, "f16", "f16");
  ASSERT_TRUE(trained);
  EXPECT_EQ(trained->kv_cache, e->kv_cache / 512 * static_cast<std::uint64_t>(shape.n_ctx));
  auto q8 = estimate_memory(path, 512, "q8_0", "f16");
  ASSERT_TRUE(q8);
  EXPECT_EQ(q8->kv_cache, shape.n_layer * 512u * (gqa / 32 * 34 + gqa * 2));
}

TEST(MemoryEstimate, ABrokenFileOrTypeIsAnError) {
  const auto dir = std::filesystem::path(TROUPE_BINARY_DIR) / "models-memory-test";
  std::filesystem::create_directories(dir);
  const auto bad = dir / "bad.gguf";
  std::ofstream(bad) << "garbage";
  auto e = estimate_memory(bad.string(), 512, "f16", "f16");
  ASSERT_FALSE(e);
  EXPECT_NE(e.error().message.find("not a readable GGUF"), std::string::npos);
  EXPECT_FALSE(estimate_memory("/nope.gguf", 512, "f16", "f16"));
  auto t = estimate_memory(test::generated_model("tiny"), 512, "f17", "f16");
  ASSERT_FALSE(t);
  EXPECT_NE(t.error().message.find("f17"), std::string::npos);
}

// A model with a draft model (--spec-draft-model) takes both files and both contexts.
TEST(MemoryEstimate, ADraftModelCountsToo) {
  ModelConfig c;
  c.options.model_path = test::generated_model("tiny");
  c.options.engine.n_ctx = 512;
  const auto alone = local_loader().estimate(c);
  ASSERT_TRUE(alone) << alone.error().message;
  c.options.draft_model_path = test::generated_model("tiny", mkmodel::WeightType::f32, 2);
  const auto both = local_loader().estimate(c);
  ASSERT_TRUE(both) << both.error().message;
  ModelConfig d = c;
  d.options.model_path = c.options.draft_model_path;
  d.options.draft_model_path.clear();
  const auto draft = local_loader().estimate(d).value();
  EXPECT_EQ(both->weights, alone->weights + draft.weights);
  EXPECT_EQ(both->kv_cache, alone->kv_cache + draft.kv_cache);
  EXPECT_EQ(both->compute, alone->compute + draft.compute);
  c.options.draft_model_path = "/nope.gguf";
  EXPECT_FALSE(local_loader().estimate(c));
}

// With llama.cpp's own count (a dry run of the context it would make), a sliding-window
// model's estimate holds its windowed layers' window only, as the context does, and a hybrid
// model's its attention layers' cells and its recurrent state: the shape's estimate counted
// every layer's cells at full context. Without the count (a build of llama.cpp without the
// staging header) the estimate is the shape's.
TEST(MemoryEstimate, LlamaCppsCountFollowsTheModelsMemory) {
  ModelConfig c;
  c.options.engine.n_ctx = 8192;
  c.options.engine.n_parallel = 2;
  c.options.engine.n_threads = 1;
  for (const auto& [path, smaller] : {std::pair{test::generated_model("tiny"), false},
                                      std::pair{test::generated_swa_model(16), true},
                                      std::pair{test::generated_hybrid_model(), true}}) {
    SCOPED_TRACE(path);
    c.options.model_path = path;
    const auto e = local_loader().estimate(c);
    ASSERT_TRUE(e) << e.error().message;
    const auto shape = estimate_memory(path, 8192, "f16", "f16").value();
    EXPECT_EQ(e->weights, shape.weights);
    if (!engine::memory_use_known()) {
      EXPECT_EQ(e->kv_cache, shape.kv_cache);
      continue;
    }
    EXPECT_GT(e->compute, 0u);
    if (smaller)
      EXPECT_LT(e->kv_cache, shape.kv_cache / 2);
    else
      EXPECT_EQ(e->kv_cache, shape.kv_cache);
  }
}

TEST(ParseBytes, UnitsAndErrors) {
  EXPECT_EQ(parse_bytes("1000").value(), 1000u);
  EXPECT_EQ(parse_bytes("8GiB").value(), 8ull << 30);
  EXPECT_EQ(parse_bytes("512MB").value(), 512000000u);
  EXPECT_EQ(parse_bytes("1.5 KiB").value(), 1536u);
  EXPECT_EQ(parse_bytes("2g").value(), 2ull << 30);
  for (const char* bad : {"", "abc", "-1GB", "5 parsecs", "1e30GB"})
    EXPECT_FALSE(parse_bytes(bad)) << bad;
  EXPECT_EQ(format_bytes(1536), "1.5 KiB");
  EXPECT_EQ(format_bytes(100), "100 B");
}

}  // namespace
}  // namespace troupe::models
