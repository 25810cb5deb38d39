#include "scripted_server.hpp"

#include <fmt/format.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/string.hpp>

namespace troupe::chat::test {
namespace asio = boost::asio;
using asio::ip::tcp;
namespace {

constexpr auto kTuple = asio::as_tuple(asio::use_awaitable);

std::size_t content_length(const std::string& head) {
  std::string lower = head;
  for (auto& c : lower)
    c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  const auto at = lower.find("content-length:");
  return at == std::string::npos ? 0 : std::stoul(head.substr(at + 15));
}

std::string quoted(std::string_view s) {
  return boost::json::serialize(boost::json::string(s));
}

asio::awaitable<bool> send(tcp::socket& socket, const std::string& bytes) {
  auto [ec, n] = co_await asio::async_write(socket, asio::buffer(bytes), kTuple);
  co_return !ec;
}

}  // namespace

ScriptedServer::ScriptedServer(asio::io_context& io)
    : acceptor_(io, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0)) {
  port_ = acceptor_.local_endpoint().port();
  asio::co_spawn(io, accept_loop(), asio::detached);
}

void ScriptedServer::stop() {
  acceptor_.close();
}

asio::awaitable<void> ScriptedServer::accept_loop() {
  for (;;) {
    auto [ec, socket] = co_await acceptor_.async_accept(kTuple);
    if (ec)
      co_return;
    asio::co_spawn(acceptor_.get_executor(), serve(std::move(socket)), asio::detached);
  }
}

asio::awaitable<void> ScriptedServer::serve(tcp::socket socket) {
  socket.set_option(tcp::no_delay(true));
  std::string buffer;
  while (!script_.empty()) {
    auto [ec, head_size] =
        co_await asio::async_read_until(socket, asio::dynamic_buffer(buffer), "\r\n\r\n", kTuple);
    if (ec)
      co_return;
    const std::size_t body_size = content_length(buffer.substr(0, head_size));
    if (buffer.size() < head_size + body_size) {
      auto [ec2, n] = co_await asio::async_read(
          socket, asio::dynamic_buffer(buffer),
          asio::transfer_exactly(head_size + body_size - buffer.size()), kTuple);
      if (ec2)
        co_return;
    }
    bodies_.push_back(buffer.substr(head_size, body_size));
    buffer.erase(0, head_size + body_size);
    ScriptedResponse response = std::move(script_.front());
    script_.pop_front();
    co_await respond(socket, std::move(response));
    if (!socket.is_open())
      co_return;
  }
}

asio::awaitable<void> ScriptedServer::respond(tcp::socket& socket, ScriptedResponse r) {
  if (r.status != 200) {
    co_await send(socket, fmt::format("HTTP/1.1 {} Error\r\nContent-Type: application/json\r\n"
                                      "Content-Length: {}\r\n\r\n{}",
                                      r.status, r.error_body.size(), r.error_body));
    co_return;
  }
  const std::string head = r.chunked ? "Transfer-Encoding: chunked\r\n" : "Connection: close\r\n";
  if (!co_await send(socket,
                     "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
                     "Cache-Control: no-cache\r\n" +
                         head + "\r\n")) {
    co_return;
  }
  for (const auto& piece : r.pieces) {
    const std::string bytes =
        r.chunked ? fmt::format("{:x}\r\n{}\r\n", piece.size(), piece) : piece;
    if (!co_await send(socket, bytes))
      co_return;
  }
  if (!r.hold_open) {
    if (r.chunked)
      co_await send(socket, "0\r\n\r\n");
    socket.close();
    co_return;
  }
  char byte;
  auto [ec, n] = co_await socket.async_read_some(asio::buffer(&byte, 1), kTuple);
  if (ec)
    ++closed_by_client_;
  socket.close();
}

std::string sse_role() {
  return R"(data: {"object":"chat.completion.chunk","choices":[{"index":0,"delta":{"role":"assistant"},"finish_reason":null}]})"
         "\n\n";
}

std::string sse_text(std::string_view text) {
  return fmt::format(
      R"(data: {{"object":"chat.completion.chunk","choices":[{{"index":0,"delta":{{"content":{}}},"finish_reason":null}}]}})"
      "\n\n",
      quoted(text));
}

// A chunk whose delta is the JSON text `delta`.
std::string sse_delta(std::string_view delta) {
  return fmt::format(
      R"(data: {{"object":"chat.completion.chunk","choices":[{{"index":0,"delta":{},"finish_reason":null}}]}})"
      "\n\n",
      delta);
}

std::string sse_reasoning(std::string_view text) {
  return sse_delta(fmt::format(R"({{"reasoning_content":{}}})", quoted(text)));
}

std::string sse_tool_call(int index, std::string_view id, std::string_view name,
                          std::string_view arguments) {
  return sse_delta(fmt::format(
      R"({{"tool_calls":[{{"index":{},"id":{},"type":"function","function":{{"name":{},"arguments":{}}}}}]}})",
      index, quoted(id), quoted(name), quoted(arguments)));
}

std::string sse_tool_arguments(int index, std::string_view arguments) {
  return sse_delta(fmt::format(R"({{"tool_calls":[{{"index":{},"function":{{"arguments":{}}}}}]}})",
                               index, quoted(arguments)));
}

std::string sse_finish(std::string_view reason) {
  return fmt::format(
      R"(data: {{"object":"chat.completion.chunk","choices":[{{"index":0,"delta":{{}},"finish_reason":{}}}]}})"
      "\n\n",
      quoted(reason));
}

std::string sse_usage(int prompt, int completion) {
  return fmt::format(
      R"(data: {{"object":"chat.completion.chunk","choices":[],"usage":{{"prompt_tokens":{},"completion_tokens":{},"total_tokens":{}}}}})"
      "\n\n",
      prompt, completion, prompt + completion);
}

std::string sse_done() {
  return "data: [DONE]\n\n";
}

ScriptedResponse streamed_answer(const std::vector<std::string>& tokens) {
  ScriptedResponse r;
  r.pieces.push_back(sse_role());
  for (const auto& t : tokens)
    r.pieces.push_back(sse_text(t));
  r.pieces.push_back(sse_finish("stop"));
  r.pieces.push_back(sse_usage(5, static_cast<int>(tokens.size())));
  r.pieces.push_back(sse_done());
  return r;
}

}  // namespace troupe::chat::test
