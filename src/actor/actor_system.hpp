#pragma once
// ActorSystem: spawns actors, runs the light ones on an io_context, owns the dedicated
// actors' threads, keeps the name registry, and shuts everything down in a defined way.
//
// Two ways to build one:
//   ActorSystem sys(SystemOptions{.threads = 2});  // owns an io_context and 2 threads
//   ActorSystem sys(ioc);  // shares the caller's io_context (e.g. the server's); the caller
//                          // runs it and keeps it running until shutdown() returns
//
// Shutdown: shutdown(mode) asks every live actor to stop (StopMode::drain handles everything
// already accepted, ::drop drops it and counts it), waits until all have stopped, joins the
// dedicated threads and returns a report. Actors spawned during shutdown are stopped at once.
// The destructor calls shutdown(StopMode::drop) if it was not called. Every message a tell
// accepted is either handled or counted as dropped (a tell racing with the stop of its target
// is counted when the target's last ref goes away).
//
// Thread-safety: spawn, registry, stats and executor may be called from any thread, including
// from inside actors. shutdown blocks: call it from a thread that is neither an actor's nor
// (with a shared io_context) the only thread running that io_context.

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <thread>
#include <type_traits>
#include <utility>
#include <vector>

#include "actor/actor.hpp"
#include "actor/actor_ref.hpp"
#include "actor/detail/cell.hpp"
#include "actor/detail/system_core.hpp"
#include "actor/registry.hpp"

namespace troupe::actor {

struct SystemOptions {
  std::size_t threads = 1;  // io_context threads for light actors (at least 1)
};

struct SpawnOptions {
  std::string name;  // for Down/ChildFailed and logs; need not be unique (see Registry)
  Execution execution = Execution::shared;
  // 0: unbounded (memory grows to the peak backlog). Otherwise tells beyond this many queued
  // messages are refused with SendStatus::mailbox_full and counted.
  std::size_t mailbox_capacity = 0;
  // Messages per turn (shared, default 64) or per loop pass (dedicated, default 1024).
  std::size_t throughput = 0;
  // Told (Actor::on_child_failed) whenever this actor's handler throws. May be empty.
  ActorHandle supervisor;
  RestartPolicy restart;  // default: stop on the first failure
};

struct SystemStats {
  std::size_t live_actors = 0;
  std::uint64_t processed = 0;  // messages handled by all actors, live and stopped
  std::uint64_t dropped = 0;    // accepted, then dropped because the target stopped
  std::uint64_t rejected = 0;   // tells refused (stopped target or full mailbox)
};

struct ShutdownReport {
  std::size_t actors_stopped = 0;  // actors that were live when shutdown began
  std::uint64_t dropped = 0;       // total dropped messages (SystemStats::dropped) at the end
  std::uint64_t rejected = 0;      // total rejected tells at the end
};

class ActorSystem {
 public:
  explicit ActorSystem(SystemOptions options = {});
  explicit ActorSystem(boost::asio::io_context& ioc);
  ActorSystem(const ActorSystem&) = delete;
  ActorSystem& operator=(const ActorSystem&) = delete;
  ~ActorSystem();

  // Spawns an actor of type A (derived from Actor<P>) constructed from copies of args; a
  // restart builds a new A from the same copies. With move-only args the actor is built once
  // and cannot be restarted (a failure stops it). The constructor runs here, on the calling
  // thread; on_start runs on the actor's context before its first message. An exception
  // from A's constructor propagates. Any thread.
  template <class A, class... Args>
  ActorRef<typename A::protocol_type> spawn(SpawnOptions options, Args&&... args);

  ShutdownReport shutdown(StopMode mode = StopMode::drain);

  Registry& registry() noexcept { return registry_; }
  SystemStats stats() const;
  // The io_context light actors run on (to co_spawn coroutines that ask, for instance).
  boost::asio::io_context& io_context() noexcept { return *core_->ioc; }

 private:
  template <class P>
  ActorRef<P> spawn_cell(SpawnOptions options, std::unique_ptr<Actor<P>> first,
                         typename detail::Cell<P>::Factory factory);
  detail::CellConfig make_config(SpawnOptions& options);
  void launch(const std::shared_ptr<detail::CellBase>& cell);

  std::unique_ptr<boost::asio::io_context> owned_ioc_;  // when not sharing one
  std::shared_ptr<detail::SystemCore> core_;
  std::optional<boost::asio::executor_work_guard<boost::asio::io_context::executor_type>> work_;
  std::vector<std::thread> io_threads_;
  Registry registry_;
  bool shut_down_ = false;
};

template <class A, class... Args>
ActorRef<typename A::protocol_type> ActorSystem::spawn(SpawnOptions options, Args&&... args) {
  using P = typename A::protocol_type;
  static_assert(std::is_base_of_v<Actor<P>, A>, "A must derive from Actor<P>");
  if constexpr ((std::is_copy_constructible_v<std::decay_t<Args>> && ...)) {
    typename detail::Cell<P>::Factory factory = [... a = std::decay_t<Args>(args)]() {
      return std::unique_ptr<Actor<P>>(std::make_unique<A>(a...));
    };
    auto first = factory();
    return spawn_cell<P>(std::move(options), std::move(first), std::move(factory));
  } else {
    auto first = std::make_unique<A>(std::forward<Args>(args)...);
    return spawn_cell<P>(std::move(options), std::move(first), nullptr);
  }
}

template <class P>
ActorRef<P> ActorSystem::spawn_cell(SpawnOptions options, std::unique_ptr<Actor<P>> first,
                                    typename detail::Cell<P>::Factory factory) {
  const std::size_t capacity = options.mailbox_capacity;
  const ActorId id = core_->next_id.fetch_add(1, std::memory_order_relaxed);
  auto cell = std::make_shared<detail::Cell<P>>(core_, id, make_config(options), capacity,
                                                std::move(first), std::move(factory));
  launch(cell);
  return ActorRef<P>(std::move(cell));
}

}  // namespace troupe::actor
