#pragma once
// CPU lists in the form taskset, cgroups and /sys write them ("0-3,8,10-11"), for the tools
// that pin a process or a child to some cores (benchmarks that give each side its own).

#include <sched.h>

#include <string>
#include <string_view>

#include "util/result.hpp"

namespace troupe::util {

// Parses "0-3,8,10-11" (spaces around items allowed). An empty item, a reversed range, or a
// CPU at or beyond CPU_SETSIZE is an error naming the item.
Result<cpu_set_t> parse_cpu_list(std::string_view list);

// "0-3,8,10-11" for a set: the inverse of parse_cpu_list.
std::string format_cpu_list(const cpu_set_t& set);

// Pins the calling thread to `set`; threads it starts afterwards inherit the affinity.
// An error if the kernel refuses (no CPU of the set is online or allowed).
Result<void> pin_calling_thread(const cpu_set_t& set);

}  // namespace troupe::util
