#pragma once
// Vocabulary of the actor runtime: ids, stop modes, exit reasons, the system messages an actor
// can receive (Down, ChildFailed) and the outcome of a tell. Plain values, freely copyable,
// no thread-safety concerns.

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

#include "util/error.hpp"

namespace troupe::actor {

// Unique within one ActorSystem, never reused. 0 means "no actor".
using ActorId = std::uint64_t;

// How an actor stops.
enum class StopMode {
  drain,  // the mailbox is closed at once (later tells get SendStatus::stopped), every message
          // already accepted is handled, then the actor stops; has_work()/do_work() are no
          // longer called while draining
  drop,   // stop after the current message; messages still queued are dropped and counted
          // (askers among them get Errc::unavailable)
};

enum class ExitKind {
  normal,    // quit() or a stop request
  failed,    // a handler threw and the restart policy said stop (or its limit was reached)
  shutdown,  // the ActorSystem shut down
};

struct ExitReason {
  ExitKind kind = ExitKind::normal;
  std::string what;  // the exception's what() for `failed`; free text otherwise
  friend bool operator==(const ExitReason&, const ExitReason&) = default;
};

// Delivered to Actor::on_down of every watcher when the watched actor stops.
struct Down {
  ActorId id = 0;
  std::string name;  // SpawnOptions::name of the stopped actor
  ExitReason reason;
};

enum class SupervisionAction { restarted, stopped };

// Delivered to Actor::on_child_failed of the supervisor when a supervised actor's handler threw.
struct ChildFailed {
  ActorId id = 0;
  std::string name;
  std::string what;  // the exception's what()
  SupervisionAction action = SupervisionAction::stopped;
  std::uint32_t restarts = 0;  // restarts within the policy window, this one included
};

// Outcome of ActorRef::tell. Everything but `ok` means the message was not enqueued (and was
// destroyed; an asker in it gets the matching error).
enum class SendStatus {
  ok,
  stopped,       // the target stopped (or is draining towards a stop); counted as rejected
  mailbox_full,  // the target's bounded mailbox is at capacity; counted as rejected
  null_ref,      // the ActorRef is empty
};

enum class Execution {
  shared,            // a light actor: runs on the system's io_context, one turn at a time
  dedicated_thread,  // its own thread, blocked on the mailbox (futex) while idle
};

// One-for-one restart: after a handler throws, the actor is rebuilt from its factory (the
// mailbox and every ActorRef stay valid) while fewer than max_restarts restarts happened
// within `within`; otherwise it stops with ExitKind::failed. max_restarts = 0: always stop.
struct RestartPolicy {
  std::uint32_t max_restarts = 0;
  std::chrono::steady_clock::duration within = std::chrono::minutes(1);
};

// Counters of one actor. Counters only grow.
struct ActorStats {
  std::uint64_t processed = 0;        // messages handled (handler returned or threw)
  std::uint64_t dropped = 0;          // accepted but dropped because the actor stopped
  std::uint64_t rejected = 0;         // tells refused (stopped or mailbox full)
  std::uint64_t loop_iterations = 0;  // turns (shared) or loop passes (dedicated)
};

// The Error an asker sees for a failed tell: stopped/null_ref -> Errc::unavailable,
// mailbox_full -> Errc::overloaded.
Error to_error(SendStatus s);

}  // namespace troupe::actor
