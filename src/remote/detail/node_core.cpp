#include "remote/detail/node_core.hpp"

#include <spdlog/spdlog.h>
#include <sys/socket.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <type_traits>
#include <utility>

#include "remote/detail/frame_io.hpp"
#include "remote/detail/tls_stream.hpp"

namespace troupe::remote::detail {

namespace asio = boost::asio;
using asio::ip::tcp;
using boost::system::error_code;

namespace {

// What an inbound session knows about its authenticated peer.
struct Inbound {
  NodeId peer = 0;
  // Where replies go: this connection's own reply link (plaintext), else our link to the
  // peer (TLS: the acceptor of a connection never writes on it after the handshakes).
  std::shared_ptr<Link> back;
};

Errc errc_from_status(std::uint32_t status) {
  if (status == 0 || status > static_cast<std::uint32_t>(Errc::internal) + 1)
    return Errc::internal;
  return static_cast<Errc>(status - 1);
}

// Completes the ask a reply or error frame answers; false for any other kind of frame.
bool complete_answer(NodeCore& core, const FrameView& f) {
  if (f.header.kind == FrameKind::reply) {
    core.complete_ask(f.header.correlation,
                      Reply{f.header.type, {f.payload.begin(), f.payload.end()}});
    return true;
  }
  if (f.header.kind == FrameKind::error) {
    std::string text(reinterpret_cast<const char*>(f.payload.data()), f.payload.size());
    core.complete_ask(f.header.correlation, Error{errc_from_status(f.header.status), text});
    return true;
  }
  return false;
}

void deliver(NodeCore& core, const std::shared_ptr<NodeCore>& self, const Inbound& in,
             const FrameView& f) {
  auto table = core.locals.load(std::memory_order_acquire);
  auto it = table->find(f.header.target);
  bool ask = f.header.kind == FrameKind::ask;
  if (it == table->end()) {
    core.unknown_target.fetch_add(1, std::memory_order_relaxed);
    if (ask)
      RemoteReply(self, in.back, f.header.correlation).fail({Errc::not_found, "no such actor"});
    return;
  }
  Envelope env{in.peer, f.header.type, f.payload,
               ask ? RemoteReply(self, in.back, f.header.correlation) : RemoteReply()};
  try {
    it->second->handler(env);
  } catch (const std::exception& e) {
    spdlog::error("remote: handler of '{}' threw: {}", it->second->name, e.what());
    env.reply.fail({Errc::internal, std::string("handler failed: ") + e.what()});
  }
}

// Returns false for a frame that must close the connection.
bool dispatch(const std::shared_ptr<NodeCore>& core, const Inbound& in, const FrameView& f) {
  switch (f.header.kind) {
    case FrameKind::tell:
    case FrameKind::ask:
      deliver(*core, core, in, f);
      return true;
    case FrameKind::reply:
    case FrameKind::error:
      return complete_answer(*core, f);
    case FrameKind::gossip: {
      auto m = decode_gossip(f.payload);
      if (!m || m->from != in.peer)
        return false;
      asio::post(core->strand, [core, m = std::move(m.value())] {
        if (core->stopped)
          return;
        Effects fx;
        core->membership->receive(m, Clock::now(), fx);
        core->run_effects(fx);
      });
      return true;
    }
    case FrameKind::hello:
    case FrameKind::proof:
      return false;
  }
  return false;
}

template <class Stream>
asio::awaitable<void> read_loop(std::shared_ptr<NodeCore> core, Stream& s, FrameDecoder& dec,
                                const Inbound& in) {
  Clock::time_point spin_until{};  // poll instead of sleeping until then (ask, reply seen)
  for (;;) {
    for (;;) {
      auto n = dec.next();
      if (!n || (n->has && !dispatch(core, in, n->frame))) {
        core->bad_frames.fetch_add(1, std::memory_order_relaxed);
        spdlog::warn("remote: closing connection from node {:016x}: {}", in.peer,
                     n ? "unexpected frame" : n.error().message);
        co_return;
      }
      if (!n->has)
        break;
      core->frames_received.fetch_add(1, std::memory_order_relaxed);
      if (n->frame.header.kind != FrameKind::tell && n->frame.header.kind != FrameKind::gossip)
        spin_until = Clock::now() + core->opt.spin_before_block;  // a conversation: poll
    }
    auto buf = dec.prepare(std::max<std::size_t>(dec.missing(), std::size_t{64} * 1024));
    if constexpr (std::is_same_v<Stream, tcp::socket>) {
      if (spin_until > Clock::now()) {
        if (std::size_t got = co_await spin_read(s.native_handle(), buf, spin_until)) {
          dec.commit(got);
          continue;
        }
      }
    }
    error_code ec;
    std::size_t n = co_await s.async_read_some(asio::buffer(buf.data(), buf.size()),
                                               asio::redirect_error(asio::use_awaitable, ec));
    if (ec)
      co_return;
    dec.commit(n);
  }
}

// An inbound connection's place in NodeCore::handshaking, given back by end() or at the
// latest when the session ends.
class HandshakeSlot {
 public:
  HandshakeSlot(NodeCore& core, std::string ip) : core_(core), ip_(std::move(ip)) {}
  ~HandshakeSlot() { end(); }
  HandshakeSlot(const HandshakeSlot&) = delete;
  HandshakeSlot& operator=(const HandshakeSlot&) = delete;
  void end() {
    if (std::exchange(held_, false))
      core_.end_handshake(ip_);
  }

 private:
  NodeCore& core_;
  std::string ip_;
  bool held_ = true;
};

// One inbound connection over `stream` (the socket itself, or TLS over it).
template <class Stream>
asio::awaitable<void> serve(std::shared_ptr<NodeCore> core, tcp::socket& s, Stream& stream,
                            HandshakeSlot& slot) {
  Handshake hs(Role::acceptor, core->opt.cluster_secret,
               Hello{core->self, core->address, random_nonce()});
  FrameDecoder dec(1024, std::size_t{64} * 1024);
  auto peer = co_await run_handshake(stream, hs, dec, core->opt.handshake_timeout);
  slot.end();
  if (!peer) {
    core->handshake_failures.fetch_add(1, std::memory_order_relaxed);
    error_code ec;
    spdlog::warn("remote: refused connection from {}: {}",
                 s.remote_endpoint(ec).address().to_string(), peer.error().message);
    co_return;
  }
  if constexpr (std::is_same_v<Stream, TlsStream>)
    keep_tls_buffers(stream);
  dec.set_max_payload(core->opt.max_frame_bytes);
  int fd = s.native_handle();
  {
    std::lock_guard lock(core->sessions_mu);
    if (core->stopped)
      co_return;
    core->session_fds.insert(fd);
  }
  std::shared_ptr<Link> replies;
  if constexpr (std::is_same_v<Stream, tcp::socket>) {
    LinkConfig cfg = core->link_config();
    cfg.queue_capacity = std::min<std::size_t>(cfg.queue_capacity, 1024);  // replies only
    cfg.control_capacity = 2;                                              // unused
    replies = Link::attach(core->io, s, peer->address, peer->node, std::move(cfg));
  }
  Inbound in{peer->node, replies ? replies : core->link_for(peer->address)};
  co_await read_loop(core, stream, dec, in);
  {
    std::lock_guard lock(core->sessions_mu);
    core->session_fds.erase(fd);
  }
  if (replies)
    co_await Link::retire(replies);
}

asio::awaitable<void> session(std::shared_ptr<NodeCore> core, tcp::socket s, std::string ip) {
  HandshakeSlot slot(*core, std::move(ip));
  if (core->tls) {
    TlsStream tls(s, *core->tls);
    co_await serve(core, s, tls, slot);
  } else {
    co_await serve(core, s, s, slot);
  }
}

}  // namespace

NodeCore::NodeCore(asio::io_context& io_, NodeOptions options)
    : io(io_),
      opt(std::move(options)),
      strand(asio::make_strand(io_)),
      acceptor(strand),
      tick_timer(strand),
      ask_timer(strand),
      locals(std::make_shared<const LocalTable>()) {}

bool NodeCore::begin_handshake(const std::string& ip) {
  std::lock_guard lock(sessions_mu);
  auto& n = handshaking[ip];
  if (opt.max_handshakes_per_address > 0 && n >= opt.max_handshakes_per_address)
    return false;
  ++n;
  return true;
}

void NodeCore::end_handshake(const std::string& ip) {
  std::lock_guard lock(sessions_mu);
  auto it = handshaking.find(ip);
  if (it != handshaking.end() && --it->second == 0)
    handshaking.erase(it);
}

LinkConfig NodeCore::link_config() const {
  LinkConfig cfg{self,
                 address,
                 opt.cluster_secret,
                 opt.send_queue_capacity,
                 opt.handshake_timeout,
                 opt.reconnect_min,
                 opt.reconnect_max,
                 opt.max_connect_failures,
                 LinkConfig{}.control_capacity,
                 tls};
  cfg.max_frame_bytes = opt.max_frame_bytes;
  cfg.spin_before_block = opt.spin_before_block;
  return cfg;
}

std::shared_ptr<Link> NodeCore::link_for(const std::string& addr) {
  std::lock_guard lock(links_mu);
  auto& slot = links[addr];
  if (slot && !slot->closed())
    return slot;
  LinkConfig cfg = link_config();
  if (!tls) {
    // Replies to our asks come back on the link that carried them.
    cfg.on_frame = [weak = weak_self](const FrameView& f) {
      auto core = weak.lock();
      if (!core)
        return false;
      if (!complete_answer(*core, f))
        return false;
      core->frames_received.fetch_add(1, std::memory_order_relaxed);
      return true;
    };
  }
  auto link = std::make_shared<Link>(io, addr, std::move(cfg));
  slot = link;
  Link::start(link, [weak = weak_self, addr, raw = link.get()] {
    auto core = weak.lock();
    if (!core)
      return;
    std::lock_guard lock(core->links_mu);
    auto it = core->links.find(addr);
    if (it != core->links.end() && it->second.get() == raw)
      core->links.erase(it);
  });
  return link;
}

void NodeCore::complete_ask(std::uint64_t correlation, Result<Reply> r) {
  if (auto cb = asks.take(correlation))
    std::move(cb)(std::move(r));
}

void NodeCore::arm_ask_timer(Clock::time_point deadline) {
  Clock::rep d = deadline.time_since_epoch().count();
  Clock::rep armed = ask_armed.load(std::memory_order_acquire);
  do {
    if (armed <= d)
      return;  // it fires earlier and then re-arms for the earliest pending ask
  } while (!ask_armed.compare_exchange_weak(armed, d, std::memory_order_acq_rel));
  asio::post(strand, [core = weak_self.lock(), deadline] {
    if (!core || core->stopped)
      return;
    if (core->ask_timer_at && *core->ask_timer_at <= deadline)
      return;
    core->ask_timer_at = deadline;
    core->ask_timer.expires_at(deadline);
    core->ask_timer.async_wait([core](error_code ec) {
      if (ec == asio::error::operation_aborted || core->stopped)
        return;  // re-armed
      core->ask_timer_at.reset();
      // Before looking at the table: an ask added from now on arms the timer itself.
      core->ask_armed.store(std::numeric_limits<Clock::rep>::max(), std::memory_order_seq_cst);
      for (auto& cb : core->asks.take_expired(Clock::now())) {
        std::move(cb)(Error{Errc::timeout, "ask timed out"});
      }
      if (auto next = core->asks.earliest())
        core->arm_ask_timer(*next);
    });
  });
}

void NodeCore::publish_self() {
  std::map<std::string, std::string> m;
  std::vector<PublishedActor> actors;
  {
    std::lock_guard lock(locals_mu);
    m = meta;
    for (const auto& [id, a] : *locals.load())
      actors.push_back({a->name, id});
  }
  Effects fx;
  membership->update_self(std::move(m), std::move(actors), fx);
  registry.publish(membership->self(), membership->members());
  run_effects(fx);
}

void NodeCore::run_effects(Effects& fx) {
  for (auto& o : fx.sends) {
    if (stopped)
      break;
    auto bytes = encode_gossip(o.message);
    link_for(o.address)->push_control(FrameHeader{FrameKind::gossip}, bytes);
  }
  if (fx.events.empty())
    return;
  registry.publish(membership->self(), membership->members());
  for (const auto& e : fx.events) {
    spdlog::info("remote: node {:016x} at {} {}", e.member.id, e.member.address,
                 member_event_name(e.kind));
    if (e.kind == MemberEventKind::dead || e.kind == MemberEventKind::left) {
      for (auto& cb : asks.take_node(e.member.id)) {
        std::move(cb)(Error{Errc::unavailable, "node " + e.member.address + " is gone"});
      }
      std::lock_guard lock(links_mu);
      auto it = links.find(e.member.address);
      if (it != links.end() && it->second->peer() == e.member.id)
        it->second->close();
    }
    if (on_event)
      on_event(e);
  }
}

void NodeCore::stop() {
  if (stopped.exchange(true))
    return;
  asio::post(strand, [core = weak_self.lock()] {
    if (!core)
      return;
    error_code ec;
    core->acceptor.close(ec);
    core->tick_timer.cancel();
    core->ask_timer.cancel();
  });
  {
    std::lock_guard lock(links_mu);
    for (auto& [addr, link] : links)
      link->close();
  }
  {
    std::lock_guard lock(sessions_mu);
    for (int fd : session_fds)
      ::shutdown(fd, SHUT_RDWR);
  }
  for (auto& cb : asks.take_all())
    std::move(cb)(Error{Errc::unavailable, "node stopped"});
}

asio::awaitable<void> accept_loop(std::shared_ptr<NodeCore> core) {
  while (!core->stopped) {
    error_code ec;
    tcp::socket s = co_await core->acceptor.async_accept(
        core->io, asio::redirect_error(asio::use_awaitable, ec));
    if (ec) {
      if (ec == asio::error::operation_aborted || core->stopped)
        co_return;
      continue;
    }
    const auto peer = s.remote_endpoint(ec);
    if (ec)
      continue;  // gone already
    std::string ip = peer.address().to_string();
    if (!core->begin_handshake(ip)) {
      core->handshakes_refused.fetch_add(1, std::memory_order_relaxed);
      s.close(ec);
      continue;
    }
    s.set_option(tcp::no_delay(true), ec);
    asio::co_spawn(core->io, session(core, std::move(s), std::move(ip)), asio::detached);
  }
}

asio::awaitable<void> tick_loop(std::shared_ptr<NodeCore> core) {
  const auto& mo = core->opt.membership;
  while (!core->stopped) {
    Effects fx;
    auto now = Clock::now();
    core->membership->tick(now, fx);
    core->run_effects(fx);
    auto next = std::clamp(core->membership->next_deadline(), now + std::chrono::milliseconds(1),
                           now + mo.probe_interval);
    core->tick_timer.expires_at(next);
    error_code ec;
    co_await core->tick_timer.async_wait(asio::redirect_error(asio::use_awaitable, ec));
  }
}

asio::awaitable<void> leave_and_drain(std::shared_ptr<NodeCore> core, Clock::duration grace,
                                      std::shared_ptr<std::promise<void>> done) {
  Effects fx;
  core->membership->leave(fx);
  std::vector<std::pair<std::shared_ptr<Link>, std::uint64_t>> marks;
  for (auto& o : fx.sends) {
    auto link = core->link_for(o.address);
    auto bytes = encode_gossip(o.message);
    link->push_control(FrameHeader{FrameKind::gossip}, bytes);
    marks.emplace_back(link, link->pushed(Lane::control));
  }
  // Shutdown path only: look every few milliseconds, up to `grace`, whether the news left.
  asio::steady_timer timer(core->strand);
  auto deadline = Clock::now() + grace;
  auto drained = [&] {
    return std::all_of(marks.begin(), marks.end(), [](const auto& m) {
      return m.first->drained_through(m.second, Lane::control);
    });
  };
  while (!drained() && Clock::now() < deadline) {
    timer.expires_after(std::chrono::milliseconds(2));
    error_code ec;
    co_await timer.async_wait(asio::redirect_error(asio::use_awaitable, ec));
  }
  done->set_value();
}

}  // namespace troupe::remote::detail
