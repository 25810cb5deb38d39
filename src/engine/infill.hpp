#pragma once
// The prompt of a fill-in-the-middle request (Task::infill): llama-server's /infill layout,
// the repository-level FIM pattern of Qwen2.5-Coder and others:
//
//   [FIM_REP]myproject\n [FIM_SEP]file0\n text0 ... [FIM_SEP]filename\n
//   [BOS] [FIM_PRE]prefix middle [FIM_SUF]suffix [FIM_MID]
//
// (the BOS after the other files, where llama-server puts it), or with `suffix_first` (its
// --spm-infill, for models trained suffix-prefix-middle) [FIM_SUF]suffix [FIM_PRE]prefix
// middle [FIM_MID].
//
// `middle` (the start of the middle the client already has, llama-server's `prompt`) follows
// the prefix, as in llama-server's code. The repository part only when the request has extra
// files; a model without FIM_SEP gets each file set apart by a "--- snippet ---" line. With
// InfillParams::trim the parts are cut to llama-server's budget: the prefix's last 3/4 of a
// batch, the suffix's first quarter of a batch less the middle, the extra files' last tokens
// up to the context less a batch and twice the answer's length.
//
// Pure: the model's tokens and tokenizer come in as values and a function.

#include <cstdint>
#include <functional>
#include <span>
#include <string_view>
#include <vector>

#include "engine/task.hpp"
#include "util/result.hpp"

namespace troupe::engine {

// The model's fill-in-the-middle tokens; -1: the model has none.
struct FimTokens {
  Token pre = -1;
  Token suf = -1;
  Token mid = -1;
  Token rep = -1;  // repository name follows
  Token sep = -1;  // a file's name follows
  Token bos = -1;  // -1: the model adds no BOS
  bool usable() const { return pre >= 0 && suf >= 0 && mid >= 0; }
};

// Plain text to tokens: no BOS, special tokens not parsed.
using TokenizeText = std::function<Result<std::vector<Token>>(std::string_view)>;

// The server's settings. llama-server's budget (trim only): the prefix and suffix share a
// batch of `n_batch`; the other files get the context less that batch and twice `n_predict`
// (the server's answer length; -1 when unset, which leaves two tokens more, as in
// llama-server). The order of the prefix and the suffix.
struct InfillSettings {
  std::int32_t n_batch = 0;
  std::int32_t n_predict = 0;
  std::int32_t n_ctx = 0;     // the context of a sequence
  bool suffix_first = false;  // the suffix before the prefix (SPM order)
};

struct InfillPrompt {
  std::vector<Token> tokens;
  bool truncated = false;  // a part was cut (trim)
};

// Errors: invalid_request (param "suffix") when the model has no FIM tokens; a tokenizer's
// error as it is.
Result<InfillPrompt> infill_prompt(const FimTokens& fim, const InfillParams& infill,
                                   std::span<const Token> middle, const TokenizeText& tokenize,
                                   const InfillSettings& settings);

}  // namespace troupe::engine
