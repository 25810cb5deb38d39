#pragma once
// DraftModel: speculative decoding with a second, smaller model of the same vocabulary
// (llama-server's `--spec-draft-model` / `-md`, `--spec-type draft-simple`). Each step, before
// the target's decode, the draft model guesses the next few tokens of the generating sequences
// the engine asks it for, greedily; the engine then decodes those guesses as rows of its own
// step and keeps each one its sampler draws itself (batch_engine.cpp: sample_rows,
// settle_drafts), so every answer is the one the target gives without a draft model.
//
// The draft context mirrors the engine's: the same cells, sequence ids and KV layout (a stream
// per sequence or one unified pool), the same threads. Its memory follows each sequence
// lazily: a sequence's draft cells are the longest prefix its tokens share with what the draft
// model last saw of that slot; the rest (a new prompt, the tokens the target kept or drew
// instead) is decoded in the first pass of a step's drafting, all the asking sequences in one
// batch; then one pass per drafted position for all those still drafting. A slot reused for a
// prompt that shares a prefix with its last one keeps that prefix here too.
//
// A draft pass that finds no free cells (the unified pool, where the engine's accounting does
// not count the draft context's cells) first frees the cells of sequences that are not
// drafting, then gives up drafting for the step. Any other failure turns drafting off: drafts
// only ever save steps, so the answers go on without them.
//
// Thread-safety: the engine thread's, like its context.

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "engine/engine_config.hpp"
#include "engine/llama_handles.hpp"
#include "engine/model.hpp"
#include "util/result.hpp"

namespace troupe::engine {

class CpuThreadpool;

// What one sequence asks of a step's drafting.
struct DraftWant {
  std::int32_t seq = 0;
  // Its tokens: cached ones, then the one the target decodes next (position size() - 1).
  std::span<const Token> history;
  std::span<Token> out;      // room for its drafted tokens: its size is the most drafted
  std::int32_t drafted = 0;  // written: the tokens drafted into out (0 below spec_draft_min)
};

// Why `draft` cannot draft for `target`, or empty when it can: llama-server's rule (the same
// tokenizer type, the same BOS and EOS use and ids, vocabularies of nearly the same size with
// the same text from token 5 on).
std::string draft_vocab_mismatch(const LlamaModel& target, const LlamaModel& draft);

class DraftModel {
 public:
  // A draft context for `draft` shaped as the target's (`config` as make_context resolved it:
  // n_ctx, n_parallel, n_batch, kv_unified, n_threads, placement). Errors: invalid_request for
  // a draft of another vocabulary, or whose memory cannot drop a token again (recurrent,
  // hybrid, a sliding window); engine_failed when llama.cpp refuses the context.
  static Result<std::unique_ptr<DraftModel>> create(const LlamaModel& target,
                                                    const LlamaModel& draft,
                                                    const BatchEngineConfig& config);
  DraftModel(const DraftModel&) = delete;
  DraftModel& operator=(const DraftModel&) = delete;
  ~DraftModel();

  // Decodes on `pool` (the engine's; nullptr: llama.cpp's own threads) with `threads`.
  void attach(CpuThreadpool* pool, std::int32_t threads);

  // Drafts for every want at once, up to out.size() tokens each: the draft model's most likely
  // token while its probability is at least spec_draft_p_min and it is a token of the target's
  // vocabulary.
  void draft(std::span<DraftWant> wants);

  bool working() const noexcept { return !broken_; }
  // What one drafting pass costs, a moving average of the measured ones (a pass of at most two
  // tokens a sequence: not a prompt's catch-up); 0 before the first.
  double pass_us() const noexcept { return pass_us_; }

 private:
  DraftModel(const LlamaModel& target, const LlamaModel& draft, const BatchEngineConfig& config,
             ContextPtr ctx);
  // One pass: true when decoded. On a full pool, frees the cells of the sequences not in
  // `wants` once and retries.
  bool decode(std::span<const DraftWant> wants);
  // The draft model's token for the logits of batch row `row`, or -1 where drafting stops.
  Token pick(std::int32_t row);
  void take_guesses(std::span<DraftWant> wants);
  void give_up(std::span<DraftWant> wants);

  const LlamaModel& draft_;
  std::int32_t n_vocab_target_;
  std::int32_t n_min_;
  float p_min_;
  ContextPtr ctx_;
  llama_memory_t mem_;
  Batch batch_;
  std::vector<std::vector<Token>> seen_;  // by sequence: the tokens its draft cells hold
  // Per want, during draft(): its next history index to decode, its logits row in the pass.
  std::vector<std::size_t> fed_;
  std::vector<std::int32_t> row_;
  std::vector<std::uint8_t> live_;
  std::vector<float> sums_;  // exp-sum blocks, for p_min
  bool broken_ = false;
  double pass_us_ = 0.0;
};

}  // namespace troupe::engine
