#include "remote/membership.hpp"

#include <algorithm>
#include <bit>

namespace troupe::remote {

namespace {
bool is_live(MemberState s) {
  return s == MemberState::alive || s == MemberState::suspect;
}

MemberEventKind event_for(MemberState s) {
  switch (s) {
    case MemberState::alive:
      return MemberEventKind::alive;
    case MemberState::suspect:
      return MemberEventKind::suspect;
    case MemberState::dead:
      return MemberEventKind::dead;
    case MemberState::left:
      return MemberEventKind::left;
  }
  return MemberEventKind::updated;
}
}  // namespace

std::string_view member_event_name(MemberEventKind k) noexcept {
  switch (k) {
    case MemberEventKind::joined:
      return "joined";
    case MemberEventKind::updated:
      return "updated";
    case MemberEventKind::suspect:
      return "suspect";
    case MemberEventKind::alive:
      return "alive";
    case MemberEventKind::dead:
      return "dead";
    case MemberEventKind::left:
      return "left";
  }
  return "unknown";
}

Membership::Membership(MemberRecord self, std::vector<std::string> seeds, MembershipOptions options,
                       std::uint64_t rng_seed)
    : self_(std::move(self)), opt_(options), rng_(rng_seed) {
  self_.state = MemberState::alive;
  for (auto& s : seeds) {
    if (s != self_.address)
      seeds_.push_back(std::move(s));
  }
}

void Membership::tick(Clock::time_point now, Effects& out) {
  if (self_.state == MemberState::left)
    return;
  if (!next_probe_) {
    next_probe_ = now;
    next_rejoin_ = now;
  }
  check_probe(now, out);
  expire_suspects(now, out);
  maybe_rejoin(now, out);
  std::erase_if(relays_, [&](const auto& kv) { return kv.second.expires <= now; });
  if (now >= *next_probe_) {
    start_probe(now, out);
    next_probe_ = now + opt_.probe_interval;
  }
}

Clock::time_point Membership::next_deadline() const {
  if (!next_probe_)
    return Clock::time_point{};
  Clock::time_point t = std::min(*next_probe_, next_rejoin_);
  if (!probe_.acked && !probe_.indirect_sent)
    t = std::min(t, probe_.started + opt_.probe_timeout);
  for (const auto& [id, m] : members_) {
    if (m.record.state == MemberState::suspect)
      t = std::min(t, m.since + opt_.suspect_timeout);
  }
  return t;
}

void Membership::start_probe(Clock::time_point now, Effects& out) {
  NodeId target = 0;
  for (int pass = 0; pass < 2 && target == 0; ++pass) {
    while (probe_index_ < probe_order_.size() && target == 0) {
      auto it = members_.find(probe_order_[probe_index_++]);
      if (it != members_.end() && is_live(it->second.record.state))
        target = it->first;
    }
    if (target == 0) {
      probe_order_ = live_ids(0);
      std::shuffle(probe_order_.begin(), probe_order_.end(), rng_);
      probe_index_ = 0;
    }
  }
  if (target == 0)
    return;
  probe_ = Probe{target, next_seq_++, now, false, false};
  GossipMessage ping{GossipType::ping, probe_.seq, 0, {}, target, {}, {}};
  send(members_.at(target).record.address, target, std::move(ping), out);
}

void Membership::check_probe(Clock::time_point now, Effects& out) {
  if (probe_.acked)
    return;
  auto it = members_.find(probe_.target);
  if (it == members_.end() || !is_live(it->second.record.state)) {
    probe_.acked = true;
    return;
  }
  if (!probe_.indirect_sent && now >= probe_.started + opt_.probe_timeout) {
    probe_.indirect_sent = true;
    auto helpers = live_ids(probe_.target);
    std::shuffle(helpers.begin(), helpers.end(), rng_);
    helpers.resize(std::min<std::size_t>(helpers.size(), opt_.indirect_probes));
    for (NodeId h : helpers) {
      GossipMessage req{GossipType::ping_req,      probe_.seq, 0, {}, probe_.target,
                        it->second.record.address, {}};
      send(members_.at(h).record.address, h, std::move(req), out);
    }
  }
  if (now >= probe_.started + opt_.probe_interval) {
    probe_.acked = true;
    bool heard = it->second.heard >= probe_.started;
    if (!heard && it->second.record.state == MemberState::alive) {
      set_state(it->second, MemberState::suspect, now, out);
    }
  }
}

void Membership::expire_suspects(Clock::time_point now, Effects& out) {
  for (auto it = members_.begin(); it != members_.end();) {
    Member& m = it->second;
    if (m.record.state == MemberState::suspect && now >= m.since + opt_.suspect_timeout) {
      set_state(m, MemberState::dead, now, out);
    }
    bool gone = !is_live(m.record.state) && now >= m.since + opt_.dead_retention;
    it = gone ? members_.erase(it) : std::next(it);
  }
}

void Membership::maybe_rejoin(Clock::time_point now, Effects& out) {
  if (now < next_rejoin_)
    return;
  bool alone = live_ids(0).empty();
  next_rejoin_ = now + (alone ? opt_.probe_interval : opt_.rejoin_interval);
  auto join = [&] { return GossipMessage{GossipType::join, 0, 0, {}, 0, {}, full_view()}; };
  if (alone) {
    for (const auto& s : seeds_)
      send(s, 0, join(), out);
  }
  std::vector<const Member*> dead;
  for (const auto& [id, m] : members_) {
    if (m.record.state == MemberState::dead)
      dead.push_back(&m);
  }
  if (!dead.empty()) {
    const Member* d = dead[std::uniform_int_distribution<std::size_t>(0, dead.size() - 1)(rng_)];
    send(d->record.address, 0, join(), out);
  }
}

void Membership::receive(const GossipMessage& m, Clock::time_point now, Effects& out) {
  if (self_.state == MemberState::left || m.from == self_.id)
    return;
  if (m.type == GossipType::join)
    return on_join(m, now, out);
  for (const auto& r : m.updates)
    apply(r, now, out);
  switch (m.type) {
    case GossipType::ping:
      return on_ping(m, out);
    case GossipType::ack:
      return on_ack(m, out);
    case GossipType::ping_req:
      return on_ping_req(m, now, out);
    case GossipType::join:
    case GossipType::sync:
      return;
  }
}

void Membership::on_ping(const GossipMessage& m, Effects& out) {
  if (m.target != self_.id)
    return;  // meant for a node that used to live at this address
  GossipMessage ack{GossipType::ack, m.seq, 0, {}, self_.id, {}, {}};
  send(m.from_address, m.from, std::move(ack), out);
}

void Membership::on_ack(const GossipMessage& m, Effects& out) {
  if (!probe_.acked && m.seq == probe_.seq && m.target == probe_.target) {
    probe_.acked = true;
    return;
  }
  auto it = relays_.find(m.seq);
  if (it == relays_.end() || it->second.target != m.target)
    return;
  Relay r = std::move(it->second);
  relays_.erase(it);
  GossipMessage fwd{GossipType::ack, r.their_seq, 0, {}, r.target, {}, {}};
  send(r.requester_address, r.requester, std::move(fwd), out);
}

void Membership::on_ping_req(const GossipMessage& m, Clock::time_point now, Effects& out) {
  std::uint64_t seq = next_seq_++;
  relays_[seq] = Relay{m.from, m.from_address, m.seq, m.target, now + opt_.probe_interval};
  GossipMessage ping{GossipType::ping, seq, 0, {}, m.target, {}, {}};
  send(m.target_address, m.target, std::move(ping), out);
}

void Membership::on_join(const GossipMessage& m, Clock::time_point now, Effects& out) {
  bool revived = false;
  for (const auto& r : m.updates) {
    auto it = members_.find(r.id);
    bool self_report = r.id == m.from && r.state == MemberState::alive;
    if (self_report)
      forget_address_clash(r, now, out);
    if (self_report && it != members_.end() && it->second.record.state == MemberState::dead &&
        r.incarnation >= it->second.record.incarnation) {
      // The node speaks for itself over an authenticated link: it is alive again.
      it->second.record = r;
      it->second.since = now;
      out.events.push_back({MemberEventKind::joined, r});
      revived = true;
      continue;
    }
    apply(r, now, out);
  }
  GossipMessage sync{GossipType::sync, 0, 0, {}, m.from, {}, full_view()};
  if (revived) {
    // Others may still hold it dead at this incarnation: make it refute with a higher one.
    for (auto& r : sync.updates) {
      if (r.id == m.from)
        r.state = MemberState::suspect;
    }
  }
  send(m.from_address, m.from, std::move(sync), out);
}

void Membership::apply(const MemberRecord& r, Clock::time_point now, Effects& out) {
  if (r.id == self_.id)
    return refute(r);
  auto it = members_.find(r.id);
  if (it != members_.end())
    return apply_known(it->second, r, now, out);
  if (!is_live(r.state))
    return;
  Member& m = members_[r.id];
  m.record = r;
  m.since = now;
  enqueue(r.id);
  out.events.push_back({MemberEventKind::joined, r});
}

void Membership::apply_known(Member& m, const MemberRecord& r, Clock::time_point now,
                             Effects& out) {
  MemberRecord& cur = m.record;
  MemberState was = cur.state;
  bool take = false;
  switch (r.state) {
    case MemberState::alive:
      take = r.incarnation > cur.incarnation && was != MemberState::left;
      break;
    case MemberState::suspect:
      take = (was == MemberState::alive && r.incarnation >= cur.incarnation) ||
             (was == MemberState::suspect && r.incarnation > cur.incarnation);
      break;
    case MemberState::dead:
    case MemberState::left:
      take = is_live(was) && r.incarnation >= cur.incarnation;
      break;
  }
  if (!take)
    return;
  cur = r;
  m.since = now;
  enqueue(r.id);
  MemberEventKind kind = event_for(r.state);
  if (r.state == MemberState::alive) {
    kind = was == MemberState::alive     ? MemberEventKind::updated
           : was == MemberState::suspect ? MemberEventKind::alive
                                         : MemberEventKind::joined;
  }
  out.events.push_back({kind, cur});
}

void Membership::refute(const MemberRecord& r) {
  if (r.state != MemberState::alive && r.incarnation >= self_.incarnation) {
    self_.incarnation = r.incarnation + 1;
    enqueue(self_.id);
  }
}

void Membership::set_state(Member& m, MemberState s, Clock::time_point now, Effects& out) {
  m.record.state = s;
  m.since = now;
  enqueue(m.record.id);
  out.events.push_back({event_for(s), m.record});
}

void Membership::forget_address_clash(const MemberRecord& r, Clock::time_point now, Effects& out) {
  for (auto& [id, m] : members_) {
    if (id != r.id && m.record.address == r.address && is_live(m.record.state)) {
      set_state(m, MemberState::dead, now, out);  // a restarted node took its place
    }
  }
}

void Membership::heard_from(NodeId id, Clock::time_point when) {
  auto it = members_.find(id);
  if (it != members_.end())
    it->second.heard = std::max(it->second.heard, when);
}

void Membership::update_self(std::map<std::string, std::string> meta,
                             std::vector<PublishedActor> actors, Effects& out) {
  self_.meta = std::move(meta);
  self_.actors = std::move(actors);
  ++self_.incarnation;
  enqueue(self_.id);
  // Pushed to every live member at once, so a published name is found without waiting for
  // probe rounds; the piggybacked copies repair any loss.
  for (NodeId id : live_ids(0)) {
    GossipMessage m{GossipType::sync, 0, 0, {}, id, {}, {self_}};
    send(members_.at(id).record.address, id, std::move(m), out);
  }
}

void Membership::leave(Effects& out) {
  self_.state = MemberState::left;
  ++self_.incarnation;
  for (NodeId id : live_ids(0)) {
    GossipMessage m{GossipType::sync, 0, 0, {}, id, {}, {self_}};
    send(members_.at(id).record.address, id, std::move(m), out);
  }
}

std::vector<MemberRecord> Membership::members() const {
  std::vector<MemberRecord> v;
  v.reserve(members_.size());
  for (const auto& [id, m] : members_)
    v.push_back(m.record);
  return v;
}

const MemberRecord* Membership::find(NodeId id) const {
  if (id == self_.id)
    return &self_;
  auto it = members_.find(id);
  return it == members_.end() ? nullptr : &it->second.record;
}

void Membership::enqueue(NodeId id) {
  gossip_[id] = retransmit_limit();
}

int Membership::retransmit_limit() const {
  auto n = static_cast<unsigned>(members_.size() + 2);
  return opt_.retransmit_mult * static_cast<int>(std::bit_width(n));
}

std::vector<MemberRecord> Membership::piggyback() {
  std::vector<std::pair<int, NodeId>> order;
  for (const auto& [id, left] : gossip_)
    order.emplace_back(left, id);
  std::sort(order.begin(), order.end(), std::greater<>());
  if (order.size() > opt_.max_piggyback)
    order.resize(opt_.max_piggyback);
  std::vector<MemberRecord> v;
  for (const auto& [left, id] : order) {
    const MemberRecord* r = find(id);
    if (r)
      v.push_back(*r);
    if (!r || --gossip_[id] <= 0)
      gossip_.erase(id);
  }
  return v;
}

std::vector<MemberRecord> Membership::full_view() const {
  std::vector<MemberRecord> v = members();
  v.push_back(self_);
  return v;
}

std::vector<NodeId> Membership::live_ids(NodeId except) const {
  std::vector<NodeId> v;
  for (const auto& [id, m] : members_) {
    if (id != except && is_live(m.record.state))
      v.push_back(id);
  }
  return v;
}

void Membership::send(const std::string& address, NodeId node, GossipMessage m, Effects& out) {
  m.from = self_.id;
  m.from_address = self_.address;
  if (m.updates.empty())
    m.updates = piggyback();
  out.sends.push_back(Outgoing{address, node, std::move(m)});
}

}  // namespace troupe::remote
