#pragma once
// What an HTTP connection is doing, and why the server refused or reclaimed one: the labels
// of the connection metrics (metrics.hpp) and the states the admission table tracks
// (admission.hpp).
//
// Thread-safety: plain values and pure functions.

#include <array>
#include <cstddef>
#include <cstdint>
#include <string_view>

namespace troupe::server {

// A connection's state. Only the first kConnStates are counted; `closing` is a connection the
// server chose to close (reclaimed) whose coroutine has not ended yet.
enum class ConnState : std::uint8_t {
  idle,             // no byte of the next request yet (a new or a kept-alive connection)
  reading_headers,  // some bytes of a request line or headers, not all
  reading_body,     // headers in, the body not yet complete
  answering,        // a complete request, its answer not streaming (waiting or writing)
  streaming,        // an SSE answer going out
  closing,
};
inline constexpr std::size_t kConnStates = 5;

// Connections without a complete request: what the per-address "pending" limit counts.
constexpr bool is_pending(ConnState s) {
  return s == ConnState::idle || s == ConnState::reading_headers || s == ConnState::reading_body;
}
// Connections the server may close to make room: between requests, or still sending headers.
constexpr bool is_reclaimable(ConnState s) {
  return s == ConnState::idle || s == ConnState::reading_headers;
}

constexpr std::array<std::string_view, kConnStates> kConnStateNames = {
    "idle", "reading_headers", "reading_body", "answering", "streaming"};

// Why a new connection got a 503 instead of a session.
enum class RefusalCause : std::uint8_t {
  connection_limit,  // --max-connections open and none reclaimable
  per_ip_limit,      // --max-connections-per-ip open from its address
  pending_per_ip,    // --max-pending-per-ip without a complete request from its address
};
inline constexpr std::size_t kRefusalCauses = 3;
constexpr std::array<std::string_view, kRefusalCauses> kRefusalCauseNames = {
    "connection_limit", "per_ip_limit", "pending_per_ip"};

// Why the server closed an idle or header-sending connection: to admit a new one at
// --max-connections (the one that entered its state first).
enum class ReclaimCause : std::uint8_t { connection_limit };
inline constexpr std::size_t kReclaimCauses = 1;
constexpr std::array<std::string_view, kReclaimCauses> kReclaimCauseNames = {"connection_limit"};

}  // namespace troupe::server
