#include "cluster/process.hpp"

#include <spdlog/spdlog.h>

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/signal_set.hpp>
#include <csignal>
#include <cstdlib>
#include <future>
#include <memory>

#include "util/thread_name.hpp"

namespace troupe::cluster {

namespace asio = boost::asio;

IoThreads::IoThreads(asio::io_context& io, int n) : io_(io), guard_(io.get_executor()) {
  for (int i = 0; i < std::max(1, n); ++i)
    threads_.push_back(util::named_thread("node-io", [&io] { io.run(); }));
}

IoThreads::~IoThreads() {
  join();
}

void IoThreads::join(bool force) {
  guard_.reset();
  if (force)
    io_.stop();
  for (auto& t : threads_) {
    if (t.joinable())
      t.join();
  }
}

TerminationSignals::TerminationSignals(asio::io_context& io)
    : signals_(std::make_shared<asio::signal_set>(io, SIGINT, SIGTERM)) {}

int TerminationSignals::wait() {
  auto got = std::make_shared<std::promise<int>>();
  auto fut = got->get_future();
  signals_->async_wait([signals = signals_, got](boost::system::error_code ec, int sig) {
    got->set_value(ec ? 0 : sig);
    if (ec)
      return;
    signals->async_wait([signals](boost::system::error_code e, int) {
      if (!e)
        std::_Exit(130);
    });
  });
  return fut.get();
}

// "host:port" with the host resolved to an IP address (the remote layer dials IPs only), so
// seeds may be DNS names such as a Kubernetes headless service's pod names.
Result<std::string> resolve(const std::string& address) {
  const auto colon = address.rfind(':');
  if (colon == std::string::npos)
    return Error{Errc::invalid_request, "expected host:port, got '" + address + "'"};
  const auto host = address.substr(0, colon);
  boost::system::error_code ec;
  asio::ip::make_address(host, ec);
  if (!ec)
    return address;
  asio::io_context io;
  asio::ip::tcp::resolver resolver(io);
  auto results = resolver.resolve(asio::ip::tcp::v4(), host, address.substr(colon + 1), ec);
  if (ec || results.empty())
    return Error{Errc::invalid_request, "cannot resolve '" + host + "': " + ec.message()};
  return results.begin()->endpoint().address().to_string() + address.substr(colon);
}

Result<remote::NodeOptions> node_options(const NodeFlags& flags) {
  remote::NodeOptions o;
  if (flags.probe_interval_ms <= 0 || flags.probe_timeout_ms <= 0 ||
      flags.suspect_timeout_ms <= 0 || flags.rejoin_interval_ms <= 0) {
    return Error{Errc::invalid_request, "membership timings must be positive"};
  }
  if (flags.probe_timeout_ms >= flags.probe_interval_ms)
    return Error{Errc::invalid_request, "--probe-timeout must be less than --probe-interval"};
  using ms = std::chrono::milliseconds;
  o.membership.probe_interval = ms(flags.probe_interval_ms);
  o.membership.probe_timeout = ms(flags.probe_timeout_ms);
  o.membership.suspect_timeout = ms(flags.suspect_timeout_ms);
  o.membership.rejoin_interval = ms(flags.rejoin_interval_ms);
  if (flags.reader_spin_us > 1000)
    return Error{Errc::invalid_request, "--reader-spin must be at most 1ms"};
  if (flags.reader_spin_us >= 0)
    o.spin_before_block = std::chrono::microseconds(flags.reader_spin_us);
  o.tls = remote::TlsOptions{flags.tls_cert, flags.tls_key, flags.tls_ca};
  if (o.tls.enabled() && (flags.tls_cert.empty() || flags.tls_key.empty() || flags.tls_ca.empty()))
    return Error{Errc::invalid_request, "TLS needs all of --tls-cert, --tls-key and --tls-ca"};
  o.listen = flags.listen;
  if (!flags.advertise.empty()) {
    auto ip = resolve(flags.advertise);
    if (!ip)
      return ip.error();
    o.advertise = std::move(*ip);
  }
  o.cluster_secret = flags.cluster_secret;
  if (o.cluster_secret.empty()) {
    if (const char* s = std::getenv("TROUPE_CLUSTER_SECRET"))
      o.cluster_secret = s;
  }
  if (o.cluster_secret.empty())
    return Error{Errc::invalid_request,
                 "a cluster secret is required (--cluster-secret or TROUPE_CLUSTER_SECRET)"};
  for (const auto& j : flags.join) {
    std::size_t start = 0;
    while (start <= j.size()) {
      const auto comma = j.find(',', start);
      const auto part = j.substr(start, comma == std::string::npos ? comma : comma - start);
      if (!part.empty()) {
        auto ip = resolve(part);
        if (!ip)
          return ip.error();
        o.seeds.push_back(std::move(*ip));
      }
      if (comma == std::string::npos)
        break;
      start = comma + 1;
    }
  }
  return o;
}

}  // namespace troupe::cluster
