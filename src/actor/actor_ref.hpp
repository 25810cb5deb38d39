#pragma once
// ActorRef<Protocol>: the typed address of an actor whose messages are the alternatives of
// `Protocol` (a std::variant of message structs, declared in the actor's *_protocol.hpp).
// ActorHandle: the same address without the type, for watching, supervision and registries.
//
// Both are cheap to copy (one shared_ptr), compare by identity, hash, and stay valid after
// the actor stops: telling a stopped actor returns SendStatus::stopped, asking it yields
// Errc::unavailable. An empty (default-constructed) ref returns SendStatus::null_ref.
// The remote layer will add a remote endpoint behind the same interface.
//
// Thread-safety: all members are const and may be called from any thread concurrently.
// Ordering: the messages one thread (or one actor) tells one actor are handled in the order
// they were told; nothing is promised across senders.

#include <boost/asio/awaitable.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <optional>
#include <type_traits>
#include <utility>

#include "actor/detail/cell.hpp"
#include "actor/reply.hpp"
#include "actor/types.hpp"
#include "util/result.hpp"

namespace troupe::actor {

template <class Protocol>
class ActorRef;

// "Wait for ever": the default timeout of ask.
inline constexpr std::chrono::steady_clock::duration kNoTimeout =
    std::chrono::steady_clock::duration::max();

class ActorHandle {
 public:
  ActorHandle() = default;
  explicit ActorHandle(std::shared_ptr<detail::CellBase> cell) : cell_(std::move(cell)) {}

  ActorId id() const noexcept { return cell_ ? cell_->id() : 0; }
  // The SpawnOptions name; empty for an empty handle.
  std::string name() const { return cell_ ? cell_->name() : std::string(); }
  // True when empty or the actor has stopped.
  bool stopped() const noexcept { return !cell_ || cell_->stopped(); }
  // Asks the actor to stop; see StopMode. No effect on an empty or stopped actor.
  void request_stop(StopMode mode = StopMode::drain) const {
    if (cell_)
      cell_->request_stop(mode);
  }
  ActorStats stats() const noexcept { return cell_ ? cell_->stats() : ActorStats{}; }

  // The typed ref, or an empty one when this actor's protocol is not P.
  template <class P>
  ActorRef<P> as() const;

  explicit operator bool() const noexcept { return cell_ != nullptr; }
  friend bool operator==(const ActorHandle& a, const ActorHandle& b) noexcept {
    return a.cell_ == b.cell_;
  }
  // Internal: the runtime's view of the actor.
  const std::shared_ptr<detail::CellBase>& cell() const noexcept { return cell_; }

 private:
  std::shared_ptr<detail::CellBase> cell_;
};

namespace detail {
template <class R, class Protocol, class Msg>
boost::asio::awaitable<Result<R>> ask_impl(std::shared_ptr<Cell<Protocol>> cell, Msg msg,
                                           std::chrono::steady_clock::duration timeout);
}  // namespace detail

template <class Protocol>
class ActorRef {
 public:
  using protocol_type = Protocol;

  ActorRef() = default;
  explicit ActorRef(std::shared_ptr<detail::Cell<Protocol>> cell) : cell_(std::move(cell)) {}

  // Enqueues a message (any alternative of Protocol, or Protocol itself) and returns at once:
  // never blocks, never waits for space. Allocates nothing in steady state. See SendStatus
  // for the failures; a refused message is destroyed here.
  template <class Msg>
  requires std::is_constructible_v<Protocol, Msg&&> SendStatus tell(Msg&& msg)
  const {
    if (!cell_)
      return SendStatus::null_ref;
    return cell_->enqueue(std::forward<Msg>(msg));
  }

  // Sends `msg` (an Askable alternative: it has a `ReplyTo<R> reply` member, which ask fills
  // in) and completes with the reply. Errors: a refused tell (Errc::unavailable or
  // overloaded), timeout (Errc::timeout), cancellation of the awaiting operation
  // (Errc::cancelled), a handler that threw or dropped the reply (Errc::internal), the actor
  // stopping before it answered (Errc::unavailable). Never hangs on a dead actor. Call from a
  // coroutine running on an io_context (the reply is posted to its executor). The coroutine
  // owns copies of everything it needs; the ref may go away while it is suspended.
  template <Askable Msg>
  requires std::is_constructible_v<Protocol, Msg&&>
      boost::asio::awaitable<Result<reply_type_t<Msg>>> ask(
          Msg msg, std::chrono::steady_clock::duration timeout = kNoTimeout)
  const {
    return detail::ask_impl<reply_type_t<Msg>, Protocol, Msg>(cell_, std::move(msg), timeout);
  }

  // Blocking ask for tests and tools: blocks the calling thread up to `timeout`. Must not be
  // called from the target's own context, nor from the only thread running the io_context
  // of a shared (light) target: that would deadlock until the timeout.
  template <Askable Msg>
  requires std::is_constructible_v<Protocol, Msg&&> Result<reply_type_t<Msg>> ask_blocking(
      Msg msg, std::chrono::steady_clock::duration timeout)
  const {
    using R = reply_type_t<Msg>;
    auto state = std::make_shared<detail::AskState<R>>();
    msg.reply = ReplyTo<R>(state);
    if (SendStatus s = tell(std::move(msg)); s != SendStatus::ok)
      return to_error(s);
    return state->wait_for(timeout);
  }

  // Asks the actor to stop; see StopMode.
  void request_stop(StopMode mode = StopMode::drain) const {
    if (cell_)
      cell_->request_stop(mode);
  }

  ActorId id() const noexcept { return cell_ ? cell_->id() : 0; }
  bool stopped() const noexcept { return !cell_ || cell_->stopped(); }
  ActorStats stats() const noexcept { return cell_ ? cell_->stats() : ActorStats{}; }
  ActorHandle handle() const { return ActorHandle(cell_); }
  operator ActorHandle() const { return handle(); }  // NOLINT: a typed ref is a handle

  explicit operator bool() const noexcept { return cell_ != nullptr; }
  friend bool operator==(const ActorRef& a, const ActorRef& b) noexcept {
    return a.cell_ == b.cell_;
  }

 private:
  std::shared_ptr<detail::Cell<Protocol>> cell_;
};

template <class P>
ActorRef<P> ActorHandle::as() const {
  if (!cell_ || cell_->protocol_type() != typeid(P))
    return {};
  return ActorRef<P>(std::static_pointer_cast<detail::Cell<P>>(cell_));
}

namespace detail {

template <class R, class Protocol, class Msg>
boost::asio::awaitable<Result<R>> ask_impl(std::shared_ptr<Cell<Protocol>> cell, Msg msg,
                                           std::chrono::steady_clock::duration timeout) {
  if (!cell)
    co_return to_error(SendStatus::null_ref);
  auto state = std::make_shared<AskState<R>>();
  msg.reply = ReplyTo<R>(state);
  if (SendStatus s = cell->enqueue(std::move(msg)); s != SendStatus::ok)
    co_return to_error(s);
  std::optional<boost::asio::steady_timer> timer;
  if (timeout != kNoTimeout) {
    timer.emplace(co_await boost::asio::this_coro::executor, timeout);
    timer->async_wait([w = std::weak_ptr<AskState<R>>(state)](boost::system::error_code ec) {
      auto s = w.lock();
      if (!ec && s)
        s->complete(Error{Errc::timeout, "ask timed out"});
    });
  }
  Result<R> r = co_await async_wait_reply<R>(std::move(state), boost::asio::use_awaitable);
  if (timer)
    timer->cancel();
  co_return r;
}

}  // namespace detail
}  // namespace troupe::actor

template <>
struct std::hash<troupe::actor::ActorHandle> {
  std::size_t operator()(const troupe::actor::ActorHandle& h) const noexcept {
    return std::hash<const void*>{}(h.cell().get());
  }
};

template <class P>
struct std::hash<troupe::actor::ActorRef<P>> {
  std::size_t operator()(const troupe::actor::ActorRef<P>& r) const noexcept {
    return std::hash<troupe::actor::ActorHandle>{}(r.handle());
  }
};
