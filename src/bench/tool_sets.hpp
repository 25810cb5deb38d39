#pragma once
// Tool definitions for a tools workload: `--tools 0,5` sweeps each scenario without tools and
// with the first 5 built-in functions, `--tools my_tools.json` sends a file's tools array.
// Every request of a point carries its set (and --tool-choice, when given), so output
// tokens/s with and without tools come from the same run.
//
// Thread-safety: pure functions; a ToolSet is a plain value.

#include <boost/json/array.hpp>
#include <cstddef>
#include <string>
#include <vector>

#include "util/result.hpp"

namespace troupe::bench {

struct ToolSet {
  std::string name;          // "0", "5" (built-in count) or the file's name
  boost::json::array tools;  // the OpenAI tools array; empty for "0"
};

// How many functions builtin_tools() can give.
inline constexpr std::size_t kBuiltinTools = 8;

// The first `n` (<= kBuiltinTools) of a fixed list of realistic functions (weather, web
// search, stock quote, e-mail, calendar, currency, restaurant booking, directions), each with
// a typed JSON-schema: strings with enums, formats and patterns, bounded integers, numbers,
// booleans, arrays, required members.
boost::json::array builtin_tools(std::size_t n);

// Parses `--tools`: a comma-separated list whose items are a count 0..kBuiltinTools or a JSON
// file with an OpenAI tools array (client::load_tools_file). Errors (invalid_request, param
// "--tools"): an empty item, a count out of range, a file that cannot be read or checked.
Result<std::vector<ToolSet>> parse_tool_sets(const std::string& list);

}  // namespace troupe::bench
