#pragma once
// NodeCore: the shared state behind Node, RemoteRef and RemoteReply. Internal to the remote
// module. It lives as long as any coroutine, link or reference still needs it.
//
// Threads: frames are decoded and dispatched on whichever I/O thread runs the inbound
// session; membership, the registry writer, the member-event callback and the ask timer run
// on `strand`. Shared tables are either copy-on-write (local handlers) or behind a mutex held
// for a few instructions (links, session descriptors, ask table).

#include <atomic>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <future>
#include <limits>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <unordered_map>

#include "remote/node.hpp"

namespace troupe::remote::detail {

struct LocalActor {
  std::string name;
  MessageHandler handler;
};
using LocalTable = std::map<std::uint64_t, std::shared_ptr<const LocalActor>>;

struct NodeCore {
  NodeCore(boost::asio::io_context& io, NodeOptions options);

  boost::asio::io_context& io;
  std::weak_ptr<NodeCore> weak_self;  // set right after construction
  NodeOptions opt;
  NodeId self = 0;
  std::string address;
  std::uint16_t port = 0;
  boost::asio::strand<boost::asio::io_context::executor_type> strand;
  boost::asio::ip::tcp::acceptor acceptor;        // strand
  boost::asio::steady_timer tick_timer;           // strand
  boost::asio::steady_timer ask_timer;            // strand
  std::optional<Clock::time_point> ask_timer_at;  // strand
  // The deadline the ask timer is set (or being set) for, as Clock ticks; max when idle.
  // Lets an ask whose deadline is later skip arming it (no post to the strand per ask).
  std::atomic<Clock::rep> ask_armed{std::numeric_limits<Clock::rep>::max()};
  std::optional<Membership> membership;              // strand
  std::function<void(const MemberEvent&)> on_event;  // strand
  Registry registry;
  AskTable asks;
  std::atomic<bool> stopped{false};
  std::shared_ptr<boost::asio::ssl::context> tls;  // set when opt.tls is enabled

  std::atomic<std::shared_ptr<const LocalTable>> locals;
  std::mutex locals_mu;  // writers of `locals`, `meta`, next_actor
  std::uint64_t next_actor = 1;
  std::map<std::string, std::string> meta;

  std::mutex links_mu;
  std::unordered_map<std::string, std::shared_ptr<Link>> links;
  std::mutex sessions_mu;
  std::set<int> session_fds;
  // Inbound connections in their handshake, per peer IP address (sessions_mu).
  std::unordered_map<std::string, std::size_t> handshaking;

  std::atomic<std::uint64_t> frames_received{0}, bad_frames{0}, handshake_failures{0},
      unknown_target{0}, handshakes_refused{0};

  // Counts an inbound connection from `ip` into its handshake; false (nothing counted) when
  // max_handshakes_per_address are already in theirs. Any thread.
  bool begin_handshake(const std::string& ip);
  // Its handshake ended (either way). Any thread.
  void end_handshake(const std::string& ip);

  // The outbound link to `address`, created and started when missing or closed.
  std::shared_ptr<Link> link_for(const std::string& address);
  // The configuration of this node's links (dialled and attached).
  LinkConfig link_config() const;
  // Delivers the outcome of ask `correlation` (if still pending).
  void complete_ask(std::uint64_t correlation, Result<Reply> r);
  // Makes the ask timer fire no later than `deadline`; posts to the strand only when it is
  // set for a later time. Any thread.
  void arm_ask_timer(Clock::time_point deadline);
  // Strand: re-gossips our record after `locals` or `meta` changed.
  void publish_self();
  // Strand: carries out what the membership asked for.
  void run_effects(Effects& fx);
  void stop();
};

boost::asio::awaitable<void> accept_loop(std::shared_ptr<NodeCore> core);
boost::asio::awaitable<void> tick_loop(std::shared_ptr<NodeCore> core);
// Strand: gossips our departure, waits up to `grace` until it is written, then sets `done`.
boost::asio::awaitable<void> leave_and_drain(std::shared_ptr<NodeCore> core, Clock::duration grace,
                                             std::shared_ptr<std::promise<void>> done);

}  // namespace troupe::remote::detail
