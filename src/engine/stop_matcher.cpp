#include "engine/stop_matcher.hpp"

#include <algorithm>

namespace troupe::engine {

StopMatcher::StopMatcher(std::vector<std::string> stops) {
  for (auto& s : stops) {
    if (!s.empty())
      stops_.push_back(std::move(s));
  }
}

StopMatcher::Result StopMatcher::feed(std::string_view text) {
  Result r;
  if (finished_)
    return r;
  pending_.append(text);
  if (stops_.empty()) {
    r.emit = std::move(pending_);
    pending_.clear();
    return r;
  }
  // The earliest occurrence wins; at the same position the longest stop string.
  std::size_t best = std::string::npos;
  const std::string* best_stop = nullptr;
  for (const auto& s : stops_) {
    const std::size_t at = pending_.find(s);
    if (at == std::string::npos)
      continue;
    if (at < best || (at == best && s.size() > best_stop->size())) {
      best = at;
      best_stop = &s;
    }
  }
  if (best_stop) {
    r.emit = pending_.substr(0, best);
    r.matched = *best_stop;
    pending_.clear();
    finished_ = true;
    return r;
  }
  const std::size_t keep = held_suffix();
  r.emit = pending_.substr(0, pending_.size() - keep);
  pending_.erase(0, pending_.size() - keep);
  return r;
}

std::string StopMatcher::flush() {
  std::string out = finished_ ? std::string{} : std::move(pending_);
  pending_.clear();
  return out;
}

std::size_t StopMatcher::held_suffix() const {
  std::size_t best = 0;
  const std::string_view p(pending_);
  for (const auto& s : stops_) {
    const std::size_t max_len = std::min(s.size() - 1, p.size());
    for (std::size_t len = max_len; len > best; --len) {
      if (p.substr(p.size() - len) == std::string_view(s).substr(0, len)) {
        best = len;
        break;
      }
    }
  }
  return best;
}

}  // namespace troupe::engine
