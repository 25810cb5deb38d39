#pragma once
// How an embedding context turns a sequence's hidden states into one vector (llama.cpp's
// pooling types, with the same values). `model`: what the GGUF says (`<arch>.pooling_type`).

#include <cstdint>
#include <optional>
#include <span>
#include <string_view>

namespace troupe::engine {

enum class Pooling : int { model = -1, none = 0, mean = 1, cls = 2, last = 3, rank = 4 };

// "none", "mean", "cls", "last", "rank", or "model".
constexpr std::string_view pooling_name(Pooling p) noexcept {
  switch (p) {
    case Pooling::none:
      return "none";
    case Pooling::mean:
      return "mean";
    case Pooling::cls:
      return "cls";
    case Pooling::last:
      return "last";
    case Pooling::rank:
      return "rank";
    case Pooling::model:
      break;
  }
  return "model";
}

// The inverse of pooling_name (without "model"); nullopt for anything else.
constexpr std::optional<Pooling> parse_pooling(std::string_view s) noexcept {
  for (Pooling p : {Pooling::none, Pooling::mean, Pooling::cls, Pooling::last, Pooling::rank}) {
    if (pooling_name(p) == s)
      return p;
  }
  return std::nullopt;
}

// llama-server's `embd_normalize`: how a pooled vector is scaled before it is answered.
// -1: not at all; 0: by its largest magnitude into the int16 range (the largest becomes
// +-32760); 1: to unit sum of magnitudes (taxicab); 2: to unit Euclidean length (the
// default); p > 2: to unit p-norm. Sums in double precision; a zero vector stays zero.
inline constexpr std::int32_t embd_norm_none = -1;
inline constexpr std::int32_t embd_norm_euclidean = 2;
void normalize_embedding(std::span<float> v, std::int32_t norm);

}  // namespace troupe::engine
