// Building a grammar sampler: the checks of a GrammarSpec, llama.cpp's parse, the prefill a
// chat template's generation prompt feeds it, and the cache of parsed grammars (sampler.hpp).
// Kept apart from the per-token sampling in sampler.cpp.
#include <fmt/format.h>

#include <cctype>
#include <regex>
#include <string>
#include <vector>

#include "engine/grammar_state.hpp"
#include "engine/sampler.hpp"

namespace troupe::engine {

std::optional<Error> check_grammar_spec(const GrammarSpec& g, std::int32_t n_vocab) {
  const auto bad = [](std::string msg) {
    return Error{Errc::invalid_request, std::move(msg), "grammar"};
  };
  if (g.gbnf.empty())
    return bad("the grammar is empty");
  if (g.lazy && g.trigger_patterns.empty() && g.trigger_tokens.empty())
    return bad("a lazy grammar needs at least one trigger pattern or trigger token");
  if (!g.lazy)
    return std::nullopt;  // its triggers mean nothing (llama.cpp's common_sampler ignores them)
  for (Token t : g.trigger_tokens) {
    if (t < 0 || t >= n_vocab)
      return bad(fmt::format("trigger token {} is out of range", t));
  }
  for (const auto& p : g.trigger_patterns) {
    try {
      std::regex re(p);  // what llama.cpp compiles (ECMAScript); it would throw from inside
    } catch (const std::regex_error& e) {
      return bad(
          fmt::format("trigger pattern '{}' is not a valid regular expression: {}", p, e.what()));
    }
  }
  return std::nullopt;
}

namespace {

// Feeds the tokens of `text` to a fresh grammar, as llama.cpp's common sampler feeds a chat
// template's generation prompt (a tokenizer's leading space before a special token skipped).
std::optional<Error> read_prefill(const llama_vocab* vocab, llama_sampler* grammar,
                                  const std::string& text) {
  const auto n_text = static_cast<std::int32_t>(text.size());
  std::vector<Token> tokens(text.size() + 2);
  std::int32_t n = llama_tokenize(vocab, text.data(), n_text, tokens.data(),
                                  static_cast<std::int32_t>(tokens.size()), false, true);
  if (n < 0) {
    tokens.resize(static_cast<std::size_t>(-n));
    n = llama_tokenize(vocab, text.data(), n_text, tokens.data(), -n, false, true);
  }
  tokens.resize(static_cast<std::size_t>(std::max(n, 0)));
  try {
    for (std::size_t i = 0; i < tokens.size(); ++i) {
      if (i == 0 && !std::isspace(static_cast<unsigned char>(text.front()))) {
        char piece[8] = {};
        if (llama_token_to_piece(vocab, tokens[0], piece, sizeof(piece), 0, true) > 0 &&
            std::isspace(static_cast<unsigned char>(piece[0])))
          continue;
      }
      llama_sampler_accept(grammar, tokens[i]);
    }
  } catch (const std::exception& e) {
    return Error{Errc::invalid_request,
                 fmt::format("the chat template's grammar does not accept its own generation "
                             "prompt: {}",
                             e.what()),
                 "grammar"};
  }
  return std::nullopt;
}

}  // namespace

Result<SamplerPtr> make_grammar_sampler(const llama_vocab* vocab, const GrammarSpec& g) {
  if (auto e = check_grammar_spec(g, llama_vocab_n_tokens(vocab)))
    return *e;
  std::vector<const char*> patterns;
  for (const auto& p : g.trigger_patterns)
    patterns.push_back(p.c_str());
  SamplerPtr s;
  try {
    s = make_stateful_grammar(vocab, g.gbnf, g.lazy, patterns, g.trigger_tokens);
  } catch (const std::exception& e) {
    return Error{Errc::invalid_request, fmt::format("the grammar was refused: {}", e.what()),
                 "grammar"};
  }
  if (!s) {
    return Error{Errc::invalid_request,
                 "the grammar is not valid GBNF with a rule named \"root\" (llama.cpp's log says "
                 "where it failed)",
                 "grammar"};
  }
  if (!g.lazy && !g.prefill.empty()) {
    if (auto e = read_prefill(vocab, s.get(), g.prefill))
      return *e;
  }
  return s;
}

GbnfTraits gbnf_traits(std::string_view gbnf) {
  // Where llama.cpp's GBNF parser reads a token reference: '<' or '!' outside string literals,
  // character classes and comments (both literals end at their first unescaped delimiter).
  // Inside a negated class, a byte of 0x80 or more, or an escape that can stand for one
  // (\xHH from \x80, \u, \U), is a non-ASCII character it excludes.
  GbnfTraits out;
  enum class At : std::uint8_t { rule, literal, char_class, comment } at = At::rule;
  bool negated = false;
  for (std::size_t i = 0; i < gbnf.size(); ++i) {
    const auto c = static_cast<unsigned char>(gbnf[i]);
    switch (at) {
      case At::rule:
        if (c == '<' || c == '!')
          out.names_tokens = true;
        negated = c == '[' && i + 1 < gbnf.size() && gbnf[i + 1] == '^';
        at = c == '"' ? At::literal : c == '[' ? At::char_class : c == '#' ? At::comment : at;
        break;
      case At::literal:
      case At::char_class: {
        const bool in_negation = at == At::char_class && negated;
        if (c == '\\') {
          const char e = i + 1 < gbnf.size() ? gbnf[i + 1] : '\0';
          const char h = i + 2 < gbnf.size() ? gbnf[i + 2] : '0';
          if (in_negation && (e == 'u' || e == 'U' || (e == 'x' && !(h >= '0' && h <= '7'))))
            out.negates_non_ascii = true;
          ++i;
        } else if (c == static_cast<unsigned char>(at == At::literal ? '"' : ']')) {
          at = At::rule;
        } else if (in_negation && c >= 0x80) {
          out.negates_non_ascii = true;
        }
        break;
      }
      case At::comment:
        if (c == '\n' || c == '\r')
          at = At::rule;
        break;
    }
  }
  return out;
}

FirstByteCheck first_byte_check(const GrammarSpec& g) {
  const GbnfTraits t = gbnf_traits(g.gbnf);
  if (g.lazy || t.names_tokens)
    return FirstByteCheck::off;
  return t.negates_non_ascii ? FirstByteCheck::ascii : FirstByteCheck::all_bytes;
}

SamplerPtr GrammarCache::get(const llama_vocab* vocab, const GrammarSpec& g, Result<void>& error) {
  std::string key = g.gbnf;
  key += '\0';
  key += g.lazy ? '1' : '0';
  for (const auto& p : g.trigger_patterns) {
    key += '\0';
    key += p;
  }
  key += '\0';
  for (Token t : g.trigger_tokens)
    key += fmt::format("{},", t);
  key += '\0';
  key += g.prefill;
  if (const SamplerPtr* parsed = parsed_.find(key)) {
    ++hits_;
    return SamplerPtr(llama_sampler_clone(parsed->get()));
  }
  auto fresh = make_grammar_sampler(vocab, g);
  if (!fresh) {
    error = fresh.error();
    return {};
  }
  SamplerPtr copy(llama_sampler_clone(fresh->get()));
  parsed_.put(std::move(key), std::move(fresh).value());
  return copy;
}

}  // namespace troupe::engine
