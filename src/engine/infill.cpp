#include "engine/infill.hpp"

#include <algorithm>

namespace troupe::engine {
namespace {

// Appends `text`'s tokens to `out`.
Result<void> append_text(std::vector<Token>& out, std::string_view text,
                         const TokenizeText& tokenize) {
  if (text.empty())
    return {};
  auto t = tokenize(text);
  if (!t)
    return t.error();
  out.insert(out.end(), t->begin(), t->end());
  return {};
}

// The other files, as repository context.
Result<std::vector<Token>> extra_tokens(const FimTokens& fim, const InfillParams& infill,
                                        const TokenizeText& tokenize) {
  std::vector<Token> out;
  if (infill.extra.empty())
    return out;
  if (fim.rep >= 0) {
    out.push_back(fim.rep);
    if (auto ok = append_text(out, "myproject\n", tokenize); !ok)
      return ok.error();
  }
  for (const auto& [file, text] : infill.extra) {
    if (fim.sep >= 0) {
      out.push_back(fim.sep);
      if (auto ok = append_text(out, (file.empty() ? std::string("tmp") : file) + "\n", tokenize);
          !ok)
        return ok.error();
    } else if (auto ok = append_text(out, "\n\n--- snippet ---\n\n", tokenize); !ok) {
      return ok.error();
    }
    if (auto ok = append_text(out, text, tokenize); !ok)
      return ok.error();
  }
  if (fim.sep >= 0) {  // the file being completed
    out.push_back(fim.sep);
    if (auto ok = append_text(out, "filename\n", tokenize); !ok)
      return ok.error();
  }
  return out;
}

}  // namespace

Result<InfillPrompt> infill_prompt(const FimTokens& fim, const InfillParams& infill,
                                   std::span<const Token> middle, const TokenizeText& tokenize,
                                   const InfillSettings& settings) {
  if (!fim.usable()) {
    return Error{Errc::invalid_request,
                 "this model cannot fill in the middle: its vocabulary has no FIM prefix, "
                 "suffix and middle tokens",
                 "suffix"};
  }
  auto extra = extra_tokens(fim, infill, tokenize);
  if (!extra)
    return extra.error();
  std::vector<Token> prefix, suffix;
  if (auto ok = append_text(prefix, infill.prefix, tokenize); !ok)
    return ok.error();
  if (auto ok = append_text(suffix, infill.suffix, tokenize); !ok)
    return ok.error();

  InfillPrompt out;
  std::size_t prefix_from = 0, suffix_take = suffix.size(), extra_from = 0;
  if (infill.trim) {
    const auto quarter = static_cast<std::int64_t>(std::max(settings.n_batch, 0) / 4);
    const auto prefix_take =
        std::min<std::int64_t>(static_cast<std::int64_t>(prefix.size()), 3 * quarter);
    prefix_from = prefix.size() - static_cast<std::size_t>(prefix_take);
    suffix_take = static_cast<std::size_t>(std::min<std::int64_t>(
        static_cast<std::int64_t>(suffix.size()),
        std::max<std::int64_t>(0, quarter - 2 - static_cast<std::int64_t>(middle.size()))));
    const std::int64_t room =
        std::max<std::int64_t>(0, static_cast<std::int64_t>(settings.n_ctx) - settings.n_batch -
                                      2 * static_cast<std::int64_t>(settings.n_predict));
    extra_from = extra->size() - static_cast<std::size_t>(std::min<std::int64_t>(
                                     room, static_cast<std::int64_t>(extra->size())));
    out.truncated = prefix_from > 0 || suffix_take < suffix.size() || extra_from > 0;
  }

  auto& t = out.tokens;
  t.reserve(extra->size() - extra_from + 4 + prefix.size() - prefix_from + middle.size() +
            suffix_take);
  t.insert(t.end(), extra->begin() + static_cast<std::ptrdiff_t>(extra_from), extra->end());
  if (fim.bos >= 0)
    t.push_back(fim.bos);
  const auto add_prefix = [&] {
    t.push_back(fim.pre);
    t.insert(t.end(), prefix.begin() + static_cast<std::ptrdiff_t>(prefix_from), prefix.end());
    t.insert(t.end(), middle.begin(), middle.end());
  };
  const auto add_suffix = [&] {
    t.push_back(fim.suf);
    t.insert(t.end(), suffix.begin(), suffix.begin() + static_cast<std::ptrdiff_t>(suffix_take));
  };
  if (settings.suffix_first) {
    add_suffix();
    add_prefix();
  } else {
    add_prefix();
    add_suffix();
  }
  t.push_back(fim.mid);
  return out;
}

}  // namespace troupe::engine
