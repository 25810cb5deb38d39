#include "support/test_models.hpp"

#include <fmt/format.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>

namespace troupe::test {

std::string generated_model(const std::string& shape, mkmodel::WeightType type,
                            std::uint64_t seed) {
  const auto dir = std::filesystem::path(TROUPE_BINARY_DIR) / "test-models";
  std::filesystem::create_directories(dir);
  const auto path =
      dir / fmt::format("{}-{}-{}.gguf", shape, mkmodel::weight_type_name(type), seed);
  if (std::filesystem::exists(path))
    return path.string();
  auto s = mkmodel::shape_by_name(shape);
  if (!s) {
    fmt::print(stderr, "generated_model: {}\n", s.error().message);
    std::abort();
  }
  if (auto ok = mkmodel::write_model({*s, type, seed}, path.string()); !ok) {
    fmt::print(stderr, "generated_model: {}\n", ok.error().message);
    std::abort();
  }
  return path.string();
}

std::string generated_bert_model(mkmodel::BertPooling pooling, std::uint64_t seed) {
  const auto dir = std::filesystem::path(TROUPE_BINARY_DIR) / "test-models";
  std::filesystem::create_directories(dir);
  const auto path = dir / fmt::format("bert-tiny-{}-{}.gguf", static_cast<int>(pooling), seed);
  if (std::filesystem::exists(path))
    return path.string();
  mkmodel::ModelSpec spec{*mkmodel::shape_by_name("tiny"), mkmodel::WeightType::f32, seed};
  spec.arch = mkmodel::Arch::bert;
  spec.pooling = pooling;
  spec.shape.n_head_kv = spec.shape.n_head;
  spec.shape.n_ctx = 512;
  spec.vocab_file = TROUPE_LLAMA_TESTDATA "/vocab/ggml-vocab-bert-bge.gguf";
  if (auto ok = mkmodel::write_model(spec, path.string()); !ok) {
    fmt::print(stderr, "generated_bert_model: {}\n", ok.error().message);
    std::abort();
  }
  return path.string();
}

namespace {

// A tiny F32 model of `arch` at `name` in the test models' folder, written once.
std::string generated_arch_model(const std::string& name, mkmodel::Arch arch, std::int32_t window,
                                 std::uint64_t seed) {
  const auto dir = std::filesystem::path(TROUPE_BINARY_DIR) / "test-models";
  std::filesystem::create_directories(dir);
  const auto path = dir / name;
  if (std::filesystem::exists(path))
    return path.string();
  mkmodel::ModelSpec spec{*mkmodel::shape_by_name("tiny"), mkmodel::WeightType::f32, seed};
  spec.arch = arch;
  spec.sliding_window = window;
  if (auto ok = mkmodel::write_model(spec, path.string()); !ok) {
    fmt::print(stderr, "generated model {}: {}\n", name, ok.error().message);
    std::abort();
  }
  return path.string();
}

}  // namespace

std::string generated_swa_model(std::int32_t window, std::uint64_t seed) {
  return generated_arch_model(fmt::format("cohere2-tiny-swa{}-{}.gguf", window, seed),
                              mkmodel::Arch::cohere2, window, seed);
}

std::string generated_hybrid_model(std::uint64_t seed) {
  return generated_arch_model(fmt::format("lfm2-tiny-{}.gguf", seed), mkmodel::Arch::lfm2, 0, seed);
}

std::string generated_lora(const std::string& base, std::uint64_t seed) {
  const auto path =
      std::filesystem::path(base).replace_extension(fmt::format("lora-{}.gguf", seed));
  if (std::filesystem::exists(path))
    return path.string();
  if (auto ok = mkmodel::write_lora_adapter({base, 8, 8.0f, seed, "test"}, path.string()); !ok) {
    fmt::print(stderr, "generated_lora: {}\n", ok.error().message);
    std::abort();
  }
  return path.string();
}

std::optional<std::string> shared_model(const std::string& file) {
  for (const char* base :
       {TROUPE_SOURCE_DIR "/../shared/models", TROUPE_SOURCE_DIR "/shared/models"}) {
    const auto path = std::filesystem::path(base) / file;
    if (std::filesystem::exists(path))
      return std::filesystem::canonical(path).string();
  }
  return std::nullopt;
}

}  // namespace troupe::test
