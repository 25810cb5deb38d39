#pragma once
// Registry: names -> actors, local to one ActorSystem.
//
// Readers never wait for writers to build anything: the map is copy-on-write, published
// through an atomic shared_ptr. A lookup loads the current snapshot (the library's atomic
// shared_ptr takes an internal lock bit for the few instructions of the pointer copy, never
// across a map copy) and searches it with no lock held. Writers serialise on a mutex, copy
// the map, change the copy and publish it: registration is rare (startup, service discovery),
// lookups are frequent.
//
// Entries are not removed when an actor stops: a looked-up ref to a stopped actor reports
// SendStatus::stopped, and `erase` (or a put with replace) clears the name.
//
// Thread-safety: every member may be called from any thread concurrently.

#include <atomic>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "actor/actor_ref.hpp"

namespace troupe::actor {

class Registry {
 public:
  Registry();

  // Registers `actor` under `name`. Returns false (and changes nothing) when the name is
  // taken, unless `replace` is true.
  bool put(std::string name, ActorHandle actor, bool replace = false);
  // Removes the name. Returns false when it was not registered.
  bool erase(std::string_view name);
  // The actor registered under `name`, or an empty handle.
  ActorHandle find(std::string_view name) const;
  // The typed ref, or an empty ref when the name is unknown or its protocol is not P.
  template <class P>
  ActorRef<P> find_as(std::string_view name) const {
    return find(name).template as<P>();
  }
  // A consistent snapshot of every registered name.
  std::vector<std::string> names() const;

 private:
  using Map = std::map<std::string, ActorHandle, std::less<>>;
  std::atomic<std::shared_ptr<const Map>> map_;
  std::mutex write_mu_;
};

}  // namespace troupe::actor
