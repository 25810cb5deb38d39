#pragma once
// Worker: serves a local engine::Backend to the cluster. Publishes "engine/<model>" on the
// node for every model the backend serves and gossips its model, capacity and load as
// member metadata (cluster_protocol.hpp), refreshed every `load_interval` while it changes;
// a backend that loads models on demand (models::ModelSet) also gossips which are loaded.
//
// For each GenerateRequest it calls Backend::generate and forwards every event, in order, as
// a StreamUpdate tell to the request's reply_to actor. A CancelRequest from the same gateway
// drops the TokenStream at once (the engine frees the sequence within one step); so does a
// reply_to that became unreachable (the gateway died) or refuses tells (send queue full:
// the stream cannot continue without a gap, so it ends).
//
// Lifetime: the Node, the Backend and the executor's io_context must outlive the Worker;
// call stop() and let the io_context finish its handlers before destroying the Backend.
//
// Thread-safety: start() and stop() from one thread; stats() from any thread. Message
// handlers run on the node's I/O threads; each stream's forwarding runs on its own strand.

#include <boost/asio/any_io_executor.hpp>
#include <chrono>
#include <cstdint>
#include <memory>

#include "engine/backend.hpp"
#include "remote/node.hpp"
#include "util/result.hpp"

namespace troupe::cluster {

struct WorkerOptions {
  std::int64_t capacity = 4;  // sequences decoded together (gossiped for routing)
  std::chrono::milliseconds load_interval{200};
};

struct WorkerStats {
  std::int64_t streams_active = 0;
  std::int64_t streams_total = 0;
  std::int64_t cancelled_total = 0;  // by the gateway, or because it became unreachable
  std::int64_t bad_messages = 0;     // malformed or unknown messages received
};

class Worker {
 public:
  Worker(remote::Node& node, engine::Backend& backend, boost::asio::any_io_executor ex,
         WorkerOptions options);
  ~Worker();
  Worker(const Worker&) = delete;
  Worker& operator=(const Worker&) = delete;

  // Waits (asynchronously) until the backend is ready, then publishes its models and starts
  // the load reports; `on_ready` runs once then, with the published model ids, or with the
  // backend's error if it failed to load. Runs on the executor.
  void start(std::function<void(Result<std::vector<std::string>>)> on_ready);

  // Unpublishes and cancels every stream (their gateways get nothing more). Idempotent.
  void stop();

  WorkerStats stats() const;

 private:
  struct Impl;
  std::shared_ptr<Impl> impl_;
};

}  // namespace troupe::cluster
