#include "bench/arrival.hpp"

namespace troupe::bench {

Result<ArrivalKind> parse_arrival(std::string_view name) {
  for (auto k : {ArrivalKind::poisson, ArrivalKind::gamma, ArrivalKind::constant,
                 ArrivalKind::uniform, ArrivalKind::normal}) {
    if (arrival_name(k) == name)
      return k;
  }
  return Error{Errc::invalid_request,
               "unknown arrival '" + std::string(name) +
                   "': expected poisson, gamma, constant, uniform or normal",
               "arrival"};
}

std::string_view arrival_name(ArrivalKind k) noexcept {
  switch (k) {
    case ArrivalKind::poisson:
      return "poisson";
    case ArrivalKind::gamma:
      return "gamma";
    case ArrivalKind::constant:
      return "constant";
    case ArrivalKind::uniform:
      return "uniform";
    case ArrivalKind::normal:
      return "normal";
  }
  return "?";
}

ArrivalProcess::ArrivalProcess(ArrivalKind kind, double rate, double burstiness, std::uint64_t seed)
    : kind_(kind), mean_(1.0 / rate), burstiness_(burstiness), rng_(seed) {}

double ArrivalProcess::next_gap() {
  switch (kind_) {
    case ArrivalKind::poisson:
      return std::exponential_distribution<double>(1.0 / mean_)(rng_);
    case ArrivalKind::gamma:
      return std::gamma_distribution<double>(burstiness_, mean_ / burstiness_)(rng_);
    case ArrivalKind::constant:
      return mean_;
    case ArrivalKind::uniform:
      return std::uniform_real_distribution<double>(0.0, 2.0 * mean_)(rng_);
    case ArrivalKind::normal: {
      std::normal_distribution<double> d(mean_, 0.5 * mean_);
      for (;;) {
        double g = d(rng_);
        if (g >= 0)
          return g;
      }
    }
  }
  return mean_;
}

}  // namespace troupe::bench
