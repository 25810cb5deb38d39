#include "engine/step_pacer.hpp"

#include <algorithm>
#include <cmath>

namespace troupe::engine {

namespace {
constexpr double kAlpha = 0.25;         // weight of the newest step in the prompt token's average
constexpr std::int32_t kMinSample = 1;  // a step with prompt tokens tells their cost, however few

double ewma(bool seen, double old, double sample) {
  return seen ? old + kAlpha * (sample - old) : sample;
}

}  // namespace

double step_floor(double old, double sample) {
  constexpr double kRise = 0.05;
  return old == 0.0 || sample < old ? sample : old + kRise * (sample - old);
}

StepPacer::StepPacer(double stretch, std::int32_t min_tokens, bool own_pass)
    : stretch_(stretch > 0.0 ? std::max(stretch, 1.0) : 0.0),
      min_tokens_(std::max(min_tokens, 1)),
      own_pass_(own_pass) {}

double StepPacer::generation_step_us(std::int32_t generating) const {
  const std::int32_t g = std::clamp(generating, 1, kMaxGenerating);
  // The nearest count seen, preferring fewer sequences (a cheaper step: a smaller budget).
  for (std::int32_t d = 0; d <= kMaxGenerating; ++d) {
    const std::int32_t fewer = g - d, more = g + d;
    if (fewer >= 1 && gen_us_[static_cast<std::size_t>(fewer)] > 0.0)
      return gen_us_[static_cast<std::size_t>(fewer)];
    if (more <= kMaxGenerating && gen_us_[static_cast<std::size_t>(more)] > 0.0)
      return gen_us_[static_cast<std::size_t>(more)];
  }
  return 0.0;
}

void StepPacer::record(std::int32_t generating, std::int32_t prompt, double us) {
  if (us <= 0.0 || generating < 0 || prompt < 0)
    return;
  const std::int32_t g = std::min(generating, kMaxGenerating);
  if (prompt == 0) {
    if (g > 0)
      gen_us_[static_cast<std::size_t>(g)] = step_floor(gen_us_[static_cast<std::size_t>(g)], us);
    return;
  }
  if (prompt < kMinSample)
    return;
  // The step's fixed part: a generation-only step of as many sequences (one, when it had
  // none: the weights are read once per step either way); unknown yet: none. Measured against
  // the floor, whatever else slows a step while prompts are in flight (their cells in every
  // sequence's attention, a busy machine) is charged to the prompt tokens, so the budget
  // shrinks until the whole step is back within the stretch of a quiet one.
  double base = generation_step_us(std::max(g, 1));
  if (g > 0)
    last_piece_ = prompt;
  if (own_pass_ && g > 0) {
    if (prompt == 1)
      return;  // it rode in the generating sequences' ubatch: nothing of a piece's cost
    base += generation_step_us(1);  // the piece's own pass over the weights
  }
  last_token_us_ = std::max(us - base, 0.0) / prompt;
  token_us_ = ewma(token_seen_, token_us_, last_token_us_);
  token_seen_ = true;
}

std::int32_t StepPacer::prompt_budget(std::int32_t generating, std::int32_t cap) const {
  if (!enabled() || generating <= 0 || cap <= 0)
    return std::max(cap, 0);
  const double step = generation_step_us(generating);
  if (step == 0.0)
    return 0;  // one generation-only step first, to measure what the budget is relative to
  if (!token_seen_)
    return cap;
  // The dearer of the average and the last step: a prompt's tokens grow dearer as it goes on
  // (each attends to all before it), and the average alone lags behind that rise. (At least a
  // microsecond: a step measured no slower than its base says little more than "cheap".)
  const double token_us = std::max({token_us_, last_token_us_, 1.0});
  double room = (stretch_ - 1.0) * step;
  if (own_pass_) {
    const double pass = generation_step_us(1);
    if (room < pass + min_tokens_ * token_us)
      return std::min(cap, 1);  // no room for a pass of its own: one token rides along
    room -= pass;
  }
  double tokens = std::floor(room / token_us);
  if (last_piece_ > 0)
    tokens = std::min(tokens, 2.0 * last_piece_);
  if (tokens >= static_cast<double>(cap))
    return cap;
  return std::min(cap, std::max(min_tokens_, static_cast<std::int32_t>(tokens)));
}

void plan_prompt_tokens(std::span<const PendingPrompt> prompts, const PromptRoom& room,
                        std::span<std::int32_t> take) {
  const bool beside = room.generating > 0;
  std::int32_t budget = room.budget;
  std::int32_t paced = room.paced;
  const std::int32_t per_prompt = beside ? room.chunk : budget;
  bool whole_taken = room.paced_first;  // then no short prompt goes in beyond the budget
  std::fill(take.begin(), take.begin() + static_cast<std::ptrdiff_t>(prompts.size()), 0);
  // Beside generation, one kind of prompt is planned before the other: short prompts first
  // (they spend the pacer's budget before a paced prompt, however old, gets the rest: a step
  // never carries both a whole short prompt and a paced prompt's full share), or, when
  // room.paced_first, paced ones.
  for (int pass = beside ? 0 : 1; pass < 2; ++pass) {
    const bool paced_pass = (pass == 1) != room.paced_first;
    for (std::size_t i = 0; i < prompts.size(); ++i) {
      const PendingPrompt& p = prompts[i];
      if (beside && p.paced != paced_pass)
        continue;
      std::int32_t t = std::min({p.remaining, budget, per_prompt});
      if (t <= 0)
        continue;
      if (!beside && !p.paced) {
        t = p.remaining;  // whole, past the budget if need be: nobody waits on this step
      } else if (beside && p.paced) {
        t = std::min(t, paced);
      } else if (beside) {
        if (whole_taken && t > paced)
          continue;
        whole_taken = true;
      }
      paced = std::max(paced - t, 0);
      budget -= t;
      take[i] = t;
    }
  }
}

bool paced_prompt_waited(std::span<const PendingPrompt> prompts,
                         std::span<const std::int32_t> take) {
  bool short_taken = false, paced_waited = false;
  for (std::size_t i = 0; i < prompts.size(); ++i) {
    short_taken = short_taken || (!prompts[i].paced && take[i] > 0);
    paced_waited = paced_waited || (prompts[i].paced && take[i] == 0);
  }
  return short_taken && paced_waited;
}

}  // namespace troupe::engine
