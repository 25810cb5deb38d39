#include "engine/step_pacer.hpp"

#include <gtest/gtest.h>

#include <vector>

namespace troupe::engine {
namespace {

// A machine where a step costs 10 ms plus 1 ms per prompt token, whatever else it carries.
StepPacer calibrated(double stretch) {
  StepPacer p(stretch);
  p.record(4, 0, 10'000.0);     // generation only, 4 sequences
  p.record(0, 256, 266'000.0);  // a lone prompt: 256 tokens after a 10 ms base
  return p;
}

TEST(StepPacer, OffOrUncalibrated) {
  EXPECT_EQ(StepPacer(0.0).prompt_budget(4, 300), 300);
  EXPECT_EQ(calibrated(0.0).prompt_budget(4, 300), 300);
  StepPacer fresh(4.0);
  EXPECT_EQ(fresh.prompt_budget(0, 300), 300);  // nobody to protect
  EXPECT_EQ(fresh.prompt_budget(4, 300), 0);    // a generation-only step first, to measure it
  fresh.record(4, 0, 10'000.0);
  EXPECT_EQ(fresh.prompt_budget(4, 300), 300);  // no prompt token's cost yet
}

TEST(StepPacer, NobodyGeneratingMeansNoLimit) {
  EXPECT_EQ(calibrated(4.0).prompt_budget(0, 512), 512);
}

TEST(StepPacer, BudgetKeepsTheStepWithinTheStretch) {
  const StepPacer p = calibrated(4.0);
  EXPECT_DOUBLE_EQ(p.generation_step_us(4), 10'000.0);
  EXPECT_DOUBLE_EQ(p.prompt_token_us(), 1'000.0);
  // (4 - 1) * 10 ms of prompt at 1 ms a token: a 40 ms step, four times a 10 ms one.
  EXPECT_EQ(p.prompt_budget(4, 500), 30);
  EXPECT_EQ(calibrated(2.0).prompt_budget(4, 500), 10);
  EXPECT_EQ(calibrated(1.2).prompt_budget(4, 500), 4);  // 2 tokens: raised to the minimum
  EXPECT_EQ(p.prompt_budget(4, 20), 20);                // the token budget still caps it
  EXPECT_EQ(p.prompt_budget(4, 3), 3);                  // even below the minimum
}

TEST(StepPacer, UnseenSequenceCountsUseTheNearestSeen) {
  StepPacer p = calibrated(4.0);
  p.record(16, 0, 30'000.0);
  EXPECT_DOUBLE_EQ(p.generation_step_us(8), 10'000.0);  // 4 and 16 seen: the nearer, 4
  EXPECT_DOUBLE_EQ(p.generation_step_us(13), 30'000.0);
  EXPECT_DOUBLE_EQ(p.generation_step_us(64), 30'000.0);
  EXPECT_EQ(p.prompt_budget(16, 500), 90);  // a slower generation step leaves more room
}

TEST(StepPacer, LearnsFromMixedStepsAndFollowsChanges) {
  StepPacer p = calibrated(4.0);
  // Mixed steps at 2 ms a prompt token beside 4 sequences: the estimate moves towards 2 ms.
  for (int i = 0; i < 40; ++i)
    p.record(4, 30, 10'000.0 + 30 * 2'000.0);
  EXPECT_NEAR(p.prompt_token_us(), 2'000.0, 1.0);
  EXPECT_EQ(p.prompt_budget(4, 500), 15);
  // A step of a few prompt tokens counts too (late in a long prompt they are the dearest).
  StepPacer few = calibrated(4.0);
  for (int i = 0; i < 40; ++i)
    few.record(4, 3, 10'000.0 + 3 * 5'000.0);
  EXPECT_NEAR(few.prompt_token_us(), 5'000.0, 1.0);
  EXPECT_EQ(few.prompt_budget(4, 500), 6);
  // Nonsense changes nothing.
  p.record(4, 30, -1.0);
  p.record(-1, 0, 5.0);
  EXPECT_NEAR(p.prompt_token_us(), 2'000.0, 1.0);
  EXPECT_DOUBLE_EQ(p.generation_step_us(4), 10'000.0);
}

// The generation step is the quiet one: slower steps while a prompt is in flight (its cells
// in every sequence's attention, a busy machine) barely lift it, a faster one lowers it at
// once, and a lasting slowdown lifts it within a few dozen steps.
TEST(StepPacer, TheGenerationStepIsTheQuietFloor) {
  StepPacer p = calibrated(4.0);
  p.record(4, 0, 25'000.0);
  EXPECT_NEAR(p.generation_step_us(4), 10'750.0, 1.0);  // 5 % of the way up
  EXPECT_EQ(p.prompt_budget(4, 500), 32);
  p.record(4, 0, 9'000.0);
  EXPECT_DOUBLE_EQ(p.generation_step_us(4), 9'000.0);
  for (int i = 0; i < 100; ++i)
    p.record(4, 0, 20'000.0);
  EXPECT_NEAR(p.generation_step_us(4), 20'000.0, 100.0);
  // A mixed step slowed beyond its tokens' cost is charged to them: the budget shrinks.
  StepPacer q = calibrated(4.0);
  for (int i = 0; i < 40; ++i)
    q.record(4, 30, 25'000.0 + 30 * 1'000.0);
  EXPECT_NEAR(q.prompt_token_us(), 1'500.0, 1.0);
  EXPECT_EQ(q.prompt_budget(4, 500), 20);
}

TEST(StepPacer, AStretchBelowOneIsOne) {
  StepPacer p(0.5);
  EXPECT_TRUE(p.enabled());
  p.record(2, 0, 10'000.0);
  p.record(0, 100, 110'000.0);
  EXPECT_EQ(p.prompt_budget(2, 500), 4);  // no room beyond the minimum
}

// A KV stream per sequence: beside generating sequences a piece of more than one prompt token
// is a pass of its own. Here a generation step is 20 ms for 4 sequences, 18 ms for one, and a
// 4-token piece beside 4 sequences takes 40 ms: 2 ms of it is the tokens, 18 ms their pass.
StepPacer with_own_pass(double stretch) {
  StepPacer p(stretch, StepPacer::kMinTokens, /*own_pass=*/true);
  p.record(4, 0, 20'000.0);
  p.record(1, 0, 18'000.0);
  p.record(4, 4, 40'000.0);
  return p;
}

TEST(StepPacer, WithItsOwnPassAPieceIsChargedThePassOnce) {
  StepPacer p = with_own_pass(3.0);
  EXPECT_DOUBLE_EQ(p.prompt_token_us(), 500.0);
  EXPECT_EQ(p.prompt_budget(4, 500), 8);  // twice the last piece, at most
  // Larger pieces at the same cost: (3 - 1) * 20 ms, less the 18 ms pass, at 0.5 ms a token.
  for (const std::int32_t piece : {8, 16, 32})
    p.record(4, piece, 38'000.0 + piece * 500.0);
  EXPECT_DOUBLE_EQ(p.prompt_token_us(), 500.0);
  EXPECT_EQ(p.prompt_budget(4, 500), 44);
  // Without the pass in the model the same steps say 5 ms a token: 8 tokens, a 40 ms step.
  StepPacer flat(3.0);
  flat.record(4, 0, 20'000.0);
  flat.record(1, 0, 18'000.0);
  flat.record(4, 4, 40'000.0);
  EXPECT_DOUBLE_EQ(flat.prompt_token_us(), 5'000.0);
  EXPECT_EQ(flat.prompt_budget(4, 500), 8);
}

TEST(StepPacer, WithoutRoomForAPassOneTokenRidesAlong) {
  StepPacer p = with_own_pass(1.5);  // 10 ms of room: less than the 18 ms pass
  EXPECT_EQ(p.prompt_budget(4, 500), 1);
  EXPECT_EQ(p.prompt_budget(4, 0), 0);
  // Stretch 2 leaves 20 ms: the pass and the minimum of 4 tokens, just; 1.9 does not.
  EXPECT_EQ(with_own_pass(2.0).prompt_budget(4, 500), StepPacer::kMinTokens);
  EXPECT_EQ(with_own_pass(1.9).prompt_budget(4, 500), 1);
  EXPECT_EQ(with_own_pass(2.2).prompt_budget(4, 500), 8);  // 12 by the cost, 8 by the growth
  // A step where one token rode says nothing of a piece's cost.
  p.record(4, 1, 90'000.0);
  EXPECT_DOUBLE_EQ(p.prompt_token_us(), 500.0);
  EXPECT_EQ(p.prompt_budget(0, 500), 500);  // nobody generating: no pass to pay for
}

// A piece that looked free (its step no slower than the quiet one) does not open the whole
// chunk: beside generation the budget at most doubles the last piece measured there.
TEST(StepPacer, TheBudgetGrowsAtMostTwofoldOverTheLastPiece) {
  StepPacer p(3.0);
  p.record(4, 0, 20'000.0);
  p.record(4, 8, 19'000.0);
  EXPECT_EQ(p.prompt_budget(4, 500), 16);
  p.record(4, 16, 20'000.0);
  EXPECT_EQ(p.prompt_budget(4, 500), 32);
  p.record(4, 32, 20'000.0 + 32 * 2'000.0);  // now they cost: the budget falls back
  EXPECT_EQ(p.prompt_budget(4, 500), 20);    // 2 ms a token, the last step's
  // With own_pass the same holds for a piece that looked free beside its pass.
  StepPacer q(3.0, StepPacer::kMinTokens, /*own_pass=*/true);
  q.record(4, 0, 20'000.0);
  q.record(1, 0, 18'000.0);
  q.record(4, 4, 37'000.0);
  EXPECT_EQ(q.prompt_budget(4, 500), 8);
}

// The tokens plan_prompt_tokens gives each prompt of `prompts`.
std::vector<std::int32_t> plan(std::vector<PendingPrompt> prompts, PromptRoom room) {
  std::vector<std::int32_t> take(prompts.size(), -1);
  plan_prompt_tokens(prompts, room, take);
  return take;
}

using Takes = std::vector<std::int32_t>;

TEST(PlanPromptTokens, NobodyGeneratingFillsTheBudget) {
  // 512 tokens of room: the first prompt whole, the second what is left.
  EXPECT_EQ(plan({{400, true}, {300, true}}, {0, 512, 512, 128}), (Takes{400, 112}));
  EXPECT_EQ(plan({{100, false}, {50, false}, {20, false}}, {0, 512, 512, 128}),
            (Takes{100, 50, 20}));
}

TEST(PlanPromptTokens, NobodyGeneratingTakesAShortPromptWholePastTheBudget) {
  // Four turns of 136 tokens arriving together (544 > 512): the fourth goes whole too rather
  // than leaving 32 tokens for a step beside the other three's first tokens; a fifth waits.
  EXPECT_EQ(plan({{136, false}, {136, false}, {136, false}, {136, false}}, {0, 512, 512, 256}),
            (Takes{136, 136, 136, 136}));
  EXPECT_EQ(plan({{136, false}, {136, false}, {136, false}, {136, false}, {136, false}},
                 {0, 512, 512, 256}),
            (Takes{136, 136, 136, 136, 0}));
  // A prompt longer than a chunk is still cut at the budget, and nothing follows a full step.
  EXPECT_EQ(plan({{200, false}, {400, true}, {10, false}}, {0, 512, 512, 256}),
            (Takes{200, 312, 0}));
  // Beside generation the budget holds (above).
  EXPECT_EQ(plan({{136, false}}, {4, 100, 100, 256}), (Takes{100}));
}

TEST(PlanPromptTokens, BesideGenerationAPromptGetsAChunkAndAPacedOneThePacersBudget) {
  // Pacing off (the pacer's budget is the whole room): one chunk each.
  EXPECT_EQ(plan({{400, true}, {300, true}}, {4, 508, 508, 128}), (Takes{128, 128}));
  // Paced to 30 tokens: the first prompt takes them, the next waits.
  EXPECT_EQ(plan({{400, true}, {300, true}}, {4, 508, 30, 128}), (Takes{30, 0}));
  EXPECT_EQ(plan({{20, true}, {300, true}}, {4, 508, 30, 128}), (Takes{20, 10}));
}

TEST(PlanPromptTokens, OneShortPromptGoesInWholeAndMoreOnlyWithinTheBudget) {
  // Short prompts beside generation with a pacer's budget of 30: the first goes in whole and
  // spends it, the others wait for a later step.
  EXPECT_EQ(plan({{100, false}, {100, false}, {5, false}}, {4, 508, 30, 128}), (Takes{100, 0, 0}));
  // One that leaves some: a later one goes if it fits what is left (10), not if it does not.
  EXPECT_EQ(plan({{20, false}, {100, false}, {5, false}}, {4, 508, 30, 128}), (Takes{20, 0, 5}));
  // Before the pacer measured a generation step (budget 0) the first still goes whole.
  EXPECT_EQ(plan({{100, false}, {100, false}}, {4, 508, 0, 128}), (Takes{100, 0}));
  // A short prompt spends the budget of a paced one even when that one is older: the step
  // carries the short prompt alone, not the short prompt and the paced share on top.
  EXPECT_EQ(plan({{400, true}, {100, false}}, {4, 508, 30, 128}), (Takes{0, 100}));
  EXPECT_EQ(plan({{400, true}, {10, false}}, {4, 508, 30, 128}), (Takes{20, 10}));
  // A short prompt spends the budget of a paced one behind it.
  EXPECT_EQ(plan({{100, false}, {400, true}}, {4, 508, 30, 128}), (Takes{100, 0}));
  // Pacing off: both whole.
  EXPECT_EQ(plan({{100, false}, {100, false}}, {4, 508, 508, 128}), (Takes{100, 100}));
}

TEST(PlanPromptTokens, AfterAPacedPromptWaitedItGoesFirst) {
  const std::vector<PendingPrompt> both{{400, true}, {100, false}};
  Takes take = plan(both, {4, 508, 30, 128});
  ASSERT_EQ(take, (Takes{0, 100}));
  EXPECT_TRUE(paced_prompt_waited(both, take));
  // The next step: the paced prompt takes its budget, the short one only fits what is left.
  PromptRoom next{4, 508, 30, 128};
  next.paced_first = true;
  take = plan({{400, true}, {100, false}}, next);
  EXPECT_EQ(take, (Takes{30, 0}));
  EXPECT_FALSE(paced_prompt_waited(both, take));
  EXPECT_EQ(plan({{400, true}, {5, false}}, next), (Takes{30, 0}));
  next.paced = 40;
  EXPECT_EQ(plan({{400, true}, {5, false}}, next), (Takes{40, 0}));
  next.chunk = 20;
  EXPECT_EQ(plan({{400, true}, {5, false}}, next), (Takes{20, 5}));
  // Nothing waited when no short prompt was taken, or no paced one was pending.
  EXPECT_FALSE(paced_prompt_waited(both, Takes{30, 0}));
  EXPECT_FALSE(paced_prompt_waited(std::vector<PendingPrompt>{{100, false}}, Takes{100}));
}

TEST(PlanPromptTokens, TheStepsTokenBudgetCapsEverything) {
  EXPECT_EQ(plan({{100, false}, {100, false}}, {60, 68, 68, 128}), (Takes{68, 0}));
  EXPECT_EQ(plan({{100, false}}, {4, 0, 0, 128}), (Takes{0}));
  EXPECT_EQ(plan({}, {4, 508, 30, 128}), (Takes{}));
}

}  // namespace
}  // namespace troupe::engine
