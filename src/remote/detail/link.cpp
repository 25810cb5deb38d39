#include "remote/detail/link.hpp"

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <spdlog/spdlog.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <array>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/connect.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <cerrno>
#include <cstring>
#include <stdexcept>

#include "remote/detail/frame_io.hpp"
#include "remote/detail/tls_stream.hpp"

namespace troupe::remote {

namespace asio = boost::asio;
using asio::ip::tcp;
using boost::system::error_code;

namespace {
constexpr std::size_t kMaxIov = 256;                            // iovecs per sendmsg
constexpr std::size_t kMaxFrames = 256;                         // frames per batch
constexpr std::size_t kTlsBatchBytes = std::size_t{64} * 1024;  // plaintext per SSL_write batch
constexpr int kBatchesPerTurn = 64;  // then the holder lets the thread go

std::size_t frame_size(const SendQueue::Slot* s) noexcept {
  return s->inline_len + s->big.size();
}
}  // namespace

// The TLS state of one connection: the stream (its SSL object writes straight to the socket
// once the handshakes are done) and the staged batch of whole frames being SSL_written.
struct Link::Tls {
  Tls(tcp::socket& socket, asio::ssl::context& ctx) : stream(socket, ctx) {}
  TlsStream stream;
  std::vector<std::byte> staging;  // grows to the largest batch, then reused
  std::size_t len = 0;             // bytes staged
  std::size_t off = 0;             // of which SSL_write has accepted
  std::array<Lane, kMaxFrames> lanes{};
  std::size_t frames = 0;  // frames staged
  std::size_t done = 0;    // of which released (wholly accepted)
};

Link::Link(asio::io_context& io, std::string address, LinkConfig config)
    : io_(io),
      strand_(asio::make_strand(io)),
      address_(std::move(address)),
      config_(std::move(config)),
      queue_(config_.queue_capacity),
      control_(config_.control_capacity),
      socket_(strand_),
      wake_(strand_),
      timer_(strand_) {
  wake_fd_ = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (wake_fd_ < 0)
    throw std::runtime_error("eventfd failed");
  wake_.assign(wake_fd_);
}

Link::~Link() = default;

void Link::start(const std::shared_ptr<Link>& link, std::function<void()> on_closed) {
  asio::co_spawn(link->strand_, writer_loop(link), asio::detached);
  asio::co_spawn(link->strand_, run(link, std::move(on_closed)), asio::detached);
}

std::shared_ptr<Link> Link::attach(asio::io_context& io, tcp::socket& accepted, std::string address,
                                   NodeId peer, LinkConfig config) {
  error_code ec;
  auto protocol = accepted.local_endpoint(ec).protocol();
  if (ec)
    return nullptr;
  int fd = ::dup(accepted.native_handle());
  if (fd < 0)
    return nullptr;
  auto link = std::make_shared<Link>(io, std::move(address), std::move(config));
  link->socket_.assign(protocol, fd, ec);
  if (ec) {
    ::close(fd);
    return nullptr;
  }
  link->socket_.non_blocking(true, ec);
  link->peer_.store(peer);
  link->fd_.store(fd);
  link->connected_.store(true, std::memory_order_seq_cst);
  asio::co_spawn(link->strand_, writer_loop(link), asio::detached);
  return link;
}

asio::awaitable<void> Link::retire(std::shared_ptr<Link> link) {
  link->closed_.store(true);
  auto strand = link->strand_;
  co_await asio::co_spawn(strand, retire_on_strand(std::move(link)), asio::use_awaitable);
}

asio::awaitable<void> Link::retire_on_strand(std::shared_ptr<Link> self) {
  self->connected_.store(false, std::memory_order_seq_cst);
  int fd = self->fd_.load();
  if (fd >= 0)
    ::shutdown(fd, SHUT_RDWR);  // a holder waiting for writability fails and lets go
  co_await self->acquire_role();
  self->drop_queued();
  self->fd_.store(-1);
  error_code ec;
  self->socket_.close(ec);  // the duplicate descriptor
  self->wake_.close(ec);    // ends writer_loop; the role stays taken so no one writes again
}

LinkStatus Link::push(const FrameHeader& h, std::span<const std::byte> payload) {
  return enqueue([&] { return queue_.push(h, payload); });
}

LinkStatus Link::push(const FrameHeader& h, std::vector<std::byte>&& payload) {
  return enqueue([&] { return queue_.push(h, std::move(payload)); });
}

LinkStatus Link::push_control(const FrameHeader& h, std::span<const std::byte> payload) {
  return enqueue([&] { return control_.push(h, payload); });
}

void Link::close() {
  if (closed_.exchange(true))
    return;
  asio::post(strand_, [this] {
    timer_.cancel();
    int fd = fd_.load();
    if (fd >= 0)
      ::shutdown(fd, SHUT_RDWR);  // wakes the session's read
    error_code ec;
    if (!connected_.load())
      socket_.cancel(ec);  // wakes a pending connect or handshake
  });
}

// --- writer role -------------------------------------------------------------------------

void Link::after_push() {
  // Pairs with the fence in release_and_recheck: either the holder sees our slot, or we see
  // the flag down and take it.
  std::atomic_thread_fence(std::memory_order_seq_cst);
  if (writer_active_.load(std::memory_order_relaxed) || !try_claim())
    return;
  if (io_.get_executor().running_in_this_thread()) {
    if (flush() != Flush::released)
      signal_writer();
  } else {
    signal_writer();
  }
}

bool Link::try_claim() noexcept {
  return !writer_active_.exchange(true, std::memory_order_acq_rel);
}

bool Link::release_and_recheck() noexcept {
  writer_active_.store(false, std::memory_order_seq_cst);
  std::atomic_thread_fence(std::memory_order_seq_cst);
  if (!connected_.load(std::memory_order_seq_cst) || !any_ready())
    return false;
  return try_claim();
}

void Link::signal_writer() noexcept {
  std::uint64_t one = 1;
  [[maybe_unused]] auto r = ::write(wake_fd_, &one, sizeof one);
}

Link::Flush Link::flush() noexcept {
  for (int batches = 0;; ++batches) {
    if (!connected_.load(std::memory_order_acquire)) {
      if (!release_and_recheck())
        return Flush::released;
      continue;
    }
    if (batches == kBatchesPerTurn)
      return Flush::yield;
    int r = write_batch();
    if (r == -1)
      return Flush::would_block;
    if (r == -2)
      break_connection();
    if (r <= 0 && !release_and_recheck())
      return Flush::released;
  }
}

std::size_t Link::pick_batch(SendQueue::Slot** slots, Lane* lanes, std::size_t max) noexcept {
  std::size_t n = 0, next[2] = {0, 0};
  auto take = [&](Lane lane) {
    while (n < max) {
      SendQueue::Slot* s = queue(lane).peek(next[static_cast<int>(lane)]);
      if (!s)
        return;
      slots[n] = s;
      lanes[n++] = lane;
      ++next[static_cast<int>(lane)];
    }
  };
  if (partial_ > 0) {  // a frame is never interleaved with another
    slots[n] = queue(partial_lane_).peek(0);
    lanes[n++] = partial_lane_;
    next[static_cast<int>(partial_lane_)] = 1;
  }
  take(Lane::control);
  take(Lane::data);
  return n;
}

std::size_t Link::account(const Lane* lanes, std::size_t n, std::size_t bytes) noexcept {
  std::size_t released[2] = {0, 0}, done = 0;
  for (; done < n; ++done) {
    int lane = static_cast<int>(lanes[done]);
    std::size_t size = frame_size(queue(lanes[done]).peek(released[lane]));
    if (bytes < size)
      break;
    bytes -= size;
    ++released[lane];
  }
  partial_ = done < n ? bytes : 0;
  if (partial_ > 0)
    partial_lane_ = lanes[done];
  queue_.release(released[static_cast<int>(Lane::data)]);
  control_.release(released[static_cast<int>(Lane::control)]);
  return done;
}

int Link::write_batch() noexcept {
  if (tls_)
    return write_batch_tls();
  SendQueue::Slot* slots[kMaxFrames];
  Lane lanes[kMaxFrames];
  std::size_t n = pick_batch(slots, lanes, kMaxFrames);
  if (n == 0)
    return 0;
  iovec iov[kMaxIov];
  std::size_t n_iov = 0, used = 0, skip = partial_;
  auto add = [&](const std::byte* p, std::size_t len) {
    std::size_t s = std::min(skip, len);
    skip -= s;
    if (len > s)
      iov[n_iov++] = iovec{const_cast<std::byte*>(p + s), len - s};
  };
  for (; used < n && n_iov + 2 <= kMaxIov; ++used) {
    add(slots[used]->data, slots[used]->inline_len);
    if (!slots[used]->big.empty())
      add(slots[used]->big.data(), slots[used]->big.size());
  }
  msghdr msg{};
  msg.msg_iov = iov;
  msg.msg_iovlen = n_iov;
  ssize_t w;
  do {
    w = ::sendmsg(fd_.load(std::memory_order_relaxed), &msg, MSG_NOSIGNAL | MSG_DONTWAIT);
  } while (w < 0 && errno == EINTR);
  if (w < 0)
    return (errno == EAGAIN || errno == EWOULDBLOCK) ? -1 : -2;
  account(lanes, used, static_cast<std::size_t>(w) + partial_);
  return 1;
}

int Link::write_batch_tls() noexcept {
  Tls& t = *tls_;
  if (t.done == t.frames) {  // all staged frames sent: stage the next batch (whole frames)
    SendQueue::Slot* slots[kMaxFrames];
    std::size_t n = pick_batch(slots, t.lanes.data(), kMaxFrames);
    t.len = t.off = t.frames = t.done = 0;
    for (; t.frames < n; ++t.frames) {
      const SendQueue::Slot* s = slots[t.frames];
      std::size_t size = frame_size(s);
      if (t.frames > 0 && t.len + size > kTlsBatchBytes)
        break;
      if (t.staging.size() < t.len + size)
        t.staging.resize(std::max(t.len + size, kTlsBatchBytes));
      std::memcpy(t.staging.data() + t.len, s->data, s->inline_len);
      if (!s->big.empty())
        std::memcpy(t.staging.data() + t.len + s->inline_len, s->big.data(), s->big.size());
      t.len += size;
    }
    if (t.frames == 0)
      return 0;
  }
  SSL* ssl = t.stream.native_handle();
  ERR_clear_error();
  int w = SSL_write(ssl, t.staging.data() + t.off, static_cast<int>(t.len - t.off));
  if (w <= 0) {
    int e = SSL_get_error(ssl, w);
    ERR_clear_error();
    return e == SSL_ERROR_WANT_WRITE ? -1 : -2;
  }
  t.off += static_cast<std::size_t>(w);
  t.done +=
      account(t.lanes.data() + t.done, t.frames - t.done, static_cast<std::size_t>(w) + partial_);
  return 1;
}

void Link::break_connection() noexcept {
  connected_.store(false, std::memory_order_seq_cst);
  drop_partial();  // never resend half a frame
  int fd = fd_.load();
  if (fd >= 0)
    ::shutdown(fd, SHUT_RDWR);
}

void Link::drop_partial() noexcept {
  if (partial_ > 0) {
    queue(partial_lane_).release(1);
    partial_ = 0;
  }
}

void Link::drop_queued() noexcept {
  partial_ = 0;
  while (control_.front_ready())
    control_.release(1);
  while (queue_.front_ready())
    queue_.release(1);
}

// --- coroutines (on the strand) -----------------------------------------------------------

asio::awaitable<void> Link::writer_loop(std::shared_ptr<Link> self) {
  for (;;) {
    error_code ec;
    co_await self->wake_.async_wait(asio::posix::descriptor_base::wait_read,
                                    asio::redirect_error(asio::use_awaitable, ec));
    if (ec)
      co_return;  // closed
    std::uint64_t v;
    [[maybe_unused]] auto r = ::read(self->wake_fd_, &v, sizeof v);
    // The signal handed us the writer role.
    for (;;) {
      auto f = self->flush();
      if (f == Flush::released)
        break;
      if (f == Flush::would_block) {
        co_await self->socket_.async_wait(tcp::socket::wait_write,
                                          asio::redirect_error(asio::use_awaitable, ec));
      } else {  // a long burst: let the thread's other work (membership, readers) run
        co_await asio::post(self->strand_, asio::use_awaitable);
      }
    }
  }
}

asio::awaitable<void> Link::read_replies() {
  FrameDecoder dec(config_.max_frame_bytes, 4096);
  std::chrono::steady_clock::time_point spin_until{};
  for (;;) {
    for (;;) {
      auto n = dec.next();
      if (!n || (n->has && !config_.on_frame(n->frame))) {
        spdlog::warn("remote: closing connection to {}: {}", address_,
                     n ? "unexpected frame" : n.error().message);
        co_return;
      }
      if (!n->has)
        break;
      spin_until = std::chrono::steady_clock::now() + config_.spin_before_block;
    }
    auto buf = dec.prepare(std::max<std::size_t>(dec.missing(), 4096));
    if (spin_until > std::chrono::steady_clock::now()) {
      if (std::size_t got = co_await spin_read(socket_.native_handle(), buf, spin_until)) {
        dec.commit(got);
        continue;
      }
    }
    error_code ec;
    std::size_t got = co_await socket_.async_read_some(
        asio::buffer(buf.data(), buf.size()), asio::redirect_error(asio::use_awaitable, ec));
    if (ec)
      co_return;
    dec.commit(got);
  }
}

asio::awaitable<void> Link::acquire_role() {
  while (!try_claim())
    co_await asio::post(strand_, asio::use_awaitable);
}

asio::awaitable<void> Link::run(std::shared_ptr<Link> self, std::function<void()> on_closed) {
  int failures = 0;
  auto backoff = self->config_.backoff_min;
  while (!self->closed()) {
    auto peer = co_await self->connect_once();
    if (!peer) {
      if (self->closed() || ++failures >= self->config_.max_connect_failures)
        break;
      spdlog::debug("remote: link to {} failed: {}", self->address_, peer.error().message);
      self->timer_.expires_after(backoff);
      error_code ec;
      co_await self->timer_.async_wait(asio::redirect_error(asio::use_awaitable, ec));
      backoff = std::min(backoff * 2, self->config_.backoff_max);
      continue;
    }
    failures = 0;
    backoff = self->config_.backoff_min;
    co_await self->session(*peer);
  }
  self->closed_.store(true);
  co_await self->acquire_role();
  self->drop_queued();
  error_code ec;
  self->socket_.close(ec);
  self->wake_.close(ec);  // ends writer_loop; the role stays taken so no one writes again
  on_closed();
}

asio::awaitable<Result<NodeId>> Link::connect_once() {
  next_tls_.reset();
  std::string host;
  std::uint16_t port = 0;
  if (!split_address(address_, host, port))
    co_return Error{Errc::invalid_request, "bad address"};
  error_code ec;
  auto ip = asio::ip::make_address(host, ec);
  if (ec)
    co_return Error{Errc::invalid_request, "address is not an IP: " + host};
  socket_ = tcp::socket(strand_);
  co_await socket_.async_connect({ip, port}, asio::redirect_error(asio::use_awaitable, ec));
  if (ec)
    co_return Error{Errc::unavailable, ec.message()};
  socket_.set_option(tcp::no_delay(true), ec);
  Handshake hs(Role::dialer, config_.secret,
               Hello{config_.self, config_.self_address, random_nonce()});
  FrameDecoder dec(1024, 1024);
  Result<Hello> hello = Error{Errc::internal, "no handshake"};
  if (config_.tls) {
    next_tls_ = std::make_unique<Tls>(socket_, *config_.tls);
    hello = co_await run_handshake(next_tls_->stream, hs, dec, config_.handshake_timeout);
  } else {
    hello = co_await run_handshake(socket_, hs, dec, config_.handshake_timeout);
  }
  if (!hello) {
    spdlog::warn("remote: handshake with {} failed: {}", address_, hello.error().message);
    next_tls_.reset();
    socket_.close(ec);
    co_return hello.error();
  }
  co_return hello->node;
}

asio::awaitable<void> Link::session(NodeId peer) {
  co_await acquire_role();
  NodeId before = peer_.exchange(peer);
  if (before != 0 && before != peer)
    drop_queued();  // they were meant for the old node
  error_code ec;
  socket_.non_blocking(true, ec);
  tls_ = std::move(next_tls_);
  if (tls_)
    write_records_to_socket(tls_->stream, socket_.native_handle());
  fd_.store(socket_.native_handle());
  connected_.store(true, std::memory_order_seq_cst);
  if (closed()) {  // close() ran before fd_ was set and could not wake our read
    ::shutdown(fd_.load(), SHUT_RDWR);
  }
  // We hold the role: hand it to the writer when frames are waiting, else drop it.
  if (any_ready() || release_and_recheck())
    signal_writer();
  if (!tls_ && config_.on_frame) {
    co_await read_replies();
  } else {
    // Nothing is sent to us on this connection: reads complete only at its end.
    std::byte sink[64];
    for (error_code rec; !rec;) {
      co_await socket_.async_read_some(asio::buffer(sink),
                                       asio::redirect_error(asio::use_awaitable, rec));
    }
  }
  connected_.store(false, std::memory_order_seq_cst);
  ::shutdown(socket_.native_handle(), SHUT_RDWR);
  co_await acquire_role();
  drop_partial();
  tls_.reset();
  fd_.store(-1);
  socket_.close(ec);
  writer_active_.store(false, std::memory_order_seq_cst);
}

}  // namespace troupe::remote
