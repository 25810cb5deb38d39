#include "server/server.hpp"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/http/write.hpp>
#include <mutex>
#include <random>
#include <thread>

#include "server/connection.hpp"
#include "util/thread_name.hpp"

namespace troupe::server {

using namespace detail;  // NOLINT: internal names of this module
using tcp = net::ip::tcp;

namespace {

// The message of a refusal's 503.
std::string refusal_message(RefusalCause cause) {
  switch (cause) {
    case RefusalCause::per_ip_limit:
      return "Too many open connections from your address";
    case RefusalCause::pending_per_ip:
      return "Too many connections without a complete request from your address";
    case RefusalCause::connection_limit:
      break;
  }
  return "Too many open connections";
}

}  // namespace

// Owns the acceptor and the registry of live sessions. Held by shared_ptr so that session
// completions may outlive a Server that was destroyed early (they only touch the registry).
struct Server::Impl : std::enable_shared_from_this<Server::Impl> {
  Impl(net::any_io_executor ex, engine::Backend& backend, ServerConfig cfg)
      : executor(std::move(ex)),
        config(std::move(cfg)),
        connections(AdmissionLimits{config.max_connections, config.max_connections_per_ip,
                                    config.max_pending_per_ip},
                    metrics),
        context{backend, config, metrics, connections, std::random_device{}()},
        acceptor(net::make_strand(executor)) {
    context.id_nonce = (context.id_nonce << 32) ^ std::random_device{}();
  }

  net::awaitable<void> accept_loop();
  void admit(tcp::socket socket);
  net::awaitable<void> refuse(tcp::socket socket, RefusalCause cause);
  void start_session(tcp::socket socket, const ConnectionTable::SlotPtr& slot,
                     const std::shared_ptr<SessionControl>& control);
  void session_ended(const ConnectionTable::SlotPtr& slot);
  void drain(std::function<void()> on_done);

  net::any_io_executor executor;
  ServerConfig config;
  Metrics metrics;
  ConnectionTable connections;  // the live sessions (admission, states, drain)
  ServerContext context;
  tcp::acceptor acceptor;  // touched on its strand only
  std::uint16_t port = 0;
  // Refusals lingering now; beyond max_connections (at least 1024) a refusal closes at once,
  // so that a flood of refused connections holds a bounded number of descriptors.
  std::atomic<std::size_t> lingering{0};

  // Guarded by mu: sessions end on their own strands.
  std::mutex mu;
  std::optional<Clock::time_point> drain_deadline;
  std::function<void()> on_drained;
};

net::awaitable<void> Server::Impl::refuse(tcp::socket socket, RefusalCause cause) {
  beast::tcp_stream stream(std::move(socket));
  Connection c(std::move(stream), context);
  c.keep_alive = false;
  api::HttpError e = api::to_http_error(Error{Errc::overloaded, refusal_message(cause)},
                                        config.retry_after_seconds);
  const bool linger = lingering.fetch_add(1) < std::max<std::size_t>(config.max_connections, 1024);
  co_await write_response(c, error_response(c, e));
  if (linger) {
    co_await linger_close(c);
  } else {
    metrics.count_refusal_unlingered();
    boost::system::error_code ec;
    c.stream.socket().close(ec);
  }
  lingering.fetch_sub(1);
}

void Server::Impl::start_session(tcp::socket socket, const ConnectionTable::SlotPtr& slot,
                                 const std::shared_ptr<SessionControl>& control) {
  std::optional<Clock::time_point> deadline;
  {
    std::lock_guard lock(mu);
    deadline = drain_deadline;
  }
  beast::tcp_stream stream(std::move(socket));
  net::co_spawn(control->strand, run_session(control, std::move(stream), context, slot),
                [self = shared_from_this(), slot](const std::exception_ptr& e) {
                  if (e) {
                    try {
                      std::rethrow_exception(e);
                    } catch (const std::exception& ex) {
                      spdlog::error("HTTP session ended by an exception: {}", ex.what());
                    }
                  }
                  self->session_ended(slot);
                });
  if (deadline)
    SessionControl::post_drain(control, *deadline);
}

// Admits the connection (reclaiming old ones for it) or refuses it.
void Server::Impl::admit(tcp::socket socket) {
  boost::system::error_code ec;
  const auto peer = socket.remote_endpoint(ec);
  if (ec) {
    socket.close(ec);  // gone already
    return;
  }
  auto control = std::make_shared<SessionControl>();
  control->strand = socket.get_executor();  // a strand of its own, from accept_loop
  auto d = connections.admit(peer.address().to_string(), control);
  for (const auto& victim : d.reclaimed)
    SessionControl::post_reclaim(victim->control);
  if (d.refused) {
    auto ex = socket.get_executor();
    net::co_spawn(ex, refuse(std::move(socket), *d.refused), net::detached);
    return;
  }
  start_session(std::move(socket), d.slot, control);
}

net::awaitable<void> Server::Impl::accept_loop() {
  const auto as_tuple_awaitable = net::as_tuple(net::use_awaitable);
  net::steady_timer pause(acceptor.get_executor());
  for (;;) {
    auto [ec, socket] =
        co_await acceptor.async_accept(net::make_strand(executor), as_tuple_awaitable);
    if (ec == net::error::operation_aborted || !acceptor.is_open())
      co_return;
    if (ec) {
      // Out of descriptors and the like: note it, keep serving the open connections, and
      // pause before the next accept (the pending connection would fail it again at once).
      spdlog::warn("accept failed: {}", ec.message());
      pause.expires_after(std::chrono::milliseconds(50));
      co_await pause.async_wait(as_tuple_awaitable);
      continue;
    }
    admit(std::move(socket));
  }
}

void Server::Impl::session_ended(const ConnectionTable::SlotPtr& slot) {
  connections.release(slot);
  std::function<void()> done;
  {
    std::lock_guard lock(mu);
    if (drain_deadline && connections.size() == 0)
      done = std::exchange(on_drained, nullptr);
  }
  if (done)
    done();
}

void Server::Impl::drain(std::function<void()> on_done) {
  const auto deadline = Clock::now() + config.shutdown_grace;
  {
    std::lock_guard lock(mu);
    if (drain_deadline)
      return;  // already draining
    drain_deadline = deadline;
    on_drained = std::move(on_done);
  }
  const auto live = connections.slots();
  net::post(acceptor.get_executor(), [self = shared_from_this()] {
    boost::system::error_code ec;
    self->acceptor.close(ec);
  });
  for (const auto& slot : live)
    SessionControl::post_drain(slot->control, deadline);
  std::function<void()> done;
  {
    std::lock_guard lock(mu);
    if (connections.size() == 0)
      done = std::exchange(on_drained, nullptr);
  }
  if (done)
    done();
}

Server::Server(net::any_io_executor executor, engine::Backend& backend, ServerConfig config)
    : impl_(std::make_shared<Impl>(std::move(executor), backend, std::move(config))) {}

Server::~Server() = default;

Result<std::uint16_t> Server::listen() {
  auto& cfg = impl_->config;
  boost::system::error_code ec;
  const auto address = net::ip::make_address(cfg.host, ec);
  if (ec)
    return Error{Errc::unavailable, fmt::format("Bad --host '{}': {}", cfg.host, ec.message())};
  const tcp::endpoint endpoint(address, cfg.port);
  auto& a = impl_->acceptor;
  if (a.open(endpoint.protocol(), ec); !ec)
    a.set_option(tcp::acceptor::reuse_address(true), ec);
  if (!ec)
    a.bind(endpoint, ec);
  if (!ec)
    a.listen(net::socket_base::max_listen_connections, ec);
  if (ec) {
    return Error{Errc::unavailable,
                 fmt::format("Cannot listen on {}:{}: {}", cfg.host, cfg.port, ec.message())};
  }
  impl_->port = a.local_endpoint().port();
  net::co_spawn(a.get_executor(), impl_->accept_loop(), net::detached);
  return impl_->port;
}

void Server::shutdown(std::function<void()> on_done) {
  impl_->drain(std::move(on_done));
}

std::uint16_t Server::port() const {
  return impl_->port;
}

const Metrics& Server::metrics() const {
  return impl_->metrics;
}

int run_until_signal(std::unique_ptr<engine::Backend> backend, const ServerConfig& config,
                     int io_threads, const std::function<void(std::uint16_t)>& on_listening) {
  net::io_context ioc(io_threads);
  // Declared after the io_context, so destroyed before it: stopped or not, the io_context
  // outlives the backend (and whatever it still posts there).
  const std::unique_ptr<engine::Backend> owned = std::move(backend);
  // Before anything announces the server: a SIGTERM right after the banner must drain it,
  // not kill the process with the default action.
  net::signal_set signals(ioc, SIGINT, SIGTERM);
  Server server(ioc.get_executor(), *owned, config);
  auto port = server.listen();
  if (!port) {
    spdlog::error("{}", port.error().message);
    return 1;
  }
  spdlog::info("listening on http://{}:{}", config.host, *port);
  if (on_listening)
    on_listening(*port);
  net::steady_timer hard_stop(ioc);
  signals.async_wait([&](boost::system::error_code ec, int sig) {
    if (ec)
      return;
    spdlog::info("signal {}: draining (grace {} ms)", sig, config.shutdown_grace.count());
    // A second signal, or the grace period plus a margin, stops at once.
    signals.async_wait([&](boost::system::error_code e, int) {
      if (!e)
        ioc.stop();
    });
    hard_stop.expires_after(config.shutdown_grace + std::chrono::seconds(5));
    hard_stop.async_wait([&](boost::system::error_code e) {
      if (!e)
        ioc.stop();
    });
    server.shutdown([&] { net::post(ioc, [&] { ioc.stop(); }); });
  });
  std::vector<std::thread> threads;
  for (int i = 1; i < io_threads; ++i)
    threads.push_back(util::named_thread("http-io", [&] { ioc.run(); }));
  ioc.run();
  for (auto& t : threads)
    t.join();
  spdlog::info("stopped");
  return 0;
}

}  // namespace troupe::server
