#include "engine/step_rows.hpp"

#include <algorithm>

#include "engine/step_pacer.hpp"

namespace troupe::engine {

void RowCosts::record(std::int32_t rows, double us) {
  if (rows < 1 || us <= 0.0 || static_cast<std::size_t>(rows) >= us_.size())
    return;
  double& floor = us_[static_cast<std::size_t>(rows)];
  floor = step_floor(floor, us);
}

double RowCosts::us(std::int32_t rows) const {
  if (rows < 1 || static_cast<std::size_t>(rows) >= us_.size())
    return 0.0;
  return us_[static_cast<std::size_t>(rows)];
}

namespace {

// Whether the step is cheaper as one run of `filled` rows than as the runs of busy slots
// between `lo` and `hi` (each its own ubatch). Unmeasured: one run (trying it measures it).
bool fill_gaps(std::span<const RowRole> roles, std::int32_t lo, std::int32_t hi,
               const RowCosts& costs) {
  const std::int32_t filled = hi - lo + 1;
  if (!costs.known(filled))
    return true;
  double apart = 0.0;
  std::int32_t run = 0;
  for (std::int32_t i = lo; i <= hi + 1; ++i) {
    if (i <= hi && roles[static_cast<std::size_t>(i)] == RowRole::busy) {
      ++run;
      continue;
    }
    if (run > 0) {
      if (!costs.known(run))
        return true;
      apart += costs.us(run);
    }
    run = 0;
  }
  return costs.us(filled) <= apart;
}

// Whether `rows` padded to `target` is the cheaper step: only once `rows` alone was measured;
// then `target` is tried once if it was not.
bool round_up(std::int32_t rows, std::int32_t target, const RowCosts& costs) {
  if (!costs.known(rows))
    return false;
  return !costs.known(target) || costs.us(target) < costs.us(rows);
}

}  // namespace

std::int32_t plan_pads(std::span<const RowRole> roles, const RowCosts& costs,
                       std::span<std::uint8_t> pad, bool always) {
  std::fill(pad.begin(), pad.end(), std::uint8_t{0});
  const auto n = static_cast<std::int32_t>(std::min(roles.size(), pad.size()));
  std::int32_t lo = -1, hi = -1;
  for (std::int32_t i = 0; i < n; ++i) {
    if (roles[static_cast<std::size_t>(i)] != RowRole::busy)
      continue;
    if (lo < 0)
      lo = i;
    hi = i;
  }
  if (lo < 0)
    return 0;
  bool gaps = false;
  for (std::int32_t i = lo; i <= hi; ++i) {
    const RowRole r = roles[static_cast<std::size_t>(i)];
    if (r == RowRole::blocked)
      return 0;  // a stream with no free cell splits the step: llama.cpp cuts it as it is
    gaps = gaps || r == RowRole::idle;
  }
  if (gaps && !always && !fill_gaps(roles, lo, hi, costs))
    return 0;
  for (std::int32_t i = lo; i <= hi; ++i)
    pad[static_cast<std::size_t>(i)] = roles[static_cast<std::size_t>(i)] == RowRole::idle;

  const std::int32_t rows = hi - lo + 1;
  constexpr std::int32_t kRowsPerPass = 4;  // ggml's repacked kernels: rows four at a time
  if (rows % kRowsPerPass == 0)
    return rows;
  const std::int32_t target = rows + kRowsPerPass - rows % kRowsPerPass;
  std::int32_t above = 0, below = 0;
  while (hi + above + 1 < n && roles[static_cast<std::size_t>(hi + above + 1)] == RowRole::idle)
    ++above;
  while (lo - below - 1 >= 0 && roles[static_cast<std::size_t>(lo - below - 1)] == RowRole::idle)
    ++below;
  if (above + below < target - rows || (!always && !round_up(rows, target, costs)))
    return rows;
  std::int32_t need = target - rows;
  for (std::int32_t i = hi + 1; need > 0 && i <= hi + above; ++i, --need)
    pad[static_cast<std::size_t>(i)] = 1;
  for (std::int32_t i = lo - 1; need > 0 && i >= lo - below; --i, --need)
    pad[static_cast<std::size_t>(i)] = 1;
  return target;
}

}  // namespace troupe::engine
