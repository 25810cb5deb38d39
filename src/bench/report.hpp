#pragma once
// The HTML report: one self-contained file (inline SVG plots and CSS, no scripts, no network)
// comparing one or more runs, each a results.json directory written by `troupe bench`.
//
// Thread-safety: pure functions (plus file I/O in write_report).

#include <boost/json/value.hpp>
#include <string>
#include <vector>

#include "util/result.hpp"

namespace troupe::bench {

struct RunData {
  std::string label;           // shown in legends: the directory's name
  boost::json::value results;  // its results.json
};

// Reads DIR/results.json. Errors: missing or not a troupe bench results file.
Result<RunData> load_run(const std::string& dir);

// The report's HTML.
std::string render_report(const std::vector<RunData>& runs);

// Loads every dir and writes the report to `out_path`.
Result<void> write_report(const std::vector<std::string>& dirs, const std::string& out_path);

}  // namespace troupe::bench
