#pragma once
// Actor<Protocol>: the base class of an actor's behavior. Derive from it, implement
// on_message, and spawn it with ActorSystem::spawn. Example:
//
//   struct Add { int n; };
//   struct Get { ReplyTo<int> reply; };           // askable: has a ReplyTo member `reply`
//   using CounterMsg = std::variant<Add, Get>;    // in counter_protocol.hpp
//
//   class Counter : public Actor<CounterMsg> {
//     void on_message(CounterMsg& m) override {
//       std::visit(Overloaded{[&](Add& a) { sum_ += a.n; },
//                             [&](Get& g) { g.reply.send(sum_); }}, m);
//     }
//     int sum_ = 0;
//   };
//
// Execution: the runtime calls every hook on the actor's context, one call at a time, so the
// behavior's state needs no locking and must not be shared with other threads. A light actor
// (Execution::shared) runs in turns on the system's io_context: each turn handles up to
// `throughput` messages, then yields; no two turns overlap (strand semantics). A dedicated
// actor (Execution::dedicated_thread) owns a thread that runs this loop:
//
//   loop:  handle pending system signals (stop, Down, ChildFailed)
//          handle the messages in the mailbox, up to `throughput` of them
//          if has_work(): do_work() once, then loop again (no blocking)
//          else: on_idle(), then block on the mailbox (futex) until a tell or a signal arrives
//
// That is the shape of a batching engine: take every new request and cancellation, run one
// decode step, repeat; sleep with zero CPU and zero wake-ups when there is nothing to do.
// Light actors get the same two hooks: after a turn, has_work() true means another turn is
// posted at once (other actors still run in between).
//
// Failure: an exception escaping on_message, on_start, on_down or on_child_failed is caught;
// an asker in the message gets Errc::internal; the restart policy (SpawnOptions::restart)
// decides between a restart (a fresh behavior from the factory, same mailbox and refs) and a
// stop with ExitKind::failed; the supervisor, if any, gets ChildFailed either way.
//
// Lifetime: the runtime owns the behavior from spawn until the actor stops (then on_stop runs
// and the behavior is destroyed on the actor's context) or the actor is restarted.

#include "actor/actor_ref.hpp"
#include "actor/detail/cell.hpp"
#include "actor/overloaded.hpp"
#include "actor/types.hpp"

namespace troupe::actor {

class ActorSystem;

template <class Protocol>
class Actor {
 public:
  using protocol_type = Protocol;

  Actor() = default;
  Actor(const Actor&) = delete;
  Actor& operator=(const Actor&) = delete;
  virtual ~Actor() = default;

  // Handles one message. May move from it (e.g. keep its ReplyTo to answer later).
  virtual void on_message(Protocol& msg) = 0;

  // Before the first message (and after each restart, on the fresh behavior).
  virtual void on_start() {}
  // When the actor stops or before a restart replaces this behavior. Must not throw; runs
  // even when the stop was caused by a failure.
  virtual void on_stop(const ExitReason& /*reason*/) {}
  // A watched actor stopped (see watch()).
  virtual void on_down(const Down& /*down*/) {}
  // A supervised child's handler threw; `action` says what the runtime did about it.
  virtual void on_child_failed(const ChildFailed& /*failure*/) {}

  // Work beyond messages (the dedicated loop above). has_work() is called after each batch
  // of messages; when it returns true, do_work() runs once and the loop continues without
  // blocking. Both must be cheap to call and must not block on other actors.
  virtual bool has_work() { return false; }
  virtual void do_work() {}
  // The turn ends with nothing to do: no message waiting, has_work() false. A dedicated actor
  // blocks on its mailbox next; a light actor gives up its turn. The place to let go of what
  // only a busy actor needs (an engine's spinning worker threads).
  virtual void on_idle() {}

 protected:
  // This actor's own ref. Valid from on_start on.
  ActorRef<Protocol> self() const {
    return ActorRef<Protocol>(
        std::static_pointer_cast<detail::Cell<Protocol>>(cell_->shared_from_this()));
  }
  // The system that runs this actor; outlives every call into the behavior.
  ActorSystem& system() const noexcept { return cell_->system(); }
  // Stops after the current handler returns: messages still queued are dropped and counted
  // (askers get Errc::unavailable), on_stop(reason) runs, watchers get Down with `reason`.
  void quit(ExitReason reason = {}) { cell_->quit(std::move(reason)); }
  // on_down(Down) will be called when `target` stops (at once, i.e. on a later turn, if it
  // already has). Watching the same target twice yields two Downs.
  void watch(const ActorHandle& target) {
    if (target)
      target.cell()->add_watcher(cell_->weak_from_this());
  }

 private:
  friend class detail::Cell<Protocol>;
  detail::Cell<Protocol>* cell_ = nullptr;  // set by the runtime before on_start
};

}  // namespace troupe::actor
