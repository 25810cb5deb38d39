// chat_latency: measures what `troupe chat` promises about each token (docs/BENCHMARKS.md):
//   - latency from the moment the bytes completing an SSE event are read off the socket to the
//     return of the write(2) that puts its text on the terminal (p50, p99, max);
//   - with the built-in server, also from the server's send of the event's last byte;
//   - tokens per terminal write.
// It runs the chat's own answer path (chat::stream_answer, the code behind `troupe chat -p`)
// with its output on a pseudo-terminal, against `--url` (e.g. `troupe serve --engine sim`) or,
// by default, a built-in server that streams one SSE event per token at `--rate` tokens/s.

#include <fmt/format.h>
#include <pty.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <chrono>
#include <thread>
#include <vector>

#include "chat/answer.hpp"

namespace {
namespace asio = boost::asio;
using asio::ip::tcp;
using Clock = std::chrono::steady_clock;
using ns = std::chrono::nanoseconds;

struct Args {
  std::string url;  // empty: built-in server
  double rate = 200;
  int tokens = 400;
  int runs = 5;
  bool close_delimited = false;  // built-in server: body ends at close instead of chunked
};

// Counts write(2) calls of answer text on the pty.
class CountingOutput final : public troupe::chat::Output {
 public:
  explicit CountingOutput(int fd) : fd_(fd) {}
  troupe::Result<void> write(std::string_view bytes) override {
    ++writes_;
    auto r = fd_.write(bytes);
    done_at_.push_back(Clock::now());
    return r;
  }
  std::size_t writes_ = 0;
  std::vector<Clock::time_point> done_at_;

 private:
  troupe::chat::FdOutput fd_;
};

std::string event(int i) {
  return fmt::format(
      R"(data: {{"object":"chat.completion.chunk","choices":[{{"index":0,"delta":{{"content":"tok{} "}},"finish_reason":null}}]}})"
      "\n\n",
      i);
}

// Built-in server: one connection per run, one event per token at `rate`, written with a
// blocking write whose return time is recorded (the event's last byte is then on its way).
asio::awaitable<void> serve_one(tcp::acceptor& acceptor, const Args& args,
                                std::vector<Clock::time_point>& sent) {
  auto socket = co_await acceptor.async_accept(asio::use_awaitable);
  socket.set_option(tcp::no_delay(true));
  std::string request;
  co_await asio::async_read_until(socket, asio::dynamic_buffer(request), "\r\n\r\n",
                                  asio::use_awaitable);
  const bool chunked = !args.close_delimited;
  auto frame = [chunked](const std::string& data) {
    return chunked ? fmt::format("{:x}\r\n{}\r\n", data.size(), data) : data;
  };
  std::string head =
      fmt::format("HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n{}\r\n",
                  chunked ? "Transfer-Encoding: chunked\r\n" : "Connection: close\r\n");
  asio::write(socket, asio::buffer(head));
  asio::steady_timer timer(socket.get_executor());
  auto next = Clock::now();
  const auto interval =
      std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(1.0 / args.rate));
  for (int i = 0; i < args.tokens; ++i) {
    next += interval;
    timer.expires_at(next);
    co_await timer.async_wait(asio::use_awaitable);
    asio::write(socket, asio::buffer(frame(event(i))));
    sent.push_back(Clock::now());
  }
  std::string tail = R"(data: {"choices":[{"index":0,"delta":{},"finish_reason":"length"}]})"
                     "\n\ndata: [DONE]\n\n";
  asio::write(socket, asio::buffer(frame(tail) + (chunked ? "0\r\n\r\n" : "")));
}

ns percentile(std::vector<ns> v, double p) {
  if (v.empty())
    return ns(0);
  std::sort(v.begin(), v.end());
  const auto i = static_cast<std::size_t>(p * static_cast<double>(v.size() - 1) + 0.5);
  return v[std::min(i, v.size() - 1)];
}

std::string us(ns d) {
  return fmt::format("{:.1f} us", static_cast<double>(d.count()) / 1e3);
}

void report(const char* what, const std::vector<ns>& v) {
  fmt::print("{:<44} n={:<6} p50 {:>10}  p99 {:>10}  max {:>10}\n", what, v.size(),
             us(percentile(v, 0.5)), us(percentile(v, 0.99)),
             us(v.empty() ? ns(0) : *std::max_element(v.begin(), v.end())));
}

struct Totals {
  std::vector<ns> from_read, from_send;
  std::size_t writes = 0, text_events = 0, tokens = 0;
};

void run_once(const Args& args, int pty, Totals& totals) {
  asio::io_context client_io(1), server_io(1);
  tcp::acceptor acceptor(server_io, {asio::ip::make_address("127.0.0.1"), 0});
  std::vector<Clock::time_point> sent;
  std::string url = args.url;
  if (url.empty()) {
    url = fmt::format("http://127.0.0.1:{}", acceptor.local_endpoint().port());
    asio::co_spawn(server_io, serve_one(acceptor, args, sent), asio::detached);
  }
  std::thread server([&] { server_io.run(); });
  troupe::client::Client client(client_io.get_executor(), {.base_url = url});
  troupe::client::ChatRequest request;
  request.messages.push_back({"user", "Count for me."});
  request.sampling.max_tokens = args.tokens;
  request.extra["ignore_eos"] = true;
  CountingOutput out(pty);
  std::vector<ns> latencies;
  troupe::chat::AnswerResult result;
  asio::co_spawn(client_io,
                 troupe::chat::stream_answer(client, request, out, {nullptr, &latencies}),
                 [&](std::exception_ptr e, troupe::chat::AnswerResult r) {
                   if (e)
                     std::rethrow_exception(e);
                   result = std::move(r);
                 });
  client_io.run();
  server.join();
  if (result.error)
    throw std::runtime_error("request failed: " + result.error->message);
  totals.from_read.insert(totals.from_read.end(), latencies.begin(), latencies.end());
  if (sent.size() == out.done_at_.size()) {
    for (std::size_t i = 0; i < sent.size(); ++i)
      totals.from_send.push_back(out.done_at_[i] - sent[i]);
  }
  totals.writes += out.writes_;
  totals.text_events += static_cast<std::size_t>(result.stats.text_events);
  totals.tokens += static_cast<std::size_t>(result.stats.tokens);
}

}  // namespace

int main(int argc, char** argv) {
  Args args;
  CLI::App app{"token-to-terminal latency of troupe chat"};
  app.add_option("--url", args.url, "server to measure against (default: built-in server)");
  app.add_option("--rate", args.rate, "built-in server: tokens per second")->capture_default_str();
  app.add_option("--tokens", args.tokens, "tokens per answer (max_tokens)")->capture_default_str();
  app.add_option("--runs", args.runs, "answers to measure")->capture_default_str();
  app.add_flag("--close-delimited", args.close_delimited,
               "built-in server: end the body by closing instead of chunked encoding");
  CLI11_PARSE(app, argc, argv);

  int master = -1, slave = -1;
  if (::openpty(&master, &slave, nullptr, nullptr, nullptr) != 0)
    return 1;
  std::thread drain([master] {
    char buf[4096];
    while (::read(master, buf, sizeof buf) > 0) {
    }
  });
  Totals totals;
  for (int i = 0; i < args.runs; ++i)
    run_once(args, slave, totals);
  fmt::print("server: {}  answers: {}  tokens: {}\n",
             args.url.empty() ? fmt::format("built-in, {} tok/s, {}", args.rate,
                                            args.close_delimited ? "close-delimited" : "chunked")
                              : args.url,
             args.runs, totals.tokens);
  report("event read off the socket -> write(2) done", totals.from_read);
  if (!totals.from_send.empty())
    report("server wrote the event -> write(2) done", totals.from_send);
  fmt::print("terminal writes of answer text: {}  text events: {}  tokens per write: {:.3f}\n",
             totals.writes, totals.text_events,
             totals.writes ? static_cast<double>(totals.tokens) / totals.writes : 0.0);
  ::close(slave);
  ::close(master);
  drain.join();
  return 0;
}
