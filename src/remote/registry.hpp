#pragma once
// Registry: the cluster-wide view of named actors and member metadata, rebuilt from the
// membership table whenever it changes and published copy-on-write. Readers load the current
// snapshot (a shared_ptr copy under a mutex held only for that copy or the writer's pointer
// swap, never while a snapshot is built) and search it with no lock: a lookup never waits for
// a gossip update to be built, and a snapshot stays valid and unchanged while it is held.
// (Not std::atomic<std::shared_ptr>: libstdc++ 12 guards it with a lock bit ThreadSanitizer
// cannot see, so every TSan run reported a false race.)
//
// Only alive and suspect members contribute: the entries of a dead or departed node vanish
// with the rebuild that records its death.
//
// Thread-safety: snapshot()/lookup*() from any thread; publish() from one writer at a time
// (the node's membership strand).

#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "remote/membership_protocol.hpp"

namespace troupe::remote {

// Where a named actor lives.
struct ActorAddress {
  NodeId node = 0;
  std::string address;  // the node's "host:port"
  std::uint64_t actor = 0;
  friend bool operator==(const ActorAddress&, const ActorAddress&) = default;
};

struct RegistrySnapshot {
  std::map<std::string, std::vector<ActorAddress>, std::less<>> names;
  std::vector<MemberRecord> members;  // live members, this node included
  std::uint64_t version = 0;          // increases with every publish
};

class Registry {
 public:
  Registry();

  // Builds and publishes a new snapshot from `self` and the other members.
  void publish(const MemberRecord& self, const std::vector<MemberRecord>& others);

  std::shared_ptr<const RegistrySnapshot> snapshot() const {
    std::lock_guard lock(mu_);
    return snap_;
  }
  // Every actor published under `name` (several nodes may publish the same name), in node id
  // order; empty when none.
  std::vector<ActorAddress> lookup_all(std::string_view name) const;
  // The first of lookup_all, or nullopt.
  std::optional<ActorAddress> lookup(std::string_view name) const;

 private:
  mutable std::mutex mu_;  // guards snap_ (the pointer, not the snapshot)
  std::shared_ptr<const RegistrySnapshot> snap_;
};

}  // namespace troupe::remote
