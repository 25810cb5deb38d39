#pragma once
// ResponseStore: the Responses API's stored responses (store: true), kept in memory for
// GET /v1/responses/{id}, DELETE and previous_response_id. Bounded by entries, bytes and age:
// the oldest entries go first when a bound is passed, and an entry older than max_age is gone.
//
// Thread-safety: every member may be called from any thread (one mutex; each call is short).

#include <chrono>
#include <cstddef>
#include <deque>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "chatfmt/types.hpp"

namespace troupe::server {

struct StoredResponse {
  std::string json;                            // the response object as GET returns it
  std::vector<chatfmt::Message> conversation;  // input and output, for a continuation
  std::string model;
};

struct ResponseStoreLimits {
  std::size_t max_entries = 1024;
  std::size_t max_bytes = 64u << 20;  // the JSON and the conversation texts, together
  std::chrono::seconds max_age{3600};
};

class ResponseStore {
 public:
  using Clock = std::chrono::steady_clock;
  explicit ResponseStore(ResponseStoreLimits limits = {}) : limits_(limits) {}

  void put(const std::string& id, StoredResponse r);
  std::optional<StoredResponse> get(const std::string& id);
  bool erase(const std::string& id);
  std::size_t size();

 private:
  struct Entry {
    StoredResponse response;
    std::size_t bytes = 0;
    Clock::time_point at;
  };
  void expire(Clock::time_point now);  // with mu_ held
  void evict(const std::string& id);   // with mu_ held

  ResponseStoreLimits limits_;
  std::mutex mu_;
  std::unordered_map<std::string, Entry> entries_;
  std::deque<std::string> order_;  // ids, oldest first (may name erased ids)
  std::size_t bytes_ = 0;
};

}  // namespace troupe::server
