#pragma once
// Registry: the cluster-wide view of named actors and member metadata, rebuilt from the
// membership table whenever it changes and published copy-on-write. Readers load the current
// snapshot (one atomic shared_ptr copy) and search it with no lock: a lookup never waits for
// a gossip update, and a snapshot stays valid and unchanged for as long as it is held.
//
// Only alive and suspect members contribute: the entries of a dead or departed node vanish
// with the rebuild that records its death.
//
// Thread-safety: snapshot()/lookup*() from any thread; publish() from one writer at a time
// (the node's membership strand).

#include <atomic>
#include <map>
#include <memory>
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

  std::shared_ptr<const RegistrySnapshot> snapshot() const { return snap_.load(); }
  // Every actor published under `name` (several nodes may publish the same name), in node id
  // order; empty when none.
  std::vector<ActorAddress> lookup_all(std::string_view name) const;
  // The first of lookup_all, or nullopt.
  std::optional<ActorAddress> lookup(std::string_view name) const;

 private:
  std::atomic<std::shared_ptr<const RegistrySnapshot>> snap_;
};

}  // namespace troupe::remote
