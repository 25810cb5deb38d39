#pragma once
// Client: an asynchronous HTTP/1.1 client for OpenAI-compatible servers (troupe serve,
// llama.cpp's server, vLLM, ...), built on Beast and C++20 coroutines on Asio.
//
//   troupe::client::Client c(io.get_executor(), {.base_url = "http://127.0.0.1:8080"});
//   auto s = co_await c.stream_chat(request);          // ClientResult<Stream>
//   if (!s) { print(s.error().message); co_return; }  // refused, 401, 404 model, ...
//   for (;;) {
//     auto ev = co_await s->next();                    // Delta | Done | ClientError
//     if (auto* d = std::get_if<Delta>(&ev)) { write(d->content); continue; }
//     break;                                           // Done or ClientError: the end
//   }
//
// Scope: plain http only (https URLs are refused with a clear error; put a TLS proxy in front).
// Each event is delivered the moment the bytes completing it arrive: no polling, no batching.
// Connections are kept alive and reused after a stream or request that finished cleanly.
//
// Thread-safety: a Client and its Streams are not thread-safe. Use them only from the executor
// given to the constructor, which must be single-threaded (one io_context thread, or a strand).
// Lifetime: the Client must outlive every Stream it returned and every operation in flight.

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <chrono>
#include <cstddef>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "client/types.hpp"

namespace troupe::client {

// Where and how to connect.
struct ClientOptions {
  std::string base_url = "http://127.0.0.1:8080";  // a trailing "/v1" is accepted and dropped
  std::string api_key;                             // sent as "Authorization: Bearer <key>"
  std::vector<std::pair<std::string, std::string>> headers;  // sent with every request
  // Deadline of a whole request, from connecting to the last byte. Zero: none.
  std::chrono::milliseconds timeout{0};
  // Idle kept-alive connections kept for reuse (closed beyond that).
  std::size_t max_idle_connections = 64;
};

// The parts of a base URL a connection needs.
struct Endpoint {
  std::string host;
  std::string port;    // "80" when the URL gives none
  std::string prefix;  // path before /v1/..., without trailing '/' ("" or e.g. "/openai")
};

// Parses "http://host[:port][/prefix][/v1]" ("host:port" alone means http://host:port). Errors
// (invalid_request): not a URL, a scheme other than http (https is not supported), no host.
ClientResult<Endpoint> parse_base_url(std::string_view url);

class Client;

namespace detail {
struct StreamState;
}

// One streamed answer. Move-only. Destroying it (or cancel()) closes the connection unless the
// stream already finished cleanly, in which case the connection goes back to the Client's pool.
// Closing the connection is how a client tells the server to stop generating.
class Stream {
 public:
  Stream(Stream&&) noexcept;
  Stream& operator=(Stream&&) noexcept;
  ~Stream();

  // Completes with the next event. Returns at once with events already buffered; otherwise
  // reads the socket. Supports Asio per-operation cancellation (e.g. with awaitable operators
  // `||`): a cancelled read yields ClientError{cancelled} and the stream is finished.
  boost::asio::awaitable<StreamEvent> next();

  // next() with any completion token (a callback `void(std::exception_ptr, StreamEvent)`,
  // use_awaitable, ...). The stream must outlive the operation.
  template <class CompletionToken>
  auto async_next(CompletionToken&& token) {
    return boost::asio::co_spawn(executor(), next(), std::forward<CompletionToken>(token));
  }

  // Closes the connection now: a pending next() completes with ClientError{cancelled}.
  void cancel() noexcept;

  // True after Done or a ClientError was delivered.
  bool finished() const noexcept;

  boost::asio::any_io_executor executor() const noexcept;

 private:
  friend class Client;
  explicit Stream(std::unique_ptr<detail::StreamState> state);
  std::unique_ptr<detail::StreamState> state_;
};

class Client {
 public:
  // `ex` must be single-threaded (see above). Does not connect yet. Precondition: none; a bad
  // base_url makes every request fail with invalid_request.
  Client(boost::asio::any_io_executor ex, ClientOptions options);
  ~Client();
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  // Sends a streaming chat completion and waits for the response headers. Errors: the server
  // is unreachable, answered with a non-2xx status (message from its OpenAI error body), or
  // the deadline passed. The returned Stream yields the answer.
  boost::asio::awaitable<ClientResult<Stream>> stream_chat(const ChatRequest& request);
  // The same conversation as an Anthropic Messages stream (POST /v1/messages, see
  // wire::messages_body): its events arrive as the same Delta / Done (finish_reason: Anthropic's
  // stop_reason; usage: input tokens including cache reads, output tokens).
  boost::asio::awaitable<ClientResult<Stream>> stream_messages(const ChatRequest& request);
  // The same conversation as an OpenAI Responses stream (POST /v1/responses, store false, see
  // wire::responses_body): finish_reason "stop", "length" or "tool_calls"; usage from
  // response.completed.
  boost::asio::awaitable<ClientResult<Stream>> stream_responses(const ChatRequest& request);
  // The same for /v1/completions.
  boost::asio::awaitable<ClientResult<Stream>> stream_completion(const CompletionRequest& request);

  // Non-streaming requests.
  boost::asio::awaitable<ClientResult<Answer>> chat(const ChatRequest& request);
  boost::asio::awaitable<ClientResult<Answer>> complete(const CompletionRequest& request);

  // POST /tokenize {"content": text, "add_special": add_special} -> its "tokens" (llama.cpp
  // server shape; troupe serve implements it). not_found when the server has no such route.
  boost::asio::awaitable<ClientResult<std::vector<std::int32_t>>> tokenize(std::string_view text,
                                                                           bool add_special);
  // GET /v1/models.
  boost::asio::awaitable<ClientResult<std::vector<ModelInfo>>> models();

  // Any request; `target` is appended to the URL prefix ("/health", "/v1/models"). A non-2xx
  // status is not an error here. `body` is sent as application/json when not empty.
  boost::asio::awaitable<ClientResult<HttpResponse>> request(std::string_view method,
                                                             std::string_view target,
                                                             std::string body = {});

  const ClientOptions& options() const noexcept { return options_; }
  boost::asio::any_io_executor executor() const noexcept { return ex_; }

  // Implementation detail, used by Stream: pool of idle connections.
  struct Pool;

 private:
  boost::asio::awaitable<ClientResult<Stream>> open_stream(std::string target, std::string body,
                                                           bool chat, bool anthropic = false,
                                                           bool responses = false);

  boost::asio::any_io_executor ex_;
  ClientOptions options_;
  ClientResult<Endpoint> endpoint_;
  std::unique_ptr<Pool> pool_;
};

}  // namespace troupe::client
