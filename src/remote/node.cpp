#include "remote/node.hpp"

#include <openssl/rand.h>
#include <spdlog/spdlog.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/post.hpp>
#include <future>

#include "remote/detail/frame_io.hpp"
#include "remote/detail/node_core.hpp"
#include "remote/detail/tls_stream.hpp"

namespace troupe::remote {

namespace asio = boost::asio;
using asio::ip::tcp;
using boost::system::error_code;

// --- RemoteReply ---------------------------------------------------------------------------

RemoteReply::RemoteReply(std::shared_ptr<detail::NodeCore> core, std::shared_ptr<Link> link,
                         std::uint64_t correlation)
    : core_(std::move(core)), link_(std::move(link)), correlation_(correlation) {}

RemoteReply& RemoteReply::operator=(RemoteReply&& o) noexcept {
  if (this != &o) {
    fail({Errc::internal, "no reply"});
    core_ = std::move(o.core_);
    link_ = std::move(o.link_);
    correlation_ = o.correlation_;
  }
  return *this;
}

RemoteReply::~RemoteReply() {
  fail({Errc::internal, "no reply"});
}

void RemoteReply::send(std::uint32_t type, std::span<const std::byte> payload) {
  auto core = std::move(core_);
  if (!core)
    return;
  if (!link_) {
    core->complete_ask(correlation_, Reply{type, {payload.begin(), payload.end()}});
    return;
  }
  auto link = std::move(link_);
  link->push(FrameHeader{FrameKind::reply, 0, 0, correlation_, type, 0}, payload);
}

void RemoteReply::fail(const Error& e) {
  auto core = std::move(core_);
  if (!core)
    return;
  if (!link_) {
    core->complete_ask(correlation_, e);
    return;
  }
  auto link = std::move(link_);
  auto status = static_cast<std::uint32_t>(e.code) + 1;
  std::span<const std::byte> text(reinterpret_cast<const std::byte*>(e.message.data()),
                                  e.message.size());
  link->push(FrameHeader{FrameKind::error, 0, 0, correlation_, 0, status}, text);
}

// --- RemoteRef -----------------------------------------------------------------------------

RemoteRef::RemoteRef(std::shared_ptr<detail::NodeCore> core, std::shared_ptr<Link> link,
                     ActorAddress where)
    : core_(std::move(core)), link_(std::move(link)), where_(std::move(where)) {}

boost::asio::io_context& RemoteRef::io() const {
  return core_->io;
}

Result<void> RemoteRef::check() const {
  if (!core_)
    return Error{Errc::unavailable, "empty remote reference"};
  if (core_->stopped.load(std::memory_order_relaxed))
    return Error{Errc::unavailable, "node stopped"};
  if (!link_)
    return {};
  NodeId peer = link_->peer();
  if (link_->closed() || (peer != 0 && peer != where_.node)) {
    return Error{Errc::unavailable, "node " + where_.address + " is gone"};
  }
  return {};
}

Result<void> RemoteRef::map_status(LinkStatus s) const {
  switch (s) {
    case LinkStatus::ok:
      return {};
    case LinkStatus::full:
      return Error{Errc::overloaded, "send queue full"};
    case LinkStatus::closed:
      return Error{Errc::unavailable, "node " + where_.address + " is gone"};
  }
  return Error{Errc::internal, "bad link status"};
}

Result<void> RemoteRef::tell_raw(std::span<const std::byte> payload, std::uint32_t type) const {
  if (auto c = check(); !c)
    return c;
  if (!link_)
    return detail::deliver_local(*core_, where_.actor, type, payload);
  return map_status(
      link_->push(FrameHeader{FrameKind::tell, 0, where_.actor, 0, type, 0}, payload));
}

Result<void> RemoteRef::tell_raw(std::vector<std::byte>&& payload, std::uint32_t type) const {
  if (auto c = check(); !c)
    return c;
  if (!link_)
    return detail::deliver_local(*core_, where_.actor, type, payload);
  FrameHeader h{FrameKind::tell, 0, where_.actor, 0, type, 0};
  return map_status(link_->push(h, std::move(payload)));
}

void RemoteRef::ask_raw(std::uint32_t type, std::span<const std::byte> payload,
                        std::chrono::steady_clock::duration timeout, AskCallback done) const {
  if (auto c = check(); !c)
    return std::move(done)(c.error());
  auto deadline =
      Clock::now() +
      std::min(timeout, std::chrono::steady_clock::duration(std::chrono::hours(24 * 365)));
  auto added = core_->asks.add(where_.node, deadline, std::move(done));
  if (added.earliest)
    core_->arm_ask_timer(deadline);
  if (!link_) {
    auto table = core_->locals.load(std::memory_order_acquire);
    auto it = table->find(where_.actor);
    RemoteReply reply(core_, nullptr, added.correlation);
    if (it == table->end())
      return reply.fail({Errc::not_found, "no such actor"});
    Envelope env{core_->self, type, payload, std::move(reply)};
    it->second->handler(env);
    return;
  }
  FrameHeader h{FrameKind::ask, 0, where_.actor, added.correlation, type, 0};
  if (auto r = map_status(link_->push(h, payload)); !r)
    core_->complete_ask(added.correlation, r.error());
}

namespace detail {
Result<void> deliver_local(NodeCore& core, std::uint64_t actor, std::uint32_t type,
                           std::span<const std::byte> payload) {
  auto table = core.locals.load(std::memory_order_acquire);
  auto it = table->find(actor);
  if (it == table->end())
    return Error{Errc::not_found, "no such actor"};
  Envelope env{core.self, type, payload, RemoteReply()};
  it->second->handler(env);
  return {};
}
}  // namespace detail

// --- Node ----------------------------------------------------------------------------------

Result<std::unique_ptr<Node>> Node::start(asio::io_context& io, NodeOptions options) {
  if (options.cluster_secret.empty())
    return Error{Errc::invalid_request, "cluster secret is empty"};
  std::string host;
  std::uint16_t port = 0;
  if (!split_address(options.listen, host, port)) {
    return Error{Errc::invalid_request, "bad listen address: " + options.listen};
  }
  error_code ec;
  auto ip = asio::ip::make_address(host, ec);
  if (ec)
    return Error{Errc::invalid_request, "listen address is not an IP: " + host};
  std::shared_ptr<asio::ssl::context> tls;
  if (options.tls.enabled()) {
    auto ctx = make_tls_context(options.tls);
    if (!ctx)
      return ctx.error();
    tls = std::move(ctx.value());
  }
  auto core = std::make_shared<detail::NodeCore>(io, std::move(options));
  core->weak_self = core;
  core->tls = std::move(tls);
  tcp::endpoint ep{ip, port};
  core->acceptor.open(ep.protocol(), ec);
  if (!ec)
    core->acceptor.set_option(tcp::acceptor::reuse_address(true), ec);
  if (!ec)
    core->acceptor.bind(ep, ec);
  if (!ec)
    core->acceptor.listen(asio::socket_base::max_listen_connections, ec);
  if (ec)
    return Error{Errc::unavailable, "cannot listen on " + core->opt.listen + ": " + ec.message()};
  core->port = core->acceptor.local_endpoint().port();
  core->address =
      core->opt.advertise.empty() ? host + ":" + std::to_string(core->port) : core->opt.advertise;
  while (core->self == 0) {
    RAND_bytes(reinterpret_cast<unsigned char*>(&core->self), sizeof core->self);
  }
  core->meta = core->opt.metadata;
  MemberRecord self{core->self, core->address, 0, MemberState::alive, core->meta, {}};
  core->membership.emplace(self, core->opt.seeds, core->opt.membership, core->self);
  core->registry.publish(self, {});
  asio::co_spawn(core->strand, detail::accept_loop(core), asio::detached);
  asio::co_spawn(core->strand, detail::tick_loop(core), asio::detached);
  return std::unique_ptr<Node>(new Node(std::move(core)));
}

Node::~Node() {
  stop();
}

boost::asio::io_context& Node::io_context() const noexcept {
  return core_->io;
}
NodeId Node::id() const noexcept {
  return core_->self;
}
const std::string& Node::address() const noexcept {
  return core_->address;
}
std::uint16_t Node::port() const noexcept {
  return core_->port;
}

std::uint64_t Node::publish(std::string name, MessageHandler handler) {
  std::uint64_t id;
  {
    std::lock_guard lock(core_->locals_mu);
    auto next = std::make_shared<detail::LocalTable>(*core_->locals.load());
    std::erase_if(*next, [&](const auto& kv) { return kv.second->name == name; });
    id = core_->next_actor++;
    next->emplace(id, std::make_shared<const detail::LocalActor>(
                          detail::LocalActor{std::move(name), std::move(handler)}));
    core_->locals.store(std::move(next));
  }
  asio::post(core_->strand, [core = core_] { core->publish_self(); });
  return id;
}

bool Node::unpublish(std::string_view name) {
  {
    std::lock_guard lock(core_->locals_mu);
    auto next = std::make_shared<detail::LocalTable>(*core_->locals.load());
    if (std::erase_if(*next, [&](const auto& kv) { return kv.second->name == name; }) == 0) {
      return false;
    }
    core_->locals.store(std::move(next));
  }
  asio::post(core_->strand, [core = core_] { core->publish_self(); });
  return true;
}

void Node::set_metadata(std::string key, std::string value) {
  {
    std::lock_guard lock(core_->locals_mu);
    core_->meta[std::move(key)] = std::move(value);
  }
  asio::post(core_->strand, [core = core_] { core->publish_self(); });
}

Result<RemoteRef> Node::lookup(std::string_view name) const {
  auto where = core_->registry.lookup(name);
  if (!where)
    return Error{Errc::not_found, "no live actor named '" + std::string(name) + "'"};
  return ref_for(*where);
}

std::vector<ActorAddress> Node::lookup_all(std::string_view name) const {
  return core_->registry.lookup_all(name);
}

RemoteRef Node::ref_for(const ActorAddress& where) const {
  if (where.node == core_->self)
    return RemoteRef(core_, nullptr, where);
  return RemoteRef(core_, core_->link_for(where.address), where);
}

std::shared_ptr<const RegistrySnapshot> Node::snapshot() const {
  return core_->registry.snapshot();
}

void Node::on_member_event(std::function<void(const MemberEvent&)> fn) {
  asio::post(core_->strand,
             [core = core_, fn = std::move(fn)]() mutable { core->on_event = std::move(fn); });
}

void Node::leave(std::chrono::steady_clock::duration grace) {
  auto done = std::make_shared<std::promise<void>>();
  auto fut = done->get_future();
  asio::co_spawn(core_->strand, detail::leave_and_drain(core_, grace, done), asio::detached);
  fut.wait_for(grace + std::chrono::seconds(1));
  stop();
}

void Node::stop() {
  core_->stop();
}

NodeStats Node::stats() const {
  NodeStats s;
  s.frames_received = core_->frames_received.load();
  s.bad_frames = core_->bad_frames.load();
  s.handshake_failures = core_->handshake_failures.load();
  s.handshakes_refused = core_->handshakes_refused.load();
  s.unknown_target = core_->unknown_target.load();
  s.pending_asks = core_->asks.size();
  std::lock_guard lock(core_->links_mu);
  s.links = core_->links.size();
  for (const auto& [a, l] : core_->links)
    s.tells_rejected += l->rejected();
  return s;
}

}  // namespace troupe::remote
