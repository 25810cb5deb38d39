#pragma once
// Membership: SWIM failure detection and gossip dissemination as a pure state machine. It
// owns no socket, timer or thread: the caller feeds it the time and incoming messages and
// carries out the sends it returns, so tests drive it with a fake clock and a fake transport.
//
//   - every probe_interval one member (round robin over a shuffled list) is pinged; no ack
//     within probe_timeout -> `indirect_probes` other members are asked to ping it
//     (ping_req); still no ack when the round ends -> the member is suspect;
//   - a suspect that does not refute (by gossiping a higher incarnation) within
//     suspect_timeout is dead; a node that hears itself suspected or declared dead raises its
//     incarnation and gossips that it is alive;
//   - every change is piggybacked on pings and acks, each up to retransmit_mult*log2(n) times;
//   - a new node sends join to its seeds (until it knows someone) and gets the whole view back
//     (sync); dead members are retried with join every rejoin_interval, so both sides of a
//     healed partition find each other again;
//   - leave() gossips `left` (dead with intent); members dead longer than dead_retention are
//     forgotten.
//
// Thread-safety: none; one thread (the node's membership strand) at a time.

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "remote/membership_protocol.hpp"

namespace troupe::remote {

using Clock = std::chrono::steady_clock;

struct MembershipOptions {
  Clock::duration probe_interval = std::chrono::milliseconds(1000);
  Clock::duration probe_timeout = std::chrono::milliseconds(300);
  Clock::duration suspect_timeout = std::chrono::milliseconds(3000);
  Clock::duration rejoin_interval = std::chrono::milliseconds(2000);
  Clock::duration dead_retention = std::chrono::seconds(60);
  int indirect_probes = 3;
  int retransmit_mult = 3;
  std::size_t max_piggyback = 8;
};

// A message to send: to `address`, meant for node `node` (0 when not known yet, e.g. a seed).
struct Outgoing {
  std::string address;
  NodeId node = 0;
  GossipMessage message;
};

enum class MemberEventKind { joined, updated, suspect, alive, dead, left };
std::string_view member_event_name(MemberEventKind k) noexcept;

struct MemberEvent {
  MemberEventKind kind = MemberEventKind::joined;
  MemberRecord member;  // the record after the change
};

// What a step asks the caller to do.
struct Effects {
  std::vector<Outgoing> sends;
  std::vector<MemberEvent> events;
};

class Membership {
 public:
  // `self` is this node's record (state alive); `seeds` are "host:port" addresses to join
  // through (our own address among them is ignored).
  Membership(MemberRecord self, std::vector<std::string> seeds, MembershipOptions options,
             std::uint64_t rng_seed);

  // Advances timers to `now`: probes, suspicion and dead timeouts, join retries.
  void tick(Clock::time_point now, Effects& out);

  // Handles one message received from the network.
  void receive(const GossipMessage& m, Clock::time_point now, Effects& out);

  // Records that a frame from `id` arrived at `when` (any frame, not just gossip). A probe
  // round in which we heard from its target counts as answered: a node whose acks are stuck
  // behind a burst of data on a busy link is slow, not dead.
  void heard_from(NodeId id, Clock::time_point when);

  // Replaces our metadata and published actors, raises our incarnation and gossips it.
  void update_self(std::map<std::string, std::string> meta, std::vector<PublishedActor> actors,
                   Effects& out);

  // Gossips that we leave, to every live member at once.
  void leave(Effects& out);

  // When tick() next has something to do.
  Clock::time_point next_deadline() const;

  const MemberRecord& self() const noexcept { return self_; }
  // Known members other than ourselves, any state.
  std::vector<MemberRecord> members() const;
  const MemberRecord* find(NodeId id) const;

 private:
  struct Member {
    MemberRecord record;
    Clock::time_point since;  // when the current state began
    Clock::time_point heard;  // last frame received from it
  };
  struct Probe {
    NodeId target = 0;
    std::uint64_t seq = 0;
    Clock::time_point started;
    bool indirect_sent = false;
    bool acked = true;
  };
  struct Relay {  // a ping we send for someone else's ping_req
    NodeId requester = 0;
    std::string requester_address;
    std::uint64_t their_seq = 0;
    NodeId target = 0;
    Clock::time_point expires;
  };

  void start_probe(Clock::time_point now, Effects& out);
  void check_probe(Clock::time_point now, Effects& out);
  void expire_suspects(Clock::time_point now, Effects& out);
  void maybe_rejoin(Clock::time_point now, Effects& out);
  void on_ping(const GossipMessage& m, Effects& out);
  void on_ack(const GossipMessage& m, Effects& out);
  void on_ping_req(const GossipMessage& m, Clock::time_point now, Effects& out);
  void on_join(const GossipMessage& m, Clock::time_point now, Effects& out);
  void apply(const MemberRecord& r, Clock::time_point now, Effects& out);
  void apply_known(Member& m, const MemberRecord& r, Clock::time_point now, Effects& out);
  void refute(const MemberRecord& r);
  void set_state(Member& m, MemberState s, Clock::time_point now, Effects& out);
  void forget_address_clash(const MemberRecord& r, Clock::time_point now, Effects& out);
  void enqueue(NodeId id);
  void send(const std::string& address, NodeId node, GossipMessage m, Effects& out);
  std::vector<MemberRecord> piggyback();
  std::vector<MemberRecord> full_view() const;
  std::vector<NodeId> live_ids(NodeId except) const;
  int retransmit_limit() const;

  MemberRecord self_;
  std::vector<std::string> seeds_;
  MembershipOptions opt_;
  std::mt19937_64 rng_;
  std::map<NodeId, Member> members_;
  std::map<NodeId, int> gossip_;  // member id -> transmissions left
  std::vector<NodeId> probe_order_;
  std::size_t probe_index_ = 0;
  Probe probe_;
  std::map<std::uint64_t, Relay> relays_;  // by our seq
  std::uint64_t next_seq_ = 1;
  std::optional<Clock::time_point> next_probe_;
  Clock::time_point next_rejoin_{};
};

}  // namespace troupe::remote
