#pragma once
// Gateway: an engine::Backend whose engines are the workers of a troupe cluster. Put it
// behind server::Server and every endpoint of `troupe serve` works through the cluster.
//
// generate() picks a live worker publishing "engine/<model>" (Router: least outstanding work
// with prefix affinity), tells it a GenerateRequest and returns a TokenStream fed by the
// StreamUpdates the worker tells back to the gateway's stream sink, in order. Dropping the
// TokenStream tells the worker CancelRequest at once.
//
// Faults: when a worker is declared dead or leaves, its requests that have not started are
// sent to another worker (at most `max_attempts` workers in all); its started requests end
// with Failed{unavailable}: the client sees an error event and a clean end of stream. No
// other request is touched. A worker that joins takes new requests as soon as its
// publication reaches the gateway's registry.
//
// models() is the union of the models the live workers publish (sorted by id; the first is
// the default). stats() sums what passed through this gateway; gateway_stats() adds the
// per-worker view and the routing decisions, which extra_metrics() renders for /metrics.
//
// Lifetime: the Node (and its io_context) must outlive the Gateway; destroy the Gateway after
// every TokenStream it returned and after stop().
//
// Thread-safety: every Backend member, gateway_stats() and stop() may be called from any
// thread. One mutex guards the request table, the per-worker counts and the router; it is
// held for a table update and a stream push (a short queue append), never across I/O waits.

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "cluster/router.hpp"
#include "engine/backend.hpp"
#include "remote/node.hpp"

namespace troupe::cluster {

struct GatewayOptions {
  RouterOptions router;
  int max_attempts = 3;  // workers one not-yet-started request may be sent to
  std::chrono::milliseconds ask_timeout{30'000};  // tokenize/detokenize round trips
};

// One worker as the gateway sees it: a live one, or one lost recently (up == false; the
// gateway remembers the last kLostWorkersKept of those: labels and routed_total, gauges 0).
struct WorkerView {
  bool up = true;
  std::uint64_t node = 0;
  std::string address;
  std::string model;
  std::int64_t capacity = 0;
  std::int64_t outstanding = 0;   // this gateway's requests in flight there
  std::int64_t running = 0;       // gossiped by the worker
  std::int64_t queued = 0;        // gossiped by the worker
  double kv_usage = 0.0;          // gossiped by the worker
  std::int64_t routed_total = 0;  // requests this gateway sent there
};

struct GatewayStats {
  std::int64_t routed_least_loaded = 0;
  std::int64_t routed_affinity = 0;
  std::int64_t affinity_overruled = 0;  // a known prefix's worker was too busy
  std::int64_t retried = 0;             // requests re-sent after their worker was lost
  std::int64_t failed_worker_lost = 0;  // started requests failed when their worker was lost
  std::int64_t no_worker = 0;           // refused: no live worker serves the model
  std::int64_t in_flight = 0;
  std::vector<WorkerView> workers;  // live workers by node id, then recently lost ones
};

inline constexpr std::size_t kLostWorkersKept = 64;

class Gateway final : public engine::Backend {
 public:
  explicit Gateway(remote::Node& node, GatewayOptions options = {});
  ~Gateway() override;
  Gateway(const Gateway&) = delete;
  Gateway& operator=(const Gateway&) = delete;

  // Publishes the stream sink and subscribes to membership events (this takes the node's
  // single on_member_event slot; `on_member`, if given, is called after the gateway's own
  // handling, on the node's membership strand). Call once, before generate().
  void start(std::function<void(const remote::MemberEvent&)> on_member = {});

  // Fails every request in flight with Failed{unavailable} and refuses new ones. Idempotent.
  void stop();

  boost::asio::awaitable<engine::TokenStream> generate(engine::Task task) override;
  boost::asio::awaitable<Result<std::vector<engine::Token>>> tokenize(std::string model,
                                                                      std::string text,
                                                                      bool add_special,
                                                                      bool parse_special) override;
  boost::asio::awaitable<Result<std::string>> detokenize(
      std::string model, std::vector<engine::Token> tokens) override;
  // Rendered by a worker serving the task's model (its chat template).
  boost::asio::awaitable<Result<std::string>> apply_template(engine::Task task) override;
  boost::asio::awaitable<Result<engine::ModelProps>> props(std::string model) override;
  // The workers' LoRA adapters are theirs: a request's `lora` reaches the worker that serves
  // it, but the gateway neither lists nor sets their server-wide scales (invalid_request).
  boost::asio::awaitable<Result<std::vector<engine::LoraAdapterInfo>>> lora_adapters(
      std::string model) override;
  boost::asio::awaitable<Result<void>> set_lora_adapters(std::string model,
                                                         engine::LoraRequest request) override;
  std::vector<engine::ModelInfo> models() const override;
  engine::Health health() const override;
  engine::BackendStats stats() const override;
  // render_gateway_metrics(gateway_stats()): appended to the HTTP server's /metrics.
  std::string extra_metrics() const override;

  GatewayStats gateway_stats() const;

 private:
  struct Impl;
  std::shared_ptr<Impl> impl_;
};

// gateway_stats() in Prometheus text format (troupe_gateway_* series), for /metrics.
std::string render_gateway_metrics(const GatewayStats& s);

}  // namespace troupe::cluster
