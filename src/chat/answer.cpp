#include "chat/answer.hpp"

#include <fmt/format.h>

#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/this_coro.hpp>
#include <variant>

#include "chat/answer_layout.hpp"
#include "client/tools.hpp"

namespace troupe::chat {
namespace asio = boost::asio;
using Clock = client::Clock;

namespace {

using Opened = std::pair<client::ClientResult<client::Stream>, client::StreamEvent>;

// Opens the stream and waits for its first event (or the error that prevents one).
asio::awaitable<Opened> open_and_first(client::Client& client, const client::ChatRequest& req) {
  auto stream = co_await client.stream_chat(req);
  if (!stream) {
    client::ClientError e = stream.error();
    co_return Opened{std::move(stream), client::StreamEvent{std::move(e)}};
  }
  auto first = co_await stream->next();
  co_return Opened{std::move(stream), std::move(first)};
}

asio::awaitable<Opened> race_spinner(client::Client& client, const client::ChatRequest& req,
                                     Spinner* spinner) {
  using namespace asio::experimental::awaitable_operators;
  if (!spinner)
    co_return co_await open_and_first(client, req);
  auto raced = co_await (spinner->spin() || open_and_first(client, req));
  if (raced.index() == 1)
    co_return std::move(std::get<1>(raced));
  // spin() only ends first when its writes fail; wait for the answer anyway.
  co_return co_await open_and_first(client, req);
}

// race_spinner, with a cancellation that surfaced as an exception turned into a value.
asio::awaitable<Opened> open_with_spinner(client::Client& client, const client::ChatRequest& req,
                                          Spinner* spinner) {
  try {
    co_return co_await race_spinner(client, req, spinner);
  } catch (const boost::system::system_error& e) {
    if (e.code() != asio::error::operation_aborted)
      throw;
  }
  client::ClientError stopped{Errc::cancelled, 0, "stopped"};
  co_return Opened{stopped, client::StreamEvent{stopped}};
}

class AnswerWriter {
 public:
  AnswerWriter(Output& out, AnswerOptions options, Clock::time_point started)
      : out_(out),
        options_(options),
        started_(started),
        layout_(options.style, options.show_reasoning, options.columns) {}

  // Shows one event: its reasoning, content and tool-call pieces, after the spinner's erase
  // bytes, in one write (none when nothing is shown, e.g. hidden reasoning off a terminal).
  Result<void> event(const client::Delta& d) {
    bytes_.assign(options_.spinner ? options_.spinner->take_erase() : "");
    result_.reasoning += d.reasoning;
    layout_.reasoning(d.reasoning, bytes_);
    result_.text += d.content;
    layout_.content(d.content, bytes_);
    calls_.add(d.tool_calls);
    for (const auto& piece : d.tool_calls) {
      if (piece.index < calls_.calls().size())
        layout_.tool_call(piece.index, calls_.calls()[piece.index].name, piece.arguments, bytes_);
    }
    if (result_.stats.text_events++ == 0)
      first_ = d.received_at;
    last_ = d.received_at;
    if (bytes_.empty())
      return {};
    Result<void> r = out_.write(bytes_);
    if (options_.write_latencies)
      options_.write_latencies->push_back(Clock::now() - d.received_at);
    return r;
  }

  AnswerResult finish(client::StreamEvent& end) {
    bytes_.assign(options_.spinner ? options_.spinner->take_erase() : "");
    layout_.finish(bytes_);
    (void)out_.write(bytes_);
    result_.needs_newline = layout_.needs_newline();
    result_.tool_calls = calls_.take();
    auto& stats = result_.stats;
    if (stats.text_events > 0) {
      stats.ttft = first_ - started_;
      stats.generation = last_ - first_;
    }
    stats.tokens = stats.text_events;
    if (auto* done = std::get_if<client::Done>(&end)) {
      result_.finish_reason = done->finish_reason;
      if (done->usage && done->usage->completion_tokens > 0) {
        stats.tokens = done->usage->completion_tokens;
      }
    } else if (auto* error = std::get_if<client::ClientError>(&end)) {
      result_.error = std::move(*error);
    }
    return std::move(result_);
  }

 private:
  Output& out_;
  AnswerOptions options_;
  Clock::time_point started_;
  Clock::time_point first_{};
  Clock::time_point last_{};
  AnswerLayout layout_;
  client::ToolCallAssembler calls_;
  std::string bytes_;  // one event's bytes, reused
  AnswerResult result_;
};

}  // namespace

double AnswerStats::tokens_per_second() const noexcept {
  if (tokens < 2 || generation.count() <= 0)
    return 0.0;
  return (tokens - 1) / std::chrono::duration<double>(generation).count();
}

std::string AnswerStats::summary() const {
  using ms = std::chrono::duration<double, std::milli>;
  return fmt::format("TTFT {:.0f} ms · {:.1f} tok/s · {} tokens", ms(ttft).count(),
                     tokens_per_second(), tokens);
}

asio::awaitable<AnswerResult> stream_answer(client::Client& client, client::ChatRequest request,
                                            Output& out, AnswerOptions options) {
  AnswerWriter writer(out, options, Clock::now());
  auto cancel_state = co_await asio::this_coro::cancellation_state;
  auto [stream, event] = co_await open_with_spinner(client, request, options.spinner);
  for (;;) {
    // Once a stop was requested, whatever the stream reports next (a cancelled read, a cut
    // event, a token that raced the stop) is the stop. A stop requested while this coroutine
    // ran rather than waited is only in its cancellation state: look at it each time.
    if (cancel_state.cancelled() != asio::cancellation_type::none &&
        !std::holds_alternative<client::Done>(event)) {
      if (stream)
        stream->cancel();  // close the connection now: the server stops generating
      client::StreamEvent stopped = client::ClientError{Errc::cancelled, 0, "stopped"};
      co_return writer.finish(stopped);
    }
    auto* delta = std::get_if<client::Delta>(&event);
    if (!delta) {
      auto* error = std::get_if<client::ClientError>(&event);
      const bool lost = stream && error && error->code == Errc::unavailable && !error->http_status;
      AnswerResult result = writer.finish(event);
      result.connection_lost = lost;
      co_return result;
    }
    if (auto r = writer.event(*delta); !r) {
      client::StreamEvent failed = client::ClientError{Errc::unavailable, 0, r.error().message};
      co_return writer.finish(failed);
    }
    // Awaiting with a stop pending would throw: go round to the check above instead.
    if (cancel_state.cancelled() != asio::cancellation_type::none)
      continue;
    event = co_await stream->next();
  }
}

}  // namespace troupe::chat
