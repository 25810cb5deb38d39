#include "engine/ngram_draft.hpp"

#include <gtest/gtest.h>

#include <initializer_list>
#include <vector>

#include "engine/step_rows.hpp"

namespace troupe::engine {
namespace {

// The draft for `history` with n-grams of `n` and drafts of at most `m` (and `room` tokens).
std::vector<Token> draft(const std::vector<Token>& history, std::int32_t n, std::int32_t m,
                         std::size_t room = 64) {
  std::vector<Token> out(room, -1);
  const std::int32_t k = ngram_draft(history, NgramDraftParams{n, m}, out);
  out.resize(static_cast<std::size_t>(k));
  return out;
}

TEST(NgramDraft, TheTokensThatFollowedTheLastNEarlier) {
  const std::vector<Token> h = {5, 1, 2, 3, 4, 6, 7, 9, 1, 2};
  EXPECT_EQ(draft(h, 2, 8), (std::vector<Token>{3, 4, 6, 7, 9, 1, 2, 3}));
  EXPECT_EQ(draft(h, 2, 3), (std::vector<Token>{3, 4, 6}));  // at most m
  EXPECT_EQ(draft(h, 2, 8, 2), (std::vector<Token>{3, 4}));  // at most the room given
  EXPECT_EQ(draft(h, 3, 8), (std::vector<Token>{}));         // 9 1 2 never occurred before
  EXPECT_EQ(draft(h, 1, 8), (std::vector<Token>{3, 4, 6, 7, 9, 1, 2, 3}));
}

TEST(NgramDraft, TheLatestEarlierOccurrenceWins) {
  const std::vector<Token> h = {1, 2, 10, 11, 1, 2, 20, 21, 1, 2};
  EXPECT_EQ(draft(h, 2, 2), (std::vector<Token>{20, 21}));
}

TEST(NgramDraft, ACycleDraftsAsFarAsM) {
  // A run of one token: the latest earlier "7 7" is one token back; the run goes on.
  const std::vector<Token> h = {3, 7, 7, 7, 7};
  EXPECT_EQ(draft(h, 2, 5), (std::vector<Token>{7, 7, 7, 7, 7}));
  // A cycle of three.
  const std::vector<Token> c = {1, 2, 3, 1, 2, 3, 1, 2};
  EXPECT_EQ(draft(c, 2, 8), (std::vector<Token>{3, 1, 2, 3, 1, 2, 3, 1}));
}

// The draft from `prediction` after `answer`, at most `m` tokens; `cursor` carries over.
std::vector<Token> predicted(const std::vector<Token>& prediction, const std::vector<Token>& answer,
                             std::size_t& cursor, std::int32_t m = 4) {
  std::vector<Token> out(64, -1);
  const std::int32_t k = prediction_draft(prediction, answer, m, cursor, out);
  out.resize(static_cast<std::size_t>(k));
  return out;
}

TEST(PredictionDraft, FollowsTheAnswerThroughThePrediction) {
  const std::vector<Token> p = {10, 11, 12, 13, 14, 15, 16, 17};
  std::size_t cursor = 0;
  EXPECT_EQ(predicted(p, {10}, cursor), (std::vector<Token>{}));  // one token: too little to go by
  EXPECT_EQ(predicted(p, {10, 11}, cursor), (std::vector<Token>{12, 13, 14, 15}));
  EXPECT_EQ(cursor, 2u);
  // Three drafts kept and the fourth token drawn as predicted: on from after it.
  EXPECT_EQ(predicted(p, {10, 11, 12, 13, 14}, cursor), (std::vector<Token>{15, 16, 17}));
  EXPECT_EQ(cursor, 5u);
  EXPECT_EQ(predicted(p, {10, 11, 12, 13, 14, 15, 16, 17}, cursor), (std::vector<Token>{}));
}

TEST(PredictionDraft, AnEditIsSkippedUntilTheAnswerRejoinsThePrediction) {
  const std::vector<Token> p = {10, 11, 12, 13, 14, 15, 16, 17, 18};
  std::size_t cursor = 3;
  // The answer put 90 91 where the prediction has 13: nowhere in it.
  EXPECT_EQ(predicted(p, {10, 11, 12, 90, 91}, cursor), (std::vector<Token>{}));
  // Then 14 15: found again after the edit.
  EXPECT_EQ(predicted(p, {10, 11, 12, 90, 91, 14, 15}, cursor), (std::vector<Token>{16, 17, 18}));
  EXPECT_EQ(cursor, 6u);
}

TEST(PredictionDraft, TheOccurrenceFromTheLastMatchOnWins) {
  // "1 2" twice: after the first match the answer's "1 2" is the later one.
  const std::vector<Token> p = {1, 2, 30, 31, 1, 2, 40, 41};
  std::size_t cursor = 4;
  EXPECT_EQ(predicted(p, {7, 1, 2}, cursor, 2), (std::vector<Token>{40, 41}));
  // From the start, the first one.
  cursor = 0;
  EXPECT_EQ(predicted(p, {7, 1, 2}, cursor, 2), (std::vector<Token>{30, 31}));
}

TEST(PredictionDraft, NothingWithoutAPredictionOrAnAnswer) {
  std::size_t cursor = 0;
  EXPECT_EQ(predicted({}, {1}, cursor), (std::vector<Token>{}));
  EXPECT_EQ(predicted({1, 2}, {}, cursor), (std::vector<Token>{}));
  EXPECT_EQ(predicted({1, 2}, {1}, cursor, 0), (std::vector<Token>{}));
}

// Step costs by rows, in microseconds: costs[r] for r = 1, 2, ...
RowCosts costs(std::initializer_list<double> us) {
  RowCosts c(256);
  std::int32_t rows = 1;
  for (double t : us)
    c.record(rows++, t);
  return c;
}

std::vector<std::int32_t> choose(std::vector<DraftOffer> offers, std::int32_t generating,
                                 const RowCosts& c, double model_pass_us = 0.0) {
  std::vector<std::int32_t> take(offers.size(), -1);
  const std::int32_t rows = choose_drafts(offers, generating, c, take, model_pass_us);
  std::int32_t sum = 0;
  for (std::int32_t t : take)
    sum += t;
  EXPECT_EQ(rows, sum);
  return take;
}

TEST(ChooseDrafts, NothingBeforeAStepOfTheGeneratingRowsWasMeasured) {
  EXPECT_EQ(choose({{8, 0.9}}, 1, RowCosts(256)), (std::vector<std::int32_t>{0}));
  EXPECT_EQ(choose({{8, 0.9}, {8, 0.9}}, 2, costs({100})), (std::vector<std::int32_t>{0, 0}));
}

TEST(ChooseDrafts, RowsThatCostNothingAreAllTaken) {
  EXPECT_EQ(choose({{8, 0.5}}, 1, costs({100, 100, 100, 100, 100, 100, 100, 100, 100})),
            (std::vector<std::int32_t>{8}));
}

TEST(ChooseDrafts, RowsThatCostMoreThanTheyAreExpectedToGiveAreNot) {
  // A row costs half a step; a drafted token is drawn half the time: never worth it.
  EXPECT_EQ(choose({{8, 0.5}}, 1, costs({100, 150, 200, 250, 300, 350})),
            (std::vector<std::int32_t>{0}));
  // Drawn 90 % of the time: the first three are worth their rows, the fourth (0.9^4) not.
  EXPECT_EQ(choose({{8, 0.9}}, 1, costs({100, 150, 200, 250, 300, 350, 400, 450, 500})),
            (std::vector<std::int32_t>{3}));
}

TEST(ChooseDrafts, FourRowsThatCostWhatOneDoesWinOverTwoDearerOnes) {
  // Kernels that multiply four rows at a time: 2 and 3 rows cost more than 4.
  EXPECT_EQ(choose({{3, 0.8}}, 1, costs({100, 190, 280, 110})), (std::vector<std::int32_t>{3}));
}

TEST(ChooseDrafts, TheLikelierDraftGoesFirst) {
  // Two rows beside the two sequences cost nothing more, a third a lot: both go to the likelier.
  EXPECT_EQ(choose({{4, 0.3}, {4, 0.9}}, 2, costs({0, 100, 100, 100, 400, 500, 600})),
            (std::vector<std::int32_t>{0, 2}));
}

TEST(ChooseDrafts, UnmeasuredRowsAreGuessedCheapAndThenMeasured) {
  // Only one row measured: beyond it a tenth of a step per row, where a drafted token drawn
  // half the time is worth two (1.75 tokens for 1.2 steps beats 1.5 for 1.1 and 1.875 for 1.3).
  EXPECT_EQ(choose({{8, 0.5}}, 1, costs({100})), (std::vector<std::int32_t>{2}));
  // Measured dear, the guess gives way.
  EXPECT_EQ(choose({{8, 0.5}}, 1, costs({100, 200, 300})), (std::vector<std::int32_t>{0}));
}

// A draft model's tokens cost its passes too: one pass per token of the longest draft, shared
// by the sequences it drafts for.
TEST(ChooseDrafts, ADraftModelsPassesCountAgainstItsTokens) {
  const RowCosts rows = costs({100, 100, 100, 100, 100});
  // Free rows and passes of a fifth of a step, drafts drawn 90 % of the time: all four (4.10
  // tokens for 1.8 steps beats 3.44 for 1.6).
  EXPECT_EQ(choose({{4, 0.9, true}}, 1, rows, 20.0), (std::vector<std::int32_t>{4}));
  // Drawn half the time, passes of 0.6 step: the first (1.5 tokens for 1.6 steps) is not
  // worth it, nor any after it.
  EXPECT_EQ(choose({{4, 0.5, true}}, 1, rows, 60.0), (std::vector<std::int32_t>{0}));
  // The same offer looked up instead (no passes) is worth its free rows.
  EXPECT_EQ(choose({{4, 0.5, false}}, 1, rows, 60.0), (std::vector<std::int32_t>{4}));
  // Beside a lookup's draft (free rows, no passes) the model's two passes still pay.
  EXPECT_EQ(
      choose({{2, 0.9, true}, {2, 0.5, false}}, 2, costs({100, 100, 100, 100, 100, 100}), 20.0),
      (std::vector<std::int32_t>{2, 2}));
}

TEST(NgramDraft, NothingFromTooShortAHistoryOrEmptySizes) {
  EXPECT_EQ(draft({1, 2}, 2, 8), (std::vector<Token>{}));
  EXPECT_EQ(draft({}, 1, 8), (std::vector<Token>{}));
  EXPECT_EQ(draft({1, 1, 1}, 0, 8), (std::vector<Token>{}));
  EXPECT_EQ(draft({1, 1, 1}, 1, 0), (std::vector<Token>{}));
  EXPECT_EQ(draft({1, 1, 1}, 1, 8, 0), (std::vector<Token>{}));
}

}  // namespace
}  // namespace troupe::engine
