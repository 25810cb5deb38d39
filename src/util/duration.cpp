#include "util/duration.hpp"

#include <fmt/format.h>

#include <array>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <utility>

namespace troupe::util {

namespace {

struct Unit {
  std::string_view suffix;
  double ns;
};

// Longest suffix first, so that "ms" is not read as "m" + "s".
constexpr std::array kUnits = {Unit{"us", 1e3}, Unit{"ms", 1e6}, Unit{"s", 1e9}, Unit{"m", 60e9},
                               Unit{"h", 3600e9}};

double bare_ns(DurationUnit u) {
  switch (u) {
    case DurationUnit::microseconds:
      return 1e3;
    case DurationUnit::milliseconds:
      return 1e6;
    case DurationUnit::seconds:
      break;
  }
  return 1e9;
}

}  // namespace

Result<std::chrono::nanoseconds> parse_duration(std::string_view text, DurationUnit bare) {
  auto bad = [&] {
    return Error{Errc::invalid_request,
                 fmt::format("'{}' is not a duration: expected a number with a unit (us, ms, s, "
                             "m, h), e.g. 500ms, 1.5s or 5m",
                             text)};
  };
  std::string_view number = text;
  double scale = bare_ns(bare);
  for (const Unit& u : kUnits) {
    if (number.ends_with(u.suffix)) {
      number.remove_suffix(u.suffix.size());
      scale = u.ns;
      break;
    }
  }
  double value = 0;
  const char* end = number.data() + number.size();
  auto [ptr, ec] = std::from_chars(number.data(), end, value);
  if (number.empty() || ec != std::errc{} || ptr != end || !std::isfinite(value) || value < 0)
    return bad();
  const double ns = std::round(value * scale);
  if (ns > 9.0e18)
    return bad();
  return std::chrono::nanoseconds(static_cast<std::int64_t>(ns));
}

std::string format_duration(std::chrono::nanoseconds d) {
  const auto ns = d.count();
  if (ns == 0)
    return "0s";
  // The largest unit the value is a whole multiple of a tenth of, so 1500ms reads 1.5s.
  constexpr std::array<std::pair<std::int64_t, std::string_view>, 5> units = {
      {{3'600'000'000'000, "h"},
       {60'000'000'000, "m"},
       {1'000'000'000, "s"},
       {1'000'000, "ms"},
       {1'000, "us"}}};
  for (const auto& [size, suffix] : units) {
    if (ns % size == 0)
      return fmt::format("{}{}", ns / size, suffix);
    if (ns >= size && ns <= INT64_MAX / 10 && (ns * 10) % size == 0)
      return fmt::format("{}{}", static_cast<double>(ns) / static_cast<double>(size), suffix);
  }
  return fmt::format("{}us", static_cast<double>(ns) / 1e3);
}

}  // namespace troupe::util
