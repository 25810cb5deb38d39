#pragma once
// VocabTokenizer: only the vocabulary of a GGUF model (loaded with vocab_only: no weights, no
// context, milliseconds even for a large model), to tokenize and detokenize text exactly as
// the server's LlamaModel does. For tools that need exact token counts without the model in
// memory (`troupe bench --tokenizer model.gguf`).
//
// vocab_tokenize / vocab_detokenize are the llama.cpp calls with their buffer-size retries, for
// any loaded vocabulary. This header does not include llama.h.
//
// Thread-safety: immutable after load(); every const member may be called from any thread
// concurrently (llama.cpp's vocabulary is read-only once loaded).

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "engine/task.hpp"
#include "util/result.hpp"

struct llama_model;
struct llama_vocab;

namespace troupe::engine {

// llama_tokenize with the retry for a larger buffer. Errors: invalid_request when the text is
// too long or cannot be tokenized.
Result<std::vector<Token>> vocab_tokenize(const llama_vocab* vocab, std::string_view text,
                                          bool add_special, bool parse_special);
// llama_detokenize; special tokens are rendered as their text. Errors: invalid_request for a
// token id outside the vocabulary.
Result<std::string> vocab_detokenize(const llama_vocab* vocab, const std::vector<Token>& tokens);
// Each token's own text as it appears inside a longer text (llama_token_to_piece: " is" keeps
// its space, which detokenizing the token alone may strip); special tokens as their text.
// Errors: invalid_request for a token id outside the vocabulary.
Result<std::vector<std::string>> vocab_token_pieces(const llama_vocab* vocab,
                                                    const std::vector<Token>& tokens);

class VocabTokenizer {
 public:
  // Loads the vocabulary of the GGUF file at `path`. Errors: not_found for a missing file,
  // invalid_request when llama.cpp cannot read it as a model (not a GGUF, unknown
  // architecture or tokenizer).
  static Result<std::unique_ptr<VocabTokenizer>> load(const std::string& path);

  VocabTokenizer(const VocabTokenizer&) = delete;
  VocabTokenizer& operator=(const VocabTokenizer&) = delete;
  ~VocabTokenizer();

  std::int32_t n_vocab() const noexcept { return n_vocab_; }
  const std::string& path() const noexcept { return path_; }

  // As LlamaModel::tokenize and LlamaModel::detokenize.
  Result<std::vector<Token>> tokenize(std::string_view text, bool add_special,
                                      bool parse_special) const {
    return vocab_tokenize(vocab_, text, add_special, parse_special);
  }
  Result<std::string> detokenize(const std::vector<Token>& tokens) const {
    return vocab_detokenize(vocab_, tokens);
  }

 private:
  VocabTokenizer(llama_model* model, std::string path);

  llama_model* model_;  // owned: freed by the destructor
  const llama_vocab* vocab_ = nullptr;
  std::int32_t n_vocab_ = 0;
  std::string path_;
};

}  // namespace troupe::engine
