#pragma once
// Open-loop arrival processes: the gaps between request sends at a given mean rate.
//
//   poisson   exponential gaps (gamma with shape 1)
//   gamma     gamma gaps with shape = burstiness (< 1 burstier, > 1 more regular), same mean
//   constant  every gap exactly 1/rate
//   uniform   gaps uniform in [0, 2/rate]
//   normal    gaps normal with mean 1/rate and stddev 0.5/rate, truncated at 0 (redrawn)
//
// Thread-safety: one owner (the generator is internal state).

#include <cstdint>
#include <random>
#include <string>
#include <string_view>

#include "util/result.hpp"

namespace troupe::bench {

enum class ArrivalKind { poisson, gamma, constant, uniform, normal };

// "poisson" -> poisson, ...; invalid_request naming the accepted values otherwise.
Result<ArrivalKind> parse_arrival(std::string_view name);
std::string_view arrival_name(ArrivalKind k) noexcept;

class ArrivalProcess {
 public:
  // Preconditions: rate > 0; burstiness > 0 (used by gamma only).
  ArrivalProcess(ArrivalKind kind, double rate, double burstiness, std::uint64_t seed);
  // Seconds until the next send.
  double next_gap();

 private:
  ArrivalKind kind_;
  double mean_;
  double burstiness_;
  std::mt19937_64 rng_;
};

}  // namespace troupe::bench
