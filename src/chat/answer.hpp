#pragma once
// stream_answer: sends one chat request and writes the streamed answer to the terminal as it
// arrives: each event is one write(2) the moment the client delivers it (no buffering, no
// batching), with the waiting spinner erased in the same write as the first token.
//
// What an answer looks like: reasoning dimmed (or, hidden, one "[reasoning hidden]" line on
// a terminal and nothing elsewhere), then a blank line, then the content as is; each tool
// call on a line of its own, "→ name(arguments)", the arguments written as they stream.
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
  std::int32_t tokens = 0;  // usage.completion_tokens when the server sent it, else events
  // Events that carried output: content, reasoning or tool-call pieces (each one write, unless
  // it was only hidden reasoning).
  std::int32_t text_events = 0;

  // (tokens - 1) / generation, the rate after the first token; 0 when undefined.
  double tokens_per_second() const noexcept;
  // "TTFT 120 ms · 35.2 tok/s · 48 tokens".
  std::string summary() const;
};

struct AnswerResult {
  std::string text;                          // the answer's content (what the history keeps)
  std::string reasoning;                     // its reasoning, written or not
  std::vector<client::ToolCall> tool_calls;  // the calls it made, whole (partial if stopped)
  bool needs_newline = false;                // output was written and did not end a line
  std::string finish_reason;                 // from Done ("stop", "length", "tool_calls", ...)
  std::optional<client::ClientError> error;  // set unless the stream ended with Done
  // The connection failed after the answer had begun streaming (not: could not connect).
  bool connection_lost = false;
  AnswerStats stats;

  // The answer was stopped by cancellation (Ctrl-C), not failed.
  bool stopped() const noexcept { return error && error->code == Errc::cancelled; }
};

struct AnswerOptions {
  Spinner* spinner = nullptr;  // animate while waiting for the first token; null: none
  // When set, gets one entry per written event: from the client's receive timestamp of the
  // event to the return of the write(2) that put it on the terminal.
  std::vector<std::chrono::nanoseconds>* write_latencies = nullptr;
  Style style;                 // escape sequences for reasoning and tool calls (none: plain text)
  bool show_reasoning = true;  // false: reasoning is kept in the result but not written
  int columns = 0;             // the terminal's width, for breaking lines between words; 0: none
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
