#pragma once
// InteractiveChat: the chat prompt. One Asio event loop on the calling thread awaits, together,
// stdin (readline driven through LineEditor), the answer being streamed (with its spinner
// while no token has come) and signals (SIGINT, SIGWINCH, SIGTERM, SIGHUP through
// asio::signal_set). Nothing polls or ticks: idle at the prompt, the process sleeps in
// epoll_wait.
//
//   Ctrl-C while an answer streams  closes the connection (the server stops), back to the prompt
//   Ctrl-C at the prompt            abandons the line (and an open """ block)
//   Ctrl-D on an empty line, /exit  leaves; SIGTERM or SIGHUP too
//
// Thread-safety: not thread-safe; construct and run on one thread. Preconditions: stdin is a
// terminal; only one InteractiveChat per process (it owns readline).

#include <boost/asio/awaitable.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/signal_set.hpp>
#include <memory>
#include <string>

#include "chat/answer.hpp"
#include "chat/history_file.hpp"
#include "chat/line_editor.hpp"
#include "chat/multiline.hpp"
#include "chat/options.hpp"
#include "chat/session_state.hpp"
#include "chat/terminal.hpp"
#include "client/client.hpp"

namespace troupe::chat {

class InteractiveChat {
 public:
  // Loads the history file (a read error is reported and the chat goes on without it).
  explicit InteractiveChat(const ChatOptions& options);
  ~InteractiveChat();
  InteractiveChat(const InteractiveChat&) = delete;
  InteractiveChat& operator=(const InteractiveChat&) = delete;

  // Checks the server (its model list) and runs until the user leaves. Returns the exit code:
  // 0, or 1 when the server cannot be reached or refuses the key.
  int run();

 private:
  client::ClientResult<std::vector<client::ModelInfo>> fetch_models();
  boost::asio::awaitable<void> input_loop();
  boost::asio::awaitable<void> signal_loop();
  boost::asio::awaitable<void> handle_line(const std::string& line);
  // Asks for the next answer to the conversation as it stands (ending with a user message or
  // the last tool result) and keeps it.
  boost::asio::awaitable<void> answer();
  void on_signal(int signal);
  void print(std::string_view text, bool error = false);
  void print_answer_end(const AnswerResult& result);
  void print_waiting_calls();
  std::string prompt() const;
  void quit();

  ChatOptions options_;
  boost::asio::io_context io_{1};
  client::Client client_;
  FdOutput out_{1};
  Style style_;
  SessionState state_;
  HistoryFile history_;
  MultilineInput multiline_;
  std::unique_ptr<LineEditor> editor_;
  boost::asio::posix::stream_descriptor stdin_;
  boost::asio::signal_set signals_;
  boost::asio::cancellation_signal stop_answer_;
  bool answering_ = false;
  bool quitting_ = false;
};

}  // namespace troupe::chat
