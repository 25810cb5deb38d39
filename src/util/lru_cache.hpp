#pragma once
// LruCache: values by string key, at most `capacity` of them; the least recently used goes
// first when a new one would exceed it.
//
// Thread-safety: none; callers that share one lock it.

#include <cstddef>
#include <list>
#include <string>
#include <unordered_map>
#include <utility>

namespace troupe::util {

template <class Value>
class LruCache {
 public:
  explicit LruCache(std::size_t capacity) : capacity_(capacity) {}

  // The value under `key`, now the most recently used; null when absent.
  Value* find(const std::string& key) {
    const auto it = index_.find(key);
    if (it == index_.end())
      return nullptr;
    order_.splice(order_.begin(), order_, it->second);
    return &it->second->second;
  }

  // Stores `value` under `key` (replacing one there) as the most recently used.
  void put(std::string key, Value value) {
    if (Value* old = find(key)) {
      *old = std::move(value);
      return;
    }
    order_.emplace_front(key, std::move(value));
    index_.emplace(std::move(key), order_.begin());
    if (order_.size() > capacity_) {
      index_.erase(order_.back().first);
      order_.pop_back();
    }
  }

  std::size_t size() const noexcept { return order_.size(); }

 private:
  using Entry = std::pair<std::string, Value>;
  std::size_t capacity_;
  std::list<Entry> order_;
  std::unordered_map<std::string, typename std::list<Entry>::iterator> index_;
};

}  // namespace troupe::util
