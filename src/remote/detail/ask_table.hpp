#pragma once
// AskTable: the asks of one node waiting for their replies, by correlation id, with their
// deadlines. Completing an ask removes it, so each callback runs exactly once whichever of
// reply, error, timeout, cancellation or the target's death comes first.
//
// Thread-safety: every member may be called from any thread; a mutex guards the maps for a
// few instructions and is never held while a callback runs (callbacks are returned to the
// caller, who invokes them).

#include <boost/asio/any_completion_handler.hpp>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <unordered_map>
#include <vector>

#include "remote/detail/handshake.hpp"
#include "util/result.hpp"

namespace troupe::remote {

// A reply as received: the message type id and the payload (owned).
struct Reply {
  std::uint32_t type = 0;
  std::vector<std::byte> payload;
};

// Completion of an ask. Runs on the thread that completes it (a connection's reader, the
// node's timer, or the caller on immediate failure): keep it short, never block in it.
// Move-only; call as std::move(cb)(result).
using AskCallback = boost::asio::any_completion_handler<void(Result<Reply>)>;

class AskTable {
 public:
  using Clock = std::chrono::steady_clock;

  struct Added {
    std::uint64_t correlation = 0;
    bool earliest = false;  // the new deadline is now the earliest: re-arm the sweep timer
  };
  Added add(NodeId node, Clock::time_point deadline, AskCallback cb);

  // Removes the ask; an empty callback when it was already completed.
  AskCallback take(std::uint64_t correlation);
  // Removes every ask waiting on `node` (it died or left).
  std::vector<AskCallback> take_node(NodeId node);
  // Removes every ask whose deadline is <= now.
  std::vector<AskCallback> take_expired(Clock::time_point now);
  // Removes everything (shutdown).
  std::vector<AskCallback> take_all();

  std::optional<Clock::time_point> earliest() const;
  std::size_t size() const;

 private:
  struct Entry {
    NodeId node = 0;
    Clock::time_point deadline;
    AskCallback cb;
  };
  mutable std::mutex mu_;
  std::uint64_t next_ = 1;
  std::unordered_map<std::uint64_t, Entry> asks_;
  std::multimap<Clock::time_point, std::uint64_t> deadlines_;
};

}  // namespace troupe::remote
