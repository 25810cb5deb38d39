#include "remote/detail/ask_table.hpp"

namespace troupe::remote {

AskTable::Added AskTable::add(NodeId node, Clock::time_point deadline, AskCallback cb) {
  std::lock_guard lock(mu_);
  std::uint64_t id = next_++;
  bool earliest = deadlines_.empty() || deadline < deadlines_.begin()->first;
  asks_.emplace(id, Entry{node, deadline, std::move(cb)});
  deadlines_.emplace(deadline, id);
  return {id, earliest};
}

AskCallback AskTable::take(std::uint64_t correlation) {
  std::lock_guard lock(mu_);
  auto it = asks_.find(correlation);
  if (it == asks_.end())
    return {};
  auto [lo, hi] = deadlines_.equal_range(it->second.deadline);
  for (auto d = lo; d != hi; ++d) {
    if (d->second == correlation) {
      deadlines_.erase(d);
      break;
    }
  }
  AskCallback cb = std::move(it->second.cb);
  asks_.erase(it);
  return cb;
}

std::vector<AskCallback> AskTable::take_node(NodeId node) {
  std::vector<std::uint64_t> ids;
  {
    std::lock_guard lock(mu_);
    for (const auto& [id, e] : asks_) {
      if (e.node == node)
        ids.push_back(id);
    }
  }
  std::vector<AskCallback> out;
  for (auto id : ids) {
    if (auto cb = take(id))
      out.push_back(std::move(cb));
  }
  return out;
}

std::vector<AskCallback> AskTable::take_expired(Clock::time_point now) {
  std::vector<AskCallback> out;
  std::lock_guard lock(mu_);
  while (!deadlines_.empty() && deadlines_.begin()->first <= now) {
    auto it = asks_.find(deadlines_.begin()->second);
    deadlines_.erase(deadlines_.begin());
    if (it == asks_.end())
      continue;
    out.push_back(std::move(it->second.cb));
    asks_.erase(it);
  }
  return out;
}

std::vector<AskCallback> AskTable::take_all() {
  std::vector<AskCallback> out;
  std::lock_guard lock(mu_);
  for (auto& [id, e] : asks_)
    out.push_back(std::move(e.cb));
  asks_.clear();
  deadlines_.clear();
  return out;
}

std::optional<AskTable::Clock::time_point> AskTable::earliest() const {
  std::lock_guard lock(mu_);
  if (deadlines_.empty())
    return std::nullopt;
  return deadlines_.begin()->first;
}

std::size_t AskTable::size() const {
  std::lock_guard lock(mu_);
  return asks_.size();
}

}  // namespace troupe::remote
