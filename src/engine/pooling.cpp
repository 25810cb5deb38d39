#include "engine/pooling.hpp"

#include <algorithm>
#include <cmath>

namespace troupe::engine {

void normalize_embedding(std::span<float> v, std::int32_t norm) {
  double sum = 0.0;
  if (norm < 0) {
    return;
  } else if (norm == 0) {
    for (float x : v)
      sum = std::max(sum, std::abs(static_cast<double>(x)));
    sum /= 32760.0;
  } else if (norm == 2) {
    for (float x : v)
      sum += static_cast<double>(x) * static_cast<double>(x);
    sum = std::sqrt(sum);
  } else {
    const double p = norm;
    for (float x : v)
      sum += std::pow(std::abs(static_cast<double>(x)), p);
    sum = std::pow(sum, 1.0 / p);
  }
  if (!(sum > 0.0) || !std::isfinite(sum))
    return;
  const double scale = 1.0 / sum;
  for (float& x : v)
    x = static_cast<float>(static_cast<double>(x) * scale);
}

}  // namespace troupe::engine
