#pragma once
// LlamaModel: a loaded GGUF model and everything about its vocabulary the engine needs:
// tokenizing, detokenizing, token pieces, end-of-generation tokens, and the chat template's
// source (rendered by chatfmt/).
//
// Thread-safety: immutable after load(); every const member may be called from any thread
// concurrently (llama.cpp's vocabulary is read-only once loaded).

#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "engine/first_byte_index.hpp"
#include "engine/infill.hpp"
#include "engine/llama_handles.hpp"
#include "engine/lora.hpp"
#include "engine/placement.hpp"
#include "engine/task.hpp"
#include "engine/token_text.hpp"
#include "util/result.hpp"

namespace troupe::engine {

struct ModelLoadOptions {
  std::string path;
  PlacementOptions placement;  // GPU offload, mmap, mlock (the context's parts are not read)
  std::vector<LoraSpec> lora;  // LoRA adapters to load with it (--lora, --lora-scaled)
  // Called during the load with the fraction done (0 to 1), on the loading thread; may be
  // empty. Must be quick and must not throw.
  std::function<void(float)> on_progress;
};

class LlamaModel final : public TokenText {
 public:
  // Loads the model (blocking, seconds for a large file). Errors: not_found for a missing
  // file, engine_failed when llama.cpp cannot load it.
  static Result<std::unique_ptr<LlamaModel>> load(const ModelLoadOptions& options);

  llama_model* get() const noexcept { return model_.get(); }
  // Its LoRA adapters (ModelLoadOptions::lora), in order: their ids. Their scales here are the
  // load's; LoraTable keeps the server-wide ones.
  const std::vector<LoraAdapter>& lora_adapters() const noexcept { return lora_; }
  const llama_vocab* vocab() const noexcept { return vocab_; }
  std::int32_t n_vocab() const noexcept { return n_vocab_; }
  std::int32_t n_ctx_train() const noexcept;
  // Where `placement` put this model and what a context of `n_ctx` cells holds (for the log).
  PlacementReport placement_report(const PlacementOptions& placement, std::int32_t n_ctx) const;
  // Bytes of the longest token piece: a text of B bytes has at least B / this many tokens.
  std::int32_t max_piece_bytes() const noexcept { return max_piece_bytes_; }
  const std::vector<Token>& eog_tokens() const noexcept { return eog_tokens_; }
  // The vocabulary by first byte, for grammar checks (null for an embedding-only model).
  const FirstByteIndex* first_bytes() const noexcept { return first_bytes_.get(); }
  // An encoder-only embedding model (BERT and its kin, T5's encoder): it has no language-model
  // head, so it serves embeddings (or rerank scores) and never generates.
  bool embedding_only() const { return embedding_only(model_.get()); }
  static bool embedding_only(const llama_model* m);
  // Whether a context's memory of this model can drop a sequence's tokens from any position
  // (not recurrent, hybrid or sliding-window): what drafts, pad rows and the host cache need.
  bool memory_cuts_anywhere() const;
  // The tokens of a rerank pair, built the way llama-server does: the GGUF's rerank template
  // (tokenizer.chat_template.rerank, "{query}" and "{document}" replaced) when it has one,
  // else [BOS] query [EOS] [SEP] document [EOS] as the vocabulary adds them (SEP in place of
  // a missing EOS).
  Result<std::vector<Token>> rerank_tokens(const std::string& query,
                                           const std::string& document) const;

  // The vocabulary's fill-in-the-middle tokens and its BOS as a prompt begins with it.
  FimTokens fim_tokens() const;

  void append_piece(Token token, std::string& out) const override;
  void append_special(Token token, std::string& out) const override;
  bool is_eog(Token token) const override;

  // Errors: invalid_request when the text cannot be tokenized.
  Result<std::vector<Token>> tokenize(std::string_view text, bool add_special,
                                      bool parse_special) const;
  // Special tokens are rendered as their text.
  Result<std::string> detokenize(const std::vector<Token>& tokens) const;

  // The GGUF's chat template (tokenizer.chat_template, or tokenizer.chat_template.NAME for a
  // named variant such as "tool_use"); empty when the model has none.
  std::string chat_template(const char* name = nullptr) const;
  // The texts of the BOS and EOS tokens as templates print them (empty when absent).
  std::string bos_text() const;
  std::string eos_text() const;

 private:
  explicit LlamaModel(ModelPtr model);
  std::string special_text(Token token) const;

  ModelPtr model_;
  const llama_vocab* vocab_ = nullptr;
  std::int32_t n_vocab_ = 0;
  std::int32_t max_piece_bytes_ = 1;
  std::vector<Token> eog_tokens_;
  std::vector<bool> is_eog_;
  std::unique_ptr<FirstByteIndex> first_bytes_;
  std::vector<LoraAdapter> lora_;  // freed with model_
};

}  // namespace troupe::engine
