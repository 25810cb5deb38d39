#pragma once
// stream_answer: sends one chat request and writes the streamed answer to the terminal as it
// arrives: each text event is one write(2) the moment the client delivers it (no buffering,
// no batching), with the waiting spinner erased in the same write as the first token.
//
// Thread-safety: runs on the client's (single-threaded) executor; the Output, Spinner and
// latency log must be used by nothing else meanwhile.

#include <boost/asio/awaitable.hpp>
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "chat/spinner.hpp"
#include "chat/terminal.hpp"
#include "client/client.hpp"

namespace troupe::chat {

// Timings of one answer, from the client's receive timestamps.
struct AnswerStats {
  std::chrono::nanoseconds ttft{0};        // request started -> first text received
  std::chrono::nanoseconds generation{0};  // first text received -> last text received
  std::int32_t tokens = 0;       // usage.completion_tokens when the server sent it, else events
  std::int32_t text_events = 0;  // events that carried text (= writes of answer text)

  // (tokens - 1) / generation, the rate after the first token; 0 when undefined.
  double tokens_per_second() const noexcept;
  // "TTFT 120 ms · 35.2 tok/s · 48 tokens".
  std::string summary() const;
};

struct AnswerResult {
  std::string text;                          // everything written, in order
  std::string finish_reason;                 // from Done ("stop", "length", ...)
  std::optional<client::ClientError> error;  // set unless the stream ended with Done
  AnswerStats stats;

  // The answer was stopped by cancellation (Ctrl-C), not failed.
  bool stopped() const noexcept { return error && error->code == Errc::cancelled; }
};

struct AnswerOptions {
  Spinner* spinner = nullptr;  // animate while waiting for the first token; null: none
  // When set, gets one entry per text event: from the client's receive timestamp of the event
  // to the return of the write(2) that put its text on the terminal.
  std::vector<std::chrono::nanoseconds>* write_latencies = nullptr;
};

// Streams the answer to `request` onto `out`. Never throws for expected failures: a refused
// connection, an HTTP error, a broken stream or a write error end up in result.error.
// Cancellation: terminal cancellation of the awaiting operation (bind a cancellation slot to
// its co_spawn) closes the connection, which tells the server to stop; the result then has
// stopped() and the text so far. `request` is taken by value (the coroutine outlives the
// caller's expression); `client` and `out` must outlive the operation.
boost::asio::awaitable<AnswerResult> stream_answer(client::Client& client,
                                                   client::ChatRequest request, Output& out,
                                                   AnswerOptions options = {});

}  // namespace troupe::chat
