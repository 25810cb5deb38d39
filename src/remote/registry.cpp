#include "remote/registry.hpp"

#include <algorithm>
#include <utility>

namespace troupe::remote {

Registry::Registry() : snap_(std::make_shared<const RegistrySnapshot>()) {}

void Registry::publish(const MemberRecord& self, const std::vector<MemberRecord>& others) {
  auto next = std::make_shared<RegistrySnapshot>();
  next->version = snapshot()->version + 1;
  auto add = [&](const MemberRecord& m) {
    if (m.state != MemberState::alive && m.state != MemberState::suspect)
      return;
    next->members.push_back(m);
    for (const auto& a : m.actors)
      next->names[a.name].push_back({m.id, m.address, a.actor});
  };
  add(self);
  for (const auto& m : others)
    add(m);
  for (auto& [name, v] : next->names) {
    std::sort(v.begin(), v.end(), [](const auto& a, const auto& b) { return a.node < b.node; });
  }
  std::shared_ptr<const RegistrySnapshot> old;
  {
    std::lock_guard lock(mu_);
    old = std::exchange(snap_, std::move(next));
  }  // the old snapshot is released outside the lock
}

std::vector<ActorAddress> Registry::lookup_all(std::string_view name) const {
  auto s = snapshot();
  auto it = s->names.find(name);
  return it == s->names.end() ? std::vector<ActorAddress>{} : it->second;
}

std::optional<ActorAddress> Registry::lookup(std::string_view name) const {
  auto s = snapshot();
  auto it = s->names.find(name);
  if (it == s->names.end() || it->second.empty())
    return std::nullopt;
  return it->second.front();
}

}  // namespace troupe::remote
