#pragma once
// Spinner: the animation shown while waiting for the first token of an answer. It runs only
// while its spin() coroutine is awaited, typically raced against the first event of the
// stream with `||`; the moment that event arrives spin() is cancelled and the timer is gone.
// Nothing ticks at any other time.
//
// Thread-safety: not synchronised; use from the chat's event-loop thread only. Lifetime: must
// outlive spin() (awaiting it in the same coroutine does that).

#include <boost/asio/awaitable.hpp>
#include <chrono>
#include <cstddef>
#include <string_view>

#include "chat/terminal.hpp"

namespace troupe::chat {

class Spinner {
 public:
  explicit Spinner(Output& out, std::chrono::milliseconds interval = std::chrono::milliseconds(80))
      : out_(out), interval_(interval) {}

  // Draws a frame, then the next one every interval, until cancelled (per-operation
  // cancellation, any type); then completes normally with the last frame still on screen.
  // A write error ends it early.
  boost::asio::awaitable<void> spin();

  // The bytes that erase the frame on screen ("\b \b"), or "" when none is. Call once, after
  // spin() returned, and write them (ahead of the first token, in the same write).
  std::string_view take_erase() noexcept;

  std::size_t frames_drawn() const noexcept { return frames_drawn_; }

 private:
  Output& out_;
  std::chrono::milliseconds interval_;
  bool shown_ = false;
  std::size_t frames_drawn_ = 0;
};

}  // namespace troupe::chat
