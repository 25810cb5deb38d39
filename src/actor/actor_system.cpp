#include "actor/actor_system.hpp"

#include <algorithm>
#include <utility>

#include "util/thread_name.hpp"

namespace troupe::actor {

namespace detail {

void SystemCore::add(const std::shared_ptr<CellBase>& cell) {
  bool stop_now = false;
  StopMode mode = StopMode::drop;
  {
    std::lock_guard lock(mu);
    live.emplace(cell->id(), cell);
    stop_now = shutting_down;
    mode = shutdown_mode;
  }
  if (stop_now)
    cell->request_stop(mode, ExitKind::shutdown);
}

void SystemCore::remove(ActorId id, std::uint64_t processed_by_it) {
  processed.fetch_add(processed_by_it, std::memory_order_relaxed);
  std::shared_ptr<CellBase> keep;  // released after the lock: it may be the last reference
  std::lock_guard lock(mu);
  auto it = live.find(id);
  if (it != live.end()) {
    keep = std::move(it->second);
    live.erase(it);
  }
  if (live.empty())
    all_stopped.notify_all();
}

}  // namespace detail

ActorSystem::ActorSystem(SystemOptions options)
    : owned_ioc_(std::make_unique<boost::asio::io_context>()),
      core_(std::make_shared<detail::SystemCore>(*this, *owned_ioc_)) {
  work_.emplace(owned_ioc_->get_executor());
  const std::size_t n = std::max<std::size_t>(1, options.threads);
  io_threads_.reserve(n);
  for (std::size_t i = 0; i < n; ++i) {
    io_threads_.push_back(util::named_thread("actor-io", [io = owned_ioc_.get()] { io->run(); }));
  }
}

ActorSystem::ActorSystem(boost::asio::io_context& ioc)
    : core_(std::make_shared<detail::SystemCore>(*this, ioc)) {}

ActorSystem::~ActorSystem() {
  if (!shut_down_)
    shutdown(StopMode::drop);
  work_.reset();
  for (auto& t : io_threads_)
    t.join();
}

detail::CellConfig ActorSystem::make_config(SpawnOptions& options) {
  detail::CellConfig c;
  c.name = std::move(options.name);
  c.execution = options.execution;
  c.throughput = options.throughput;
  c.supervisor = options.supervisor.cell();
  c.restart = options.restart;
  return c;
}

void ActorSystem::launch(const std::shared_ptr<detail::CellBase>& cell) {
  core_->add(cell);
  cell->start();
}

ShutdownReport ActorSystem::shutdown(StopMode mode) {
  std::vector<std::shared_ptr<detail::CellBase>> cells;
  {
    std::lock_guard lock(core_->mu);
    core_->shutting_down = true;
    core_->shutdown_mode = mode;
    cells.reserve(core_->live.size());
    for (auto& [id, cell] : core_->live)
      cells.push_back(cell);
  }
  for (auto& c : cells)
    c->request_stop(mode, ExitKind::shutdown);
  std::vector<std::thread> threads;
  {
    std::unique_lock lock(core_->mu);
    core_->all_stopped.wait(lock, [&] { return core_->live.empty(); });
    threads.swap(core_->threads);
  }
  for (auto& t : threads)
    t.join();
  shut_down_ = true;
  return ShutdownReport{cells.size(), core_->dropped.load(), core_->rejected.load()};
}

SystemStats ActorSystem::stats() const {
  SystemStats s;
  s.processed = core_->processed.load();
  s.dropped = core_->dropped.load();
  s.rejected = core_->rejected.load();
  std::lock_guard lock(core_->mu);
  s.live_actors = core_->live.size();
  for (const auto& [id, cell] : core_->live)
    s.processed += cell->stats().processed;
  return s;
}

}  // namespace troupe::actor
