#include "actor/registry.hpp"

#include <utility>

namespace troupe::actor {

Registry::Registry() : map_(std::make_shared<const Map>()) {}

bool Registry::put(std::string name, ActorHandle actor, bool replace) {
  std::lock_guard lock(write_mu_);
  auto current = map_.load(std::memory_order_acquire);
  auto it = current->find(name);
  if (it != current->end() && !replace)
    return false;
  auto next = std::make_shared<Map>(*current);
  (*next)[std::move(name)] = std::move(actor);
  map_.store(std::move(next), std::memory_order_release);
  return true;
}

bool Registry::erase(std::string_view name) {
  std::lock_guard lock(write_mu_);
  auto current = map_.load(std::memory_order_acquire);
  auto it = current->find(name);
  if (it == current->end())
    return false;
  auto next = std::make_shared<Map>(*current);
  next->erase(next->find(name));
  map_.store(std::move(next), std::memory_order_release);
  return true;
}

ActorHandle Registry::find(std::string_view name) const {
  auto snapshot = map_.load(std::memory_order_acquire);
  auto it = snapshot->find(name);
  return it == snapshot->end() ? ActorHandle{} : it->second;
}

std::vector<std::string> Registry::names() const {
  auto snapshot = map_.load(std::memory_order_acquire);
  std::vector<std::string> out;
  out.reserve(snapshot->size());
  for (const auto& [name, handle] : *snapshot)
    out.push_back(name);
  return out;
}

}  // namespace troupe::actor
