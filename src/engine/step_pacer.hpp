#pragma once
// StepPacer: how many prompt tokens one decode step may carry while other sequences are
// generating, so that a long prompt arriving does not stall the running streams.
//
// A step's time is modelled as the time of a generation-only step with the same number of
// generating sequences plus a cost per prompt token, both learned from the steps the engine
// has decoded: the generation step as a floor (the quiet step the streams see when no prompt
// is in flight: a faster sample lowers it at once, a slower one lifts it slowly), the prompt
// token's cost as what a mixed step took beyond that floor (the dearer of a moving average and
// the last step; a step of a few prompt tokens counts too: late in a long prompt, where each
// token attends to all before it, a token in a small piece costs several times what it costs
// in a large one, and those are the steps the budget is for). While g sequences generate, a step
// may take about `stretch` times a quiet generation step: the prompt tokens it may add are (stretch
// - 1) * gen_step(g) / token_cost, at least `min_tokens` (4) so that a prompt always progresses. A
// token budget (n_batch, chunk size) still caps it. Before any generation step has been seen, a
// step beside generating sequences carries no prompt tokens (one such step measures it; a server
// that starts under a stream of long prompts would otherwise never see one); before any prompt
// token's cost has been seen, the pacer does not limit prompts.
//
// The prompt's own time to first token is what this trades: the same prompt tokens spread over
// more steps, each also carrying the generating sequences' tokens.
//
// With a KV stream per sequence (llama.cpp's kv_unified off) a step is not one pass over the
// weights when it mixes token counts: llama.cpp cuts it into ubatches that give each of their
// sequences as many tokens (`split_equal`), so beside generating sequences (one token each) a
// prompt piece of k > 1 tokens is a second ubatch: one token rides in the generating one, the
// other k - 1 are a pass of their own, which costs about what a one-sequence generation step
// does whatever k is. Measured on the 2-core development machine (`small` F16, 4 streams), a
// 4-token piece took a 19 ms step to 40 ms. The pacer then models a piece as that pass plus a
// cost per token: a stretch that cannot pay for the pass gives one token a step (it rides: no
// second pass, only its own row; 26 ms steps there against 40), and one that can gives the
// pass as many tokens as the rest of the stretch pays for, instead of charging the pass to the
// few tokens of a small piece (which kept every piece at the minimum and every step at about
// twice a quiet one, whatever the stretch). A small piece's tokens can then look nearly free (its
// step no slower than the two passes), so a budget beside generation grows at most twofold
// over the last piece measured there: a larger piece is a guess, and a wrong one a stall.
//
// Pure arithmetic, no clock: the engine passes each step's measured time to record().
// Not thread-safe: the engine thread's own.

#include <array>
#include <cstdint>
#include <span>

namespace troupe::engine {

class StepPacer {
 public:
  static constexpr std::int32_t kMaxGenerating = 64;
  static constexpr std::int32_t kMinTokens = 4;

  // stretch: 0 turns pacing off (prompt_budget returns its cap); otherwise >= 1.
  // own_pass: a prompt piece of more than one token beside generating sequences is a ubatch of
  // its own (a KV stream per sequence, above).
  explicit StepPacer(double stretch = 0.0, std::int32_t min_tokens = kMinTokens,
                     bool own_pass = false);

  // A decoded step: `generating` sequences' tokens plus `prompt` prompt tokens took `us`.
  void record(std::int32_t generating, std::int32_t prompt, double us);

  // The prompt tokens the next step may carry beside `generating` sequences' tokens, at most
  // `cap`: at least min_tokens, or with own_pass 1 when the stretch leaves no room for a pass.
  // With no sequence generating there is no one to protect: `cap`. 0 while no generation step
  // has been measured.
  std::int32_t prompt_budget(std::int32_t generating, std::int32_t cap) const;

  bool enabled() const { return stretch_ > 0.0; }
  // The learned figures (0: not seen yet), for tests and logs.
  double generation_step_us(std::int32_t generating) const;
  double prompt_token_us() const { return token_us_; }

 private:
  double stretch_;
  std::int32_t min_tokens_;
  bool own_pass_;
  std::array<double, kMaxGenerating + 1> gen_us_{};  // by generating sequences; 0: none seen
  bool token_seen_ = false;                          // a step with prompt tokens was recorded
  std::int32_t last_piece_ = 0;  // prompt tokens of the last step beside generation; 0: none
  double token_us_ = 0.0;        // moving average
  double last_token_us_ = 0.0;   // the last mixed step's
};

// A step time's floor, from the one learned so far (0: none) and a new sample: a faster step
// is taken at once, a slower one moves it a little (a machine or a context that really got
// slower still lifts it within a few dozen steps).
double step_floor(double old, double sample);

// A prompt waiting for prefill, as the step planner sees it.
struct PendingPrompt {
  std::int32_t remaining = 0;  // its tokens not decoded yet
  bool paced = false;          // longer than one chunk: spread by the pacer beside generation
};

// What the next step leaves to prompts.
struct PromptRoom {
  std::int32_t generating = 0;  // sequences generating a token in this step
  std::int32_t budget = 0;      // the step's tokens left after theirs (n_batch - generating)
  std::int32_t paced = 0;       // StepPacer::prompt_budget(generating, budget)
  std::int32_t chunk = 0;       // at most this many of one prompt while others generate
  // Paced prompts before short ones, and no short one beyond the pacer's budget: the step
  // after one where a short prompt left a paced one nothing (paced_prompt_waited()), so
  // that a run of short prompts cannot starve a long one.
  bool paced_first = false;
};

// The tokens each pending prompt (oldest admission first) puts into the next step, into
// `take` (as long as `prompts`). With none generating, nobody waits: prompts fill the budget,
// and a short prompt that starts in the step goes in whole even past it (by less than a chunk:
// step_capacity), so that prompts arriving together get their first tokens together; cut at the
// budget, its rest would be a step of its own beside the others' first generated tokens, a
// second pass over the weights for them all.
// Beside generating sequences a prompt gets at most one chunk; a short one goes in whole, but
// only the first of the step goes in regardless of the pacer's budget (more of them at once
// would add up to a long prompt's stall: the others wait for a later step); a paced prompt
// gets what the short ones left of that budget, whichever is older, unless room.paced_first.
void plan_prompt_tokens(std::span<const PendingPrompt> prompts, const PromptRoom& room,
                        std::span<std::int32_t> take);
// Whether that plan took a short prompt while a paced one got nothing: the next step's
// PromptRoom::paced_first.
bool paced_prompt_waited(std::span<const PendingPrompt> prompts,
                         std::span<const std::int32_t> take);

}  // namespace troupe::engine
