#pragma once
// ReplyTo<R>: the reply half of an ask. A message that can be asked carries a public member
// `ReplyTo<R> reply;` (see ActorRef::ask); the handler answers with `msg.reply.send(value)`,
// now or later (the ReplyTo may be moved into the actor's state to answer after more work).
//
// Never a hang: a ReplyTo destroyed without an answer completes the ask with
// Errc::internal ("no reply"); the runtime fails it with Errc::unavailable when the message
// is dropped because the actor stopped, and with Errc::internal ("actor failed: ...") when
// the handler throws. Only the first completion counts; later ones are ignored.
//
// Thread-safety: a ReplyTo is a move-only value owned by one thread at a time. AskState is
// internally synchronised (a mutex held for a few instructions, never across a callback).

#include <boost/asio/any_completion_handler.hpp>
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/associated_cancellation_slot.hpp>
#include <boost/asio/associated_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/execution/outstanding_work.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/prefer.hpp>
#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <optional>
#include <type_traits>
#include <utility>
#include <variant>

#include "util/result.hpp"

namespace troupe::actor {

namespace detail {

template <class R>
class AskState {
 public:
  using Handler = boost::asio::any_completion_handler<void(Result<R>)>;

  // Stores the outcome if none was stored yet and wakes the waiter (blocking or coroutine).
  // Any thread.
  void complete(Result<R> r) {
    std::unique_lock lock(mu_);
    if (value_)
      return;
    value_.emplace(std::move(r));
    if (handler_) {
      deliver(lock);
    } else {
      lock.unlock();
      cv_.notify_all();
    }
  }

  // Coroutine waiter: hands the handler over with the io executor it must be resumed on; it
  // is posted there as soon as an outcome exists (at once if there is one). Called once.
  void set_handler(Handler h, boost::asio::any_io_executor ex) {
    ex = boost::asio::prefer(ex, boost::asio::execution::outstanding_work.tracked);
    std::unique_lock lock(mu_);
    work_ = std::move(ex);
    handler_.emplace(std::move(h));
    if (value_)
      deliver(lock);
  }

  // Blocking waiter: waits up to `timeout` for an outcome; on expiry completes with
  // Errc::timeout (unless a reply won the race) and returns the outcome.
  Result<R> wait_for(std::chrono::steady_clock::duration timeout) {
    std::unique_lock lock(mu_);
    auto ready = [&] { return value_.has_value(); };
    if (timeout == std::chrono::steady_clock::duration::max()) {
      cv_.wait(lock, ready);
    } else if (!cv_.wait_for(lock, timeout, ready)) {
      value_.emplace(Error{Errc::timeout, "ask timed out"});
    }
    return std::move(*value_);
  }

 private:
  void deliver(std::unique_lock<std::mutex>& lock) {
    Handler h(std::move(*handler_));
    handler_.reset();
    Result<R> v = std::move(*value_);
    boost::asio::any_io_executor ex = std::move(work_);
    lock.unlock();
    boost::asio::post(
        ex, [h = std::move(h), v = std::move(v)]() mutable { std::move(h)(std::move(v)); });
  }

  std::mutex mu_;
  std::condition_variable cv_;
  std::optional<Result<R>> value_;  // the outcome, once known (moved out when delivered)
  // optional + emplace: Boost 1.81's any_completion_handler move-assignment recurses forever.
  std::optional<Handler> handler_;
  boost::asio::any_io_executor work_;  // keeps the waiter's executor busy until delivery
};

// Waits for the outcome of `state` in a coroutine (token: use_awaitable). Honours per-operation
// cancellation: a cancellation completes the ask with Errc::cancelled.
template <class R, class Token>
auto async_wait_reply(std::shared_ptr<AskState<R>> state, Token&& token) {
  return boost::asio::async_initiate<Token, void(Result<R>)>(
      [](auto handler, std::shared_ptr<AskState<R>> st) {
        boost::asio::any_io_executor ex = boost::asio::get_associated_executor(handler);
        typename AskState<R>::Handler h(std::move(handler));
        // The type-erased handler owns the cancellation slot we must listen on.
        auto slot = boost::asio::get_associated_cancellation_slot(h);
        if (slot.is_connected()) {
          slot.assign([w = std::weak_ptr<AskState<R>>(st)](boost::asio::cancellation_type) {
            if (auto s = w.lock())
              s->complete(Error{Errc::cancelled, "ask cancelled"});
          });
        }
        st->set_handler(std::move(h), std::move(ex));
      },
      token, std::move(state));
}

}  // namespace detail

template <class R>
class ReplyTo {
 public:
  using value_type = R;

  // An empty ReplyTo (the message was sent with tell): send() and fail() do nothing.
  ReplyTo() = default;
  explicit ReplyTo(std::shared_ptr<detail::AskState<R>> state) : state_(std::move(state)) {}
  ReplyTo(ReplyTo&&) noexcept = default;
  ReplyTo& operator=(ReplyTo&& other) noexcept {
    if (this != &other) {
      fail(Error{Errc::internal, "no reply"});
      state_ = std::move(other.state_);
    }
    return *this;
  }
  ReplyTo(const ReplyTo&) = delete;
  ReplyTo& operator=(const ReplyTo&) = delete;
  ~ReplyTo() { fail(Error{Errc::internal, "no reply"}); }

  // Answers the ask. At most once: the ReplyTo is empty afterwards.
  void send(R value) {
    if (auto s = std::move(state_))
      s->complete(Result<R>(std::move(value)));
  }

  // Completes the ask with an error. The ReplyTo is empty afterwards.
  void fail(Error error) {
    if (auto s = std::move(state_))
      s->complete(Result<R>(std::move(error)));
  }

  // True while an asker waits for this reply.
  bool pending() const noexcept { return state_ != nullptr; }

 private:
  std::shared_ptr<detail::AskState<R>> state_;
};

// A message type is askable when it has a public member `reply` of type ReplyTo<R>.
template <class M>
concept Askable = requires(M& m) {
  typename std::remove_cvref_t<decltype(m.reply)>::value_type;
  requires std::is_same_v<std::remove_cvref_t<decltype(m.reply)>,
                          ReplyTo<typename std::remove_cvref_t<decltype(m.reply)>::value_type>>;
};

template <Askable M>
using reply_type_t = typename std::remove_cvref_t<decltype(std::declval<M&>().reply)>::value_type;

namespace detail {
// Fails the pending reply of `msg` (any alternative of a variant protocol) with `error`.
// Used by the runtime when a message is dropped or its handler threw.
template <class Protocol>
void fail_reply(Protocol& msg, const Error& error) {
  std::visit(
      [&](auto& m) {
        if constexpr (Askable<std::remove_cvref_t<decltype(m)>>)
          m.reply.fail(error);
      },
      msg);
}
}  // namespace detail

}  // namespace troupe::actor
