#pragma once
// Node: this process's membership in a troupe cluster. It listens on an address, joins
// through seed addresses, publishes named message handlers ("engine/<model>") and hands out
// RemoteRefs to actors anywhere in the cluster by name.
//
//   auto node = Node::start(io, {.listen = "0.0.0.0:7000", .seeds = {"10.0.0.2:7000"},
//                                .cluster_secret = secret});
//   node.value()->publish("echo", [](Envelope& e) { e.reply.send(e.type, e.payload); });
//   auto ref = node.value()->lookup("echo");           // from any thread
//   ref->tell_raw(bytes);                              // never blocks
//   Result<Reply> r = co_await ref->async_ask_raw(0, bytes, 1s, asio::use_awaitable);
//
// remote_actor.hpp puts typed actor::ActorRef<Protocol> endpoints on top of this.
//
// Lifetime: the Node runs on the caller's io_context (any number of threads) and must be
// destroyed (or stop()ped) before that io_context stops running, so its coroutines can
// finish. Handlers may run until stop() returns; do not destroy what they use before that.
//
// Thread-safety: every member of Node, RemoteRef and RemoteReply may be called from any
// thread.

#include <boost/asio/any_completion_handler.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/io_context.hpp>
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "remote/detail/ask_table.hpp"
#include "remote/detail/link.hpp"
#include "remote/membership.hpp"
#include "remote/registry.hpp"
#include "remote/tls.hpp"
#include "remote/wire.hpp"
#include "util/result.hpp"

namespace troupe::remote {

namespace detail {
struct NodeCore;
}

// The default of NodeOptions::spin_before_block: 50 us. On an idle machine it turns an ask's
// round trip from a chain of sleeping-thread wake-ups (135-142 us on the 2-core development
// VM) into 17-19 us; on a machine whose cores are all busy with other work it costs a few
// microseconds per round trip (docs/BENCHMARKS.md).
inline std::chrono::microseconds default_spin_before_block() {
  return std::chrono::microseconds(50);
}

struct NodeOptions {
  std::string listen = "127.0.0.1:0";  // "ip:port"; port 0 picks an ephemeral port
  std::string advertise;               // "host:port" peers dial; default: listen ip + bound port
  std::vector<std::string> seeds;      // "ip:port" of nodes to join through
  std::string cluster_secret;          // shared by every node; required (non-empty)
  std::map<std::string, std::string> metadata;  // gossiped with our member record
  MembershipOptions membership;
  std::size_t send_queue_capacity = 8192;  // frames per outbound link
  std::uint32_t max_frame_bytes = 64u << 20;
  // An inbound connection must complete its handshake within handshake_timeout; at most
  // max_handshakes_per_address connections from one IP address may be in their handshake
  // at once (more are closed at once, unanswered; 0: no limit).
  std::chrono::steady_clock::duration handshake_timeout = std::chrono::seconds(2);
  std::size_t max_handshakes_per_address = 32;
  std::chrono::steady_clock::duration reconnect_min = std::chrono::milliseconds(10);
  std::chrono::steady_clock::duration reconnect_max = std::chrono::seconds(1);
  int max_connect_failures = 5;
  // After an ask or a reply arrives on a connection, its reader keeps polling that socket for
  // up to this long (yielding to the I/O thread's other handlers between polls) before it
  // sleeps in epoll, so the next request or reply of a conversation is picked up without a
  // sleeping thread's wake-up. Tells never start it, so one-way streams never spin, and an
  // idle node spends no CPU once the window has passed. 0 turns it off. Plaintext links only.
  // Default: default_spin_before_block().
  std::chrono::microseconds spin_before_block = default_spin_before_block();
  TlsOptions tls;  // mutual TLS on every link when enabled (tls.hpp)
};

struct NodeStats {
  std::uint64_t frames_received = 0;
  std::uint64_t bad_frames = 0;          // connections closed for a malformed or oversized frame
  std::uint64_t handshake_failures = 0;  // refused peers (wrong secret, garbage, timeout)
  std::uint64_t handshakes_refused = 0;  // closed unanswered: too many from one address
  std::uint64_t tells_rejected = 0;      // send queue full (Errc::overloaded)
  std::uint64_t unknown_target = 0;      // frames for an actor id we do not have
  std::size_t links = 0;
  std::size_t pending_asks = 0;
};

// The answer half of an ask delivered to a handler. Move-only; answer at most once, now or
// later, from any thread. Destroyed unanswered, it answers Errc::internal ("no reply"). For a
// tell it is empty and send()/fail() do nothing.
class RemoteReply {
 public:
  RemoteReply() = default;
  RemoteReply(std::shared_ptr<detail::NodeCore> core, std::shared_ptr<Link> link,
              std::uint64_t correlation);
  RemoteReply(RemoteReply&&) noexcept = default;
  RemoteReply& operator=(RemoteReply&& o) noexcept;
  ~RemoteReply();

  void send(std::uint32_t type, std::span<const std::byte> payload);
  template <Encodable T>
  void send(const T& m) {
    send(Codec<T>::type_id, encode_to_vector(m));
  }
  void fail(const Error& e);
  bool pending() const noexcept { return core_ != nullptr; }

 private:
  template <class T>
  static std::vector<std::byte> encode_to_vector(const T& m) {
    std::vector<std::byte> out(encoded_size(m));
    WireWriter w(out);
    Codec<T>::encode(m, w);
    return out;
  }
  std::shared_ptr<detail::NodeCore> core_;
  std::shared_ptr<Link> link_;  // to the asker; empty for an ask from this node
  std::uint64_t correlation_ = 0;
};

// One message delivered to a published handler. `payload` is valid only during the call.
struct Envelope {
  NodeId from = 0;
  std::uint32_t type = 0;
  std::span<const std::byte> payload;
  RemoteReply reply;  // pending for an ask
};

// Called on an I/O thread for every message to a published name: keep it short and never
// block (tell an actor). Messages from one sender arrive in order, but messages from
// different nodes (and local tells/asks, which run on the caller's thread) may be handled
// concurrently, so the handler must be thread-safe.
using MessageHandler = std::function<void(Envelope&)>;

// An actor somewhere in the cluster (this node included). Cheap to copy.
class RemoteRef {
 public:
  RemoteRef() = default;
  RemoteRef(std::shared_ptr<detail::NodeCore> core, std::shared_ptr<Link> link, ActorAddress where);

  // Sends a message; returns at once. Errors: Errc::overloaded (the link's send queue is
  // full), Errc::unavailable (the node is dead, left, restarted or unreachable). Allocates
  // nothing when the payload is at most kInlinePayload bytes. Success means queued: frames
  // from one thread to one actor arrive in order and none is lost while both nodes live.
  Result<void> tell_raw(std::span<const std::byte> payload, std::uint32_t type = 0) const;
  Result<void> tell_raw(std::vector<std::byte>&& payload, std::uint32_t type = 0) const;
  template <Encodable T>
  Result<void> tell(const T& m) const;

  // Sends an ask; `done` runs exactly once with the reply or an error: timeout, cancelled,
  // unavailable (dead node, at once), not_found (no such actor there), overloaded, or the
  // handler's error. `done` runs on the completing thread unless the token binds an executor.
  void ask_raw(std::uint32_t type, std::span<const std::byte> payload,
               std::chrono::steady_clock::duration timeout, AskCallback done) const;

  // Asio-style ask: use_awaitable, use_future, a callback... The completion is posted to the
  // handler's associated executor (the node's io_context when it has none). Supports
  // per-operation cancellation (-> Errc::cancelled).
  template <class Token>
  auto async_ask_raw(std::uint32_t type, std::span<const std::byte> payload,
                     std::chrono::steady_clock::duration timeout, Token&& token) const;

  const ActorAddress& address() const noexcept { return where_; }
  NodeId node() const noexcept { return where_.node; }
  explicit operator bool() const noexcept { return core_ != nullptr; }

 private:
  Result<void> check() const;
  Result<void> map_status(LinkStatus s) const;
  boost::asio::io_context& io() const;

  std::shared_ptr<detail::NodeCore> core_;
  std::shared_ptr<Link> link_;  // empty when the actor is on this node
  ActorAddress where_;
};

class Node {
 public:
  // Binds, starts accepting and joins through the seeds. Errors: invalid_request (bad
  // address, empty secret, incomplete or unusable TLS files), unavailable (cannot bind).
  static Result<std::unique_ptr<Node>> start(boost::asio::io_context& io, NodeOptions options);
  ~Node();  // stop()
  Node(const Node&) = delete;
  Node& operator=(const Node&) = delete;

  NodeId id() const noexcept;
  // The io_context the node runs on.
  boost::asio::io_context& io_context() const noexcept;
  const std::string& address() const noexcept;  // advertised "host:port"
  std::uint16_t port() const noexcept;

  // Publishes `handler` under `name` (replacing an earlier one of the same name) and
  // gossips it. Frames for the returned actor id are delivered at once; lookups (here and
  // on other nodes) see the name once the registry is rebuilt: here within a turn of the
  // membership strand, elsewhere when the gossip arrives (a member event announces it).
  std::uint64_t publish(std::string name, MessageHandler handler);
  // Removes a published name; false when unknown.
  bool unpublish(std::string_view name);
  // Replaces one metadata entry (role, models, load...) and gossips it.
  void set_metadata(std::string key, std::string value);

  // A reference to the actor published under `name`, from the registry snapshot (never waits
  // on gossip). Errc::not_found when no live node publishes it. With several publishers, the
  // one with the lowest node id; use lookup_all/ref_for to choose.
  Result<RemoteRef> lookup(std::string_view name) const;
  std::vector<ActorAddress> lookup_all(std::string_view name) const;
  RemoteRef ref_for(const ActorAddress& where) const;
  std::shared_ptr<const RegistrySnapshot> snapshot() const;

  // Called (on the node's membership strand) for every membership change; set before
  // joining matters, so pass it early. Replaces the previous callback.
  void on_member_event(std::function<void(const MemberEvent&)> fn);

  // Gossips our departure and stops, waiting up to `grace` for the news to be written.
  void leave(std::chrono::steady_clock::duration grace = std::chrono::milliseconds(500));
  // Stops accepting, closes every connection, fails pending asks (unavailable). Idempotent.
  void stop();

  NodeStats stats() const;

 private:
  explicit Node(std::shared_ptr<detail::NodeCore> core) : core_(std::move(core)) {}
  std::shared_ptr<detail::NodeCore> core_;
};

// --- templates ---------------------------------------------------------------------------

namespace detail {
// Pushes an encoded T onto `link` (in place, no allocation when small).
template <class T>
LinkStatus push_encoded(Link& link, const FrameHeader& h, const T& m) {
  std::size_t n = encoded_size(m);
  return link.push_with(h, n, [&](std::span<std::byte> out) {
    WireWriter w(out);
    Codec<T>::encode(m, w);
  });
}
// Delivers a tell to a handler on this node.
Result<void> deliver_local(NodeCore& core, std::uint64_t actor, std::uint32_t type,
                           std::span<const std::byte> payload);
}  // namespace detail

template <Encodable T>
Result<void> RemoteRef::tell(const T& m) const {
  if (auto c = check(); !c)
    return c;
  FrameHeader h{FrameKind::tell, 0, where_.actor, 0, Codec<T>::type_id, 0};
  if (!link_) {
    std::vector<std::byte> buf(encoded_size(m));
    WireWriter w(buf);
    Codec<T>::encode(m, w);
    return detail::deliver_local(*core_, where_.actor, h.type, buf);
  }
  return map_status(detail::push_encoded(*link_, h, m));
}

template <class Token>
auto RemoteRef::async_ask_raw(std::uint32_t type, std::span<const std::byte> payload,
                              std::chrono::steady_clock::duration timeout, Token&& token) const {
  namespace asio = boost::asio;
  return asio::async_initiate<Token, void(Result<Reply>)>(
      [this, type, payload, timeout](auto handler) {
        auto ex = asio::get_associated_executor(handler, io().get_executor());
        AskCallback done = [h = std::move(handler), ex](Result<Reply> r) mutable {
          asio::post(
              ex, [h = std::move(h), r = std::move(r)]() mutable { std::move(h)(std::move(r)); });
        };
        ask_raw(type, payload, timeout, std::move(done));
      },
      token);
}

}  // namespace troupe::remote
