#pragma once
// Internal to src/server: the state one HTTP connection's coroutine works with, and the
// helpers that write responses. Beast lives here and in the .cpp files of this folder only.
//
// Thread-safety: a Connection is touched only from its session's strand (the executor of its
// stream): the session coroutine and the handlers it awaits, and handlers the Server posts
// there at shutdown.

#include <atomic>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>
#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "api/error.hpp"
#include "engine/backend.hpp"
#include "server/admission.hpp"
#include "server/job.hpp"
#include "server/metrics.hpp"
#include "server/response_store.hpp"
#include "server/router.hpp"
#include "server/server.hpp"

namespace troupe::server::detail {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;

using Request = http::request<http::string_body>;
using Response = http::response<http::string_body>;
using Clock = std::chrono::steady_clock;

// What all sessions share; owned by the Server, outlives every session.
struct ServerContext {
  engine::Backend& backend;
  const ServerConfig& config;
  Metrics& metrics;
  ConnectionTable& connections;
  std::uint64_t id_nonce = 0;             // random per server: response ids differ across runs
  std::atomic<std::uint64_t> next_id{0};  // response ids within this server
  ResponseStore responses{};              // the Responses API's stored responses

  std::string make_id(std::string_view prefix);
};

// What the access log line says of the current request (session.cpp writes one line at info
// when the request ends; generation.cpp adds the model, token counts and time to first token).
struct AccessRecord {
  int status = 0;     // the response's; 0 while none went out
  std::string model;  // generation requests: the model asked for
  std::int64_t prompt_tokens = -1;
  std::int64_t completion_tokens = -1;
  double ttft_s = -1;  // seconds from the request to the first token
  std::string error;   // an error answer's message
};

// One connection. Lives in the session coroutine's frame.
struct Connection {
  Connection(beast::tcp_stream s, ServerContext& c);

  beast::tcp_stream stream;
  beast::flat_buffer buffer;
  ServerContext& ctx;
  // Expires at the shutdown deadline (never, until shutdown starts). Generations wait on it
  // beside their stream so that the deadline interrupts them.
  net::steady_timer deadline;
  bool draining = false;     // shutdown started: close after the current request
  bool busy = false;         // a request is being read or answered
  bool watch_socket = true;  // false once pipelined bytes sit unread: EOF cannot be seen
  Clock::time_point request_start;
  Endpoint endpoint = Endpoint::unknown;
  bool keep_alive = true;         // the current request allows reuse of the connection
  bool response_started = false;  // a status line went out for the current request
  std::string peer;               // the client's address, "ip:port"
  AccessRecord access;            // of the current request
  ConnectionTable::SlotPtr slot;  // this connection in the admission table (null: refusals)
};

// Moves the connection to state `s` in the admission table. False: the server reclaimed it
// (the session must close). Always true for a connection without a slot.
bool enter_state(Connection& c, ConnState s);

// `base` (a wait for the client's bytes), shortened while the server is under pressure.
std::chrono::milliseconds client_timeout(const Connection& c, std::chrono::milliseconds base);

// After an answer that ends the connection early: shuts down the sending side, reads and
// drops what the client still sends (up to linger_timeout and 64 MiB), then closes, so
// that the close does not reset the connection before the client reads the answer.
net::awaitable<void> linger_close(Connection& c);

// The Server's handle on a session, to drain it at shutdown. Touched only on the session's
// strand; `conn` is null once the session ended.
struct SessionControl {
  net::any_io_executor strand;
  Connection* conn = nullptr;
  std::optional<Clock::time_point> drain_at;  // set when a drain reached the session
  bool reclaimed = false;                     // the server closed it to admit another

  // Posts a drain to the session's strand; it applies at once, or when the session starts.
  static void post_drain(const std::shared_ptr<SessionControl>& control,
                         Clock::time_point deadline);
  // Posts a reclaim: the session (its slot already `closing`) stops what it waits for and
  // closes, at once or when it starts.
  static void post_reclaim(const std::shared_ptr<SessionControl>& control);
};

// Starts draining: close after the current request (at once when idle), and let generations
// run until `deadline`. Call on the session's strand.
void begin_drain(Connection& c, Clock::time_point deadline);

// The connection's coroutine: serves requests until the client leaves, an error, a drain or
// a reclaim. `slot` is its entry in ctx.connections; the caller releases it afterwards.
net::awaitable<void> run_session(std::shared_ptr<SessionControl> control, beast::tcp_stream stream,
                                 ServerContext& ctx, ConnectionTable::SlotPtr slot);

// A complete response with a body; `close` asks for Connection: close.
Response make_response(const Connection& c, http::status status, std::string body,
                       std::string_view content_type = "application/json");
Response error_response(const Connection& c, const api::HttpError& error);

// Writes `res` (setting keep-alive from the connection), counts it in the metrics. Returns
// false when the write failed or the connection must close.
net::awaitable<bool> write_response(Connection& c, Response res);
// Writes `e` as the endpoint's error response (error_response).
net::awaitable<bool> answer_error(Connection& c, const Error& e);

// The generation endpoints (generation.cpp). Return whether the connection may be reused.
net::awaitable<bool> handle_generation(Connection& c, Request& req);
// A parsed generation job, answered in its dialect's shape (an error's when it is one).
net::awaitable<bool> answer_generation(Connection& c, Result<GenerationJob> job);
// GET / DELETE /v1/responses/{id} (generation.cpp).
net::awaitable<bool> handle_stored_response(Connection& c, Request& req);
// POST /v1/messages/count_tokens and /v1/responses/input_tokens: the tokens of a Messages or
// Responses request's rendered prompt (a Responses one with its previous_response_id history).
net::awaitable<bool> handle_count_tokens(Connection& c, Request& req);
// POST /apply-template: a chat request's messages rendered with the chat template (generation.cpp).
net::awaitable<bool> handle_apply_template(Connection& c, Request& req);

// POST /v1/embeddings (and llama-server's /embedding) and POST /v1/rerank (embeddings.cpp).
net::awaitable<bool> handle_embeddings(Connection& c, Request& req);
net::awaitable<bool> handle_rerank(Connection& c, Request& req);

// Ollama's API (ollama.cpp): /api/chat, /api/generate, /api/embed, /api/embeddings, /api/tags,
// /api/ps, /api/show, /api/version.
net::awaitable<bool> handle_ollama(Connection& c, Request& req);

// The vectors of embedding tasks, in order (embeddings.cpp): up to 64 in flight at a time.
struct EmbeddedVectors {
  std::vector<std::vector<float>> vectors;
  std::vector<std::int32_t> rows;  // of each input's vectors: engine::Finished::embedding_rows
  std::int64_t prompt_tokens = 0;
};
net::awaitable<Result<EmbeddedVectors>> embed_tasks(Connection& c, std::vector<engine::Task> tasks);

// GET / HEAD of the chat page's files (webui.cpp): 404 for a file that is not embedded.
net::awaitable<bool> handle_webui(Connection& c, Request& req);

// Adds the CORS headers when an origin is configured.
void add_cors(const Connection& c, http::fields& fields);

}  // namespace troupe::server::detail
