#pragma once
// A real tokenizer taken from another GGUF (a vocabulary-only file such as llama.cpp's
// ggml-vocab-*.gguf, or a full model): every `tokenizer.*` key and array (model, pre, tokens,
// token types, merges, scores, special token ids, add_bos/add_eos flags, chat template) is
// copied as is into the model being written, so llama.cpp builds the same vocabulary from it.
//
// Thread-safety: a VocabFile is immutable after open(); const members may be called from any
// thread.

#include <cstdint>
#include <memory>
#include <string>

#include "util/result.hpp"

struct gguf_context;

namespace troupe::mkmodel {

class VocabFile {
 public:
  // Reads the metadata of `path` (not its tensor data). Errors (invalid_request, param
  // "vocab"): the file is missing or unreadable, is not a GGUF file, or has no tokenizer
  // (no `tokenizer.ggml.model` or `tokenizer.ggml.tokens`).
  static Result<VocabFile> open(const std::string& path);

  VocabFile(VocabFile&&) noexcept;
  VocabFile& operator=(VocabFile&&) noexcept;
  ~VocabFile();

  // Number of tokens: the size of the embedding and output tensors of a model that uses it.
  std::int32_t n_tokens() const noexcept { return n_tokens_; }
  // tokenizer.ggml.model, e.g. "llama", "gpt2", "gemma4".
  const std::string& tokenizer_model() const noexcept { return model_; }
  const std::string& path() const noexcept { return path_; }

  // Sets every `tokenizer.*` key of this file on `dst` (replacing keys of the same name).
  // Error (internal) for a value type gguf cannot copy (nested arrays).
  Result<void> copy_into(gguf_context* dst) const;

 private:
  struct Deleter {
    void operator()(gguf_context* g) const;
  };
  VocabFile(std::unique_ptr<gguf_context, Deleter> g, std::string path, std::int32_t n_tokens,
            std::string model);

  std::unique_ptr<gguf_context, Deleter> g_;
  std::string path_;
  std::int32_t n_tokens_ = 0;
  std::string model_;
};

}  // namespace troupe::mkmodel
