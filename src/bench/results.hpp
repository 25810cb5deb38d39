#pragma once
// Writing a run's results: results.json (every point, every statistic, the exact configuration
// and versions), one CSV of requests per point, and the summary table on stdout.
//
// Thread-safety: pure functions over a finished RunResult.

#include <boost/json/value.hpp>
#include <cstdio>
#include <string>
#include <vector>

#include "bench/runner.hpp"
#include "util/result.hpp"

namespace troupe::bench {

// The JSON document of results.json.
boost::json::value results_json(const RunResult& run);

// Creates `dir` if needed and writes results.json and requests_<n>.csv into it.
Result<void> write_results(const RunResult& run, const std::string& dir);

// The per-request CSV of one point (header line first).
std::string requests_csv(const PointResult& point);

// The final table (one row per point) and the warnings.
void print_table(const RunResult& run, std::FILE* out);

// One line per point whose measured requests all failed, naming the errors and the server's
// first message for each; `troupe bench` exits non-zero when there is any.
std::vector<std::string> failed_points(const RunResult& run);

}  // namespace troupe::bench
