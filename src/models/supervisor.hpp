#pragma once
// ModelSupervisor: the actor that owns the model table of a ModelSet and each model's state
// machine:
//
//   unloaded --(a request, POST /models/load)--> loading --> loaded --(idle)--> unloading
//      ^                                            |                              |
//      |                                            +--> failed (reason)           |
//      +-------------------------------------------------------------------------+
//
// failed behaves as unloaded: the next request tries the load again (the file may have been
// fixed). Rules:
// - A request for a model that is not loaded waits in that model's queue (bounded by its
//   max_queue: more is Errc::overloaded) until the model is loaded; a failed load fails the
//   queue with the reason, and nothing else.
// - A load needs room: fewer than max_loaded models loaded, loading or unloading, and the
//   estimated memory of those plus this one within the budget. Without room the load waits
//   (loads start in request order) and the least recently used model is made to leave: an
//   idle one (no running or queued request) unloads at once; when every loaded model is busy,
//   the least recently used one is marked to unload when its requests end (new requests for
//   it wait meanwhile, so it cannot starve the waiting load). A running request is never cut.
// - A model whose estimate alone exceeds the budget is refused (Errc::invalid_request) and
//   marked failed with the reason.
// - An idle model unloads after its keep-alive: the last request's keep_alive, else the
//   set's idle_unload (negative: never; 0: at once).
//
// Thread-safety: an actor; its state is touched only by its handler. Loads and unloads run as
// jobs on the given executor (the model-load threads) and report back with tells.

#include <boost/asio/steady_timer.hpp>
#include <boost/asio/thread_pool.hpp>
#include <chrono>
#include <deque>
#include <memory>
#include <vector>

#include "actor/actor.hpp"
#include "models/board.hpp"
#include "models/model_set.hpp"
#include "models/supervisor_protocol.hpp"

namespace troupe::models {

enum class ModelState { unloaded, loading, loaded, unloading, failed };

// "unloaded", "loading", "loaded", "unloading", "failed".
const char* state_name(ModelState s);

class ModelSupervisor final : public actor::Actor<SupervisorMessage> {
 public:
  // `board` and `jobs` outlive the actor.
  ModelSupervisor(ModelSetOptions options, ModelLoader loader, ModelBoard& board,
                  boost::asio::thread_pool::executor_type jobs);

  void on_message(SupervisorMessage& m) override;
  void on_stop(const actor::ExitReason& reason) override;

 private:
  struct Slot {
    ModelConfig config;
    ModelState state = ModelState::unloaded;
    std::string reason;  // failed: why
    std::unique_ptr<engine::Backend> backend;
    std::int64_t active = 0;                                      // leases out
    std::deque<Acquire> waiting;                                  // requests waiting for the model
    std::vector<actor::ReplyTo<engine::ModelInfo>> load_waiters;  // POST /models/load
    std::vector<actor::ReplyTo<engine::ModelInfo>> unload_waiters;  // POST /models/unload
    bool draining = false;  // unload when idle; new requests wait meanwhile
    bool pending = false;   // in pending_ (waiting for room to load)
    std::chrono::milliseconds keep_alive{-1};
    std::chrono::steady_clock::time_point last_used;
    std::uint64_t idle_generation = 0;
    std::unique_ptr<boost::asio::steady_timer> idle_timer;
    std::uint64_t estimate = 0;  // bytes, with a budget: of the load under way or done
    std::chrono::steady_clock::time_point load_started;
    engine::ModelDetails details;  // its file's (engine::read_model_details), read once
  };

  void on_acquire(Acquire& a);
  void on_release(const Release& r);
  void on_load_model(LoadModel& m);
  void on_unload_model(UnloadModel& m);
  void on_load_done(LoadDone& d);
  void on_unload_done(const UnloadDone& d);
  void on_idle_expired(const IdleExpired& e);

  // The slot `name` names (id, alias, or empty: the first), or nullopt.
  std::optional<std::size_t> resolve(const std::string& name) const;
  void lease(std::size_t i, Acquire& a);
  // Queues model i for loading unless it is loading, queued or refused by the budget.
  void request_load(std::size_t i);
  // Starts the queued loads that have room; makes room for the first that has none.
  void admit_pending();
  bool has_room(std::size_t i, bool counting_leavers) const;
  // Makes the least recently used loaded model leave (see the rules). False: none can.
  bool evict_one(std::size_t keep);
  void start_load(std::size_t i);
  void start_unload(std::size_t i);
  // Model i has no request left: unload it, arm its idle timer, or let a pending load take it.
  void on_idle(std::size_t i);
  void arm_idle_timer(std::size_t i);
  void fail_waiters(std::size_t i, const Error& e);
  void publish(std::size_t i);
  void count_waiting();
  engine::ModelInfo info(std::size_t i) const;
  Error not_found(const std::string& name) const;

  ModelSetOptions options_;
  ModelLoader loader_;
  ModelBoard& board_;
  boost::asio::thread_pool::executor_type jobs_;
  std::vector<Slot> slots_;
  std::deque<std::size_t> pending_;  // models waiting for room, in request order
};

}  // namespace troupe::models
