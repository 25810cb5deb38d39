#include "remote/link.hpp"

#include <spdlog/spdlog.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/connect.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <cerrno>
#include <stdexcept>

#include "remote/frame_io.hpp"

namespace troupe::remote {

namespace asio = boost::asio;
using asio::ip::tcp;
using boost::system::error_code;

namespace {
constexpr std::size_t kMaxIov = 256;
}

Link::Link(asio::io_context& io, std::string address, LinkConfig config)
    : io_(io),
      strand_(asio::make_strand(io)),
      address_(std::move(address)),
      config_(std::move(config)),
      queue_(config_.queue_capacity),
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

LinkStatus Link::push(const FrameHeader& h, std::span<const std::byte> payload) {
  if (closed_.load(std::memory_order_acquire))
    return LinkStatus::closed;
  if (!queue_.push(h, payload))
    return LinkStatus::full;
  after_push();
  return LinkStatus::ok;
}

LinkStatus Link::push(const FrameHeader& h, std::vector<std::byte>&& payload) {
  if (closed_.load(std::memory_order_acquire))
    return LinkStatus::closed;
  if (!queue_.push(h, std::move(payload)))
    return LinkStatus::full;
  after_push();
  return LinkStatus::ok;
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
    if (flush() == Flush::would_block)
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
  if (!connected_.load(std::memory_order_seq_cst) || !queue_.front_ready())
    return false;
  return try_claim();
}

void Link::signal_writer() noexcept {
  std::uint64_t one = 1;
  [[maybe_unused]] auto r = ::write(wake_fd_, &one, sizeof one);
}

Link::Flush Link::flush() noexcept {
  for (;;) {
    if (!connected_.load(std::memory_order_acquire)) {
      if (!release_and_recheck())
        return Flush::released;
      continue;
    }
    int r = write_batch();
    if (r == -1)
      return Flush::would_block;
    if (r == -2)
      break_connection();
    if (r <= 0 && !release_and_recheck())
      return Flush::released;
  }
}

int Link::write_batch() noexcept {
  iovec iov[kMaxIov];
  std::size_t n_iov = 0, slots = 0, skip = partial_;
  auto add = [&](const std::byte* p, std::size_t len) {
    std::size_t s = std::min(skip, len);
    skip -= s;
    if (len > s)
      iov[n_iov++] = iovec{const_cast<std::byte*>(p + s), len - s};
  };
  while (n_iov + 2 <= kMaxIov) {
    SendQueue::Slot* s = queue_.peek(slots);
    if (!s)
      break;
    add(s->data, s->inline_len);
    if (!s->big.empty())
      add(s->big.data(), s->big.size());
    ++slots;
  }
  if (slots == 0)
    return 0;
  msghdr msg{};
  msg.msg_iov = iov;
  msg.msg_iovlen = n_iov;
  ssize_t n;
  do {
    n = ::sendmsg(fd_.load(std::memory_order_relaxed), &msg, MSG_NOSIGNAL | MSG_DONTWAIT);
  } while (n < 0 && errno == EINTR);
  if (n < 0)
    return (errno == EAGAIN || errno == EWOULDBLOCK) ? -1 : -2;
  std::size_t written = static_cast<std::size_t>(n) + partial_, done = 0;
  for (; done < slots; ++done) {
    SendQueue::Slot* s = queue_.peek(done);
    std::size_t size = s->inline_len + s->big.size();
    if (written < size)
      break;
    written -= size;
  }
  partial_ = written;
  queue_.release(done);
  return 1;
}

void Link::break_connection() noexcept {
  connected_.store(false, std::memory_order_seq_cst);
  if (partial_ > 0) {  // never resend half a frame
    queue_.release(1);
    partial_ = 0;
  }
  int fd = fd_.load();
  if (fd >= 0)
    ::shutdown(fd, SHUT_RDWR);
}

void Link::drop_queued() noexcept {
  partial_ = 0;
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
    while (self->flush() == Flush::would_block) {
      co_await self->socket_.async_wait(tcp::socket::wait_write,
                                        asio::redirect_error(asio::use_awaitable, ec));
    }
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
  auto hello = co_await run_handshake(socket_, hs, dec, config_.handshake_timeout);
  if (!hello) {
    spdlog::warn("remote: handshake with {} failed: {}", address_, hello.error().message);
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
  fd_.store(socket_.native_handle());
  connected_.store(true, std::memory_order_seq_cst);
  if (closed()) {  // close() ran before fd_ was set and could not wake our read
    ::shutdown(fd_.load(), SHUT_RDWR);
  }
  // We hold the role: hand it to the writer when frames are waiting, else drop it.
  if (queue_.front_ready() || release_and_recheck())
    signal_writer();
  // Nothing is ever sent to us on this connection: a read completes only at its end.
  std::byte sink[64];
  co_await socket_.async_read_some(asio::buffer(sink),
                                   asio::redirect_error(asio::use_awaitable, ec));
  connected_.store(false, std::memory_order_seq_cst);
  ::shutdown(socket_.native_handle(), SHUT_RDWR);
  co_await acquire_role();
  if (partial_ > 0) {
    queue_.release(1);
    partial_ = 0;
  }
  fd_.store(-1);
  socket_.close(ec);
  writer_active_.store(false, std::memory_order_seq_cst);
}

}  // namespace troupe::remote
