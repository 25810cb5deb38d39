#include "bench/stats.hpp"

#include <algorithm>
#include <cmath>

namespace troupe::bench {

double percentile_sorted(std::span<const double> sorted, double q) {
  double rank = q / 100.0 * static_cast<double>(sorted.size() - 1);
  auto lo = static_cast<std::size_t>(std::floor(rank));
  auto hi = std::min(lo + 1, sorted.size() - 1);
  double frac = rank - static_cast<double>(lo);
  return sorted[lo] + (sorted[hi] - sorted[lo]) * frac;
}

Summary summarize(std::vector<double> values) {
  Summary s;
  if (values.empty())
    return s;
  std::sort(values.begin(), values.end());
  s.count = values.size();
  s.min = values.front();
  s.max = values.back();
  double sum = 0;
  for (double v : values)
    sum += v;
  s.mean = sum / static_cast<double>(s.count);
  double sq = 0;
  for (double v : values)
    sq += (v - s.mean) * (v - s.mean);
  s.stddev = std::sqrt(sq / static_cast<double>(s.count));
  s.p25 = percentile_sorted(values, 25);
  s.p50 = percentile_sorted(values, 50);
  s.p75 = percentile_sorted(values, 75);
  s.p90 = percentile_sorted(values, 90);
  s.p95 = percentile_sorted(values, 95);
  s.p99 = percentile_sorted(values, 99);
  return s;
}

std::vector<double> quantiles(std::vector<double> values, std::size_t points) {
  std::vector<double> out;
  if (values.empty())
    return out;
  std::sort(values.begin(), values.end());
  out.reserve(points + 1);
  for (std::size_t i = 0; i <= points; ++i) {
    out.push_back(percentile_sorted(values, 100.0 * static_cast<double>(i) / points));
  }
  return out;
}

}  // namespace troupe::bench
