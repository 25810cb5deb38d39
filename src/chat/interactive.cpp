#include "chat/interactive.hpp"

#include <fcntl.h>
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <unistd.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <csignal>

#include "chat/answer.hpp"
#include "chat/one_shot.hpp"
#include "chat/spinner.hpp"
#include "client/tools.hpp"

namespace troupe::chat {
namespace asio = boost::asio;
namespace {

constexpr int kStdin = 0;

// Asio puts a descriptor in non-blocking mode before its first wait. On a terminal, stdin and
// stdout usually share one open file description, so that would make our writes to stdout
// non-blocking too, and readline expects blocking reads. Declaring the descriptor
// non-blocking ourselves (Asio then leaves it alone) and clearing the flag again keeps the
// terminal blocking; waits (epoll) do not care.
void keep_blocking(asio::posix::stream_descriptor& d) {
  d.non_blocking(true);
  const int flags = ::fcntl(d.native_handle(), F_GETFL);
  if (flags >= 0)
    ::fcntl(d.native_handle(), F_SETFL, flags & ~O_NONBLOCK);
}

}  // namespace

InteractiveChat::InteractiveChat(const ChatOptions& options)
    : options_(options),
      client_(io_.get_executor(), {.base_url = options.url, .api_key = options.api_key}),
      style_{is_terminal(1)},
      state_{Conversation(options.model, options.system, options.sampling), options.stats,
             options.show_reasoning.value_or(is_terminal(1))},
      history_(options.history_path, options.history_size),
      stdin_(io_, ::dup(kStdin)),
      signals_(io_, SIGINT, SIGWINCH, SIGTERM) {
  signals_.add(SIGHUP);
  keep_blocking(stdin_);
  auto loaded = history_.load();
  if (!loaded)
    print(fmt::format("history: {}\n", loaded.error().message), true);
  editor_ = std::make_unique<LineEditor>(kStdin, 1, history_.entries(), options.history_size);
  state_.conversation.set_tools(options.tools);
}

InteractiveChat::~InteractiveChat() {
  editor_.reset();
}

// Asks the server for its models (bounded, so a server that accepts and never answers does
// not hang the start).
client::ClientResult<std::vector<client::ModelInfo>> InteractiveChat::fetch_models() {
  asio::io_context io(1);
  client::Client client(
      io.get_executor(),
      {.base_url = options_.url, .api_key = options_.api_key, .timeout = std::chrono::seconds(10)});
  std::optional<client::ClientResult<std::vector<client::ModelInfo>>> got;
  asio::co_spawn(
      io, [&]() -> asio::awaitable<void> { got = co_await client.models(); }, asio::detached);
  io.run();
  if (!got)
    return client::ClientError{Errc::internal, 0, "no answer from the model list", {}};
  return std::move(*got);
}

int InteractiveChat::run() {
  // Check the server first, so a wrong URL or key is said now rather than after typing.
  auto models = fetch_models();
  if (!models) {
    print(describe_error(models.error(), options_.url) + "\n", true);
    return 1;
  }
  std::vector<std::string> served;
  for (const auto& m : models.value())
    served.push_back(m.id);
  const ModelChoice choice = choose_model(served, options_.model);
  print(fmt::format("{}troupe chat · {} · {} · /help for commands, Ctrl-D to leave{}\n",
                    style_.dim(), options_.url,
                    choice.model.empty() ? "the server's model" : "model " + choice.model,
                    style_.reset()));
  if (!choice.warning.empty())
    print(choice.warning + "\n", true);
  if (!options_.tools.empty()) {
    print(fmt::format("{}tools sent with each request: {}{}\n", style_.dim(),
                      fmt::join(client::tool_names(options_.tools), ", "), style_.reset()));
  }
  asio::co_spawn(io_, signal_loop(), asio::detached);
  asio::co_spawn(io_, input_loop(), [this](const std::exception_ptr& e) {
    signals_.cancel();
    if (e)
      std::rethrow_exception(e);
  });
  io_.run();
  return 0;
}

asio::awaitable<void> InteractiveChat::input_loop() {
  editor_->show_prompt(prompt());
  while (!quitting_) {
    auto [ec] = co_await stdin_.async_wait(asio::posix::stream_descriptor::wait_read,
                                           asio::as_tuple(asio::use_awaitable));
    if (ec || quitting_)
      break;
    auto line = editor_->read_available();
    if (!line)
      continue;
    if (line->eof) {
      print("\n");
      break;
    }
    co_await handle_line(line->text);
    if (!quitting_)
      editor_->show_prompt(prompt());
  }
  editor_->hide_prompt();
}

asio::awaitable<void> InteractiveChat::handle_line(const std::string& line) {
  auto text = multiline_.feed(line);
  if (!text)
    co_return;
  if (auto r = history_.add(*text); r && r.value())
    editor_->add_history(*text);
  auto input = parse_input(*text);
  if (!input) {
    if (text->find_first_not_of(" \t\r\n") != std::string::npos) {
      print(input.error().message + "\n", true);
    }
    co_return;
  }
  Reaction reaction = react(state_, input.value());
  if (!reaction.say.empty() && reaction.dim) {
    print(fmt::format("{}{}{}", style_.dim(), reaction.say, style_.reset()));
  } else if (!reaction.say.empty()) {
    print(reaction.say, reaction.is_error);
  }
  if (reaction.exit)
    quit();
  if (reaction.send) {
    state_.conversation.add_user(*reaction.send);
    co_await answer();
  } else if (reaction.resume) {
    co_await answer();
  }
}

asio::awaitable<void> InteractiveChat::answer() {
  Spinner spinner(out_);
  AnswerOptions answer_options{style_.enabled ? &spinner : nullptr, nullptr, style_,
                               state_.show_reasoning, style_.enabled ? terminal_columns(1) : 0};
  AnswerResult result;
  {
    EchoOff quiet(kStdin);
    answering_ = true;
    result = co_await asio::co_spawn(
        io_, stream_answer(client_, state_.conversation.request(), out_, answer_options),
        asio::bind_cancellation_slot(stop_answer_.slot(), asio::use_awaitable));
    answering_ = false;
  }
  print_answer_end(result);
  state_.last_reasoning = result.reasoning;
  if (result.error && (!result.stopped() || result.text.empty())) {
    state_.conversation.drop_unanswered();
  } else if (result.stopped()) {
    // A stopped answer stays in the conversation as far as it got: that is what was shown.
    // Its tool calls may be cut short, so they are not kept.
    state_.conversation.add_assistant(result.text);
  } else {
    state_.conversation.add_assistant(result.text, result.tool_calls);
    print_waiting_calls();
  }
}

void InteractiveChat::print_answer_end(const AnswerResult& result) {
  if (result.needs_newline)
    print("\n");
  if (result.stopped()) {
    print(fmt::format("{}[stopped]{}\n", style_.dim(), style_.reset()));
  } else if (result.error) {
    print(describe_error(*result.error, options_.url, result.connection_lost) + "\n", true);
    if (result.error->code == Errc::prompt_too_long) {
      print(
          fmt::format("{}The conversation no longer fits the server's context: /drop forgets "
                      "the oldest exchange (then ↑ and Enter send your message again), "
                      "/clear starts over.{}\n",
                      style_.dim(), style_.reset()));
    }
  } else if (state_.show_stats) {
    print(fmt::format("{}[{}]{}\n", style_.dim(), result.stats.summary(), style_.reset()));
  }
}

void InteractiveChat::print_waiting_calls() {
  const auto pending = state_.conversation.pending_tool_calls();
  if (pending.empty())
    return;
  print(fmt::format("{}({} tool call{} waiting: answer with /tool <result>, first {}){}\n",
                    style_.dim(), pending.size(), pending.size() == 1 ? "" : "s",
                    pending.front().name, style_.reset()));
}

asio::awaitable<void> InteractiveChat::signal_loop() {
  for (;;) {
    auto [ec, signal] = co_await signals_.async_wait(asio::as_tuple(asio::use_awaitable));
    if (ec)
      co_return;
    on_signal(signal);
  }
}

void InteractiveChat::on_signal(int signal) {
  if (signal == SIGWINCH) {
    editor_->resize();
  } else if (signal != SIGINT) {
    quit();
  } else if (answering_) {
    stop_answer_.emit(asio::cancellation_type::terminal);
  } else if (editor_->prompt_shown()) {
    multiline_.reset();
    editor_->cancel_line(prompt());
  }
}

void InteractiveChat::quit() {
  quitting_ = true;
  if (answering_)
    stop_answer_.emit(asio::cancellation_type::terminal);
  stdin_.cancel();
}

void InteractiveChat::print(std::string_view text, bool error) {
  if (!error) {
    (void)out_.write(text);
    return;
  }
  (void)out_.write(fmt::format("{}{}{}", style_.red(), text, style_.reset()));
}

std::string InteractiveChat::prompt() const {
  // \001 and \002 tell readline the escape sequences take no columns.
  std::string text = multiline_.in_block() ? "... " : ">>> ";
  if (!style_.enabled)
    return text;
  return fmt::format("\001{}{}\002{}\001{}\002", style_.bold(), style_.green(), text,
                     style_.reset());
}

}  // namespace troupe::chat
