#pragma once
// ScriptedServer: a tiny OpenAI-style SSE server on a loopback port for the chat's tests. It
// answers each request with the next scripted response: an SSE body sent as the given pieces
// (one write each, chunked transfer encoding, so events may be split anywhere), or an error
// status with a JSON body. It runs on the test's single-threaded io_context, like the client,
// so tests are deterministic without sleeps.
//
// Thread-safety: none; use on the io_context's thread only.

#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <cstdint>
#include <deque>
#include <string>
#include <vector>

namespace troupe::chat::test {

struct ScriptedResponse {
  int status = 200;
  std::vector<std::string> pieces;  // SSE body bytes, one write per piece (status 200)
  std::string error_body;           // JSON body (other statuses)
  // After the pieces, keep the stream open (no final chunk) until the client closes it; the
  // server then counts the close in closed_by_client().
  bool hold_open = false;
  // Chunked transfer encoding (what troupe serve and most servers send); false: a body that
  // ends when the connection closes.
  bool chunked = true;
};

class ScriptedServer {
 public:
  explicit ScriptedServer(boost::asio::io_context& io);
  void add(ScriptedResponse response) { script_.push_back(std::move(response)); }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }
  // Request bodies received, in order.
  const std::vector<std::string>& bodies() const noexcept { return bodies_; }
  int closed_by_client() const noexcept { return closed_by_client_; }
  // Stops accepting (call when the test is done, so the io_context runs out of work).
  void stop();

 private:
  boost::asio::awaitable<void> accept_loop();
  boost::asio::awaitable<void> serve(boost::asio::ip::tcp::socket socket);
  boost::asio::awaitable<void> respond(boost::asio::ip::tcp::socket& socket,
                                       ScriptedResponse response);

  boost::asio::ip::tcp::acceptor acceptor_;
  std::uint16_t port_ = 0;
  std::deque<ScriptedResponse> script_;
  std::vector<std::string> bodies_;
  int closed_by_client_ = 0;
};

// SSE events as OpenAI-compatible servers send them.
std::string sse_role();                            // first chunk: role only, no text
std::string sse_text(std::string_view text);       // one delta with content
std::string sse_reasoning(std::string_view text);  // one delta with reasoning_content
// A tool call's first piece (index, id, name, arguments so far), then argument fragments.
std::string sse_tool_call(int index, std::string_view id, std::string_view name,
                          std::string_view arguments);
std::string sse_tool_arguments(int index, std::string_view arguments);
std::string sse_finish(std::string_view reason);    // finish_reason chunk
std::string sse_usage(int prompt, int completion);  // usage chunk (empty choices)
std::string sse_done();                             // data: [DONE]

// An answer streamed as one event per token, then finish, usage and [DONE].
ScriptedResponse streamed_answer(const std::vector<std::string>& tokens);

}  // namespace troupe::chat::test
