#include "actor/registry.hpp"

#include <utility>

namespace troupe::actor {

Registry::Registry() : map_(std::make_shared<const Map>()) {}

std::shared_ptr<const Registry::Map> Registry::snapshot() const {
  std::shared_lock lock(snapshot_mu_);
  return map_;
}

void Registry::publish(std::shared_ptr<const Map> next) {
  std::unique_lock lock(snapshot_mu_);
  map_.swap(next);
  lock.unlock();
  // `next` now holds the old map; it is freed here, outside the lock (or by its last reader).
}

bool Registry::put(std::string name, ActorHandle actor, bool replace) {
  std::lock_guard lock(write_mu_);
  auto current = snapshot();
  auto it = current->find(name);
  if (it != current->end() && !replace)
    return false;
  auto next = std::make_shared<Map>(*current);
  (*next)[std::move(name)] = std::move(actor);
  publish(std::move(next));
  return true;
}

bool Registry::erase(std::string_view name) {
  std::lock_guard lock(write_mu_);
  auto current = snapshot();
  auto it = current->find(name);
  if (it == current->end())
    return false;
  auto next = std::make_shared<Map>(*current);
  next->erase(next->find(name));
  publish(std::move(next));
  return true;
}

ActorHandle Registry::find(std::string_view name) const {
  auto snap = snapshot();
  auto it = snap->find(name);
  return it == snap->end() ? ActorHandle{} : it->second;
}

std::vector<std::string> Registry::names() const {
  auto snap = snapshot();
  std::vector<std::string> out;
  out.reserve(snap->size());
  for (const auto& [name, handle] : *snap)
    out.push_back(name);
  return out;
}

}  // namespace troupe::actor
