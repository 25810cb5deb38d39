#pragma once
// Durations as every troupe command spells them: a number with a unit, "250us", "500ms",
// "1.5s", "5m", "1h". One scheme for all time options; `bare` says what a number without a
// unit means for an option that took bare numbers before units existed (so old command lines
// keep their meaning).
//
// Thread-safety: pure functions.

#include <chrono>
#include <string>
#include <string_view>

#include "util/result.hpp"

namespace troupe::util {

enum class DurationUnit { microseconds, milliseconds, seconds };

// The duration `text` names. Errors: invalid_request for text that is not a non-negative
// number with an optional unit (us, ms, s, m, h), or beyond about 290 years.
Result<std::chrono::nanoseconds> parse_duration(std::string_view text, DurationUnit bare);

// The shortest exact spelling with a unit: 500ms, 10s, 1.5s, 2m, 50us, 0s.
std::string format_duration(std::chrono::nanoseconds d);

}  // namespace troupe::util
