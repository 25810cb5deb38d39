#pragma once
// The comparison peers of remote_bench: raw ZeroMQ and CAF 0.17 remote actors, each running
// the same three scenarios as troupe over loopback.

#include <cstdint>
#include <string>
#include <vector>

namespace troupe::remote::bench {

struct Scenario {
  std::uint64_t small_messages = 1'000'000;  // 64-byte tells
  std::uint64_t asks = 20'000;               // sequential round trips
  std::uint64_t big_messages = 200;          // 1 MiB tells
  bool ask_only = false;                     // run the ask round trips only
};

struct Outcome {
  std::string system;
  double tell_msgs_per_s = 0;
  double ask_p50_us = 0;
  double ask_p99_us = 0;
  double big_mib_per_s = 0;
  double allocs_per_tell = -1;  // -1: not measured
};

Outcome run_zeromq(const Scenario& s);
Outcome run_caf(const Scenario& s);

// p-th percentile (0..100) of `v` (sorted in place).
double percentile(std::vector<double>& v, double p);

}  // namespace troupe::remote::bench
