#pragma once
// TokenStream: the asynchronous stream of events of one generation request, and the
// StreamWriter that feeds it. This is the seam between whoever produces tokens (the local
// engine, or a remote worker through the cluster gateway) and whoever consumes them (an HTTP
// session, a test).
//
// Ownership: make_stream() returns both ends sharing one channel. Dropping or cancel()ing the
// TokenStream cancels the request: the producer's on_cancel callback runs once, at once, and
// later pushes are refused. Dropping a StreamWriter that never pushed a final event delivers
// Failed{internal} to the consumer, so a consumer never waits forever.
//
// Thread-safety: one producer thread and one consumer at a time; the two ends may live on
// different threads. The queue holds at most one request's events (bounded by its max_tokens
// plus three), so it needs no further bound.

#include <boost/asio/any_completion_handler.hpp>
#include <boost/asio/append.hpp>
#include <boost/asio/associated_cancellation_slot.hpp>
#include <boost/asio/associated_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <functional>
#include <memory>
#include <optional>
#include <utility>
#include <vector>

#include "engine/events.hpp"

namespace troupe::engine {

namespace detail {
class StreamChannel;
// Called at most once, from any thread; it posts the real completion to its executor.
using NextHandler = boost::asio::any_completion_handler<void(std::optional<StreamEvent>)>;
void async_next_impl(const std::shared_ptr<StreamChannel>& ch, NextHandler deliver,
                     boost::asio::cancellation_slot slot);
}  // namespace detail

class StreamWriter {
 public:
  StreamWriter() = default;
  explicit StreamWriter(std::shared_ptr<detail::StreamChannel> ch) : ch_(std::move(ch)) {}
  StreamWriter(StreamWriter&&) noexcept = default;
  StreamWriter& operator=(StreamWriter&&) noexcept;
  ~StreamWriter();

  // Appends an event. Returns false (and drops the event) when the consumer has cancelled or
  // a final event was already pushed. Never blocks.
  bool push(StreamEvent event);

  // True once the consumer cancelled. Producers may check it, but on_cancel is the push path.
  bool cancelled() const;

  // Sets the function to run once when the consumer cancels (on the consumer's thread, so it
  // must be quick and thread-safe: a tell). Runs at once, here, if already cancelled.
  void on_cancel(std::function<void()> fn);

  bool valid() const noexcept { return ch_ != nullptr; }

 private:
  std::shared_ptr<detail::StreamChannel> ch_;
};

class TokenStream {
 public:
  TokenStream() = default;
  explicit TokenStream(std::shared_ptr<detail::StreamChannel> ch) : ch_(std::move(ch)) {}
  TokenStream(TokenStream&&) noexcept = default;
  TokenStream& operator=(TokenStream&&) noexcept;
  ~TokenStream();

  // Completes with the next event, or nullopt once the final event was delivered (or the
  // stream was cancelled). The completion runs on the awaiting handler's executor. Supports
  // per-operation cancellation (e.g. `co_await (s.next() || socket_closed())`): a cancelled
  // wait completes with nullopt and leaves queued events in place. Only one wait at a time.
  template <class CompletionToken = boost::asio::use_awaitable_t<>>
  auto next(CompletionToken&& token = {}) {
    return boost::asio::async_initiate<CompletionToken, void(std::optional<StreamEvent>)>(
        [](auto handler, const std::shared_ptr<detail::StreamChannel>& ch) {
          auto slot = boost::asio::get_associated_cancellation_slot(handler);
          auto deliver = [h = std::move(handler)](std::optional<StreamEvent> ev) mutable {
            auto ex = boost::asio::get_associated_executor(h);
            boost::asio::post(ex, boost::asio::append(std::move(h), std::move(ev)));
          };
          detail::async_next_impl(ch, detail::NextHandler(std::move(deliver)), slot);
        },
        token, ch_);
  }

  // Blocking form for tests and tools: waits on this thread.
  std::optional<StreamEvent> next_blocking();

  // Returns the next event if one is queued, without waiting.
  std::optional<StreamEvent> try_next();

  // Cancels the request (idempotent). The destructor does the same.
  void cancel();

  // Keeps `resource` alive as long as this stream object: it is released when the stream is
  // destroyed or assigned to, after the request was cancelled (on the consumer's thread). E.g.
  // a lease that keeps the model serving this request loaded while the request is wanted.
  void attach(std::shared_ptr<void> resource);

  bool valid() const noexcept { return ch_ != nullptr; }

 private:
  std::shared_ptr<detail::StreamChannel> ch_;
  std::vector<std::shared_ptr<void>> attached_;  // see attach()
};

// Creates a connected pair.
std::pair<StreamWriter, TokenStream> make_stream();

// A stream that holds only Failed{error}: for requests refused before admission.
TokenStream failed_stream(Error error);

}  // namespace troupe::engine
