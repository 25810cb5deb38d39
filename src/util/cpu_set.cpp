#include "util/cpu_set.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstring>

namespace troupe::util {

namespace {

std::string_view trim(std::string_view s) {
  while (!s.empty() && s.front() == ' ')
    s.remove_prefix(1);
  while (!s.empty() && s.back() == ' ')
    s.remove_suffix(1);
  return s;
}

// A whole string of decimal digits naming a CPU the set can hold, or -1.
int cpu_number(std::string_view s) {
  int v = -1;
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (s.empty() || ec != std::errc() || end != s.data() + s.size() || v < 0 || v >= CPU_SETSIZE)
    return -1;
  return v;
}

}  // namespace

Result<cpu_set_t> parse_cpu_list(std::string_view list) {
  cpu_set_t set;
  CPU_ZERO(&set);
  auto bad = [&](std::string_view item, std::string_view why) {
    return Error(Errc::invalid_request, fmt::format("CPU list \"{}\": \"{}\" {}", list, item, why));
  };
  if (trim(list).empty())
    return bad(list, "names no CPU");
  for (std::size_t at = 0; at <= list.size();) {
    const std::size_t comma = std::min(list.find(',', at), list.size());
    const std::string_view item = trim(list.substr(at, comma - at));
    const std::size_t dash = item.find('-');
    const int lo = cpu_number(trim(item.substr(0, dash)));
    const int hi = dash == std::string_view::npos ? lo : cpu_number(trim(item.substr(dash + 1)));
    if (lo < 0 || hi < 0)
      return bad(item, fmt::format("is not a CPU number or range below {}", CPU_SETSIZE));
    if (hi < lo)
      return bad(item, "is a reversed range");
    for (int c = lo; c <= hi; ++c)
      CPU_SET(c, &set);
    at = comma + 1;
  }
  return set;
}

std::string format_cpu_list(const cpu_set_t& set) {
  std::string out;
  for (int c = 0; c < CPU_SETSIZE; ++c) {
    if (!CPU_ISSET(c, &set))
      continue;
    int last = c;
    while (last + 1 < CPU_SETSIZE && CPU_ISSET(last + 1, &set))
      ++last;
    if (!out.empty())
      out += ',';
    out += last == c ? fmt::format("{}", c) : fmt::format("{}-{}", c, last);
    c = last;
  }
  return out;
}

Result<void> pin_calling_thread(const cpu_set_t& set) {
  if (sched_setaffinity(0, sizeof set, &set) != 0)
    return Error(Errc::invalid_request, fmt::format("cannot pin to CPUs {}: {}",
                                                    format_cpu_list(set), std::strerror(errno)));
  return {};
}

}  // namespace troupe::util
