#pragma once
// Router: which worker gets a request. Pure policy, no I/O, no clock: the gateway feeds it
// the candidates (the live workers serving the model, with their load) and the request's
// prompt, and it answers with one candidate and the reason.
//
// Policy: least outstanding work relative to capacity, with prefix affinity. The prompt's
// leading bytes are hashed at every `block` bytes (up to `max_prefix` bytes); each hash
// remembers the worker that last served a prompt with that prefix. A new request goes to the
// worker remembered for its longest known prefix, unless that worker has `slack` or more
// requests outstanding beyond the least loaded candidate (then least loaded wins and becomes
// the prefix's new home). Prompts shorter than one block use least loaded only.
//
// The affinity table is bounded (`max_entries`, least recently used evicted).
//
// Thread-safety: none; the gateway calls it under its own mutex.

#include <cstddef>
#include <cstdint>
#include <list>
#include <span>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "engine/task.hpp"

namespace troupe::cluster {

struct RouterOptions {
  std::size_t block = 64;         // bytes per affinity block
  std::size_t max_prefix = 4096;  // bytes of prompt hashed at most
  std::size_t max_entries = 1u << 16;
  std::int64_t slack = 4;  // extra outstanding requests affinity may cost
};

struct Candidate {
  std::uint64_t node = 0;
  std::int64_t outstanding = 0;  // requests in flight there (our view, or gossip if higher)
  std::int64_t capacity = 1;     // sequences it decodes together (>= 1)
};

enum class RouteReason { least_loaded, affinity, affinity_overruled };

struct RouteDecision {
  std::size_t index = 0;  // into the candidates
  RouteReason reason = RouteReason::least_loaded;
  std::size_t prefix_bytes = 0;  // the matched prefix length for affinity
};

// The cumulative hashes of the prompt's text at each block boundary, shortest first. A chat
// prompt is hashed as its role/content pairs in order; a token prompt as its token bytes.
std::vector<std::uint64_t> prefix_hashes(const engine::Prompt& prompt, std::size_t block,
                                         std::size_t max_prefix);

class Router {
 public:
  explicit Router(RouterOptions options = {});

  // Picks one of `candidates` (precondition: not empty) for a prompt with `hashes` (from
  // prefix_hashes) and records the choice as the home of every hashed prefix.
  RouteDecision route(std::span<const Candidate> candidates, std::span<const std::uint64_t> hashes);

  // Prefixes remembered. A prefix homed on a node that is no longer a candidate is ignored
  // (and rehomed when next routed).
  std::size_t entries() const noexcept { return map_.size(); }
  const RouterOptions& options() const noexcept { return options_; }

 private:
  struct Entry {
    std::uint64_t node = 0;
    std::list<std::uint64_t>::iterator lru;
  };
  void remember(std::uint64_t hash, std::uint64_t node);

  RouterOptions options_;
  std::unordered_map<std::uint64_t, Entry> map_;
  std::list<std::uint64_t> lru_;  // most recent first
};

std::string_view route_reason_name(RouteReason r) noexcept;

}  // namespace troupe::cluster
