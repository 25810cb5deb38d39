#include "server/admission.hpp"

namespace troupe::server {

ConnectionTable::ConnectionTable(AdmissionLimits limits, Metrics& metrics)
    : limits_(limits), metrics_(metrics) {}

ConnectionTable::SlotPtr ConnectionTable::oldest_reclaimable() const {
  SlotPtr best;
  for (const auto& s : slots_) {
    if (!is_reclaimable(s->state))
      continue;
    if (!best || s->since < best->since)
      best = s;
  }
  return best;
}

void ConnectionTable::uncount_locked(const Slot& slot) {
  metrics_.add_connection_state(slot.state, -1);
  --open_;
  auto it = per_address_.find(slot.address);
  --it->second.open;
  if (is_pending(slot.state))
    --it->second.pending;
  if (it->second.open == 0)
    per_address_.erase(it);
}

void ConnectionTable::reclaim_locked(const SlotPtr& slot, ReclaimCause cause) {
  uncount_locked(*slot);
  slot->state = ConnState::closing;
  metrics_.count_reclaim(cause);
}

ConnectionTable::Decision ConnectionTable::admit(const std::string& address,
                                                 std::shared_ptr<detail::SessionControl> control,
                                                 Clock::time_point now) {
  Decision d;
  std::lock_guard lock(mu_);
  auto refuse = [&](RefusalCause cause) {
    metrics_.count_refusal(cause);
    d.refused = cause;
    return d;
  };
  const auto it = per_address_.find(address);
  const PerAddress mine = it == per_address_.end() ? PerAddress{} : it->second;
  if (limits_.max_per_ip > 0 && mine.open >= limits_.max_per_ip)
    return refuse(RefusalCause::per_ip_limit);
  if (limits_.max_pending_per_ip > 0 && mine.pending >= limits_.max_pending_per_ip)
    return refuse(RefusalCause::pending_per_ip);
  if (open_ >= limits_.max_connections) {
    SlotPtr victim = oldest_reclaimable();
    if (!victim)
      return refuse(RefusalCause::connection_limit);
    reclaim_locked(victim, ReclaimCause::connection_limit);
    d.reclaimed.push_back(std::move(victim));
  }
  d.slot = std::make_shared<Slot>();
  d.slot->address = address;
  d.slot->control = std::move(control);
  d.slot->since = now;
  d.slot->listed = true;
  d.slot->pos = slots_.insert(slots_.end(), d.slot);
  auto& counts = per_address_[address];
  ++counts.open;
  ++counts.pending;
  ++open_;
  metrics_.add_connection_state(ConnState::idle, 1);
  return d;
}

bool ConnectionTable::enter(Slot& slot, ConnState to, Clock::time_point now) {
  std::lock_guard lock(mu_);
  if (slot.state == ConnState::closing || !slot.listed)
    return false;
  if (slot.state == to)
    return true;
  auto& counts = per_address_[slot.address];
  if (is_pending(slot.state) && !is_pending(to))
    --counts.pending;
  else if (!is_pending(slot.state) && is_pending(to))
    ++counts.pending;
  metrics_.add_connection_state(slot.state, -1);
  metrics_.add_connection_state(to, 1);
  slot.state = to;
  slot.since = now;
  return true;
}

void ConnectionTable::release(const SlotPtr& slot) {
  std::lock_guard lock(mu_);
  if (!slot->listed)
    return;
  if (slot->state != ConnState::closing)
    uncount_locked(*slot);
  slots_.erase(slot->pos);
  slot->listed = false;
  slot->state = ConnState::closing;
}

std::size_t ConnectionTable::open() const {
  std::lock_guard lock(mu_);
  return open_;
}

std::size_t ConnectionTable::open_from(const std::string& address) const {
  std::lock_guard lock(mu_);
  auto it = per_address_.find(address);
  return it == per_address_.end() ? 0 : it->second.open;
}

std::size_t ConnectionTable::pending_from(const std::string& address) const {
  std::lock_guard lock(mu_);
  auto it = per_address_.find(address);
  return it == per_address_.end() ? 0 : it->second.pending;
}

bool ConnectionTable::under_pressure() const {
  std::lock_guard lock(mu_);
  return open_ * 4 >= limits_.max_connections * 3;
}

std::vector<ConnectionTable::SlotPtr> ConnectionTable::slots() const {
  std::lock_guard lock(mu_);
  return {slots_.begin(), slots_.end()};
}

std::size_t ConnectionTable::size() const {
  std::lock_guard lock(mu_);
  return slots_.size();
}

}  // namespace troupe::server
