#pragma once
// Models for tests, generated on first use into the build tree and shared by every test
// process (written to a temporary name and renamed, so concurrent ctest processes are safe).

#include <optional>
#include <string>

#include "mkmodel/model_spec.hpp"

namespace troupe::test {

// Path of a generated model of `shape` ("tiny", "small", ...) with the given type and seed.
// Aborts the test binary with a message if it cannot be written.
std::string generated_model(const std::string& shape = "tiny",
                            mkmodel::WeightType type = mkmodel::WeightType::f32,
                            std::uint64_t seed = 1);

// Path of a generated tiny BERT model (llama.cpp's bert architecture, the real bert-bge
// WordPiece vocabulary, random weights) with `pooling` (mean, cls, or rank: a reranker).
std::string generated_bert_model(mkmodel::BertPooling pooling = mkmodel::BertPooling::cls,
                                 std::uint64_t seed = 1);

// Path of a generated tiny model with sliding-window attention (mkmodel's cohere2: a window
// of `window` tokens on three layers of four), random weights, F32.
std::string generated_swa_model(std::int32_t window = 16, std::uint64_t seed = 1);

// Path of a generated tiny hybrid model (mkmodel's lfm2: short convolutions, a recurrent
// state, with attention on every third layer), random weights, F32.
std::string generated_hybrid_model(std::uint64_t seed = 1);

// Path of a generated random LoRA adapter (rank 8, scale 1 at alpha 8) for the model at
// `base` (mkmodel::write_lora_adapter).
std::string generated_lora(const std::string& base, std::uint64_t seed = 1);

// ../shared/models/<file> when that folder exists (real trained tiny models), else nullopt:
// tests that use it must GTEST_SKIP() with a message when it is absent.
std::optional<std::string> shared_model(const std::string& file = "stories260K.gguf");

}  // namespace troupe::test
