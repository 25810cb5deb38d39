#include "chat/spinner.hpp"

#include <array>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <string>

namespace troupe::chat {
namespace asio = boost::asio;
namespace {

constexpr std::array<std::string_view, 10> kFrames = {"⠋", "⠙", "⠹", "⠸", "⠼",
                                                      "⠴", "⠦", "⠧", "⠇", "⠏"};

}  // namespace

asio::awaitable<void> Spinner::spin() {
  asio::steady_timer timer(co_await asio::this_coro::executor);
  for (std::size_t i = 0;; ++i) {
    std::string frame(shown_ ? "\b" : "");
    frame += kFrames[i % kFrames.size()];
    if (!out_.write(frame))
      co_return;
    shown_ = true;
    ++frames_drawn_;
    timer.expires_after(interval_);
    auto [ec] = co_await timer.async_wait(asio::as_tuple(asio::use_awaitable));
    if (ec)
      co_return;
  }
}

std::string_view Spinner::take_erase() noexcept {
  if (!shown_)
    return {};
  shown_ = false;
  return "\b \b";
}

}  // namespace troupe::chat
