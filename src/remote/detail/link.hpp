#pragma once
// Link: this node's outbound connection to one peer address, and the tell path into it.
//
// A Link owns two SendQueues that outlive individual connections: the data lane (tells,
// asks, and replies under TLS) and a small control lane (membership gossip). It dials, runs
// the handshake (inside mutual TLS when configured), and re-dials with exponential backoff
// when the connection breaks, sending what was queued meanwhile (in order) once it is back. A frame
// partly written when a connection broke is dropped, never resent half. When the handshake
// shows that a different node now lives at the address (a restart), the frames queued for
// the old one are dropped. After `max_connect_failures` failed dials in a row, or close(),
// the link is closed for good: pushes return LinkStatus::closed. On a plaintext connection
// the link also reads what the peer sends back on it, the replies to our asks (on_frame).
//
// An attached link (attach()) is the reply path of an accepted connection instead: the same
// queue and writer role over a duplicate of that connection's descriptor, no dialling.
//
// The writer role. At most one thread writes to the socket at a time: whoever holds the
// atomic writer flag. A producer that pushes onto an idle link takes the flag; on an I/O
// thread of the node it writes at once with one non-blocking sendmsg (the fast path for a
// single small message), elsewhere it hands the flag to the link's writer coroutine through
// an eventfd. The holder writes every published frame in batches of up to kMaxIov iovecs
// per sendmsg (header and payload in place, many frames coalesced), waits for writability
// when the socket is full, and drops the flag when both lanes are empty (re-checking after
// a full fence, so no push is ever stranded). Busy links cost producers one CAS per message.
// Each batch starts with the control lane, so a probe or its ack waits behind at most the
// frame being written (and what the kernel already holds), never behind a queue of data;
// order is kept within each lane. A holder that keeps finding work hands it to the writer
// coroutine after a bounded number of batches, so a flood cannot monopolise an I/O thread
// (and the membership running on it).
//
// With TLS the holder copies a batch of whole frames into a staging buffer and SSL_writes it
// (the SSL object then writes straight to the socket, see tls_stream.hpp); the same rules
// hold, counted in plaintext bytes accepted by SSL_write.
//
// Thread-safety: push*, peer(), closed(), close() from any thread. The coroutines run on
// the link's strand.

#include <atomic>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "remote/detail/handshake.hpp"
#include "remote/detail/send_queue.hpp"
#include "remote/tls.hpp"

namespace troupe::remote {

struct LinkConfig {
  NodeId self = 0;
  std::string self_address;
  std::string secret;
  std::size_t queue_capacity = 8192;
  std::chrono::steady_clock::duration handshake_timeout = std::chrono::seconds(2);
  std::chrono::steady_clock::duration backoff_min = std::chrono::milliseconds(10);
  std::chrono::steady_clock::duration backoff_max = std::chrono::seconds(1);
  int max_connect_failures = 5;
  std::size_t control_capacity = 1024;             // frames in the control lane
  std::shared_ptr<boost::asio::ssl::context> tls;  // mutual TLS on every connection when set
  // Dialled plaintext links: called (on the link's strand) for every frame the peer sends
  // back on the connection, i.e. the replies and errors to our asks; false closes the
  // connection. Unset, or with TLS, nothing is expected back and nothing is decoded.
  std::function<bool(const FrameView&)> on_frame;
  std::uint32_t max_frame_bytes = 64u << 20;  // of those frames
  // The reader's spin after a frame (see NodeOptions::spin_before_block).
  std::chrono::microseconds spin_before_block{0};
};

enum class LinkStatus { ok, full, closed };

// Which queue of a link a frame goes through (see above).
enum class Lane : std::uint8_t { data = 0, control = 1 };

class Link {
 public:
  using Executor = boost::asio::io_context::executor_type;

  Link(boost::asio::io_context& io, std::string address, LinkConfig config);
  Link(const Link&) = delete;
  Link& operator=(const Link&) = delete;
  ~Link();

  // Starts the connection coroutine; `on_closed` runs once (on the strand) when the link is
  // closed for good. Call once.
  static void start(const std::shared_ptr<Link>& link, std::function<void()> on_closed);

  // The reply path of an accepted plaintext connection: a link that writes on that
  // connection (through a duplicate of its descriptor, with the same writer role, queue and
  // fast path as a dialled link) and never dials. It carries the replies to the asks that
  // arrive there, so an answer travels back on the asker's own connection. `address` names
  // the peer in logs. Null when the descriptor cannot be duplicated. End it with retire().
  static std::shared_ptr<Link> attach(boost::asio::io_context& io,
                                      boost::asio::ip::tcp::socket& accepted, std::string address,
                                      NodeId peer, LinkConfig config);
  // Closes an attached link for good once its connection has ended: shuts the connection
  // down, waits for the writer role, drops what is still queued. Any thread.
  static boost::asio::awaitable<void> retire(std::shared_ptr<Link> link);

  // Queues a frame (copying the payload). Never blocks; never allocates for a payload of at
  // most kInlinePayload bytes once the link is warm.
  LinkStatus push(const FrameHeader& h, std::span<const std::byte> payload);
  LinkStatus push(const FrameHeader& h, std::vector<std::byte>&& payload);
  // Queues a control frame (membership gossip) on the control lane, written before data.
  LinkStatus push_control(const FrameHeader& h, std::span<const std::byte> payload);
  // Queues a frame whose payload `fill(std::span<std::byte>)` writes in place.
  template <class Fill>
  LinkStatus push_with(const FrameHeader& h, std::size_t len, Fill&& fill) {
    return enqueue([&] { return queue_.push_with(h, len, std::forward<Fill>(fill)); });
  }

  // Closes the link for good (idempotent).
  void close();

  const std::string& address() const noexcept { return address_; }
  // The node at the other end of the current (or last) connection; 0 before the first.
  NodeId peer() const noexcept { return peer_.load(std::memory_order_acquire); }
  bool connected() const noexcept { return connected_.load(std::memory_order_acquire); }
  bool closed() const noexcept { return closed_.load(std::memory_order_acquire); }
  std::uint64_t rejected() const noexcept { return queue_.rejected() + control_.rejected(); }
  // Frames pushed onto `lane` so far; and whether every frame of that lane up to that count
  // has left the queue (written, or dropped because its connection broke or the link closed).
  std::uint64_t pushed(Lane lane = Lane::data) const noexcept { return queue(lane).pushed(); }
  bool drained_through(std::uint64_t pushed, Lane lane = Lane::data) const noexcept {
    return queue(lane).released() >= pushed || closed();
  }

 private:
  enum class Flush { released, would_block, yield };
  struct Tls;  // the connection's TLS stream and staging buffer (link.cpp)

  SendQueue& queue(Lane lane) noexcept { return lane == Lane::control ? control_ : queue_; }
  const SendQueue& queue(Lane lane) const noexcept {
    return lane == Lane::control ? control_ : queue_;
  }
  bool any_ready() noexcept { return control_.front_ready() || queue_.front_ready(); }
  // Runs `push` (a queue's push, false when full) unless the link is closed.
  template <class Push>
  LinkStatus enqueue(Push&& push) {
    if (closed_.load(std::memory_order_acquire))
      return LinkStatus::closed;
    if (!push())
      return LinkStatus::full;
    after_push();
    return LinkStatus::ok;
  }
  void after_push();
  bool try_claim() noexcept;
  bool release_and_recheck() noexcept;
  void signal_writer() noexcept;
  Flush flush() noexcept;
  // 1 progress, 0 nothing queued, -1 would block, -2 failed
  int write_batch() noexcept;
  int write_batch_tls() noexcept;
  // The next batch's frames in writing order: the partly written one first, then the
  // control lane, then data. At most `max` frames, each slot in `slots`, its lane in `lanes`.
  std::size_t pick_batch(SendQueue::Slot** slots, Lane* lanes, std::size_t max) noexcept;
  // Releases the frames of a batch that `bytes` (counted from the start of the batch's
  // first frame, its already written part included) cover; the next becomes the partial one.
  // Returns the number of whole frames released.
  std::size_t account(const Lane* lanes, std::size_t n, std::size_t bytes) noexcept;
  void break_connection() noexcept;
  void drop_partial() noexcept;
  void drop_queued() noexcept;

  static boost::asio::awaitable<void> run(std::shared_ptr<Link> self,
                                          std::function<void()> on_closed);
  static boost::asio::awaitable<void> writer_loop(std::shared_ptr<Link> self);
  static boost::asio::awaitable<void> retire_on_strand(std::shared_ptr<Link> self);
  // Decodes what the peer sends back on the connection (replies) until it ends.
  boost::asio::awaitable<void> read_replies();
  boost::asio::awaitable<Result<NodeId>> connect_once();
  boost::asio::awaitable<void> session(NodeId peer);
  boost::asio::awaitable<void> acquire_role();

  boost::asio::io_context& io_;
  boost::asio::strand<Executor> strand_;
  std::string address_;
  LinkConfig config_;
  SendQueue queue_;    // data lane
  SendQueue control_;  // control lane
  boost::asio::ip::tcp::socket socket_;
  boost::asio::posix::stream_descriptor wake_;
  boost::asio::steady_timer timer_;
  int wake_fd_ = -1;
  std::atomic<int> fd_{-1};  // the connected socket's descriptor, for the writer role holder
  std::atomic<bool> writer_active_{false};
  std::atomic<bool> connected_{false};
  std::atomic<bool> closed_{false};
  std::atomic<NodeId> peer_{0};
  // Role holder only (and the strand while it holds the role):
  std::size_t partial_ = 0;  // bytes of the front frame of `partial_lane_` already written
  Lane partial_lane_ = Lane::data;
  std::unique_ptr<Tls> tls_;       // the current connection's TLS state, when TLS is on
  std::unique_ptr<Tls> next_tls_;  // strand: a connection's TLS state until its session starts
};

}  // namespace troupe::remote
