#include "server/response_store.hpp"

#include <algorithm>

namespace troupe::server {
namespace {

std::size_t size_of(const StoredResponse& r) {
  std::size_t n = r.json.size() + r.model.size();
  for (const auto& m : r.conversation) {
    n += m.content.size() + m.reasoning_content.size() + m.tool_call_id.size() + m.name.size() + 64;
    for (const auto& c : m.tool_calls)
      n += c.id.size() + c.name.size() + c.arguments.size();
  }
  return n;
}

}  // namespace

void ResponseStore::evict(const std::string& id) {
  auto it = entries_.find(id);
  if (it == entries_.end())
    return;
  bytes_ -= it->second.bytes;
  entries_.erase(it);
}

void ResponseStore::expire(Clock::time_point now) {
  while (!order_.empty()) {
    auto it = entries_.find(order_.front());
    const bool gone = it == entries_.end();
    const bool old = !gone && now - it->second.at > limits_.max_age;
    const bool over =
        !gone && (entries_.size() > limits_.max_entries || bytes_ > limits_.max_bytes);
    if (!gone && !old && !over)
      break;
    if (!gone)
      evict(order_.front());
    order_.pop_front();
  }
}

void ResponseStore::put(const std::string& id, StoredResponse r) {
  const auto now = Clock::now();
  std::lock_guard lock(mu_);
  if (entries_.contains(id)) {
    evict(id);
    order_.erase(std::find(order_.begin(), order_.end(), id));
  }
  Entry e{std::move(r), 0, now};
  e.bytes = size_of(e.response);
  bytes_ += e.bytes;
  entries_.insert_or_assign(id, std::move(e));
  order_.push_back(id);
  expire(now);
}

std::optional<StoredResponse> ResponseStore::get(const std::string& id) {
  std::lock_guard lock(mu_);
  expire(Clock::now());
  auto it = entries_.find(id);
  if (it == entries_.end())
    return std::nullopt;
  return it->second.response;
}

bool ResponseStore::erase(const std::string& id) {
  std::lock_guard lock(mu_);
  const bool found = entries_.contains(id);
  evict(id);
  return found;
}

std::size_t ResponseStore::size() {
  std::lock_guard lock(mu_);
  expire(Clock::now());
  return entries_.size();
}

}  // namespace troupe::server
