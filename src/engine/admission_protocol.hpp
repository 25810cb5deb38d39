#pragma once
// The admission actor's messages: its whole interface. A Backend submits each request's
// sequence; the engine (the BatchEngine or the simulated engine) reports every admission's end
// and its own failure; a request's stream reports its cancellation.

#include <cstdint>
#include <variant>

#include "actor/actor_ref.hpp"
#include "engine/engine_protocol.hpp"
#include "engine/sequence_protocol.hpp"
#include "util/error.hpp"

namespace troupe::engine {

// The engine is up: admissions go to `engine` from now on. Sent once, before any submission
// (a Backend refuses requests until its engine runs).
struct EngineReady {
  actor::ActorRef<EngineMessage> engine;
};

// A request's sequence, tokenized and checked, with its SequenceActor spawned (admit.sink
// tells that actor). Admitted at once when a slot is free, else queued (FIFO), else refused
// with overloaded_error() through the actor; refused with the engine's error once it failed.
struct SubmitSequence {
  AdmitSequence admit;
  actor::ActorRef<SequenceMessage> actor;
};

// The request's stream was dropped: a queued sequence leaves the queue (its actor gets
// CancelSequence{release=false}); an admitted one's actor gets CancelSequence{release=true}
// and releases it; a released one needs nothing.
struct CancelSubmission {
  std::uint64_t ticket = 0;
};

// From the engine, exactly once per AdmitSequence it received (finished, released, refused
// or failed): the slot is free again. `successor`, when not 0: a parked admission (below)
// that took the freed slot at once, so the place passes to it and no queued one is admitted.
struct SequenceReleased {
  std::uint64_t ticket = 0;
  std::uint64_t successor = 0;
};

// From the engine: admission `ticket` waits for the slot it named (llama-server's id_slot),
// which another sequence holds. Until it starts (a SequenceReleased naming it as successor) it
// takes no place, so requests for other, idle slots are not held up behind it.
struct SequenceParked {
  std::uint64_t ticket = 0;
};

// From the engine, once: it failed for good. Queued sequences fail with `error`, and so does
// every later submission.
struct EngineFailed {
  Error error;
};

using AdmissionMessage = std::variant<EngineReady, SubmitSequence, CancelSubmission,
                                      SequenceReleased, SequenceParked, EngineFailed>;

}  // namespace troupe::engine
