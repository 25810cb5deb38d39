#include "chat/one_shot.hpp"

#include <fmt/format.h>
#include <unistd.h>

#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <csignal>
#include <exception>

#include "chat/answer.hpp"

namespace troupe::chat {
namespace asio = boost::asio;

std::string describe_error(const client::ClientError& error, std::string_view url,
                           bool connection_lost) {
  // The client's message already names the HTTP status ("HTTP 401: ...") when there was one.
  const std::string& what = error.message;
  if (connection_lost)
    return fmt::format("connection lost mid-answer ({}): {}", url, what);
  switch (error.code) {
    case Errc::unavailable:
      if (error.http_status)
        break;
      return fmt::format("cannot reach {}: {}", url, what);
    case Errc::unauthorized:
      return fmt::format("unauthorized: {} (set --api-key or TROUPE_API_KEY)", what);
    case Errc::not_found:
      return fmt::format("not found: {}", what);
    case Errc::timeout:
      return fmt::format("timed out: {}", what);
    case Errc::cancelled:
      return "stopped";
    default:
      break;
  }
  return fmt::format("request failed: {}", what);
}

int ask_once(const ChatOptions& options, const std::string& question, Output& out, bool terminal) {
  asio::io_context io(1);
  client::Client client(io.get_executor(), {.base_url = options.url, .api_key = options.api_key});
  Conversation conversation(options.model, options.system, options.sampling);
  conversation.set_tools(options.tools);
  conversation.add_user(question);
  Spinner spinner(out);
  AnswerOptions answer_options{terminal ? &spinner : nullptr, nullptr, Style{terminal},
                               options.show_reasoning.value_or(terminal),
                               terminal ? terminal_columns(STDOUT_FILENO) : 0};

  asio::signal_set signals(io, SIGINT, SIGTERM);
  asio::cancellation_signal stop;
  bool interrupted = false;
  signals.async_wait([&](const boost::system::error_code& ec, int) {
    if (ec)
      return;
    interrupted = true;
    stop.emit(asio::cancellation_type::terminal);
  });
  AnswerResult result;
  std::exception_ptr failure;
  asio::co_spawn(
      io, stream_answer(client, conversation.request(), out, answer_options),
      asio::bind_cancellation_slot(stop.slot(), [&](std::exception_ptr e, AnswerResult r) {
        failure = std::move(e);
        result = std::move(r);
        signals.cancel();
      }));
  io.run();
  if (failure)
    std::rethrow_exception(failure);
  if (result.needs_newline)
    (void)out.write("\n");
  if (interrupted)
    return 130;
  if (result.error) {
    fmt::print(stderr, "troupe chat: {}\n",
               describe_error(*result.error, options.url, result.connection_lost));
    return 1;
  }
  return 0;
}

}  // namespace troupe::chat
