#pragma once
// What `troupe mkmodel` writes: a llama-architecture GGUF with random weights and a generated
// SentencePiece-style vocabulary, or a real tokenizer copied from another GGUF (vocab_file),
// fully determined by a ModelSpec and that file (same inputs, same bytes).

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include "util/result.hpp"

namespace troupe::mkmodel {

enum class WeightType { f32, f16, q8_0, q4_0 };

// llama: a decoder (generation). bert: llama.cpp's BERT encoder (embeddings; needs a WordPiece
// vocabulary such as ggml-vocab-bert-bge.gguf), non-causal, with learned positions. cohere2:
// Command R7B's decoder, whose attention looks back only `sliding_window` tokens on three
// layers of four (llama.cpp keeps those layers' cells in a cache of their own that forgets
// older positions: the memory of Gemma 2-4, gpt-oss and the other sliding-window families).
// lfm2: Liquid's hybrid, short convolutions on most layers and attention on every third from
// the third (a recurrent state beside a KV cache: the memory of Qwen3.5, Granite 4, Nemotron-H
// and the other hybrids, which cannot be cut back to an earlier token).
enum class Arch { llama, bert, cohere2, lfm2 };

// A BERT model's pooling (bert.pooling_type): mean, cls, or rank, which adds the classifier
// head llama.cpp's rank pooling reads (cls, cls.output: one relevance score), a reranker.
enum class BertPooling { mean = 1, cls = 2, rank = 4 };

struct Shape {
  std::string name;  // "tiny" | "small" | "1b" | "custom"
  std::int32_t n_vocab = 0;
  std::int32_t n_ctx = 0;  // llama.context_length
  std::int32_t n_embd = 0;
  std::int32_t n_layer = 0;
  std::int32_t n_head = 0;
  std::int32_t n_head_kv = 0;
  std::int32_t n_ff = 0;
  float rope_freq_base = 10000.0f;
  float rms_eps = 1e-5f;
};

struct ModelSpec {
  Shape shape;
  WeightType type = WeightType::f16;
  std::uint64_t seed = 42;
  // Optional: a GGUF whose tokenizer (every `tokenizer.*` key, see vocab_file.hpp) the model
  // takes instead of the generated vocabulary; shape.n_vocab is then that tokenizer's size.
  std::string vocab_file;
  // Optional: tokenizer.chat_template. Unset: the vocabulary file's own template (none if it
  // has none), or ChatML with the generated vocabulary.
  std::optional<std::string> chat_template;
  Arch arch = Arch::llama;
  BertPooling pooling = BertPooling::cls;  // bert only
  std::int32_t sliding_window = 4096;      // cohere2 only: the window, in tokens
};

// The predefined shapes: tiny (~1-2 M parameters, for unit tests), small (~130 M: n_embd 768,
// 12 layers, 12 heads, n_ff 2048), 1b (TinyLlama-1.1B: n_embd 2048, 22 layers, 32 heads,
// 4 KV heads, n_ff 5632). Error for any other name.
Result<Shape> shape_by_name(std::string_view name);

// Checks that a shape can be written (positive sizes, heads divide n_embd, quantized row
// sizes divisible by the block size, vocabulary at least the fixed special/byte tokens; with a
// vocab_file the vocabulary size is the file's and is not checked here).
Result<void> validate(const ModelSpec& spec);

Result<WeightType> parse_weight_type(std::string_view name);
// "llama" | "bert" | "cohere2" | "lfm2"
Result<Arch> parse_arch(std::string_view name);
Result<BertPooling> parse_bert_pooling(std::string_view name);  // "mean" | "cls" | "rank"
std::string_view weight_type_name(WeightType t);

// Number of weights a llama-architecture model of `shape` has.
std::int64_t parameter_count(const Shape& shape);

// Called with the fraction of tensor bytes written so far (0..1), from the calling thread.
using Progress = std::function<void(double fraction)>;

// Writes the model to `path` (through a temporary file renamed into place, so readers never
// see half a file). Errors: invalid spec, a vocab_file that is missing, not GGUF or has no
// tokenizer (param "vocab"), unwritable path, disk full.
Result<void> write_model(const ModelSpec& spec, const std::string& path,
                         const Progress& progress = {});

// A random LoRA adapter for a base model (llama.cpp's adapter GGUF: general.type "adapter",
// adapter.type "lora", adapter.lora.alpha; for each attention and feed-forward matrix W of the
// base, W.lora_a [n_in, rank] and W.lora_b [rank, n_out] in F32), for tests and benchmarks.
// Its product at scale 1 is about as large as the base's own random weights, so it changes
// what the model says.
struct LoraAdapterSpec {
  std::string base;  // the base model's GGUF (its architecture and tensor shapes)
  std::int32_t rank = 8;
  float alpha = 8.0f;  // scale alpha / rank
  std::uint64_t seed = 42;
  std::string task_name;  // adapter.lora.task_name, when not empty
};
// Errors: invalid_request for a base that cannot be read or has no such matrices, or a rank
// out of 1..256.
Result<void> write_lora_adapter(const LoraAdapterSpec& spec, const std::string& path);

}  // namespace troupe::mkmodel
