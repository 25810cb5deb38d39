#pragma once
// Admission: the one queue in front of an engine, an actor of the runtime (AdmissionMessage).
// It counts the engine's free sequence slots, admits submissions in FIFO order while one is
// free, queues up to `max_queue` more and refuses the rest (overloaded_error()), frees the
// place of an admission parked for a busy slot (SequenceParked: it waits like a queued one
// and counts against the same bound) until it starts, routes
// cancellations (a queued request leaves the queue, an admitted one is released by its
// SequenceActor) and, once the engine failed, fails what waits and what comes. The local
// Coordinator and the simulated engine both put one in front of their engine, so there is one
// queue and one "overloaded" decision (AdmissionLimits::full) for every Backend.
//
// Thread-safety: the actor's state is its own (one light actor). AdmissionGauges is shared
// with the Backend, which reads it from any thread for stats() and its early refusals.

#include <atomic>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <unordered_map>
#include <unordered_set>

#include "actor/actor.hpp"
#include "actor/actor_system.hpp"
#include "engine/admission_protocol.hpp"
#include "engine/sequence_actor.hpp"

namespace troupe::engine {

struct AdmissionLimits {
  std::int32_t n_parallel = 4;  // sequences the engine runs at once
  std::int32_t max_queue = 64;  // sequences waiting for a slot
  // The overload rule: every slot busy and the queue at its bound.
  bool full(std::int64_t running, std::int64_t queued) const noexcept {
    return running >= n_parallel && queued >= max_queue;
  }
};

// The refusal of a request that finds the queue full (Errc::overloaded: HTTP 503).
Error overloaded_error();

// What the admission actor publishes: gauges and counters (relaxed atomics) and the engine's
// failure once it happened. Any thread.
class AdmissionGauges {
 public:
  std::atomic<std::int64_t> running{0};
  std::atomic<std::int64_t> queued{0};
  std::atomic<std::int64_t> cancelled_total{0};

  // Set once, by the actor; read by health checks.
  void set_failure(const Error& e);
  std::optional<Error> failure() const;

 private:
  mutable std::mutex mu_;  // guards failure_ (read rarely: health checks, submissions)
  std::optional<Error> failure_;
};

class Admission final : public actor::Actor<AdmissionMessage> {
 public:
  Admission(AdmissionLimits limits, std::shared_ptr<AdmissionGauges> gauges);

  void on_message(AdmissionMessage& msg) override;

 private:
  struct Waiting {
    AdmitSequence admit;
    actor::ActorRef<SequenceMessage> actor;
  };
  void submit(SubmitSequence& s);
  void admit(Waiting w);
  void released(const SequenceReleased& r);
  void parked(std::uint64_t ticket);
  void fill();
  std::int64_t running() const {
    return static_cast<std::int64_t>(admitted_.size() - parked_.size());
  }
  std::int64_t waiting() const { return static_cast<std::int64_t>(queue_.size() + parked_.size()); }
  void cancel(std::uint64_t ticket);
  void failed(const Error& error);
  void publish();

  AdmissionLimits limits_;
  std::shared_ptr<AdmissionGauges> gauges_;
  actor::ActorRef<EngineMessage> engine_;
  std::deque<Waiting> queue_;
  std::unordered_map<std::uint64_t, actor::ActorRef<SequenceMessage>> admitted_;
  std::unordered_set<std::uint64_t> parked_;  // admitted, waiting for their slot: no place
  std::optional<Error> failed_;
};

// Spawns an Admission as a light actor of `system` (named "admission").
actor::ActorRef<AdmissionMessage> spawn_admission(actor::ActorSystem& system,
                                                  AdmissionLimits limits,
                                                  const std::shared_ptr<AdmissionGauges>& gauges);

// Spawns a request's SequenceActor on `system` (a light actor named "sequence") around
// `writer`, wired to the engine and the admission: its release tells `engine`
// ReleaseSequence{ticket}, and dropping the request's stream tells `admission`
// CancelSubmission{ticket}. `text` must outlive the actor. Any thread.
actor::ActorRef<SequenceMessage> spawn_sequence(actor::ActorSystem& system, const TokenText& text,
                                                SequenceConfig config, StreamWriter writer,
                                                std::uint64_t ticket,
                                                actor::ActorRef<EngineMessage> engine,
                                                actor::ActorRef<AdmissionMessage> admission);

}  // namespace troupe::engine
