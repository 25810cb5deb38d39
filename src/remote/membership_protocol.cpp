#include "remote/membership_protocol.hpp"

#include "remote/wire.hpp"

namespace troupe::remote {

namespace {
constexpr std::uint32_t kMaxRecords = 4096;
constexpr std::uint32_t kMaxEntries = 4096;

void encode_record(const MemberRecord& r, WireWriter& w) {
  w.u64(r.id);
  w.str(r.address);
  w.u64(r.incarnation);
  w.u8(static_cast<std::uint8_t>(r.state));
  w.u32(static_cast<std::uint32_t>(r.meta.size()));
  for (const auto& [k, v] : r.meta) {
    w.str(k);
    w.str(v);
  }
  w.u32(static_cast<std::uint32_t>(r.actors.size()));
  for (const auto& a : r.actors) {
    w.str(a.name);
    w.u64(a.actor);
  }
}

bool decode_record(WireReader& r, MemberRecord& m) {
  m.id = r.u64();
  m.address = r.str();
  m.incarnation = r.u64();
  std::uint8_t st = r.u8();
  if (st > static_cast<std::uint8_t>(MemberState::left))
    return false;
  m.state = static_cast<MemberState>(st);
  std::uint32_t n = r.u32();
  if (n > kMaxEntries)
    return false;
  for (std::uint32_t i = 0; i < n && r.ok(); ++i) {
    std::string k = r.str();
    m.meta[std::move(k)] = r.str();
  }
  n = r.u32();
  if (n > kMaxEntries)
    return false;
  for (std::uint32_t i = 0; i < n && r.ok(); ++i) {
    PublishedActor a;
    a.name = r.str();
    a.actor = r.u64();
    m.actors.push_back(std::move(a));
  }
  return r.ok() && m.id != 0;
}

void encode_message(const GossipMessage& m, WireWriter& w) {
  w.u8(static_cast<std::uint8_t>(m.type));
  w.u64(m.seq);
  w.u64(m.from);
  w.str(m.from_address);
  w.u64(m.target);
  w.str(m.target_address);
  w.u32(static_cast<std::uint32_t>(m.updates.size()));
  for (const auto& r : m.updates)
    encode_record(r, w);
}
}  // namespace

std::string_view member_state_name(MemberState s) noexcept {
  switch (s) {
    case MemberState::alive:
      return "alive";
    case MemberState::suspect:
      return "suspect";
    case MemberState::dead:
      return "dead";
    case MemberState::left:
      return "left";
  }
  return "unknown";
}

std::vector<std::byte> encode_gossip(const GossipMessage& m) {
  WireWriter counter;
  encode_message(m, counter);
  std::vector<std::byte> out(counter.size());
  WireWriter w(out);
  encode_message(m, w);
  return out;
}

Result<GossipMessage> decode_gossip(std::span<const std::byte> payload) {
  WireReader r(payload);
  GossipMessage m;
  std::uint8_t type = r.u8();
  m.seq = r.u64();
  m.from = r.u64();
  m.from_address = r.str();
  m.target = r.u64();
  m.target_address = r.str();
  std::uint32_t n = r.u32();
  bool ok = r.ok() && type <= static_cast<std::uint8_t>(GossipType::sync) && n <= kMaxRecords;
  for (std::uint32_t i = 0; ok && i < n; ++i) {
    MemberRecord rec;
    ok = decode_record(r, rec);
    m.updates.push_back(std::move(rec));
  }
  if (!ok || !r.ok() || !r.at_end() || m.from == 0) {
    return Error{Errc::invalid_request, "malformed gossip message"};
  }
  m.type = static_cast<GossipType>(type);
  return m;
}

}  // namespace troupe::remote
