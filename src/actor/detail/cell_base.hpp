#pragma once
// CellBase: the untyped part of a local actor (its "cell"): identity, lifecycle, scheduling on
// the shared io_context or on a dedicated thread, system signals (stop, Down, ChildFailed),
// watchers and supervision. Cell<P> (cell.hpp) adds the typed mailbox and the behavior.
// Internal to the runtime; users hold ActorRef / ActorHandle.
//
// Thread-safety: the public members may be called from any thread. Everything under
// "consumer side" runs only on the actor's context: inside one run_light() turn (which the
// scheduled_ flag makes exclusive, like a strand) or on the dedicated thread.

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <typeinfo>
#include <variant>
#include <vector>

#include "actor/types.hpp"

namespace troupe::actor {

class ActorSystem;

namespace detail {

struct SystemCore;

struct CellConfig {
  std::string name;
  Execution execution = Execution::shared;
  std::size_t throughput = 0;  // 0: the default for the execution kind
  std::weak_ptr<class CellBase> supervisor;
  RestartPolicy restart;
};

struct StopSignal {
  StopMode mode = StopMode::drain;
  ExitKind kind = ExitKind::normal;
};
using Signal = std::variant<StopSignal, Down, ChildFailed>;

// Fixed storage for the one outstanding "run" operation posted to the io_context, so that
// scheduling a light actor allocates nothing. At most one post is in flight per cell.
struct alignas(std::max_align_t) HandlerSlot {
  static constexpr std::size_t kSize = 64;  // an io_context op holding a shared_ptr
  unsigned char bytes[kSize];
  bool in_use = false;
};

class CellBase : public std::enable_shared_from_this<CellBase> {
 public:
  CellBase(std::shared_ptr<SystemCore> core, ActorId id, CellConfig config);
  CellBase(const CellBase&) = delete;
  CellBase& operator=(const CellBase&) = delete;
  virtual ~CellBase();

  ActorId id() const noexcept { return id_; }
  const std::string& name() const noexcept { return name_; }
  Execution execution() const noexcept { return execution_; }
  virtual const std::type_info& protocol_type() const noexcept = 0;

  // True once the actor has stopped (on_stop ran, watchers were told). Any thread.
  bool stopped() const noexcept { return stopped_.load(std::memory_order_acquire); }
  // Asks the actor to stop (see StopMode). Idempotent; any thread.
  void request_stop(StopMode mode, ExitKind kind = ExitKind::normal);
  // Registers `watcher` for a Down when this actor stops; at once if it already has.
  void add_watcher(std::weak_ptr<CellBase> watcher);
  // Queues a system signal and wakes the actor. Any thread.
  void post_signal(Signal s);
  // Starts the actor: posts its first turn or starts its thread. Called once by the system.
  void start();
  ActorStats stats() const noexcept;
  ActorSystem& system() const noexcept;

  // Consumer side: called by Actor::quit() from inside a handler.
  void quit(ExitReason reason);

 protected:
  // Producer side, for Cell<P>::enqueue.
  bool closed() const noexcept { return closed_.load(std::memory_order_seq_cst); }
  void count_rejected() noexcept;
  void notify_consumer() noexcept;
  void count_dropped(std::size_t n) noexcept;
  void add_processed(std::size_t n) noexcept {
    processed_.store(processed_.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
  }
  bool stop_pending() const noexcept { return stop_pending_; }
  // True when a system signal waits: process_batch stops early so that a stop request takes
  // effect after the current message.
  bool signals_pending() const noexcept { return has_signals_.load(std::memory_order_relaxed); }
  // Consumer side: a handler threw; applies the restart policy and tells the supervisor.
  void on_failure(std::string what);
  const std::shared_ptr<SystemCore>& core() const noexcept { return core_; }

  // Implemented by Cell<P>; all run on the actor's context.
  virtual std::size_t process_batch(std::size_t max) = 0;  // stops early on stop_pending()
  virtual std::size_t drop_all() noexcept = 0;             // drops queued messages; count
  virtual bool mailbox_empty() const noexcept = 0;         // consumer view, exact
  virtual bool mailbox_pending() const noexcept = 0;       // any thread, may be stale-true
  virtual bool rebuild_behavior() = 0;                     // false when it cannot restart
  virtual void start_behavior() = 0;                       // on_start; may throw
  virtual void stop_behavior(const ExitReason& reason) noexcept = 0;  // on_stop + destroy
  virtual void deliver(const Down& d) = 0;
  virtual void deliver(const ChildFailed& f) = 0;
  virtual bool has_work() = 0;
  virtual void do_work() = 0;
  virtual void idle() = 0;

 private:
  friend struct RunHandler;
  enum class Turn { idle, more };
  void schedule();
  void run_light();
  void run_dedicated();
  void wait_for_mail();
  Turn turn();
  bool begin();
  void process_signals();
  void handle(const StopSignal& s);
  void handle(const Down& d);
  void handle(const ChildFailed& f);
  template <class Fn>
  bool guarded(Fn&& fn);
  void finish();
  void drop_late() noexcept;

  const std::shared_ptr<SystemCore> core_;
  const ActorId id_;
  const std::string name_;
  const Execution execution_;
  const std::size_t throughput_;
  const std::weak_ptr<CellBase> supervisor_;
  const RestartPolicy restart_;

  // Producer-visible state.
  std::atomic<bool> closed_{false};     // tells are rejected
  std::atomic<bool> stopped_{false};    // finished
  std::atomic<bool> scheduled_{false};  // shared: a turn is posted or running
  std::atomic<int> sleep_{0};           // dedicated: kAwake or kSleeping
  std::atomic<bool> has_signals_{false};
  std::atomic<std::uint64_t> processed_{0};
  std::atomic<std::uint64_t> dropped_{0};
  std::atomic<std::uint64_t> rejected_{0};
  std::atomic<std::uint64_t> loop_iterations_{0};
  HandlerSlot handler_slot_;

  std::mutex mu_;  // guards signals_, watchers_, exit_reason_ (rare operations)
  std::vector<Signal> signals_;
  std::vector<std::weak_ptr<CellBase>> watchers_;
  ExitReason exit_reason_;
  bool finished_flag_ = false;  // finish() ran (watchers are told directly from then on)

  // Consumer side.
  bool started_ = false;
  bool finished_ = false;
  bool stop_pending_ = false;  // stop after the current message
  bool draining_ = false;      // stop once the mailbox is empty
  ExitReason stop_reason_;
  // Restart times within the policy window; empty (no allocation) until the first failure.
  std::vector<std::chrono::steady_clock::time_point> restarts_;
};

}  // namespace detail
}  // namespace troupe::actor
