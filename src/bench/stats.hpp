#pragma once
// Summary statistics of a sample, with genai-bench's set of percentiles.
// Percentiles interpolate linearly between order statistics (numpy's default): for q in [0,100]
// the rank is q/100 * (n-1).
//
// Thread-safety: pure functions.

#include <cstddef>
#include <span>
#include <vector>

namespace troupe::bench {

struct Summary {
  std::size_t count = 0;
  double min = 0, max = 0, mean = 0, stddev = 0;  // stddev: population (divides by n)
  double p25 = 0, p50 = 0, p75 = 0, p90 = 0, p95 = 0, p99 = 0;
};

// Summary of `values` (any order). All zeros when empty.
Summary summarize(std::vector<double> values);

// Percentile q (0..100) of sorted values. Precondition: !sorted.empty().
double percentile_sorted(std::span<const double> sorted, double q);

// `points` + 1 evenly spaced quantiles (0%, ..., 100%) of `values`, for CDF plots. Empty when
// values is empty.
std::vector<double> quantiles(std::vector<double> values, std::size_t points = 100);

}  // namespace troupe::bench
