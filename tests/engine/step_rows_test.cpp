#include "engine/step_rows.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace troupe::engine {
namespace {

// Slots written as a string: 'b' busy, '.' idle, 'x' blocked.
std::vector<RowRole> roles(const std::string& s) {
  std::vector<RowRole> r;
  for (char c : s)
    r.push_back(c == 'b' ? RowRole::busy : c == '.' ? RowRole::idle : RowRole::blocked);
  return r;
}

struct Plan {
  std::int32_t rows = 0;
  std::string pads;  // 'p' where a pad goes, '-' elsewhere
};

Plan plan(const std::string& slots, const RowCosts& costs, bool always = false) {
  const auto r = roles(slots);
  std::vector<std::uint8_t> pad(r.size(), 7);  // planner must overwrite every entry
  Plan p;
  p.rows = plan_pads(r, costs, pad, always);
  for (auto v : pad)
    p.pads += v != 0 ? 'p' : '-';
  return p;
}

// The 2-core development machine's `1b` Q4_0 steps (ms), where 15 rows cost more than 16.
RowCosts q4_costs() {
  RowCosts c(16);
  const double ms[] = {0, 26, 43, 57, 44, 62, 79, 91, 76, 95, 100, 105, 92, 104, 110, 130, 80};
  for (std::int32_t rows = 1; rows <= 16; ++rows)
    c.record(rows, ms[rows] * 1000.0);
  return c;
}

TEST(RowCosts, FloorFallsAtOnceAndRisesSlowly) {
  RowCosts c(4);
  EXPECT_FALSE(c.known(2));
  c.record(2, 100.0);
  c.record(2, 80.0);
  EXPECT_DOUBLE_EQ(c.us(2), 80.0);
  c.record(2, 280.0);
  EXPECT_GT(c.us(2), 80.0);
  EXPECT_LT(c.us(2), 100.0);
  c.record(5, 10.0);  // beyond the slots: ignored
  c.record(0, 10.0);
  EXPECT_FALSE(c.known(5));
  EXPECT_FALSE(c.known(0));
}

TEST(PlanPads, NothingBusyOrAlreadyOneRunOfFour) {
  const RowCosts c = q4_costs();
  EXPECT_EQ(plan("....", c).rows, 0);
  EXPECT_EQ(plan("....", c).pads, "----");
  const Plan p = plan("bbbb....", c);
  EXPECT_EQ(p.rows, 4);
  EXPECT_EQ(p.pads, "--------");
}

TEST(PlanPads, FillsAGapSoThatTheStepIsOneRun) {
  RowCosts unknown(16);
  const Plan p = plan("bbb.bb..", unknown);
  EXPECT_EQ(p.pads, "---p----");
  EXPECT_EQ(p.rows, 6);  // not rounded to 8: six rows alone were never measured
}

TEST(PlanPads, KeepsSeparateRunsWhenTheyAreCheaper) {
  RowCosts c(16);
  c.record(1, 26'000.0);
  c.record(16, 80'000.0);
  const Plan p = plan("b..............b", c);  // 80 ms as one run, 52 ms as two
  EXPECT_EQ(p.rows, 0);
  EXPECT_EQ(p.pads, "----------------");
}

TEST(PlanPads, AFullStreamBetweenTheSequencesMeansNoPads) {
  const Plan p = plan("bbxb....", q4_costs());
  EXPECT_EQ(p.rows, 0);
  EXPECT_EQ(p.pads, "--------");
}

TEST(PlanPads, RoundsUpToFourRowsWhereThatIsCheaper) {
  const RowCosts c = q4_costs();
  Plan p = plan("bbbbbbbbbbbbbbb.", c);  // 15 rows 130 ms, 16 rows 80
  EXPECT_EQ(p.rows, 16);
  EXPECT_EQ(p.pads, "---------------p");
  p = plan("..bbbbbbbbbbbbb.", c);  // 13 rows: one pad above, two below
  EXPECT_EQ(p.rows, 16);
  EXPECT_EQ(p.pads, "pp-------------p");
  p = plan(".bbb", c);  // 3 rows 57 ms, 4 rows 44
  EXPECT_EQ(p.rows, 4);
  EXPECT_EQ(p.pads, "p---");
  p = plan("bbbbb...", c);  // 5 rows 62 ms, 8 rows 76: as it is
  EXPECT_EQ(p.rows, 5);
  EXPECT_EQ(p.pads, "--------");
}

TEST(PlanPads, GapsAndRoundingTogether) {
  const Plan p = plan("bbbbbbb.bbbbbb..", q4_costs());  // 13 busy in 14 slots, then 16
  EXPECT_EQ(p.rows, 16);
  EXPECT_EQ(p.pads, "-------p------pp");
}

TEST(PlanPads, NoRoundingWithoutEnoughIdleSlotsNextToTheRun) {
  const RowCosts c = q4_costs();
  Plan p = plan("bbbbbbbbbbbbb.x.", c);  // 13 rows, one idle slot before the full stream
  EXPECT_EQ(p.rows, 13);
  EXPECT_EQ(p.pads, "----------------");
}

// A row count not measured yet is learned by trying: the run's own first, then padded once.
TEST(PlanPads, LearnsUnmeasuredCountsByTryingThem) {
  RowCosts c(8);
  EXPECT_EQ(plan("bbb.....", c).rows, 3);  // 3 rows unmeasured: decoded as they are
  c.record(3, 57'000.0);
  EXPECT_EQ(plan("bbb.....", c).rows, 4);  // 4 rows unmeasured: tried once
  c.record(4, 60'000.0);                   // smooth weights (F16): four rows cost more
  EXPECT_EQ(plan("bbb.....", c).rows, 3);
  EXPECT_EQ(plan("bbb.....", c).pads, "--------");
}

TEST(PlanPads, AlwaysPadsWhereverASlotCan) {
  RowCosts c(8);
  c.record(3, 10'000.0);
  c.record(4, 90'000.0);
  const Plan p = plan("b.b.....", c, /*always=*/true);
  EXPECT_EQ(p.rows, 4);
  EXPECT_EQ(p.pads, "-p-p----");
  EXPECT_EQ(plan("bxb.....", c, true).rows, 0);  // but not through a full stream
}

}  // namespace
}  // namespace troupe::engine
