#include "actor/detail/cell_base.hpp"

#include <boost/asio/post.hpp>
#include <exception>
#include <utility>

#include "actor/detail/system_core.hpp"
#include "util/thread_name.hpp"

namespace troupe::actor::detail {

namespace {

constexpr int kAwake = 0;
constexpr int kSleeping = 1;
constexpr std::size_t kSharedThroughput = 64;
constexpr std::size_t kDedicatedThroughput = 1024;

std::size_t default_throughput(const CellConfig& c) {
  if (c.throughput != 0)
    return c.throughput;
  return c.execution == Execution::shared ? kSharedThroughput : kDedicatedThroughput;
}

// Allocator for the run operation: the cell's HandlerSlot when it is free (always, since at
// most one run is posted at a time), the heap otherwise.
template <class T>
struct SlotAllocator {
  using value_type = T;
  HandlerSlot* slot;

  explicit SlotAllocator(HandlerSlot* s) noexcept : slot(s) {}
  template <class U>
  SlotAllocator(const SlotAllocator<U>& other) noexcept : slot(other.slot) {}  // NOLINT

  T* allocate(std::size_t n) {
    if (!slot->in_use && n * sizeof(T) <= HandlerSlot::kSize) {
      slot->in_use = true;
      return reinterpret_cast<T*>(slot->bytes);
    }
    return std::allocator<T>{}.allocate(n);
  }
  void deallocate(T* p, std::size_t n) noexcept {
    if (reinterpret_cast<unsigned char*>(p) == slot->bytes) {
      slot->in_use = false;
    } else {
      std::allocator<T>{}.deallocate(p, n);
    }
  }
  template <class U>
  friend bool operator==(const SlotAllocator& a, const SlotAllocator<U>& b) noexcept {
    return a.slot == b.slot;
  }
};

}  // namespace

// The operation posted for one turn of a light actor. Holds the cell alive until it ran.
struct RunHandler {
  std::shared_ptr<CellBase> cell;
  using allocator_type = SlotAllocator<void>;
  allocator_type get_allocator() const noexcept { return allocator_type(&cell->handler_slot_); }
  void operator()() { cell->run_light(); }
};

CellBase::CellBase(std::shared_ptr<SystemCore> core, ActorId id, CellConfig config)
    : core_(std::move(core)),
      id_(id),
      name_(std::move(config.name)),
      execution_(config.execution),
      throughput_(default_throughput(config)),
      supervisor_(std::move(config.supervisor)),
      restart_(config.restart) {}

CellBase::~CellBase() = default;

ActorSystem& CellBase::system() const noexcept {
  return *core_->system;
}

ActorStats CellBase::stats() const noexcept {
  return ActorStats{
      processed_.load(std::memory_order_relaxed), dropped_.load(std::memory_order_relaxed),
      rejected_.load(std::memory_order_relaxed), loop_iterations_.load(std::memory_order_relaxed)};
}

void CellBase::count_rejected() noexcept {
  rejected_.fetch_add(1, std::memory_order_relaxed);
  core_->rejected.fetch_add(1, std::memory_order_relaxed);
}

void CellBase::count_dropped(std::size_t n) noexcept {
  if (n == 0)
    return;
  dropped_.fetch_add(n, std::memory_order_relaxed);
  core_->dropped.fetch_add(n, std::memory_order_relaxed);
}

void CellBase::start() {
  if (execution_ == Execution::shared) {
    // A stop request from a concurrent shutdown may have posted the first turn already.
    if (!scheduled_.exchange(true, std::memory_order_seq_cst))
      schedule();
    return;
  }
  auto self = shared_from_this();
  std::lock_guard lock(core_->mu);
  const std::string_view name = name_.empty() ? std::string_view("actor") : name_;
  core_->threads.push_back(util::named_thread(name, [self] { self->run_dedicated(); }));
}

// Producer side of the wake-up protocol. The push before it was a seq_cst exchange on the
// mailbox tail; the consumer stores its flag (seq_cst) before re-checking the tail, so one of
// the two always sees the other: no lost wake-up, no wake-up while the consumer is busy.
void CellBase::notify_consumer() noexcept {
  if (execution_ == Execution::shared) {
    if (!scheduled_.load(std::memory_order_seq_cst) &&
        !scheduled_.exchange(true, std::memory_order_seq_cst)) {
      schedule();
    }
    return;
  }
  if (sleep_.load(std::memory_order_seq_cst) == kSleeping &&
      sleep_.exchange(kAwake, std::memory_order_seq_cst) == kSleeping) {
    sleep_.notify_one();
  }
}

void CellBase::schedule() {
  boost::asio::post(core_->ioc->get_executor(), RunHandler{shared_from_this()});
}

void CellBase::post_signal(Signal s) {
  {
    std::lock_guard lock(mu_);
    signals_.push_back(std::move(s));
    has_signals_.store(true, std::memory_order_seq_cst);
  }
  notify_consumer();
}

void CellBase::request_stop(StopMode mode, ExitKind kind) {
  if (stopped())
    return;
  post_signal(StopSignal{mode, kind});
}

void CellBase::add_watcher(std::weak_ptr<CellBase> watcher) {
  std::unique_lock lock(mu_);
  if (!finished_flag_) {
    watchers_.push_back(std::move(watcher));
    return;
  }
  Down d{id_, name_, exit_reason_};
  lock.unlock();
  if (auto w = watcher.lock())
    w->post_signal(std::move(d));
}

void CellBase::quit(ExitReason reason) {
  if (stop_pending_)
    return;
  stop_pending_ = true;
  stop_reason_ = std::move(reason);
}

// ---- consumer side ----

void CellBase::run_light() {
  loop_iterations_.store(loop_iterations_.load(std::memory_order_relaxed) + 1,
                         std::memory_order_relaxed);
  Turn t = Turn::idle;
  if (!finished_) {
    t = turn();
  } else {
    drop_late();
  }
  if (t == Turn::more) {
    schedule();  // still ours: scheduled_ stays true
    return;
  }
  scheduled_.store(false, std::memory_order_seq_cst);
  // From here on another turn may already run: touch only atomics.
  if ((has_signals_.load(std::memory_order_seq_cst) || mailbox_pending()) &&
      !scheduled_.exchange(true, std::memory_order_seq_cst)) {
    schedule();
  }
}

void CellBase::run_dedicated() {
  if (begin()) {
    while (!finished_) {
      loop_iterations_.store(loop_iterations_.load(std::memory_order_relaxed) + 1,
                             std::memory_order_relaxed);
      if (turn() == Turn::idle && !finished_)
        wait_for_mail();
    }
  }
  drop_late();
}

void CellBase::wait_for_mail() {
  sleep_.store(kSleeping, std::memory_order_seq_cst);
  if (has_signals_.load(std::memory_order_seq_cst) || !mailbox_empty()) {
    sleep_.store(kAwake, std::memory_order_relaxed);
    return;
  }
  // A producer flips sleep_ to kAwake before notifying; wait() returns only once it differs.
  sleep_.wait(kSleeping, std::memory_order_seq_cst);
}

// Runs fn (a call into the behavior); an exception becomes a failure. False when it threw.
template <class Fn>
bool CellBase::guarded(Fn&& fn) {
  try {
    fn();
    return true;
  } catch (const std::exception& e) {
    on_failure(e.what());
  } catch (...) {
    on_failure("unknown exception");
  }
  return false;
}

bool CellBase::begin() {
  started_ = true;
  guarded([this] { start_behavior(); });
  if (stop_pending_) {
    finish();
    return false;
  }
  return true;
}

CellBase::Turn CellBase::turn() {
  if (!started_ && !begin())
    return Turn::idle;
  process_signals();
  std::size_t n = 0;
  if (!stop_pending_)
    n = process_batch(throughput_);
  bool work = false;
  if (!stop_pending_ && !draining_) {
    guarded([&] {
      work = has_work();
      if (work)
        do_work();
      else if (n < throughput_ && mailbox_empty())
        idle();  // the turn ends with nothing to do
    });
  }
  if (stop_pending_ || (draining_ && mailbox_empty())) {
    finish();
    return Turn::idle;
  }
  if (work || n == throughput_ || !mailbox_empty())
    return Turn::more;
  return Turn::idle;
}

void CellBase::process_signals() {
  if (!has_signals_.load(std::memory_order_seq_cst))
    return;
  std::vector<Signal> batch;
  {
    std::lock_guard lock(mu_);
    batch.swap(signals_);
    has_signals_.store(false, std::memory_order_seq_cst);
  }
  for (const Signal& s : batch) {
    if (stop_pending_)
      break;
    std::visit([this](const auto& v) { handle(v); }, s);
  }
}

void CellBase::handle(const StopSignal& s) {
  ExitReason reason{s.kind, s.kind == ExitKind::shutdown ? "system shutdown" : "stop requested"};
  closed_.store(true, std::memory_order_seq_cst);
  if (s.mode == StopMode::drop) {
    quit(std::move(reason));
  } else if (!draining_) {
    draining_ = true;
    stop_reason_ = std::move(reason);
  }
}

void CellBase::handle(const Down& d) {
  guarded([&] { deliver(d); });
}

void CellBase::handle(const ChildFailed& f) {
  guarded([&] { deliver(f); });
}

void CellBase::on_failure(std::string what) {
  const auto now = std::chrono::steady_clock::now();
  std::erase_if(restarts_, [&](auto t) { return now - t > restart_.within; });
  const bool restart = restarts_.size() < restart_.max_restarts;
  if (restart)
    restarts_.push_back(now);
  ChildFailed failed{id_, name_, what,
                     restart ? SupervisionAction::restarted : SupervisionAction::stopped,
                     static_cast<std::uint32_t>(restarts_.size())};
  if (auto sup = supervisor_.lock())
    sup->post_signal(std::move(failed));
  ExitReason reason{ExitKind::failed, std::move(what)};
  if (!restart) {
    stop_pending_ = true;
    stop_reason_ = std::move(reason);
    return;
  }
  stop_behavior(reason);
  bool rebuilt = false;
  try {
    rebuilt = rebuild_behavior();
  } catch (...) {
  }
  if (!rebuilt) {
    stop_pending_ = true;
    stop_reason_ = std::move(reason);
    return;
  }
  guarded([this] { start_behavior(); });  // a throwing on_start counts as another failure
}

void CellBase::finish() {
  closed_.store(true, std::memory_order_seq_cst);
  finished_ = true;
  count_dropped(drop_all());
  stop_behavior(stop_reason_);
  std::vector<std::weak_ptr<CellBase>> watchers;
  {
    std::lock_guard lock(mu_);
    finished_flag_ = true;
    exit_reason_ = stop_reason_;
    watchers.swap(watchers_);
    signals_.clear();
    has_signals_.store(false, std::memory_order_seq_cst);
  }
  stopped_.store(true, std::memory_order_release);
  for (auto& w : watchers) {
    if (auto c = w.lock())
      c->post_signal(Down{id_, name_, stop_reason_});
  }
  core_->remove(id_, processed_.load(std::memory_order_relaxed));
}

// After finish(): a tell that passed the closed check just before it still lands here.
void CellBase::drop_late() noexcept {
  count_dropped(drop_all());
  std::lock_guard lock(mu_);
  signals_.clear();
  has_signals_.store(false, std::memory_order_seq_cst);
}

}  // namespace troupe::actor::detail
