// Stream: turns the SSE body of a streaming completion into Delta / Done / ClientError events.

#include <boost/asio/this_coro.hpp>

#include "client/client.hpp"
#include "client/connection.hpp"

namespace troupe::client {

namespace asio = boost::asio;

namespace {

using detail::StreamState;

StreamEvent fail(StreamState& s, ClientError e) {
  s.finished = true;
  s.ex.conn.reset();  // the connection is in an unknown state: close it
  return e;
}

StreamEvent done(StreamState& s) {
  s.finished = true;
  s.pool->release(s.ex);  // reused only when the body is complete and keep-alive
  s.ex.conn.reset();
  return Done{s.text.finish_reason, s.usage, s.received_at};
}

// The event one SSE event stands for, or nullopt when it carries nothing to deliver.
std::optional<StreamEvent> on_sse(StreamState& s, const SseEvent& ev) {
  if (s.responses) {
    auto chunk = s.responses_decoder.decode(ev.data, s.text);
    if (chunk.error)
      return fail(s, std::move(*chunk.error));
    if (chunk.usage)
      s.usage = chunk.usage;
    if (chunk.has_finish)
      return done(s);  // response.completed is the last event
    if (!chunk.has_text)
      return std::nullopt;
    return Delta{s.text.content, s.text.reasoning, s.text.tool_calls, s.received_at};
  }
  if (s.anthropic) {
    if (ev.type == "message_stop")
      return done(s);
    auto chunk = s.anthropic_decoder.decode(ev.type, ev.data, s.text);
    if (chunk.error)
      return fail(s, std::move(*chunk.error));
    if (chunk.usage)
      s.usage = chunk.usage;
    s.saw_finish = s.saw_finish || chunk.has_finish;
    if (!chunk.has_text)
      return std::nullopt;
    return Delta{s.text.content, s.text.reasoning, s.text.tool_calls, s.received_at};
  }
  if (ev.data == "[DONE]")
    return done(s);
  if (ev.type == "error") {
    return fail(s,
                ClientError{Errc::internal, 0, "error in the stream: " + std::string(ev.data), {}});
  }
  auto chunk = s.pool->decoder.decode(ev.data, s.chat, s.text);
  if (chunk.error)
    return fail(s, std::move(*chunk.error));
  if (chunk.usage)
    s.usage = chunk.usage;
  s.saw_finish = s.saw_finish || chunk.has_finish;
  if (!chunk.has_text)
    return std::nullopt;
  return Delta{s.text.content, s.text.reasoning, s.text.tool_calls, s.received_at};
}

// The body ended: normal when the answer finished, else the server cut the stream short.
StreamEvent end_of_body(StreamState& s) {
  if (s.sse.mid_event()) {
    return fail(s, ClientError{Errc::unavailable, 0, "the server closed the stream mid-event", {}});
  }
  if (s.saw_finish)
    return done(s);
  return fail(
      s, ClientError{
             Errc::unavailable, 0, "the stream ended before the answer finished (no [DONE])", {}});
}

// One read from the socket into the SSE parser.
asio::awaitable<std::optional<StreamEvent>> fill(StreamState& s) {
  std::size_t n = 0;
  auto ec = co_await s.ex.read_some(s.sse.prepare(2048), n);
  s.sse.commit(n);
  s.received_at = Clock::now();
  if (!ec)
    co_return std::nullopt;
  if (s.sse.mid_event() && !s.ex.cancelled && ec != boost::beast::error::timeout) {
    co_return fail(s,
                   ClientError{Errc::unavailable, 0, "the server closed the stream mid-event", {}});
  }
  co_return fail(s, s.ex.error_from(ec, "reading the stream"));
}

}  // namespace

Stream::Stream(std::unique_ptr<detail::StreamState> state) : state_(std::move(state)) {}
Stream::Stream(Stream&&) noexcept = default;
Stream& Stream::operator=(Stream&&) noexcept = default;
Stream::~Stream() = default;

asio::awaitable<StreamEvent> Stream::next() {
  auto& s = *state_;
  if (s.finished)
    co_return ClientError{Errc::internal, 0, "stream finished", {}};
  for (;;) {
    SseEvent ev;
    switch (s.sse.next(ev)) {
      case SseStatus::event:
        if (auto out = on_sse(s, ev))
          co_return std::move(*out);
        continue;
      case SseStatus::too_large:
        co_return fail(s, ClientError{Errc::internal, 0, "stream event larger than the limit", {}});
      case SseStatus::need_more:
        break;
    }
    if (s.ex.parser.is_done())
      co_return end_of_body(s);
    if (auto out = co_await fill(s))
      co_return std::move(*out);
  }
}

void Stream::cancel() noexcept {
  if (!state_ || state_->finished || !state_->ex.conn)
    return;
  state_->ex.cancelled = true;
  state_->ex.conn->stream.close();
}

bool Stream::finished() const noexcept {
  return !state_ || state_->finished;
}

asio::any_io_executor Stream::executor() const noexcept {
  return state_->client->executor();
}

}  // namespace troupe::client
