#include "cluster/directory.hpp"

#include <algorithm>
#include <charconv>
#include <map>
#include <sstream>

#include "cluster/cluster_protocol.hpp"

namespace troupe::cluster {

namespace {

std::int64_t to_int(const std::map<std::string, std::string>& meta, const char* key,
                    std::int64_t fallback) {
  auto it = meta.find(key);
  if (it == meta.end())
    return fallback;
  std::int64_t v = fallback;
  const auto& s = it->second;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  return ec == std::errc() ? v : fallback;
}

const remote::MemberRecord* member(const remote::RegistrySnapshot& s, remote::NodeId id) {
  for (const auto& m : s.members) {
    if (m.id == id)
      return &m;
  }
  return nullptr;
}

WorkerEntry entry_for(const remote::RegistrySnapshot& s, const remote::ActorAddress& a,
                      std::string_view model) {
  WorkerEntry e;
  e.engine = a;
  e.model = std::string(model);
  if (const auto* m = member(s, a.node)) {
    const WorkerMeta wm = parse_worker_meta(m->meta);
    e.capacity = wm.capacity;
    e.load = wm.load;
    e.loaded =
        !wm.loaded || std::find(wm.loaded->begin(), wm.loaded->end(), model) != wm.loaded->end();
  }
  return e;
}

}  // namespace

WorkerMeta parse_worker_meta(const std::map<std::string, std::string>& m) {
  WorkerMeta w;
  if (auto it = m.find(meta::model); it != m.end())
    w.model = it->second;
  w.capacity = std::max<std::int64_t>(1, to_int(m, meta::capacity, 1));
  w.n_ctx = static_cast<std::int32_t>(to_int(m, meta::n_ctx, 0));
  w.n_vocab = static_cast<std::int32_t>(to_int(m, meta::n_vocab, 0));
  if (auto it = m.find(meta::load); it != m.end())
    w.load = parse_load(it->second);
  if (auto it = m.find(meta::loaded); it != m.end()) {
    w.loaded.emplace();
    std::istringstream in(it->second);
    for (std::string id; std::getline(in, id, ',');) {
      if (!id.empty())
        w.loaded->push_back(id);
    }
  }
  return w;
}

WorkerLoad parse_load(std::string_view text) {
  std::istringstream in{std::string(text)};
  WorkerLoad l;
  if (!(in >> l.running >> l.queued >> l.kv_usage))
    return {};
  return l;
}

std::vector<WorkerEntry> workers_for(const remote::RegistrySnapshot& s, std::string_view model) {
  std::vector<WorkerEntry> out;
  auto it = s.names.find(engine_name(model));
  if (it == s.names.end())
    return out;
  for (const auto& a : it->second)
    out.push_back(entry_for(s, a, model));
  return out;
}

std::vector<WorkerEntry> all_workers(const remote::RegistrySnapshot& s) {
  std::vector<WorkerEntry> out;
  for (const auto& [name, addrs] : s.names) {
    if (!name.starts_with(kEnginePrefix))
      continue;
    const auto model = std::string_view(name).substr(kEnginePrefix.size());
    for (const auto& a : addrs)
      out.push_back(entry_for(s, a, model));
  }
  std::stable_sort(out.begin(), out.end(),
                   [](const auto& a, const auto& b) { return a.engine.node < b.engine.node; });
  return out;
}

std::vector<engine::ModelInfo> models_of(const remote::RegistrySnapshot& s) {
  std::vector<engine::ModelInfo> out;
  for (const auto& [name, addrs] : s.names) {  // a std::map: sorted by name, hence by id
    if (!name.starts_with(kEnginePrefix) || addrs.empty())
      continue;
    engine::ModelInfo info;
    info.id = name.substr(kEnginePrefix.size());
    if (const auto* m = member(s, addrs.front().node)) {
      const WorkerMeta wm = parse_worker_meta(m->meta);
      info.n_ctx = wm.n_ctx;
      info.n_vocab = wm.n_vocab;
    }
    out.push_back(std::move(info));
  }
  return out;
}

}  // namespace troupe::cluster
