#include "cluster/gateway.hpp"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <atomic>
#include <boost/asio/use_awaitable.hpp>
#include <deque>
#include <map>
#include <mutex>
#include <set>
#include <unordered_map>

#include "cluster/cluster_protocol.hpp"
#include "cluster/directory.hpp"
#include "util/prometheus.hpp"

namespace troupe::cluster {

namespace asio = boost::asio;

namespace {

// One request in flight through this gateway.
struct Pending {
  engine::StreamWriter writer;
  remote::ActorAddress target;
  bool started = false;
  engine::Task task;                 // kept until Started, to retry elsewhere
  std::vector<std::uint64_t> tried;  // worker nodes it was sent to
};

// A request to (re)send after the lock is released.
struct Send {
  remote::ActorAddress target;
  GenerateRequest request;
};

bool is_worker(const remote::MemberRecord& m) {
  return std::any_of(m.actors.begin(), m.actors.end(),
                     [](const auto& a) { return a.name.starts_with(kEnginePrefix); });
}

}  // namespace

struct Gateway::Impl {
  Impl(remote::Node& n, GatewayOptions o) : node(n), options(o), router(o.router) {}

  std::optional<Send> route_locked(std::uint64_t id, Pending& p, std::string* why);
  void send(std::vector<Send> sends);
  void on_update(remote::Envelope& e);
  std::optional<Send> retry_refused_locked(std::uint64_t id, Pending& p,
                                           const engine::StreamEvent& ev);
  void deliver(std::uint64_t from, std::uint64_t id, engine::StreamEvent ev);
  void cancel(std::uint64_t id);
  void on_member(const remote::MemberEvent& e);
  void worker_lost(std::uint64_t node);
  void count_event(const engine::StreamEvent& ev);
  void remember_lost_locked(const remote::MemberRecord& m);

  remote::Node& node;
  GatewayOptions options;
  remote::ActorAddress sink;  // written by start() before any request
  std::atomic<bool> stopped{false};

  mutable std::mutex mu;  // guards everything below
  Router router;
  std::uint64_t next_id = 1;
  std::unordered_map<std::uint64_t, Pending> pending;
  std::map<std::uint64_t, std::int64_t> outstanding;  // by worker node
  std::map<std::uint64_t, std::int64_t> routed;       // by worker node
  std::set<std::uint64_t> known_workers;              // for "worker up/lost" logs
  std::map<std::uint64_t, WorkerView> lost;           // recently lost workers, for /metrics
  std::deque<std::uint64_t> lost_order;               // oldest first, at most kLostWorkersKept
  GatewayStats counters;                              // the counters; workers filled on read
  engine::BackendStats totals;
};

// Chooses a worker for `p` among those not tried yet. Returns the message to send, or
// nullopt with the reason in *why.
std::optional<Send> Gateway::Impl::route_locked(std::uint64_t id, Pending& p, std::string* why) {
  auto snap = node.snapshot();
  std::vector<WorkerEntry> workers;
  for (auto& w : workers_for(*snap, p.task.model)) {
    if (std::find(p.tried.begin(), p.tried.end(), w.engine.node) == p.tried.end())
      workers.push_back(std::move(w));
  }
  // Prefer the workers that have the model loaded (gossip): the others would load it first.
  if (std::any_of(workers.begin(), workers.end(), [](const auto& w) { return w.loaded; })) {
    workers.erase(
        std::remove_if(workers.begin(), workers.end(), [](const auto& w) { return !w.loaded; }),
        workers.end());
  }
  if (workers.empty()) {
    *why = p.tried.empty() ? fmt::format("no worker serves model '{}'", p.task.model)
                           : fmt::format("no other worker serves model '{}'", p.task.model);
    return std::nullopt;
  }
  std::vector<Candidate> cands;
  for (const auto& w : workers) {
    const auto mine = outstanding[w.engine.node];
    cands.push_back({w.engine.node, std::max(mine, w.load.running + w.load.queued), w.capacity});
  }
  const auto hashes =
      prefix_hashes(p.task.prompt, router.options().block, router.options().max_prefix);
  const auto d = router.route(cands, hashes);
  if (d.reason == RouteReason::affinity)
    ++counters.routed_affinity;
  else if (d.reason == RouteReason::affinity_overruled)
    ++counters.affinity_overruled;
  else
    ++counters.routed_least_loaded;
  const auto& chosen = workers[d.index].engine;
  ++outstanding[chosen.node];
  ++routed[chosen.node];
  p.target = chosen;
  p.tried.push_back(chosen.node);
  spdlog::debug("gateway: request {} -> node {:016x} ({})", id, chosen.node,
                route_reason_name(d.reason));
  return Send{chosen, GenerateRequest{id, sink, p.task}};
}

void Gateway::Impl::send(std::vector<Send> sends) {
  while (!sends.empty()) {
    Send s = std::move(sends.back());
    sends.pop_back();
    auto ref = node.ref_for(s.target);
    auto sent =
        s.request.task.embedding
            ? ref.tell(EmbeddingRequest{s.request.request_id, s.request.reply_to, s.request.task})
            : ref.tell(s.request);
    if (sent)
      continue;
    // The worker is unreachable or its link is full: try another one, as for a lost worker.
    std::unique_lock lock(mu);
    auto it = pending.find(s.request.request_id);
    if (it == pending.end() || it->second.target.node != s.target.node)
      continue;
    --outstanding[s.target.node];
    std::string why;
    if (auto again = route_locked(it->first, it->second, &why)) {
      sends.push_back(std::move(*again));
      continue;
    }
    auto writer = std::move(it->second.writer);
    pending.erase(it);
    lock.unlock();
    writer.push(engine::Failed{Error{Errc::unavailable, sent.error().message}});
  }
}

void Gateway::Impl::count_event(const engine::StreamEvent& ev) {
  if (const auto* s = std::get_if<engine::Started>(&ev)) {
    totals.prompt_tokens_total += s->prompt_tokens;
    totals.prefix_cache_hits_total += s->cached_tokens;
    totals.prefix_cache_queries_total += s->prompt_tokens;
  } else if (const auto* d = std::get_if<engine::Delta>(&ev)) {
    totals.generation_tokens_total += static_cast<std::int64_t>(d->tokens.size());
  }
}

void Gateway::Impl::on_update(remote::Envelope& e) {
  if (e.type == remote::Codec<EmbeddingResult>::type_id) {
    auto m = decode_message<EmbeddingResult>(e.payload);
    if (!m) {
      spdlog::warn("gateway: ignoring a malformed embedding result from node {:016x}", e.from);
      return;
    }
    deliver(e.from, m->request_id, std::move(m->finished));
    return;
  }
  if (e.type != remote::Codec<StreamUpdate>::type_id) {
    spdlog::warn("gateway: ignoring a message of unknown type {:#x}", e.type);
    return;
  }
  auto m = decode_message<StreamUpdate>(e.payload);
  if (!m) {
    spdlog::warn("gateway: ignoring a malformed stream update from node {:016x}", e.from);
    return;
  }
  deliver(e.from, m->request_id, std::move(m->event));
}

// Retries a request its worker refused before starting it (overloaded, unavailable) when
// another worker may take it; returns the message to send.
std::optional<Send> Gateway::Impl::retry_refused_locked(std::uint64_t id, Pending& p,
                                                        const engine::StreamEvent& ev) {
  const auto* f = std::get_if<engine::Failed>(&ev);
  if (f == nullptr || p.started || static_cast<int>(p.tried.size()) >= options.max_attempts)
    return std::nullopt;
  if (f->error.code != Errc::overloaded && f->error.code != Errc::unavailable)
    return std::nullopt;
  --outstanding[p.target.node];
  std::string why;
  auto s = route_locked(id, p, &why);
  if (s)
    ++counters.retried;
  else
    ++outstanding[p.target.node];  // nowhere else: deliver the refusal as it is
  return s;
}

void Gateway::Impl::deliver(std::uint64_t from, std::uint64_t id, engine::StreamEvent ev) {
  engine::StreamWriter finished;  // destroyed after the lock is released
  std::unique_lock lock(mu);
  auto it = pending.find(id);
  if (it == pending.end() || it->second.target.node != from)
    return;  // cancelled, or a late event from a worker the request has left
  auto& p = it->second;
  if (auto again = retry_refused_locked(id, p, ev)) {
    lock.unlock();
    send({std::move(*again)});
    return;
  }
  if (std::holds_alternative<engine::Started>(ev)) {
    p.started = true;
    p.task = {};
  }
  count_event(ev);
  const bool final = engine::is_final(ev);
  p.writer.push(std::move(ev));
  if (final) {
    --outstanding[p.target.node];
    finished = std::move(p.writer);
    pending.erase(it);
  }
}

void Gateway::Impl::cancel(std::uint64_t id) {
  engine::StreamWriter writer;
  remote::ActorAddress target;
  {
    std::lock_guard lock(mu);
    auto it = pending.find(id);
    if (it == pending.end())
      return;
    target = it->second.target;
    writer = std::move(it->second.writer);
    --outstanding[target.node];
    ++totals.cancelled_total;
    pending.erase(it);
  }
  if (auto sent = node.ref_for(target).tell(CancelRequest{id}); !sent)
    spdlog::debug("gateway: cancel of request {} not sent: {}", id, sent.error().message);
}

void Gateway::Impl::worker_lost(std::uint64_t lost) {
  std::vector<Send> resend;
  std::vector<engine::StreamWriter> failed;
  {
    std::lock_guard lock(mu);
    for (auto it = pending.begin(); it != pending.end();) {
      auto& p = it->second;
      std::string why;
      std::optional<Send> s;
      if (p.target.node == lost && !p.started &&
          static_cast<int>(p.tried.size()) < options.max_attempts)
        s = route_locked(it->first, p, &why);
      if (s) {
        resend.push_back(std::move(*s));
        ++counters.retried;
      } else if (p.target.node == lost) {
        failed.push_back(std::move(p.writer));
        ++counters.failed_worker_lost;
        it = pending.erase(it);
        continue;
      }
      ++it;
    }
    outstanding.erase(lost);
  }
  if (!failed.empty() || !resend.empty()) {
    spdlog::warn("gateway: worker {:016x} lost: {} streams failed, {} requests re-sent", lost,
                 failed.size(), resend.size());
  }
  for (auto& w : failed)
    w.push(engine::Failed{Error{Errc::unavailable, "the worker serving this request was lost"}});
  send(std::move(resend));
}

// Keeps a lost worker for /metrics (up == 0), the newest kLostWorkersKept: its labels and
// its routed counter. Its gauges (capacity, running, queued, KV usage, outstanding) stay 0: a
// dead worker runs nothing, and its last gossiped load would read as if it still did.
void Gateway::Impl::remember_lost_locked(const remote::MemberRecord& m) {
  WorkerView v;
  v.up = false;
  v.node = m.id;
  v.address = m.address;
  v.model = parse_worker_meta(m.meta).model;
  if (auto it = routed.find(m.id); it != routed.end())
    v.routed_total = it->second;
  if (lost.insert_or_assign(m.id, std::move(v)).second)
    lost_order.push_back(m.id);
  while (lost_order.size() > kLostWorkersKept) {
    lost.erase(lost_order.front());
    routed.erase(lost_order.front());
    lost_order.pop_front();
  }
}

void Gateway::Impl::on_member(const remote::MemberEvent& e) {
  using K = remote::MemberEventKind;
  const auto& m = e.member;
  const bool gone = e.kind == K::dead || e.kind == K::left;
  const bool serving = !gone && is_worker(m);
  std::size_t n = 0;
  bool changed = false;
  {
    std::lock_guard lock(mu);
    changed = serving ? known_workers.insert(m.id).second : known_workers.erase(m.id) > 0;
    n = known_workers.size();
    if (changed && !serving)
      remember_lost_locked(m);
    else if (changed && lost.erase(m.id) > 0)
      std::erase(lost_order, m.id);  // back (it refuted a false suspicion of death)
  }
  if (changed && serving) {
    auto model = m.meta.find(meta::model);
    spdlog::info("gateway: worker up: node {:016x} at {} model {} ({} workers)", m.id, m.address,
                 model == m.meta.end() ? "?" : model->second, n);
  } else if (changed) {
    spdlog::warn("gateway: worker lost: node {:016x} at {} ({}) ({} workers)", m.id, m.address,
                 remote::member_event_name(e.kind), n);
  }
  if (gone || (changed && !serving))
    worker_lost(m.id);
}

Gateway::Gateway(remote::Node& node, GatewayOptions options)
    : impl_(std::make_shared<Impl>(node, options)) {}

Gateway::~Gateway() {
  stop();
}

void Gateway::start(std::function<void(const remote::MemberEvent&)> on_member) {
  std::weak_ptr<Impl> weak = impl_;
  auto& node = impl_->node;
  const auto actor =
      node.publish(fmt::format("gateway/{:016x}", node.id()), [weak](remote::Envelope& e) {
        if (auto s = weak.lock())
          s->on_update(e);
      });
  impl_->sink = remote::ActorAddress{node.id(), node.address(), actor};
  node.set_metadata(meta::role, "gateway");
  node.on_member_event([weak, on_member = std::move(on_member)](const remote::MemberEvent& e) {
    if (auto s = weak.lock())
      s->on_member(e);
    if (on_member)
      on_member(e);
  });
  // Workers already in the registry (a restarted gateway) are "up" at once. The snapshot is held
  // for the loop: the registry may publish another meanwhile, and a temporary's members would go
  // with it.
  const auto registry = node.snapshot();
  for (const auto& m : registry->members) {
    if (m.id != node.id())
      impl_->on_member(remote::MemberEvent{remote::MemberEventKind::joined, m});
  }
}

void Gateway::stop() {
  if (impl_->stopped.exchange(true))
    return;
  std::vector<std::pair<std::uint64_t, Pending>> all;
  {
    std::lock_guard lock(impl_->mu);
    for (auto& kv : impl_->pending)
      all.emplace_back(kv.first, std::move(kv.second));
    impl_->pending.clear();
    impl_->outstanding.clear();
  }
  for (auto& [id, p] : all) {
    p.writer.push(engine::Failed{Error{Errc::unavailable, "the gateway is shutting down"}});
    (void)impl_->node.ref_for(p.target).tell(CancelRequest{id});
  }
}

asio::awaitable<engine::TokenStream> Gateway::generate(engine::Task task) {
  auto& im = *impl_;
  if (im.stopped.load())
    co_return engine::failed_stream(Error{Errc::unavailable, "the gateway is shutting down"});
  if (task.id_slot) {  // as GET /slots: the slots are the workers'
    co_return engine::failed_stream(
        Error{Errc::invalid_request, "id_slot names a worker's slot: ask that worker", "id_slot"});
  }
  if (task.model.empty()) {
    auto ms = models();
    if (ms.empty())
      co_return engine::failed_stream(Error{Errc::unavailable, "no worker has joined yet"});
    task.model = ms.front().id;
  }
  auto [writer, stream] = engine::make_stream();
  std::optional<Send> s;
  std::string why;
  {
    std::lock_guard lock(im.mu);
    const auto id = im.next_id++;
    Pending p;
    p.task = std::move(task);
    s = im.route_locked(id, p, &why);
    if (s) {
      writer.on_cancel([weak = std::weak_ptr<Impl>(impl_), id] {
        if (auto self = weak.lock())
          self->cancel(id);
      });
      p.writer = std::move(writer);
      im.pending.emplace(id, std::move(p));
    } else {
      ++im.counters.no_worker;
    }
  }
  if (!s)
    co_return engine::failed_stream(Error{Errc::not_found, why, "model"});
  im.send({std::move(*s)});
  co_return std::move(stream);
}

namespace {

// Asks the least loaded worker serving `model` and decodes its reply as R.
template <class R, class M>
asio::awaitable<Result<R>> ask_worker(remote::Node& node, std::string model, M message,
                                      std::chrono::milliseconds timeout) {
  auto workers = workers_for(*node.snapshot(), model);
  if (workers.empty())
    co_return Error{Errc::not_found, fmt::format("no worker serves model '{}'", model), "model"};
  auto best = std::min_element(workers.begin(), workers.end(), [](const auto& a, const auto& b) {
    return a.load.running + a.load.queued < b.load.running + b.load.queued;
  });
  const auto payload = encode_message(message);
  auto ref = node.ref_for(best->engine);
  auto reply =
      co_await ref.async_ask_raw(remote::Codec<M>::type_id, payload, timeout, asio::use_awaitable);
  if (!reply)
    co_return reply.error();
  if (reply->type != remote::Codec<R>::type_id)
    co_return Error{Errc::internal, "unexpected reply from worker"};
  co_return decode_message<R>(reply->payload);
}

}  // namespace

asio::awaitable<Result<std::vector<engine::Token>>> Gateway::tokenize(std::string model,
                                                                      std::string text,
                                                                      bool add_special,
                                                                      bool parse_special) {
  if (model.empty()) {
    auto ms = models();
    model = ms.empty() ? std::string() : ms.front().id;
  }
  // A named request, moved in: GCC 12 miscompiles an aggregate initialised in the arguments
  // of a coroutine called inside co_await (the callee frame's copy of the parameter keeps
  // pointers into the caller's temporary: "free(): invalid size" when it is destroyed).
  TokenizeRequest req{model, std::move(text), add_special, parse_special};
  auto r = co_await ask_worker<TokenizeReply>(impl_->node, model, std::move(req),
                                              impl_->options.ask_timeout);
  if (!r)
    co_return r.error();
  co_return std::move(r->tokens);
}

asio::awaitable<Result<std::string>> Gateway::detokenize(std::string model,
                                                         std::vector<engine::Token> tokens) {
  if (model.empty()) {
    auto ms = models();
    model = ms.empty() ? std::string() : ms.front().id;
  }
  DetokenizeRequest req{model, std::move(tokens)};  // named: see tokenize()
  auto r = co_await ask_worker<DetokenizeReply>(impl_->node, model, std::move(req),
                                                impl_->options.ask_timeout);
  if (!r)
    co_return r.error();
  co_return std::move(r->text);
}

asio::awaitable<Result<std::string>> Gateway::apply_template(engine::Task task) {
  if (task.model.empty()) {
    auto ms = models();
    task.model = ms.empty() ? std::string() : ms.front().id;
  }
  std::string model = task.model;
  ApplyTemplateRequest req{std::move(task)};  // named: see tokenize()
  auto r = co_await ask_worker<ApplyTemplateReply>(impl_->node, model, std::move(req),
                                                   impl_->options.ask_timeout);
  if (!r)
    co_return r.error();
  co_return std::move(r->prompt);
}

// Asked of a worker serving the model, as tokenize() is.
asio::awaitable<Result<engine::ModelProps>> Gateway::props(std::string model) {
  if (model.empty()) {
    auto ms = models();
    if (ms.empty())
      co_return unknown_model_error(model);
    model = ms.front().id;
  }
  PropsRequest req{model};  // named: see tokenize()
  auto r = co_await ask_worker<PropsReply>(impl_->node, model, std::move(req),
                                           impl_->options.ask_timeout);
  if (!r)
    co_return r.error();
  co_return std::move(r->props);
}

namespace {
Error workers_own_adapters() {
  return Error{Errc::invalid_request,
               "the gateway does not list or set its workers' LoRA adapters: ask a worker's own "
               "/lora-adapters (a request's 'lora' reaches the worker that serves it)"};
}
}  // namespace

boost::asio::awaitable<Result<std::vector<engine::LoraAdapterInfo>>> Gateway::lora_adapters(
    std::string) {
  co_return workers_own_adapters();
}

boost::asio::awaitable<Result<void>> Gateway::set_lora_adapters(std::string, engine::LoraRequest) {
  co_return workers_own_adapters();
}

std::vector<engine::ModelInfo> Gateway::models() const {
  return models_of(*impl_->node.snapshot());
}

engine::Health Gateway::health() const {
  if (impl_->stopped.load())
    return {engine::HealthState::failed, "the gateway is shutting down"};
  if (models().empty())
    return {engine::HealthState::loading, "waiting for workers to join"};
  return {engine::HealthState::ready, {}};
}

engine::BackendStats Gateway::stats() const {
  const auto workers = all_workers(*impl_->node.snapshot());
  std::lock_guard lock(impl_->mu);
  auto s = impl_->totals;
  for (const auto& [id, p] : impl_->pending)
    ++(p.started ? s.requests_running : s.requests_queued);
  for (const auto& w : workers)
    s.kv_cache_usage_ratio += w.load.kv_usage / static_cast<double>(workers.size());
  return s;
}

GatewayStats Gateway::gateway_stats() const {
  const auto workers = all_workers(*impl_->node.snapshot());
  std::lock_guard lock(impl_->mu);
  GatewayStats s = impl_->counters;
  s.in_flight = static_cast<std::int64_t>(impl_->pending.size());
  for (const auto& w : workers) {
    WorkerView v;
    v.node = w.engine.node;
    v.address = w.engine.address;
    v.model = w.model;
    v.capacity = w.capacity;
    v.running = w.load.running;
    v.queued = w.load.queued;
    v.kv_usage = w.load.kv_usage;
    if (auto it = impl_->outstanding.find(v.node); it != impl_->outstanding.end())
      v.outstanding = it->second;
    if (auto it = impl_->routed.find(v.node); it != impl_->routed.end())
      v.routed_total = it->second;
    s.workers.push_back(std::move(v));
  }
  for (const auto& [id, v] : impl_->lost) {
    const bool live = std::any_of(workers.begin(), workers.end(),
                                  [id = id](const auto& w) { return w.engine.node == id; });
    if (!live)
      s.workers.push_back(v);
  }
  return s;
}

namespace {}  // namespace

std::string render_gateway_metrics(const GatewayStats& s) {
  namespace prom = util::prometheus;
  std::string out;
  auto scalar = [&](std::string_view name, std::string_view type, std::string_view help,
                    std::int64_t v) { prom::scalar(out, name, type, help, v); };
  prom::family(out, "troupe_gateway_routed_total", "counter",
               "Requests routed, by routing decision.");
  const auto routed = [&](std::string_view decision, std::int64_t n) {
    prom::sample(out, "troupe_gateway_routed_total", fmt::format("decision=\"{}\"", decision), n);
  };
  routed("least_loaded", s.routed_least_loaded);
  routed("affinity", s.routed_affinity);
  routed("affinity_overruled", s.affinity_overruled);
  scalar("troupe_gateway_retried_total", "counter",
         "Requests re-sent to another worker (their worker was lost or refused them).", s.retried);
  scalar("troupe_gateway_worker_lost_failures_total", "counter",
         "Started requests failed because their worker was lost.", s.failed_worker_lost);
  scalar("troupe_gateway_no_worker_total", "counter",
         "Requests refused: no live worker serves the model.", s.no_worker);
  scalar("troupe_gateway_in_flight", "gauge", "Requests in flight through this gateway.",
         s.in_flight);
  std::int64_t up = 0;
  for (const auto& w : s.workers)
    up += w.up ? 1 : 0;
  scalar("troupe_gateway_workers", "gauge", "Live workers.", up);

  // Per-worker series: one family per quantity, one sample per worker.
  std::vector<std::string> labels;
  labels.reserve(s.workers.size());
  for (const auto& w : s.workers) {
    labels.push_back(fmt::format("node=\"{:016x}\",address=\"{}\",model=\"{}\"", w.node,
                                 prom::label_value(w.address), prom::label_value(w.model)));
  }
  auto per_worker = [&](std::string_view name, std::string_view type, std::string_view help,
                        auto value) {
    prom::family(out, name, type, help);
    for (std::size_t i = 0; i < s.workers.size(); ++i)
      prom::sample(out, name, labels[i], value(s.workers[i]));
  };
  per_worker("troupe_gateway_worker_up", "gauge",
             "1 while the worker is live; 0 for a worker recently lost.",
             [](const WorkerView& w) { return std::int64_t{w.up ? 1 : 0}; });
  per_worker("troupe_gateway_worker_capacity", "gauge", "Sequences the worker decodes together.",
             [](const WorkerView& w) { return w.capacity; });
  per_worker("troupe_gateway_worker_running", "gauge",
             "Sequences generating on the worker (gossiped by it).",
             [](const WorkerView& w) { return w.running; });
  per_worker("troupe_gateway_worker_queued", "gauge",
             "Requests waiting on the worker (gossiped by it).",
             [](const WorkerView& w) { return w.queued; });
  per_worker("troupe_gateway_worker_kv_usage_ratio", "gauge",
             "Used share of the worker's KV cache (gossiped by it).",
             [](const WorkerView& w) { return w.kv_usage; });
  per_worker("troupe_gateway_worker_outstanding", "gauge",
             "This gateway's requests in flight on the worker.",
             [](const WorkerView& w) { return w.outstanding; });
  per_worker("troupe_gateway_worker_routed_total", "counter",
             "Requests this gateway sent to the worker.",
             [](const WorkerView& w) { return w.routed_total; });
  return out;
}

std::string Gateway::extra_metrics() const {
  return render_gateway_metrics(gateway_stats());
}

}  // namespace troupe::cluster
