#include "models/supervisor.hpp"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <boost/asio/post.hpp>

#include "actor/actor_system.hpp"

namespace troupe::models {

namespace asio = boost::asio;
using Clock = std::chrono::steady_clock;

namespace {

// Tells the supervisor Release when the last copy of a lease's token goes.
struct LeaseToken {
  actor::ActorRef<SupervisorMessage> supervisor;
  std::size_t index = 0;
  std::optional<std::chrono::milliseconds> keep_alive;
  LeaseToken(actor::ActorRef<SupervisorMessage> s, std::size_t i,
             std::optional<std::chrono::milliseconds> k)
      : supervisor(std::move(s)), index(i), keep_alive(k) {}
  LeaseToken(const LeaseToken&) = delete;
  LeaseToken& operator=(const LeaseToken&) = delete;
  ~LeaseToken() { supervisor.tell(Release{index, keep_alive}); }
};

std::string describe_ms(std::chrono::milliseconds d) {
  return d.count() < 0 ? std::string("for ever") : fmt::format("{:.1f} s", d.count() / 1000.0);
}

}  // namespace

const char* state_name(ModelState s) {
  switch (s) {
    case ModelState::unloaded:
      return "unloaded";
    case ModelState::loading:
      return "loading";
    case ModelState::loaded:
      return "loaded";
    case ModelState::unloading:
      return "unloading";
    case ModelState::failed:
      return "failed";
  }
  return "unloaded";
}

ModelSupervisor::ModelSupervisor(ModelSetOptions options, ModelLoader loader, ModelBoard& board,
                                 asio::thread_pool::executor_type jobs)
    : options_(std::move(options)),
      loader_(std::move(loader)),
      board_(board),
      jobs_(std::move(jobs)) {
  for (auto& c : options_.models) {
    Slot s;
    s.config = c;
    s.keep_alive = options_.idle_unload;
    if (auto d = engine::read_model_details(c.options.model_path))
      s.details = std::move(d).value();
    slots_.push_back(std::move(s));
  }
  for (std::size_t i = 0; i < slots_.size(); ++i)
    publish(i);
}

void ModelSupervisor::on_message(SupervisorMessage& m) {
  std::visit(
      actor::Overloaded{
          [&](Acquire& a) { on_acquire(a); }, [&](Release& r) { on_release(r); },
          [&](LoadModel& l) { on_load_model(l); }, [&](UnloadModel& u) { on_unload_model(u); },
          [&](LoadDone& d) { on_load_done(d); }, [&](UnloadDone& d) { on_unload_done(d); },
          [&](IdleExpired& e) { on_idle_expired(e); }},
      m);
  count_waiting();
}

void ModelSupervisor::on_stop(const actor::ExitReason& /*reason*/) {
  const Error down{Errc::unavailable, "the server is shutting down"};
  for (std::size_t i = 0; i < slots_.size(); ++i) {
    fail_waiters(i, down);
    for (auto& r : slots_[i].unload_waiters)
      r.fail(down);
    board_.set_backend(i, nullptr);  // before the behavior (and the backends) go
    slots_[i].idle_timer.reset();
  }
}

std::optional<std::size_t> ModelSupervisor::resolve(const std::string& name) const {
  if (name.empty())
    return slots_.empty() ? std::nullopt : std::optional<std::size_t>(0);
  for (std::size_t i = 0; i < slots_.size(); ++i) {
    const auto& o = slots_[i].config.options;
    if (o.model_id == name ||
        std::find(o.aliases.begin(), o.aliases.end(), name) != o.aliases.end())
      return i;
  }
  return std::nullopt;
}

Error ModelSupervisor::not_found(const std::string& name) const {
  return Error{Errc::not_found,
               fmt::format("model '{}' does not exist (GET /v1/models lists them)", name), "model"};
}

void ModelSupervisor::on_acquire(Acquire& a) {
  const auto i = resolve(a.model);
  if (!i)
    return a.reply.fail(not_found(a.model));
  Slot& s = slots_[*i];
  if (s.state == ModelState::loaded && !s.draining)
    return lease(*i, a);
  const auto bound = static_cast<std::size_t>(std::max(0, s.config.options.max_queue));
  if (s.waiting.size() >= bound) {
    return a.reply.fail(
        Error{Errc::overloaded, fmt::format("{} requests already wait for model '{}' (--max-queue)",
                                            s.waiting.size(), s.config.id())});
  }
  s.waiting.push_back(std::move(a));
  if (s.state == ModelState::unloaded || s.state == ModelState::failed)
    request_load(*i);
}

void ModelSupervisor::lease(std::size_t i, Acquire& a) {
  Slot& s = slots_[i];
  ++s.active;
  ++s.idle_generation;  // a pending idle timer is stale now
  s.last_used = Clock::now();
  auto token = std::make_shared<LeaseToken>(self(), i, a.keep_alive);
  a.reply.send(Lease{s.backend.get(), s.config.id(), std::move(token)});
}

void ModelSupervisor::on_release(const Release& r) {
  Slot& s = slots_[r.index];
  --s.active;
  s.last_used = Clock::now();
  s.keep_alive = r.keep_alive.value_or(options_.idle_unload);
  if (s.active == 0)
    on_idle(r.index);
}

void ModelSupervisor::on_idle(std::size_t i) {
  Slot& s = slots_[i];
  if (s.state != ModelState::loaded)
    return;
  if (s.draining || s.keep_alive.count() == 0)
    return start_unload(i);
  if (!pending_.empty()) {
    admit_pending();  // a waiting load may take this model's place
    if (s.state != ModelState::loaded)
      return;
  }
  arm_idle_timer(i);
}

void ModelSupervisor::arm_idle_timer(std::size_t i) {
  Slot& s = slots_[i];
  const auto gen = ++s.idle_generation;
  if (s.keep_alive.count() < 0)
    return;
  if (!s.idle_timer)
    s.idle_timer = std::make_unique<asio::steady_timer>(system().io_context());
  s.idle_timer->expires_after(s.keep_alive);
  s.idle_timer->async_wait([ref = self(), i, gen](boost::system::error_code ec) {
    if (!ec)
      ref.tell(IdleExpired{i, gen});
  });
}

void ModelSupervisor::on_idle_expired(const IdleExpired& e) {
  Slot& s = slots_[e.index];
  if (e.generation != s.idle_generation || s.state != ModelState::loaded || s.active > 0)
    return;
  spdlog::info("model {}: idle for {}, unloading", s.config.id(), describe_ms(s.keep_alive));
  start_unload(e.index);
}

void ModelSupervisor::request_load(std::size_t i) {
  Slot& s = slots_[i];
  if (s.pending || s.state == ModelState::loading || s.state == ModelState::loaded)
    return;
  if (options_.memory_budget > 0) {
    auto est = loader_.estimate(s.config);
    std::optional<Error> refused;
    if (!est) {
      refused = Error{Errc::invalid_request,
                      fmt::format("model '{}': cannot estimate its memory: {}", s.config.id(),
                                  est.error().message),
                      "model"};
    } else if (est->total() > options_.memory_budget) {
      refused =
          Error{Errc::invalid_request,
                fmt::format("model '{}' needs about {} (weights {} + KV cache {} for {} cells{}), "
                            "more than --models-memory-budget {}: it cannot be loaded",
                            s.config.id(), format_bytes(est->total()), format_bytes(est->weights),
                            format_bytes(est->kv_cache), s.config.options.engine.n_ctx,
                            est->compute > 0
                                ? fmt::format(" + compute buffers {}", format_bytes(est->compute))
                                : std::string(),
                            format_bytes(options_.memory_budget)),
                "model"};
    }
    if (refused) {
      spdlog::warn("{}", refused->message);
      s.state = ModelState::failed;
      s.reason = refused->message;
      publish(i);
      return fail_waiters(i, *refused);
    }
    s.estimate = est->total();
  }
  s.pending = true;
  pending_.push_back(i);
  admit_pending();
}

bool ModelSupervisor::has_room(std::size_t i, bool counting_leavers) const {
  std::size_t loaded = 0;
  std::uint64_t bytes = slots_[i].estimate;
  for (std::size_t j = 0; j < slots_.size(); ++j) {
    const Slot& o = slots_[j];
    const bool holds = o.state == ModelState::loading || o.state == ModelState::loaded ||
                       o.state == ModelState::unloading;
    const bool leaving = o.state == ModelState::unloading || o.draining;
    if (j == i || !holds || (leaving && !counting_leavers))
      continue;
    ++loaded;
    bytes += o.estimate;
  }
  const bool count_ok = options_.max_loaded == 0 || loaded < options_.max_loaded;
  const bool bytes_ok = options_.memory_budget == 0 || bytes <= options_.memory_budget;
  return count_ok && bytes_ok;
}

void ModelSupervisor::admit_pending() {
  while (!pending_.empty()) {
    const std::size_t i = pending_.front();
    if (has_room(i, true)) {
      pending_.pop_front();
      slots_[i].pending = false;
      start_load(i);
      continue;
    }
    // Make models leave until the ones that stay leave room; then wait for them to go.
    while (!has_room(i, false) && evict_one(i)) {
    }
    return;
  }
}

bool ModelSupervisor::evict_one(std::size_t keep) {
  std::optional<std::size_t> idle, busy;
  for (std::size_t j = 0; j < slots_.size(); ++j) {
    const Slot& o = slots_[j];
    if (j == keep || o.state != ModelState::loaded || o.draining)
      continue;
    auto& best = o.active == 0 && o.waiting.empty() ? idle : busy;
    if (!best || o.last_used < slots_[*best].last_used)
      best = j;
  }
  if (idle) {
    spdlog::info("model {}: unloading the least recently used idle model to make room for {}",
                 slots_[*idle].config.id(), slots_[keep].config.id());
    start_unload(*idle);
    return true;
  }
  if (busy) {
    spdlog::info("model {}: will unload when its requests end, to make room for {}",
                 slots_[*busy].config.id(), slots_[keep].config.id());
    slots_[*busy].draining = true;
    publish(*busy);
    return true;
  }
  return false;
}

void ModelSupervisor::start_load(std::size_t i) {
  Slot& s = slots_[i];
  s.state = ModelState::loading;
  s.reason.clear();
  s.load_started = Clock::now();
  spdlog::info("model {}: loading {}{}", s.config.id(), s.config.options.model_path,
               s.estimate > 0 ? fmt::format(" (about {})", format_bytes(s.estimate)) : "");
  publish(i);
  auto config = s.config;
  config.options.on_load_progress = [board = &board_, i, id = s.config.id(),
                                     quarter = 0](float fraction) mutable {
    board->set_progress(i, fraction);
    if (const int now = static_cast<int>(fraction * 4.0f); now > quarter) {
      quarter = now;  // the log says each quarter once
      spdlog::info("model {}: loading, {}%", id, now * 25);
    }
  };
  asio::post(jobs_, [ref = self(), i, config = std::move(config), load = loader_.load] {
    const auto t0 = Clock::now();
    auto r = load(config);
    LoadDone done{i, nullptr, std::nullopt,
                  std::chrono::duration<double>(Clock::now() - t0).count()};
    if (r)
      done.backend = std::move(r).value();
    else
      done.error = r.error();
    ref.tell(std::move(done));
  });
}

void ModelSupervisor::on_load_done(LoadDone& d) {
  Slot& s = slots_[d.index];
  board_.count_load(d.index, d.seconds, d.backend != nullptr);
  if (!d.backend) {
    s.state = ModelState::failed;
    s.reason = d.error ? d.error->message : "the load failed";
    spdlog::warn("model {}: failed to load: {}", s.config.id(), s.reason);
    publish(d.index);  // before the answers: an asker sees the state its answer implies
    fail_waiters(
        d.index,
        Error{Errc::engine_failed,
              fmt::format("model '{}' failed to load: {}", s.config.id(), s.reason), "model"});
    return admit_pending();
  }
  s.state = ModelState::loaded;
  s.backend = std::move(d.backend);
  board_.set_backend(d.index, s.backend.get());
  spdlog::info("model {}: loaded in {:.2f} s", s.config.id(), d.seconds);
  publish(d.index);
  auto waiting = std::move(s.waiting);
  s.waiting.clear();
  count_waiting();
  for (auto& a : waiting)
    lease(d.index, a);
  for (auto& r : s.load_waiters)
    r.send(info(d.index));
  s.load_waiters.clear();
  if (s.active == 0)
    on_idle(d.index);
  admit_pending();
}

void ModelSupervisor::start_unload(std::size_t i) {
  Slot& s = slots_[i];
  s.state = ModelState::unloading;
  s.draining = false;
  ++s.idle_generation;
  board_.set_backend(i, nullptr);  // off the board before it is destroyed
  board_.count_unload(i);
  publish(i);
  asio::post(jobs_, [ref = self(), i,
                     b = std::shared_ptr<engine::Backend>(std::move(s.backend))]() mutable {
    b.reset();
    ref.tell(UnloadDone{i});
  });
}

void ModelSupervisor::on_unload_done(const UnloadDone& d) {
  Slot& s = slots_[d.index];
  s.state = ModelState::unloaded;
  spdlog::info("model {}: unloaded", s.config.id());
  publish(d.index);
  for (auto& r : s.unload_waiters)
    r.send(info(d.index));
  s.unload_waiters.clear();
  if (!s.waiting.empty() || !s.load_waiters.empty())
    request_load(d.index);
  admit_pending();
}

void ModelSupervisor::on_load_model(LoadModel& m) {
  const auto i = resolve(m.model);
  if (!i)
    return m.reply.fail(not_found(m.model));
  Slot& s = slots_[*i];
  if (s.state == ModelState::loaded) {
    s.draining = false;
    s.last_used = Clock::now();
    publish(*i);
    return m.reply.send(info(*i));
  }
  s.load_waiters.push_back(std::move(m.reply));
  if (s.state == ModelState::unloaded || s.state == ModelState::failed)
    request_load(*i);
}

void ModelSupervisor::on_unload_model(UnloadModel& m) {
  const auto i = resolve(m.model);
  if (!i)
    return m.reply.fail(not_found(m.model));
  Slot& s = slots_[*i];
  if (s.state == ModelState::unloading)
    return s.unload_waiters.push_back(std::move(m.reply));
  if (s.state == ModelState::loaded && s.active == 0 && s.waiting.empty()) {
    s.unload_waiters.push_back(std::move(m.reply));
    return start_unload(*i);
  }
  if (s.state == ModelState::loaded || s.state == ModelState::loading) {
    s.draining = true;  // unloads when its requests end
    publish(*i);
  }
  m.reply.send(info(*i));
}

void ModelSupervisor::fail_waiters(std::size_t i, const Error& e) {
  Slot& s = slots_[i];
  auto waiting = std::move(s.waiting);
  auto load_waiters = std::move(s.load_waiters);
  s.waiting.clear();
  s.load_waiters.clear();
  count_waiting();  // before the answers, as the state
  for (auto& a : waiting)
    a.reply.fail(e);
  for (auto& r : load_waiters)
    r.fail(e);
}

engine::ModelInfo ModelSupervisor::info(std::size_t i) const {
  const Slot& s = slots_[i];
  engine::ModelInfo m;
  if (s.backend) {
    auto models = s.backend->models();
    if (!models.empty())
      m = models.front();
  }
  m.id = s.config.id();
  m.aliases = s.config.options.aliases;
  m.details = s.details;
  if (m.n_ctx == 0 && s.config.options.engine.n_parallel > 0)
    m.n_ctx = s.config.options.engine.n_ctx / s.config.options.engine.n_parallel;
  const bool leaving = s.draining && s.state == ModelState::loaded;
  m.state = leaving ? "unloading" : state_name(s.state);
  if (s.state == ModelState::failed)
    m.state_message = s.reason;
  else if (leaving)
    m.state_message = fmt::format("unloads when its {} running requests end", s.active);
  return m;
}

void ModelSupervisor::publish(std::size_t i) {
  board_.set_info(i, info(i));
}

void ModelSupervisor::count_waiting() {
  std::int64_t n = 0;
  for (const auto& s : slots_)
    n += static_cast<std::int64_t>(s.waiting.size());
  board_.set_waiting(n);
}

}  // namespace troupe::models
