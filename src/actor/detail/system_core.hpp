#pragma once
// SystemCore: the state an ActorSystem shares with its actors (cells keep it alive, so a ref
// that outlives its system still has somewhere to count). Internal.
//
// Thread-safety: counters are atomics; live_, threads_ and shutting_down_ are guarded by mu_.

#include <atomic>
#include <boost/asio/io_context.hpp>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <thread>
#include <unordered_map>
#include <vector>

#include "actor/detail/cell_base.hpp"

namespace troupe::actor::detail {

struct SystemCore {
  SystemCore(ActorSystem& sys, boost::asio::io_context& io) : system(&sys), ioc(&io) {}

  ActorSystem* const system;
  boost::asio::io_context* const ioc;

  std::atomic<ActorId> next_id{1};
  std::atomic<std::uint64_t> processed{0};  // by stopped actors
  std::atomic<std::uint64_t> dropped{0};
  std::atomic<std::uint64_t> rejected{0};

  std::mutex mu;
  std::condition_variable all_stopped;
  std::unordered_map<ActorId, std::shared_ptr<CellBase>> live;
  std::vector<std::thread> threads;  // dedicated actors' threads, joined at shutdown
  bool shutting_down = false;
  StopMode shutdown_mode = StopMode::drain;

  // Registers a new cell; when the system is shutting down it is asked to stop at once.
  void add(const std::shared_ptr<CellBase>& cell);
  // A cell finished: forget it, fold its counters in, wake shutdown().
  void remove(ActorId id, std::uint64_t processed_by_it);
};

}  // namespace troupe::actor::detail
