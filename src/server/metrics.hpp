#pragma once
// Metrics: what the HTTP server measures itself (requests by endpoint and status, latencies
// as histograms, disconnects), rendered together with the Backend's counters as Prometheus
// text exposition format (version 0.0.4) for GET /metrics.
//
// Thread-safety: every member may be called from any thread. Histograms and counters are
// lock-free atomics; the request counter map takes a short mutex (one lookup per request).

#include <array>
#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "engine/backend.hpp"
#include "server/connection_state.hpp"

namespace troupe::server {

// A fixed-bucket histogram. Bucket bounds are upper bounds ("le"), ascending.
class Histogram {
 public:
  explicit Histogram(std::vector<double> bounds);

  void observe(double value) noexcept;

  struct Snapshot {
    std::vector<double> bounds;
    std::vector<std::int64_t> cumulative;  // one per bound, then +Inf
    double sum = 0;
    std::int64_t count = 0;
  };
  Snapshot snapshot() const;

 private:
  std::vector<double> bounds_;
  std::unique_ptr<std::atomic<std::int64_t>[]> counts_;  // bounds_.size() + 1 buckets
  std::atomic<double> sum_{0};
  std::atomic<std::int64_t> count_{0};
};

class Metrics {
 public:
  Metrics();

  // One finished HTTP request: its endpoint label ("chat_completions", ...) and status.
  void count_request(std::string_view endpoint, int status);
  // A client went away while its generation was running.
  void count_disconnect() noexcept { disconnects_.fetch_add(1, std::memory_order_relaxed); }
  // One answered embeddings or rerank request: its inputs (documents) and their tokens.
  void count_embeddings(std::int64_t inputs, std::int64_t tokens) noexcept {
    embedding_inputs_.fetch_add(inputs, std::memory_order_relaxed);
    embedding_tokens_.fetch_add(tokens, std::memory_order_relaxed);
  }
  void connection_opened() noexcept { connections_.fetch_add(1, std::memory_order_relaxed); }
  void connection_closed() noexcept { connections_.fetch_sub(1, std::memory_order_relaxed); }
  std::int64_t connections() const noexcept { return connections_.load(std::memory_order_relaxed); }
  // Connections by state (admission.hpp keeps these in step with its table).
  void add_connection_state(ConnState s, std::int64_t delta) noexcept {
    if (static_cast<std::size_t>(s) < kConnStates)
      states_[static_cast<std::size_t>(s)].fetch_add(delta, std::memory_order_relaxed);
  }
  std::int64_t connections_in(ConnState s) const noexcept {
    return static_cast<std::size_t>(s) < kConnStates
               ? states_[static_cast<std::size_t>(s)].load(std::memory_order_relaxed)
               : 0;
  }
  // A new connection refused (503), or an old one closed to make room for a new one.
  void count_refusal(RefusalCause c) noexcept {
    refusals_[static_cast<std::size_t>(c)].fetch_add(1, std::memory_order_relaxed);
  }
  void count_reclaim(ReclaimCause c) noexcept {
    reclaims_[static_cast<std::size_t>(c)].fetch_add(1, std::memory_order_relaxed);
  }
  std::int64_t refusals(RefusalCause c) const noexcept {
    return refusals_[static_cast<std::size_t>(c)].load(std::memory_order_relaxed);
  }
  std::int64_t reclaims(ReclaimCause c) const noexcept {
    return reclaims_[static_cast<std::size_t>(c)].load(std::memory_order_relaxed);
  }
  // A refusal closed at once, without lingering (too many refusals lingering already).
  void count_refusal_unlingered() noexcept {
    refusals_unlingered_.fetch_add(1, std::memory_order_relaxed);
  }
  // A write to a client did not complete within the send timeout (it stopped reading).
  void count_send_timeout() noexcept { send_timeouts_.fetch_add(1, std::memory_order_relaxed); }
  std::int64_t count_send_timeouts() const noexcept {
    return send_timeouts_.load(std::memory_order_relaxed);
  }

  Histogram time_to_first_token;  // seconds, request received -> first token sent
  Histogram inter_token_latency;  // seconds between tokens of one stream
  Histogram e2e_request_latency;  // seconds, request received -> final event
  Histogram request_queue_time;   // seconds, request received -> admitted (Started)

  // The exposition text: the server's metrics and the backend's.
  std::string render(const engine::BackendStats& backend) const;

 private:
  void render_server(std::string& out) const;
  void render_connections(std::string& out) const;

  mutable std::mutex mu_;  // guards requests_
  std::map<std::pair<std::string, int>, std::int64_t> requests_;
  std::atomic<std::int64_t> disconnects_{0};
  std::atomic<std::int64_t> connections_{0};
  std::atomic<std::int64_t> embedding_inputs_{0};
  std::atomic<std::int64_t> embedding_tokens_{0};
  std::array<std::atomic<std::int64_t>, kConnStates> states_{};
  std::array<std::atomic<std::int64_t>, kRefusalCauses> refusals_{};
  std::array<std::atomic<std::int64_t>, kReclaimCauses> reclaims_{};
  std::atomic<std::int64_t> refusals_unlingered_{0};
  std::atomic<std::int64_t> send_timeouts_{0};
};

// Appends one histogram in exposition format (# HELP, # TYPE, _bucket, _sum, _count).
void render_histogram(std::string& out, std::string_view name, std::string_view help,
                      const Histogram::Snapshot& s);

}  // namespace troupe::server
