#pragma once
// Messages of the SWIM membership protocol (carried in FrameKind::gossip frames), and the
// member record they spread. A member record is the whole published state of one node: its
// address, incarnation, liveness, metadata (role, models, load, ...) and the named actors it
// publishes; the registry is built from these records.
//
// Thread-safety: plain values and pure functions.

#include <cstdint>
#include <map>
#include <span>
#include <string>
#include <vector>

#include "remote/node_id.hpp"
#include "util/result.hpp"

namespace troupe::remote {

enum class MemberState : std::uint8_t { alive = 0, suspect = 1, dead = 2, left = 3 };
std::string_view member_state_name(MemberState s) noexcept;

// One actor published under a name on a node.
struct PublishedActor {
  std::string name;
  std::uint64_t actor = 0;
  friend bool operator==(const PublishedActor&, const PublishedActor&) = default;
};

struct MemberRecord {
  NodeId id = 0;
  std::string address;            // "host:port"
  std::uint64_t incarnation = 0;  // only the node itself raises it (to refute, or on change)
  MemberState state = MemberState::alive;
  std::map<std::string, std::string> meta;
  std::vector<PublishedActor> actors;
  friend bool operator==(const MemberRecord&, const MemberRecord&) = default;
};

enum class GossipType : std::uint8_t {
  ping = 0,      // direct probe of `target`; answered with ack
  ack = 1,       // answer to ping (seq echoes it); `target` names the probed node
  ping_req = 2,  // please probe `target` at `target_address` for me and forward its ack
  join = 3,      // the sender wants in; `updates` is its whole view; answered with sync
  sync = 4,      // the receiver's whole view, answering join
};

struct GossipMessage {
  GossipType type = GossipType::ping;
  std::uint64_t seq = 0;
  NodeId from = 0;
  std::string from_address;  // where the sender listens (replies go there)
  NodeId target = 0;
  std::string target_address;
  std::vector<MemberRecord> updates;  // piggybacked member records
  friend bool operator==(const GossipMessage&, const GossipMessage&) = default;
};

std::vector<std::byte> encode_gossip(const GossipMessage& m);
// Errc::invalid_request when malformed (unknown enum values, trailing bytes, limits exceeded).
Result<GossipMessage> decode_gossip(std::span<const std::byte> payload);

}  // namespace troupe::remote
