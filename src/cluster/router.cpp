#include "cluster/router.hpp"

#include <cstring>

namespace troupe::cluster {

namespace {

constexpr std::uint64_t kFnvOffset = 1469598103934665603ull;
constexpr std::uint64_t kFnvPrime = 1099511628211ull;

// The bytes affinity looks at: at most `max` bytes of the prompt in a canonical form.
std::string prompt_bytes(const engine::Prompt& prompt, std::size_t max) {
  std::string out;
  if (const auto* s = std::get_if<std::string>(&prompt)) {
    out.assign(*s, 0, std::min(max, s->size()));
  } else if (const auto* t = std::get_if<std::vector<engine::Token>>(&prompt)) {
    const std::size_t n = std::min(max / sizeof(engine::Token), t->size());
    out.resize(n * sizeof(engine::Token));
    std::memcpy(out.data(), t->data(), out.size());
  } else {
    for (const auto& m : std::get<std::vector<engine::ChatMessage>>(prompt)) {
      if (out.size() >= max)
        break;
      out += m.role;
      out += '\x1f';
      out += m.content;
      out += '\x1e';
    }
    if (out.size() > max)
      out.resize(max);
  }
  return out;
}

// a is less loaded than b: lower outstanding/capacity, then fewer outstanding.
bool less_loaded(const Candidate& a, const Candidate& b) {
  const auto la = a.outstanding * b.capacity;
  const auto lb = b.outstanding * a.capacity;
  if (la != lb)
    return la < lb;
  return a.outstanding < b.outstanding;
}

}  // namespace

std::vector<std::uint64_t> prefix_hashes(const engine::Prompt& prompt, std::size_t block,
                                         std::size_t max_prefix) {
  std::vector<std::uint64_t> out;
  if (block == 0)
    return out;
  const std::string bytes = prompt_bytes(prompt, max_prefix);
  std::uint64_t h = kFnvOffset;
  for (std::size_t i = 0; i < bytes.size(); ++i) {
    h = (h ^ static_cast<unsigned char>(bytes[i])) * kFnvPrime;
    if ((i + 1) % block == 0)
      out.push_back(h);
  }
  return out;
}

Router::Router(RouterOptions options) : options_(options) {}

RouteDecision Router::route(std::span<const Candidate> candidates,
                            std::span<const std::uint64_t> hashes) {
  RouteDecision d;
  for (std::size_t i = 1; i < candidates.size(); ++i) {
    if (less_loaded(candidates[i], candidates[d.index]))
      d.index = i;
  }
  const std::int64_t least = candidates[d.index].outstanding;
  for (std::size_t k = hashes.size(); k-- > 0;) {
    auto it = map_.find(hashes[k]);
    if (it == map_.end())
      continue;
    std::size_t home = candidates.size();
    for (std::size_t i = 0; i < candidates.size(); ++i) {
      if (candidates[i].node == it->second.node)
        home = i;
    }
    if (home == candidates.size())
      continue;  // that worker is gone; a shorter prefix may still be homed somewhere
    if (candidates[home].outstanding - least < options_.slack) {
      d.index = home;
      d.reason = RouteReason::affinity;
    } else {
      d.reason = RouteReason::affinity_overruled;
    }
    d.prefix_bytes = (k + 1) * options_.block;
    break;
  }
  for (auto h : hashes)
    remember(h, candidates[d.index].node);
  return d;
}

void Router::remember(std::uint64_t hash, std::uint64_t node) {
  auto it = map_.find(hash);
  if (it != map_.end()) {
    it->second.node = node;
    lru_.splice(lru_.begin(), lru_, it->second.lru);
    return;
  }
  lru_.push_front(hash);
  map_.emplace(hash, Entry{node, lru_.begin()});
  if (map_.size() > options_.max_entries) {
    map_.erase(lru_.back());
    lru_.pop_back();
  }
}

std::string_view route_reason_name(RouteReason r) noexcept {
  switch (r) {
    case RouteReason::least_loaded:
      return "least_loaded";
    case RouteReason::affinity:
      return "affinity";
    case RouteReason::affinity_overruled:
      return "affinity_overruled";
  }
  return "unknown";
}

}  // namespace troupe::cluster
