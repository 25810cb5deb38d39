#pragma once
// Traffic scenarios in genai-bench's syntax: how many input and output tokens each request has.
//
//   D(in,out)                          fixed
//   N(mean_in,std_in)/(mean_out,std_out)  normal, rounded, clamped to at least 1
//   U(min_in,max_in)/(min_out,max_out)    uniform integers, bounds included
//   U(max_in,max_out)                  uniform integers from 1
//
// Thread-safety: values; sample() uses only the caller's generator.

#include <cstdint>
#include <random>
#include <string>
#include <string_view>

#include "util/result.hpp"

namespace troupe::bench {

struct TokenCounts {
  std::int32_t input = 0;
  std::int32_t output = 0;
};

struct Scenario {
  enum class Kind { deterministic, normal, uniform };
  Kind kind = Kind::deterministic;
  // deterministic: a = value. normal: a = mean, b = stddev. uniform: a = min, b = max.
  double in_a = 0, in_b = 0, out_a = 0, out_b = 0;
  std::string text;  // the string it was parsed from, normalised (no spaces)

  // Draws one request's token counts (both at least 1).
  TokenCounts sample(std::mt19937_64& rng) const;
  // Mean input and output tokens.
  // Largest input a sample can have (for normal: mean + 4 stddev).
  std::int32_t max_input() const;
};

// Parses one scenario. Errors (invalid_request) say what was expected, e.g.
// "invalid scenario 'D(100)': expected D(input,output) with positive integers".
Result<Scenario> parse_scenario(std::string_view text);

}  // namespace troupe::bench
