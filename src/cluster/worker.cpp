#include "cluster/worker.hpp"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <atomic>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <map>
#include <mutex>
#include <optional>

#include "cluster/cluster_protocol.hpp"

namespace troupe::cluster {

namespace asio = boost::asio;

namespace {

using Key = std::pair<remote::NodeId, std::uint64_t>;  // (gateway node, request id)

// One forwarded stream. `signal` and `cancelled` are touched only on `strand`.
struct Running {
  explicit Running(const asio::any_io_executor& ex) : strand(asio::make_strand(ex)) {}
  asio::strand<asio::any_io_executor> strand;
  asio::cancellation_signal signal;
  bool cancelled = false;
};

// meta::loaded's value: the loaded models' ids, or nullopt for a backend of fixed models.
std::optional<std::string> loaded_string(const std::vector<engine::ModelInfo>& models) {
  std::optional<std::string> out;
  for (const auto& m : models) {
    if (m.state.empty())
      continue;
    if (!out)
      out.emplace();
    if (m.state == "loaded") {
      if (!out->empty())
        *out += ',';
      *out += m.id;
    }
  }
  return out;
}

std::string load_string(const engine::BackendStats& s) {
  return fmt::format("{} {} {:.3f}", s.requests_running, s.requests_queued, s.kv_cache_usage_ratio);
}

// Runs a coroutine detached, logging what escapes it (a bug: errors are values here).
void spawn(const asio::any_io_executor& ex, asio::awaitable<void> a) {
  asio::co_spawn(ex, std::move(a), [](const std::exception_ptr& e) {
    if (!e)
      return;
    try {
      std::rethrow_exception(e);
    } catch (const std::exception& x) {
      spdlog::error("worker: coroutine failed: {}", x.what());
    }
  });
}

}  // namespace

// Coroutines take `self` to keep the Impl alive for as long as their frame exists.
struct Worker::Impl {
  Impl(remote::Node& n, engine::Backend& b, asio::any_io_executor e, WorkerOptions o)
      : node(n), backend(b), ex(std::move(e)), options(o), timer(ex) {}

  void on_message(const std::shared_ptr<Impl>& self, remote::Envelope& e);
  void on_generate(const std::shared_ptr<Impl>& self, remote::NodeId from, GenerateRequest r);
  void on_cancel(remote::NodeId from, std::uint64_t id);
  asio::awaitable<void> serve(std::shared_ptr<Impl> self, Key key, std::shared_ptr<Running> run,
                              GenerateRequest req);
  asio::awaitable<void> tokenize(std::shared_ptr<Impl> self, TokenizeRequest r,
                                 remote::RemoteReply reply);
  asio::awaitable<void> detokenize(std::shared_ptr<Impl> self, DetokenizeRequest r,
                                   remote::RemoteReply reply);
  asio::awaitable<void> apply_template(std::shared_ptr<Impl> self, ApplyTemplateRequest r,
                                       remote::RemoteReply reply);
  asio::awaitable<void> props(std::shared_ptr<Impl> self, PropsRequest r,
                              remote::RemoteReply reply);
  asio::awaitable<void> wait_ready(std::shared_ptr<Impl> self,
                                   std::function<void(Result<std::vector<std::string>>)> done);
  std::vector<std::string> publish(const std::shared_ptr<Impl>& self);
  asio::awaitable<void> report_load(std::shared_ptr<Impl> self);
  void bad_message(std::uint32_t type);

  remote::Node& node;
  engine::Backend& backend;
  asio::any_io_executor ex;
  WorkerOptions options;
  asio::steady_timer timer;  // readiness checks, then load reports; on `ex`
  std::atomic<bool> stopped{false};
  std::mutex mu;                   // guards `streams` and `names`
  std::vector<std::string> names;  // published
  std::map<Key, std::shared_ptr<Running>> streams;

  std::atomic<std::int64_t> streams_total{0};
  std::atomic<std::int64_t> cancelled_total{0};
  std::atomic<std::int64_t> bad_messages{0};
};

void Worker::Impl::bad_message(std::uint32_t type) {
  if (bad_messages.fetch_add(1) == 0)
    spdlog::warn("worker: ignoring a malformed or unknown message (type {:#x})", type);
}

void Worker::Impl::on_message(const std::shared_ptr<Impl>& self, remote::Envelope& e) {
  using remote::Codec;
  if (e.type == Codec<GenerateRequest>::type_id) {
    auto m = decode_message<GenerateRequest>(e.payload);
    if (m)
      return on_generate(self, e.from, std::move(*m));
  } else if (e.type == Codec<EmbeddingRequest>::type_id) {
    auto m = decode_message<EmbeddingRequest>(e.payload);
    if (m) {
      return on_generate(self, e.from,
                         GenerateRequest{m->request_id, m->reply_to, std::move(m->task)});
    }
  } else if (e.type == Codec<CancelRequest>::type_id) {
    auto m = decode_message<CancelRequest>(e.payload);
    if (m)
      return on_cancel(e.from, m->request_id);
  } else if (e.type == Codec<TokenizeRequest>::type_id) {
    auto m = decode_message<TokenizeRequest>(e.payload);
    if (m)
      return spawn(ex, tokenize(self, std::move(*m), std::move(e.reply)));
  } else if (e.type == Codec<DetokenizeRequest>::type_id) {
    auto m = decode_message<DetokenizeRequest>(e.payload);
    if (m)
      return spawn(ex, detokenize(self, std::move(*m), std::move(e.reply)));
  } else if (e.type == Codec<ApplyTemplateRequest>::type_id) {
    auto m = decode_message<ApplyTemplateRequest>(e.payload);
    if (m)
      return spawn(ex, apply_template(self, std::move(*m), std::move(e.reply)));
  } else if (e.type == Codec<PropsRequest>::type_id) {
    auto m = decode_message<PropsRequest>(e.payload);
    if (m)
      return spawn(ex, props(self, std::move(*m), std::move(e.reply)));
  }
  bad_message(e.type);
  e.reply.fail(Error{Errc::invalid_request, "malformed or unknown cluster message"});
}

void Worker::Impl::on_generate(const std::shared_ptr<Impl>& self, remote::NodeId from,
                               GenerateRequest r) {
  const Key key{from, r.request_id};
  auto run = std::make_shared<Running>(ex);
  {
    std::lock_guard lock(mu);
    if (stopped.load() || !streams.emplace(key, run).second)
      return;  // shutting down (the gateway sees the node leave), or a duplicate id
  }
  streams_total.fetch_add(1, std::memory_order_relaxed);
  spawn(run->strand, serve(self, key, run, std::move(r)));
}

void Worker::Impl::on_cancel(remote::NodeId from, std::uint64_t id) {
  std::shared_ptr<Running> run;
  {
    std::lock_guard lock(mu);
    auto it = streams.find({from, id});
    if (it == streams.end())
      return;  // already finished
    run = it->second;
  }
  asio::post(run->strand, [run] {
    run->cancelled = true;
    run->signal.emit(asio::cancellation_type::terminal);
  });
}

asio::awaitable<void> Worker::Impl::serve([[maybe_unused]] std::shared_ptr<Impl> self, Key key,
                                          std::shared_ptr<Running> run, GenerateRequest req) {
  const auto reply = node.ref_for(req.reply_to);
  auto stream = co_await backend.generate(std::move(req.task));
  bool complete = false;
  while (!run->cancelled) {
    auto ev =
        co_await stream.next(asio::bind_cancellation_slot(run->signal.slot(), asio::use_awaitable));
    if (!ev)
      break;
    const bool final = engine::is_final(*ev);
    // An embedding's Finished carries its vector: its own message (StreamUpdate's Finished
    // has no room for one).
    auto* f = std::get_if<engine::Finished>(&*ev);
    auto sent = f != nullptr && !f->embedding.empty()
                    ? reply.tell(EmbeddingResult{req.request_id, std::move(*f)})
                    : reply.tell(StreamUpdate{req.request_id, std::move(*ev)});
    if (!sent) {
      spdlog::warn("worker: request {} from node {:016x}: {}; cancelling it", req.request_id,
                   key.first, sent.error().message);
      break;
    }
    if (final) {
      complete = true;
      break;
    }
  }
  if (!complete)
    cancelled_total.fetch_add(1, std::memory_order_relaxed);
  std::lock_guard lock(mu);
  streams.erase(key);
  // `stream` is destroyed on return: an unfinished request is cancelled in the engine.
}

asio::awaitable<void> Worker::Impl::tokenize([[maybe_unused]] std::shared_ptr<Impl> self,
                                             TokenizeRequest r, remote::RemoteReply reply) {
  auto t = co_await backend.tokenize(r.model, r.text, r.add_special, r.parse_special);
  if (t)
    reply.send(TokenizeReply{std::move(*t)});
  else
    reply.fail(t.error());
}

asio::awaitable<void> Worker::Impl::detokenize([[maybe_unused]] std::shared_ptr<Impl> self,
                                               DetokenizeRequest r, remote::RemoteReply reply) {
  auto t = co_await backend.detokenize(r.model, std::move(r.tokens));
  if (t)
    reply.send(DetokenizeReply{std::move(*t)});
  else
    reply.fail(t.error());
}

asio::awaitable<void> Worker::Impl::apply_template([[maybe_unused]] std::shared_ptr<Impl> self,
                                                   ApplyTemplateRequest r,
                                                   remote::RemoteReply reply) {
  auto p = co_await backend.apply_template(std::move(r.task));
  if (p)
    reply.send(ApplyTemplateReply{std::move(*p)});
  else
    reply.fail(p.error());
}

asio::awaitable<void> Worker::Impl::props([[maybe_unused]] std::shared_ptr<Impl> self,
                                          PropsRequest r, remote::RemoteReply reply) {
  auto p = co_await backend.props(std::move(r.model));
  if (p)
    reply.send(PropsReply{std::move(*p)});
  else
    reply.fail(p.error());
}

asio::awaitable<void> Worker::Impl::wait_ready(
    std::shared_ptr<Impl> self, std::function<void(Result<std::vector<std::string>>)> done) {
  // The Backend has no readiness event; loading takes seconds, so a coarse check suffices.
  for (;;) {
    const auto h = backend.health();
    if (h.state == engine::HealthState::ready)
      break;
    if (h.state == engine::HealthState::failed || stopped.load()) {
      done(Error{Errc::engine_failed, stopped.load() ? "worker stopped" : h.message});
      co_return;
    }
    timer.expires_after(std::chrono::milliseconds(20));
    boost::system::error_code ec;
    co_await timer.async_wait(asio::redirect_error(asio::use_awaitable, ec));
  }
  done(publish(self));
  co_await report_load(std::move(self));
}

std::vector<std::string> Worker::Impl::publish(const std::shared_ptr<Impl>& self) {
  const auto models = backend.models();
  std::vector<std::string> ids;
  if (!models.empty()) {
    node.set_metadata(meta::role, "worker");
    node.set_metadata(meta::model, models.front().id);
    node.set_metadata(meta::n_ctx, std::to_string(models.front().n_ctx));
    node.set_metadata(meta::n_vocab, std::to_string(models.front().n_vocab));
    node.set_metadata(meta::capacity, std::to_string(std::max<std::int64_t>(1, options.capacity)));
    node.set_metadata(meta::load, load_string(backend.stats()));
    if (auto loaded = loaded_string(models))
      node.set_metadata(meta::loaded, *loaded);
    node.set_metadata(meta::state, "ready");
  }
  std::weak_ptr<Impl> weak = self;
  for (const auto& m : models) {
    {
      std::lock_guard lock(mu);
      if (stopped.load())
        break;
      names.push_back(engine_name(m.id));
    }
    node.publish(engine_name(m.id), [weak](remote::Envelope& e) {
      if (auto s = weak.lock())
        s->on_message(s, e);
    });
    ids.push_back(m.id);
  }
  return ids;
}

asio::awaitable<void> Worker::Impl::report_load([[maybe_unused]] std::shared_ptr<Impl> self) {
  std::string last;
  std::optional<std::string> last_loaded;
  while (!stopped.load()) {
    auto now = load_string(backend.stats());
    if (now != last) {
      node.set_metadata(meta::load, now);
      last = std::move(now);
    }
    // A worker that loads models on demand says which are loaded now.
    if (auto loaded = loaded_string(backend.models()); loaded && loaded != last_loaded) {
      node.set_metadata(meta::loaded, *loaded);
      last_loaded = std::move(loaded);
    }
    timer.expires_after(options.load_interval);
    boost::system::error_code ec;
    co_await timer.async_wait(asio::redirect_error(asio::use_awaitable, ec));
  }
}

Worker::Worker(remote::Node& node, engine::Backend& backend, asio::any_io_executor ex,
               WorkerOptions options)
    : impl_(std::make_shared<Impl>(node, backend, std::move(ex), options)) {}

Worker::~Worker() {
  stop();
}

void Worker::start(std::function<void(Result<std::vector<std::string>>)> on_ready) {
  spawn(impl_->ex, impl_->wait_ready(impl_, std::move(on_ready)));
}

void Worker::stop() {
  if (impl_->stopped.exchange(true))
    return;
  asio::post(impl_->ex, [impl = impl_] { impl->timer.cancel(); });
  std::vector<Key> keys;
  std::vector<std::string> names;
  {
    std::lock_guard lock(impl_->mu);
    names = impl_->names;
    for (const auto& [k, r] : impl_->streams)
      keys.push_back(k);
  }
  for (const auto& n : names)
    impl_->node.unpublish(n);
  for (const auto& k : keys)
    impl_->on_cancel(k.first, k.second);
}

WorkerStats Worker::stats() const {
  WorkerStats s;
  {
    std::lock_guard lock(impl_->mu);
    s.streams_active = static_cast<std::int64_t>(impl_->streams.size());
  }
  s.streams_total = impl_->streams_total.load();
  s.cancelled_total = impl_->cancelled_total.load();
  s.bad_messages = impl_->bad_messages.load();
  return s;
}

}  // namespace troupe::cluster
