#include "engine/model.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <filesystem>

#include "engine/llama_runtime.hpp"
#include "engine/placement_llama.hpp"
#include "engine/vocab_tokenizer.hpp"

namespace troupe::engine {

Result<std::unique_ptr<LlamaModel>> LlamaModel::load(const ModelLoadOptions& options) {
  init_llama_runtime();
  std::error_code ec;
  if (!std::filesystem::is_regular_file(options.path, ec)) {
    return Error{Errc::not_found, fmt::format("model file not found: {}", options.path)};
  }
  auto params = llama_model_default_params();
  DeviceList devices;  // what params point into, alive until the load returns
  std::vector<float> split;
  if (auto r = apply_model_placement(options.placement, params, devices, split); !r)
    return r.error();
  if (options.on_progress) {
    params.progress_callback = [](float progress, void* user) {
      (*static_cast<const std::function<void(float)>*>(user))(progress);
      return true;  // go on loading
    };
    params.progress_callback_user_data =
        const_cast<std::function<void(float)>*>(&options.on_progress);
  }
  ModelPtr model(llama_model_load_from_file(options.path.c_str(), params));
  if (!model) {
    return Error{Errc::engine_failed, fmt::format("llama.cpp could not load {}", options.path)};
  }
  auto lora = load_lora_adapters(model.get(), options.lora);
  if (!lora)
    return lora.error();
  std::unique_ptr<LlamaModel> loaded(new LlamaModel(std::move(model)));
  loaded->lora_ = std::move(lora.value());
  return loaded;
}

LlamaModel::LlamaModel(ModelPtr model) : model_(std::move(model)) {
  vocab_ = llama_model_get_vocab(model_.get());
  n_vocab_ = llama_vocab_n_tokens(vocab_);
  is_eog_.assign(static_cast<std::size_t>(n_vocab_), false);
  std::string piece;
  for (Token t = 0; t < n_vocab_; ++t) {
    if (llama_vocab_is_eog(vocab_, t)) {
      eog_tokens_.push_back(t);
      is_eog_[static_cast<std::size_t>(t)] = true;
    }
    piece.clear();
    append_piece(t, piece);
    max_piece_bytes_ = std::max<std::int32_t>(max_piece_bytes_, static_cast<int>(piece.size()));
  }
  if (!embedding_only())
    first_bytes_ = std::make_unique<FirstByteIndex>(FirstByteIndex::of(vocab_));
}

PlacementReport LlamaModel::placement_report(const PlacementOptions& placement,
                                             std::int32_t n_ctx) const {
  return engine::placement_report(placement, model_.get(), n_ctx);
}

bool LlamaModel::memory_cuts_anywhere() const {
  const llama_model* m = model_.get();
  return !llama_model_is_recurrent(m) && !llama_model_is_hybrid(m) && llama_model_n_swa(m) == 0;
}

bool LlamaModel::embedding_only(const llama_model* m) {
  char arch[64] = {0};
  if (llama_model_meta_val_str(m, "general.architecture", arch, sizeof(arch)) < 0)
    return false;
  const std::string_view a(arch);
  return a.find("bert") != std::string_view::npos || a == "t5encoder";
}

namespace {
void replace_all(std::string& s, std::string_view from, const std::string& to) {
  for (std::size_t at = s.find(from); at != std::string::npos; at = s.find(from, at + to.size()))
    s.replace(at, from.size(), to);
}
}  // namespace

FimTokens LlamaModel::fim_tokens() const {
  const auto id = [](llama_token t) { return t == LLAMA_TOKEN_NULL ? Token{-1} : Token{t}; };
  FimTokens f;
  f.pre = id(llama_vocab_fim_pre(vocab_));
  f.suf = id(llama_vocab_fim_suf(vocab_));
  f.mid = id(llama_vocab_fim_mid(vocab_));
  f.rep = id(llama_vocab_fim_rep(vocab_));
  f.sep = id(llama_vocab_fim_sep(vocab_));
  f.bos = llama_vocab_get_add_bos(vocab_) ? id(llama_vocab_bos(vocab_)) : Token{-1};
  return f;
}

Result<std::vector<Token>> LlamaModel::rerank_tokens(const std::string& query,
                                                     const std::string& document) const {
  if (const char* tmpl = llama_model_chat_template(model_.get(), "rerank")) {
    std::string prompt = tmpl;
    replace_all(prompt, "{query}", query);
    replace_all(prompt, "{document}", document);
    return tokenize(prompt, /*add_special=*/false, /*parse_special=*/true);
  }
  auto q = tokenize(query, false, false);
  if (!q)
    return q;
  auto d = tokenize(document, false, false);
  if (!d)
    return d;
  Token eos = llama_vocab_eos(vocab_);
  if (eos == LLAMA_TOKEN_NULL)
    eos = llama_vocab_sep(vocab_);
  std::vector<Token> out;
  out.reserve(q->size() + d->size() + 4);
  if (llama_vocab_get_add_bos(vocab_))
    out.push_back(llama_vocab_bos(vocab_));
  out.insert(out.end(), q->begin(), q->end());
  if (llama_vocab_get_add_eos(vocab_))
    out.push_back(eos);
  if (llama_vocab_get_add_sep(vocab_))
    out.push_back(llama_vocab_sep(vocab_));
  out.insert(out.end(), d->begin(), d->end());
  if (llama_vocab_get_add_eos(vocab_))
    out.push_back(eos);
  return out;
}

std::int32_t LlamaModel::n_ctx_train() const noexcept {
  return llama_model_n_ctx_train(model_.get());
}

// The token's text appended to `out` without allocating (unless `out` must grow).
static void append_text(const llama_vocab* vocab, Token token, bool special, std::string& out) {
  char buf[64];
  int n = llama_token_to_piece(vocab, token, buf, sizeof(buf), 0, special);
  if (n >= 0) {
    out.append(buf, static_cast<std::size_t>(n));
    return;
  }
  const std::size_t at = out.size();
  out.resize(at + static_cast<std::size_t>(-n));
  n = llama_token_to_piece(vocab, token, out.data() + at, -n, 0, special);
  out.resize(at + static_cast<std::size_t>(std::max(n, 0)));
}

void LlamaModel::append_special(Token token, std::string& out) const {
  append_text(vocab_, token, true, out);
}

void LlamaModel::append_piece(Token token, std::string& out) const {
  append_text(vocab_, token, false, out);
}

bool LlamaModel::is_eog(Token token) const {
  return token >= 0 && token < n_vocab_ && is_eog_[static_cast<std::size_t>(token)];
}

Result<std::vector<Token>> LlamaModel::tokenize(std::string_view text, bool add_special,
                                                bool parse_special) const {
  return vocab_tokenize(vocab_, text, add_special, parse_special);
}

Result<std::string> LlamaModel::detokenize(const std::vector<Token>& tokens) const {
  return vocab_detokenize(vocab_, tokens);
}

std::string LlamaModel::chat_template(const char* name) const {
  const char* t = llama_model_chat_template(model_.get(), name);
  return t ? std::string(t) : std::string();
}

std::string LlamaModel::special_text(Token token) const {
  if (token == LLAMA_TOKEN_NULL)
    return {};
  std::string out(64, '\0');
  int n = llama_token_to_piece(vocab_, token, out.data(), static_cast<int>(out.size()), 0, true);
  if (n < 0) {
    out.resize(static_cast<std::size_t>(-n));
    n = llama_token_to_piece(vocab_, token, out.data(), static_cast<int>(out.size()), 0, true);
  }
  out.resize(static_cast<std::size_t>(std::max(n, 0)));
  return out;
}

std::string LlamaModel::bos_text() const {
  return special_text(llama_vocab_bos(vocab_));
}
std::string LlamaModel::eos_text() const {
  return special_text(llama_vocab_eos(vocab_));
}

}  // namespace troupe::engine
