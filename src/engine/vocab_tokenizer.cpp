#include "engine/vocab_tokenizer.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <climits>
#include <filesystem>

#include "engine/llama_handles.hpp"
#include "engine/llama_runtime.hpp"

namespace troupe::engine {

Result<std::vector<Token>> vocab_tokenize(const llama_vocab* vocab, std::string_view text,
                                          bool add_special, bool parse_special) {
  if (text.size() > static_cast<std::size_t>(INT32_MAX / 2)) {
    return Error{Errc::invalid_request, "text too long to tokenize"};
  }
  const auto len = static_cast<std::int32_t>(text.size());
  std::vector<Token> out(static_cast<std::size_t>(len) + 2);
  int n = llama_tokenize(vocab, text.data(), len, out.data(), static_cast<int>(out.size()),
                         add_special, parse_special);
  if (n < 0 && n != INT32_MIN) {
    out.resize(static_cast<std::size_t>(-n));
    n = llama_tokenize(vocab, text.data(), len, out.data(), static_cast<int>(out.size()),
                       add_special, parse_special);
  }
  if (n < 0)
    return Error{Errc::invalid_request, "the text could not be tokenized"};
  out.resize(static_cast<std::size_t>(n));
  return out;
}

Result<std::string> vocab_detokenize(const llama_vocab* vocab, const std::vector<Token>& tokens) {
  const std::int32_t n_vocab = llama_vocab_n_tokens(vocab);
  for (Token t : tokens) {
    if (t < 0 || t >= n_vocab) {
      return Error{Errc::invalid_request, fmt::format("token id {} is out of range", t)};
    }
  }
  std::string out(tokens.size() * 4 + 16, '\0');
  const auto n_tok = static_cast<std::int32_t>(tokens.size());
  int n = llama_detokenize(vocab, tokens.data(), n_tok, out.data(), static_cast<int>(out.size()),
                           false, true);
  if (n < 0) {
    out.resize(static_cast<std::size_t>(-n));
    n = llama_detokenize(vocab, tokens.data(), n_tok, out.data(), static_cast<int>(out.size()),
                         false, true);
  }
  if (n < 0)
    return Error{Errc::internal, "detokenize failed"};
  out.resize(static_cast<std::size_t>(n));
  return out;
}

Result<std::vector<std::string>> vocab_token_pieces(const llama_vocab* vocab,
                                                    const std::vector<Token>& tokens) {
  const std::int32_t n_vocab = llama_vocab_n_tokens(vocab);
  std::vector<std::string> pieces;
  pieces.reserve(tokens.size());
  for (Token t : tokens) {
    if (t < 0 || t >= n_vocab)
      return Error{Errc::invalid_request, fmt::format("token id {} is out of range", t)};
    std::string piece(32, '\0');
    int n = llama_token_to_piece(vocab, t, piece.data(), static_cast<int>(piece.size()), 0, true);
    if (n < 0) {
      piece.resize(static_cast<std::size_t>(-n));
      n = llama_token_to_piece(vocab, t, piece.data(), static_cast<int>(piece.size()), 0, true);
    }
    piece.resize(static_cast<std::size_t>(std::max(n, 0)));
    pieces.push_back(std::move(piece));
  }
  return pieces;
}

Result<std::unique_ptr<VocabTokenizer>> VocabTokenizer::load(const std::string& path) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec)) {
    return Error{Errc::not_found, fmt::format("vocabulary file not found: {}", path)};
  }
  init_llama_runtime();
  auto params = llama_model_default_params();
  params.vocab_only = true;
  llama_model* model = llama_model_load_from_file(path.c_str(), params);
  if (!model) {
    return Error{
        Errc::invalid_request,
        fmt::format("llama.cpp could not read a vocabulary from {} (not a GGUF model?)", path)};
  }
  return std::unique_ptr<VocabTokenizer>(new VocabTokenizer(model, path));
}

VocabTokenizer::VocabTokenizer(llama_model* model, std::string path)
    : model_(model), path_(std::move(path)) {
  vocab_ = llama_model_get_vocab(model_);
  n_vocab_ = llama_vocab_n_tokens(vocab_);
}

VocabTokenizer::~VocabTokenizer() {
  ModelDeleter{}(model_);
}

}  // namespace troupe::engine
