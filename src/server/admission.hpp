#pragma once
// ConnectionTable: which connections are open, from which address, doing what; decides
// whether a new connection is admitted, which old ones to reclaim for it, or why it is
// refused. Keeps Metrics' per-state gauges and refusal/reclaim counters in step.
//
// Admission of a connection from address A, in order:
//   1. A has max_per_ip open: refused (per_ip_limit).
//   2. A has max_pending_per_ip without a complete request (idle, reading headers or body):
//      refused (pending_per_ip). Not reclaimed: the address's youngest connections are most
//      often a burst of real requests whose bytes the server has not read yet.
//   3. max_connections are open: the oldest idle or header-sending connection of any address
//      is reclaimed, or, with none, refused (connection_limit).
// "Oldest" is the one that entered its state longest ago. A reclaimed connection is marked
// `closing` at once and no longer counts; its session sees that at its next enter() (false)
// and the caller closes it through Slot::control.
//
// Thread-safety: every member may be called from any thread; one mutex, held for a lookup
// and, at a limit, one scan of the open connections (at most max_connections + those
// closing). Shared because sessions on many strands change state and the acceptor reads them.

#include <chrono>
#include <cstddef>
#include <list>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "server/connection_state.hpp"
#include "server/metrics.hpp"

namespace troupe::server {

namespace detail {
struct SessionControl;  // the Server's handle on a session; the table only carries it
}

struct AdmissionLimits {
  std::size_t max_connections = 1024;
  std::size_t max_per_ip = 256;          // 0: no limit
  std::size_t max_pending_per_ip = 128;  // 0: no limit
};

class ConnectionTable {
 public:
  using Clock = std::chrono::steady_clock;

  // One admitted connection. Its state is read and written under the table's mutex only.
  struct Slot {
    std::string address;
    std::shared_ptr<detail::SessionControl> control;  // given to admit(); constant
    ConnState state = ConnState::idle;
    Clock::time_point since;                         // when it entered `state`
    bool listed = false;                             // in the table (not yet released)
    std::list<std::shared_ptr<Slot>>::iterator pos;  // where, while listed
  };
  using SlotPtr = std::shared_ptr<Slot>;

  struct Decision {
    SlotPtr slot;                         // admitted (state idle); null when refused
    std::optional<RefusalCause> refused;  // why not admitted
    std::vector<SlotPtr> reclaimed;       // now `closing`: the caller closes them
  };

  // `metrics` must outlive the table.
  ConnectionTable(AdmissionLimits limits, Metrics& metrics);
  ConnectionTable(const ConnectionTable&) = delete;
  ConnectionTable& operator=(const ConnectionTable&) = delete;

  // Decides on a new connection from `address` (see above) and counts the outcome.
  // `control` is stored in the new slot (the table never uses it).
  Decision admit(const std::string& address,
                 std::shared_ptr<detail::SessionControl> control = nullptr,
                 Clock::time_point now = Clock::now());

  // Moves `slot` to `to` (not closing). Returns false, changing nothing, when the slot was
  // reclaimed: the session must close.
  bool enter(Slot& slot, ConnState to, Clock::time_point now = Clock::now());

  // The connection ended: forgets it. Idempotent.
  void release(const SlotPtr& slot);

  // Connections admitted and neither reclaimed nor released.
  std::size_t open() const;
  // Open connections from `address`, and those of them without a complete request.
  std::size_t open_from(const std::string& address) const;
  std::size_t pending_from(const std::string& address) const;
  // At least three quarters of max_connections open: timeouts for clients' bytes shrink.
  bool under_pressure() const;
  // Every slot not yet released (for the drain at shutdown).
  std::vector<SlotPtr> slots() const;
  std::size_t size() const;  // slots not yet released, closing ones included

 private:
  struct PerAddress {
    std::size_t open = 0;
    std::size_t pending = 0;
  };
  // The reclaimable slot that entered its state first. Needs mu_.
  SlotPtr oldest_reclaimable() const;
  // Marks `slot` closing and takes it out of the counts. Needs mu_.
  void reclaim_locked(const SlotPtr& slot, ReclaimCause cause);
  void uncount_locked(const Slot& slot);

  const AdmissionLimits limits_;
  Metrics& metrics_;
  mutable std::mutex mu_;
  std::list<SlotPtr> slots_;  // admission order
  std::unordered_map<std::string, PerAddress> per_address_;
  std::size_t open_ = 0;
};

}  // namespace troupe::server
