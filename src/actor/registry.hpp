#pragma once
// Registry: names -> actors, local to one ActorSystem.
//
// Readers never wait for writers to build anything: the map is copy-on-write. A writer
// (serialised with other writers on write_mu_) copies the current map, changes the copy and
// publishes it by swapping one shared_ptr under snapshot_mu_ (a reader/writer lock held for
// the pointer copy or swap only, never across a map copy or a search). A lookup takes the
// lock shared for that pointer copy and searches its snapshot with no lock held; readers
// never exclude each other. (libstdc++ 12's std::atomic<std::shared_ptr> does the same with
// a lock bit ThreadSanitizer cannot see, hence an explicit lock.) Registration is rare
// (startup, service discovery), lookups are frequent.

// Entries are not removed when an actor stops: a looked-up ref to a stopped actor reports
// SendStatus::stopped, and `erase` (or a put with replace) clears the name.
//
// Thread-safety: every member may be called from any thread concurrently.

#include <map>
#include <memory>
#include <mutex>
#include <shared_mutex>
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
  std::shared_ptr<const Map> snapshot() const;
  void publish(std::shared_ptr<const Map> next);

  mutable std::shared_mutex snapshot_mu_;  // guards map_ (the pointer, not the map)
  std::shared_ptr<const Map> map_;         // immutable once published
  std::mutex write_mu_;                    // serialises writers
};

}  // namespace troupe::actor
