#pragma once
// Self-speculative decoding by n-gram lookup (llama-server's `--spec-type ngram-simple`): when
// the last n tokens of a sequence (its prompt and what it generated, the token just sampled
// included) occurred before in it, the tokens that followed that earlier occurrence are a
// draft of what comes next. The engine decodes the draft beside the sequence's next token in
// the same step and keeps each drafted token the sampler then draws itself, so a sequence that
// repeats its context (code edited in place, a quoted document, a JSON array of like objects)
// gains several tokens per step, and its output is the one it gives without drafts: every
// token is still the sampler's.
//
// Drafted tokens are rows of the step, and a row is not free: on a CPU a step's cost grows
// with its rows (F16 weights smoothly, ggml's repacked quantized kernels by fours), so how
// many of the drafted tokens a step decodes is chosen from the steps' measured costs and each
// sequence's recent acceptance (choose_drafts).
//
// Pure functions; no allocation; no clock.

#include <cstdint>
#include <span>

#include "engine/task.hpp"

namespace troupe::engine {

class RowCosts;  // step_rows.hpp

struct NgramDraftParams {
  std::int32_t size_n = 12;  // tokens matched: the end of the history searched for earlier
  std::int32_t size_m = 48;  // tokens drafted at most
};

// Writes into `out` the tokens that followed the latest earlier occurrence of the history's
// last `size_n` tokens, min(size_m, out.size()) of them, and returns how many; 0 when those
// tokens never occurred before or a size is below 1. Where that continuation reaches the end
// of the history it goes on as the repetition it is (a cycle drafts as far as size_m;
// llama-server's ngram-simple drafts nothing there). `out` must not overlap `history`.
std::int32_t ngram_draft(std::span<const Token> history, const NgramDraftParams& params,
                         std::span<Token> out) noexcept;

// OpenAI's Predicted Outputs: the tokens after where the answer so far is found in
// `prediction` (text the answer is expected to repeat). The answer's last k tokens are looked
// up (k from 8, or the answer's length, down to 2; a one-token answer drafts nothing, since a
// text tokenized alone may begin otherwise than the answer does): the first
// occurrence from `cursor` - k on (where the last match ended), else the first before it; then
// `cursor` is where the match ends and up to min(size_m, out.size()) tokens from there go to
// `out`. Returns how many; 0 when the answer's end is nowhere in the prediction (an edit the
// prediction does not have: a later step finds it again once the answer rejoins it) or the
// prediction ends there.
std::int32_t prediction_draft(std::span<const Token> prediction, std::span<const Token> answer,
                              std::int32_t size_m, std::size_t& cursor,
                              std::span<Token> out) noexcept;

// A generating sequence's draft as the step sees it: `available` drafted tokens, and the
// chance that the sampler draws a drafted token given it drew the ones before (its recent
// acceptance).
struct DraftOffer {
  std::int32_t available = 0;
  double p = 0.5;
  // Drafted by a draft model (engine/draft_model.hpp) once chosen: its k-th token costs the
  // step that model's k-th pass, which the offers it drafts for share.
  bool by_model = false;
};

// How many of each offer's tokens (`take`, same length) a step of `generating` sequences
// decodes, so as to maximise the tokens it is expected to give per microsecond: a sequence's
// k-th drafted token is expected to give p^k tokens and costs a row. Step costs by rows come
// from `costs` (generation-only steps measured on the engine); a row count not measured yet is
// interpolated between measured ones, or above the largest taken to cost a tenth of a step
// more per row, an optimistic guess that trying it corrects. Offers drafted by a draft model
// add `model_pass_us` per pass: as many passes as the most tokens taken of any of them. Nothing
// is drafted before a step of `generating` rows was measured. Returns the rows drafted.
std::int32_t choose_drafts(std::span<const DraftOffer> offers, std::int32_t generating,
                           const RowCosts& costs, std::span<std::int32_t> take,
                           double model_pass_us = 0.0) noexcept;

}  // namespace troupe::engine
