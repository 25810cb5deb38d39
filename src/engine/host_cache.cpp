#include "engine/host_cache.hpp"

#include <algorithm>

namespace troupe::engine {
namespace {

std::int32_t shared_prefix(std::span<const Token> a, std::span<const Token> b) {
  const auto [ia, ib] = std::mismatch(a.begin(), a.end(), b.begin(), b.end());
  return static_cast<std::int32_t>(ia - a.begin());
}

// Whether `a` begins `b` (or equals it).
bool begins(std::span<const Token> a, std::span<const Token> b) {
  return a.size() <= b.size() && std::equal(a.begin(), a.end(), b.begin());
}

}  // namespace

std::optional<HostCache::Match> HostCache::find(std::span<const Token> prompt) const {
  std::optional<Match> best;
  for (std::size_t i = 0; i < entries_.size(); ++i) {
    const std::int32_t n = shared_prefix(prompt, entries_[i].tokens);
    if (n == 0)
      continue;
    if (!best || n > best->length ||
        (n == best->length && entries_[i].used > entries_[best->index].used))
      best = Match{i, n};
  }
  return best;
}

bool HostCache::covers(std::span<const Token> tokens) const {
  return std::any_of(entries_.begin(), entries_.end(),
                     [&](const Entry& e) { return begins(tokens, e.tokens); });
}

bool HostCache::store(std::vector<Token> tokens, State state) {
  Entry entry{std::move(tokens), std::move(state), 0};
  if (!enabled() || entry.bytes() > budget_)
    return false;
  for (std::size_t i = entries_.size(); i-- > 0;) {
    if (begins(entries_[i].tokens, entry.tokens))
      erase(i);
  }
  while (bytes_ + entry.bytes() > budget_) {
    const auto oldest = std::min_element(
        entries_.begin(), entries_.end(),
        [](const Entry& a, const Entry& b) { return a.used < b.used; });
    erase(static_cast<std::size_t>(oldest - entries_.begin()));
  }
  entry.used = ++clock_;
  bytes_ += entry.bytes();
  entries_.push_back(std::move(entry));
  return true;
}

void HostCache::erase(std::size_t index) {
  bytes_ -= entries_[index].bytes();
  entries_.erase(entries_.begin() + static_cast<std::ptrdiff_t>(index));
}

}  // namespace troupe::engine
