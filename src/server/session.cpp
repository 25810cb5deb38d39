// One HTTP connection: read a request under limits and timeouts, check route, method, auth and
// size before reading the body, answer, repeat while keep-alive holds. The non-generation
// endpoints are answered here; generation.cpp has the rest.

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/write.hpp>
#include <boost/json/parse.hpp>
#include <charconv>
#include <filesystem>

#include "api/anthropic.hpp"
#include "api/native.hpp"
#include "api/ollama.hpp"
#include "api/request.hpp"
#include "api/response.hpp"
#include "server/connection.hpp"

namespace troupe::server::detail {
namespace {

constexpr auto as_tuple_awaitable = net::as_tuple(net::use_awaitable);

Method to_method(http::verb v) {
  switch (v) {
    case http::verb::get:
      return Method::get;
    case http::verb::post:
      return Method::post;
    case http::verb::options:
      return Method::options;
    case http::verb::delete_:
      return Method::del;
    case http::verb::head:
      return Method::head;
    default:
      return Method::other;
  }
}

// Answers that do not need the body: 404, 405, 401, 413, CORS preflight. nullopt: go on.
std::optional<Response> check_header(Connection& c,
                                     const http::request_parser<http::string_body>& p) {
  const auto& h = p.get();
  const Method method = to_method(h.method());
  RouteMatch route = resolve(method, h.target());
  if ((route.endpoint == Endpoint::webui && !c.ctx.config.webui) ||
      ((route.endpoint == Endpoint::slots || route.endpoint == Endpoint::slot_action) &&
       !c.ctx.config.slots))
    route = RouteMatch{};  // --no-webui, --no-slots: the path is unknown
  c.endpoint = route.endpoint;
  if (route.endpoint == Endpoint::unknown) {
    return error_response(c, api::route_not_found(h.method_string(), h.target()));
  }
  if (!route.method_allowed) {
    auto res = error_response(c, api::method_not_allowed(h.method_string(), h.target()));
    res.set(http::field::allow, route.endpoint == Endpoint::response_item ? "GET, DELETE"
                                : route.endpoint == Endpoint::webui       ? "GET, HEAD"
                                                                    : method_name(route.allowed));
    return res;
  }
  if (method == Method::options) {
    auto res = make_response(c, http::status::no_content, {}, {});
    res.set(http::field::allow, fmt::format("{}, OPTIONS", method_name(route.allowed)));
    res.set(http::field::access_control_allow_methods, "GET, POST, DELETE, OPTIONS");
    res.set(http::field::access_control_allow_headers,
            "Authorization, Content-Type, x-api-key, anthropic-version, anthropic-beta");
    res.set(http::field::access_control_max_age, "600");
    return res;
  }
  const auto& key = c.ctx.config.api_key;
  if (!key.empty() && needs_auth(route.endpoint) &&
      !authorized(h[http::field::authorization], key) && !authorized_api_key(h["x-api-key"], key)) {
    return error_response(c, api::unauthorized_error());
  }
  if (p.content_length() && *p.content_length() > c.ctx.config.max_body_bytes) {
    c.keep_alive = false;
    return error_response(c, api::payload_too_large(c.ctx.config.max_body_bytes));
  }
  return std::nullopt;
}

net::awaitable<bool> answer_health(Connection& c) {
  const engine::Health h = c.ctx.backend.health();
  if (h.state == engine::HealthState::ready) {
    co_return co_await write_response(c, make_response(c, http::status::ok, R"({"status":"ok"})"));
  }
  const bool loading = h.state == engine::HealthState::loading;
  api::HttpError e;
  e.status = loading ? 503 : 500;
  e.message = h.message.empty() ? (loading ? "Loading model" : "The engine failed") : h.message;
  e.type = loading ? "unavailable_error" : "server_error";
  e.code = loading ? "loading" : "engine_failed";
  e.retry_after_seconds = loading ? c.ctx.config.retry_after_seconds : 0;
  co_return co_await write_response(c, error_response(c, e));
}

api::ModelEntry model_entry(const engine::ModelInfo& m) {
  return {m.id, m.created, m.owned_by, m.n_ctx, m.state, m.state_message, m.aliases};
}

net::awaitable<bool> answer_models(Connection& c) {
  std::vector<api::ModelEntry> entries;
  for (const auto& m : c.ctx.backend.models())
    entries.push_back(model_entry(m));
  co_return co_await write_response(c,
                                    make_response(c, http::status::ok, api::models_json(entries)));
}

net::awaitable<bool> answer_metrics(Connection& c) {
  std::string text = c.ctx.metrics.render(c.ctx.backend.stats());
  text += c.ctx.backend.extra_metrics();
  co_return co_await write_response(
      c, make_response(c, http::status::ok, std::move(text), "text/plain; version=0.0.4"));
}

// llama-server's GET /props (?model=ID; the default model without it).
net::awaitable<bool> answer_props(Connection& c, const Request& req) {
  auto p = co_await c.ctx.backend.props(query_param(req.target(), "model"));
  if (!p) {
    co_return co_await write_response(
        c, error_response(c, api::to_http_error(p.error(), c.ctx.config.retry_after_seconds)));
  }
  const auto& d = p->defaults;
  api::NativeProps out;
  out.model_alias = p->id;
  out.model_path = p->model_path;
  out.n_ctx = p->n_ctx;
  out.total_slots = p->total_slots;
  out.chat_template = p->chat_template;
  out.bos_token = p->bos_token;
  out.eos_token = p->eos_token;
  out.build_info = "troupe " TROUPE_VERSION;
  out.temperature = d.temperature;
  out.top_k = d.top_k;
  out.top_p = d.top_p;
  out.min_p = d.min_p;
  out.repeat_penalty = d.repeat_penalty;
  out.seed = d.seed ? static_cast<std::int64_t>(*d.seed) : -1;
  out.n_predict = d.n_predict.value_or(-1);
  out.embeddings = p->embeddings;
  out.endpoint_slots = c.ctx.config.slots;
  co_return co_await write_response(c, make_response(c, http::status::ok, api::props_json(out)));
}

net::awaitable<bool> answer_tokenize(Connection& c, const Request& req) {
  auto parsed = api::parse_tokenize_request(req.body());
  if (!parsed)
    co_return co_await answer_error(c, parsed.error());
  auto tokens = co_await c.ctx.backend.tokenize(parsed->model, parsed->content, parsed->add_special,
                                                parsed->parse_special);
  if (!tokens)
    co_return co_await answer_error(c, tokens.error());
  std::vector<std::string> pieces;
  if (parsed->with_pieces) {
    // Each token's own text (" is"), not the token detokenized alone (which strips the space).
    auto got = co_await c.ctx.backend.token_pieces(parsed->model, *tokens);
    if (!got)
      co_return co_await answer_error(c, got.error());
    pieces = std::move(got).value();
  }
  std::string body = api::tokenize_json(*tokens, parsed->with_pieces ? &pieces : nullptr);
  co_return co_await write_response(c, make_response(c, http::status::ok, std::move(body)));
}

net::awaitable<bool> answer_detokenize(Connection& c, const Request& req) {
  auto parsed = api::parse_detokenize_request(req.body());
  if (!parsed)
    co_return co_await answer_error(c, parsed.error());
  auto text = co_await c.ctx.backend.detokenize(parsed->model, parsed->tokens);
  if (!text)
    co_return co_await answer_error(c, text.error());
  co_return co_await write_response(
      c, make_response(c, http::status::ok, api::detokenize_json(*text)));
}

// POST /models/load and /models/unload: the model's entry as /v1/models shows it afterwards.
net::awaitable<bool> answer_model_action(Connection& c, const Request& req, bool load) {
  auto model = api::parse_model_action_request(req.body());
  if (!model)
    co_return co_await answer_error(c, model.error());
  c.access.model = *model;
  Result<engine::ModelInfo> done = Error{Errc::internal, "no answer"};
  if (load)  // not one ?: with two co_awaits: GCC 12 miscompiles that
    done = co_await c.ctx.backend.load_model(*model);
  else
    done = co_await c.ctx.backend.unload_model(*model);
  if (!done)
    co_return co_await answer_error(c, done.error());
  co_return co_await write_response(
      c, make_response(c, http::status::ok, api::model_json(model_entry(*done))));
}

// llama-server's GET /slots: the model's sequence slots; with ?fail_on_no_slot=V (any V) a 503
// when none is idle, as load balancers in front of llama-server ask.
net::awaitable<bool> answer_slots(Connection& c, const Request& req) {
  auto got = co_await c.ctx.backend.slots(query_param(req.target(), "model"));
  if (!got)
    co_return co_await answer_error(c, got.error());
  std::vector<api::NativeSlot> out;
  bool idle = false;
  for (const engine::SlotStatus& s : got->slots) {
    out.push_back({s.id, s.busy, s.generating, s.task, s.n_prompt, s.n_processed, s.n_cached,
                   s.n_decoded, s.max_tokens});
    idle = idle || !s.busy;
  }
  if (!idle && !query_param(req.target(), "fail_on_no_slot").empty()) {
    const Error none{Errc::overloaded, "no slot available"};
    co_return co_await answer_error(c, none);
  }
  co_return co_await write_response(
      c, make_response(c, http::status::ok, api::slots_json(out, got->n_ctx, got->speculative)));
}

// llama-server's POST /slots/ID?action=save|restore|erase (?model=ID as for GET /slots): a
// slot's cached prompt to a file in --slot-save-path, back from one, or dropped. A busy slot's
// action waits for its request to end. Without --slot-save-path: 501, as llama-server.
net::awaitable<bool> answer_slot_action(Connection& c, const Request& req) {
  const std::string& dir = c.ctx.config.slot_save_path;
  if (dir.empty()) {
    co_return co_await write_response(
        c, error_response(c, api::not_supported("This server does not support slots action. "
                                                "Start it with `--slot-save-path`")));
  }
  const std::string_view id_text = slot_id(req.target());
  engine::SlotActionRequest action;
  const auto [end, ec] =
      std::from_chars(id_text.data(), id_text.data() + id_text.size(), action.slot);
  if (ec != std::errc() || end != id_text.data() + id_text.size() || action.slot < 0) {
    const Error bad{Errc::invalid_request, "Invalid slot ID", "id_slot"};
    co_return co_await answer_error(c, bad);
  }
  const std::string name = query_param(req.target(), "action");
  std::string filename;
  if (name == "save" || name == "restore") {
    auto parsed = api::parse_slot_file_request(req.body());
    if (!parsed)
      co_return co_await answer_error(c, parsed.error());
    filename = std::move(parsed).value();
    action.kind = name == "save" ? engine::SlotActionKind::save : engine::SlotActionKind::restore;
    action.path = (std::filesystem::path(dir) / filename).string();
    std::error_code made;
    if (action.kind == engine::SlotActionKind::save &&
        !std::filesystem::create_directories(dir, made) && made) {
      const Error e{Errc::internal,
                    fmt::format("cannot make --slot-save-path {}: {}", dir, made.message())};
      co_return co_await answer_error(c, e);
    }
  } else if (name != "erase") {
    const Error bad{Errc::invalid_request, "Invalid action: save, restore or erase", "action"};
    co_return co_await answer_error(c, bad);
  }
  const std::int32_t slot = action.slot;
  auto done =
      co_await c.ctx.backend.slot_action(query_param(req.target(), "model"), std::move(action));
  if (!done)
    co_return co_await answer_error(c, done.error());
  const api::NativeSlotAction out{name, slot, filename, done->n_tokens, done->n_bytes, done->ms};
  co_return co_await write_response(c,
                                    make_response(c, http::status::ok, api::slot_action_json(out)));
}

// llama-server's GET /lora-adapters: the model's adapters with their server-wide scales.
net::awaitable<bool> answer_lora_adapters(Connection& c, const Request& req) {
  auto got = co_await c.ctx.backend.lora_adapters(query_param(req.target(), "model"));
  if (!got)
    co_return co_await answer_error(c, got.error());
  std::vector<api::NativeLoraAdapter> out;
  for (const engine::LoraAdapterInfo& a : *got)
    out.push_back({a.path, a.scale, a.task_name, a.prompt_prefix});
  co_return co_await write_response(
      c, make_response(c, http::status::ok, api::lora_adapters_json(out)));
}

// llama-server's POST /lora-adapters: sets the scales requests without `lora` run with.
net::awaitable<bool> answer_set_lora_adapters(Connection& c, const Request& req) {
  auto parsed = api::parse_lora_adapters_request(req.body());
  if (!parsed)
    co_return co_await answer_error(c, parsed.error());
  auto done = co_await c.ctx.backend.set_lora_adapters(query_param(req.target(), "model"),
                                                       std::move(parsed).value());
  if (!done)
    co_return co_await answer_error(c, done.error());
  co_return co_await write_response(c, make_response(c, http::status::ok, R"({"success":true})"));
}

net::awaitable<bool> route_request(Connection& c, Request& req) {
  switch (c.endpoint) {
    case Endpoint::chat_completions:
    case Endpoint::completions:
    case Endpoint::infill:
    case Endpoint::native_completion:
    case Endpoint::messages:
    case Endpoint::responses:
      co_return co_await handle_generation(c, req);
    case Endpoint::response_item:
      co_return co_await handle_stored_response(c, req);
    case Endpoint::count_tokens:
    case Endpoint::response_input_tokens:
    case Endpoint::chat_input_tokens:
      co_return co_await handle_count_tokens(c, req);
    case Endpoint::models:
      co_return co_await answer_models(c);
    case Endpoint::health:
      co_return co_await answer_health(c);
    case Endpoint::props:
      co_return co_await answer_props(c, req);
    case Endpoint::slots:
      co_return co_await answer_slots(c, req);
    case Endpoint::slot_action:
      co_return co_await answer_slot_action(c, req);
    case Endpoint::ollama_chat:
    case Endpoint::ollama_generate:
    case Endpoint::ollama_embed:
    case Endpoint::ollama_embeddings:
    case Endpoint::ollama_tags:
    case Endpoint::ollama_ps:
    case Endpoint::ollama_show:
    case Endpoint::ollama_version:
      co_return co_await handle_ollama(c, req);
    case Endpoint::lora_adapters:
      co_return co_await answer_lora_adapters(c, req);
    case Endpoint::lora_adapters_set:
      co_return co_await answer_set_lora_adapters(c, req);
    case Endpoint::metrics:
      co_return co_await answer_metrics(c);
    case Endpoint::tokenize:
      co_return co_await answer_tokenize(c, req);
    case Endpoint::detokenize:
      co_return co_await answer_detokenize(c, req);
    case Endpoint::apply_template:
      co_return co_await handle_apply_template(c, req);
    case Endpoint::embeddings:
    case Endpoint::native_embeddings:
      co_return co_await handle_embeddings(c, req);
    case Endpoint::rerank:
      co_return co_await handle_rerank(c, req);
    case Endpoint::webui:
      co_return co_await handle_webui(c, req);
    case Endpoint::model_load:
      co_return co_await answer_model_action(c, req, true);
    case Endpoint::model_unload:
      co_return co_await answer_model_action(c, req, false);
    case Endpoint::unknown:
      break;
  }
  co_return co_await write_response(
      c, error_response(c, api::route_not_found(req.method_string(), req.target())));
}

// The HTTP error boundary: an exception from a handler becomes a 500 in OpenAI's shape (or
// closes the connection when a response had already started).
net::awaitable<bool> dispatch(Connection& c, Request& req) {
  std::string what;
  try {
    co_return co_await route_request(c, req);
  } catch (const std::exception& e) {
    what = e.what();
  }
  spdlog::error("{} {}: unexpected error: {}", req.method_string(), req.target(), what);
  if (c.response_started)
    co_return false;
  co_return co_await answer_error(c, Error{Errc::internal, "Internal server error"});
}

// One line per request at info (warn for a 5xx): the client, the request, the status and the
// duration; for generations the model, token counts and time to first token; for an error
// answer its message. Requests nobody could be answered (EOF, timeouts) log nothing.
void log_access(const Connection& c, std::string_view method, std::string_view target) {
  const AccessRecord& a = c.access;
  const int status = a.status != 0 ? a.status : (c.response_started ? 200 : 0);
  const double ms =
      std::chrono::duration<double, std::milli>(Clock::now() - c.request_start).count();
  std::string line = fmt::format("{} {} {} {} {:.1f} ms", c.peer, method, target,
                                 status != 0 ? std::to_string(status) : "-", ms);
  if (!a.model.empty())
    line += fmt::format(" model={}", a.model);
  if (a.prompt_tokens >= 0)
    line +=
        fmt::format(" prompt_tokens={} completion_tokens={}", a.prompt_tokens, a.completion_tokens);
  if (a.ttft_s >= 0)
    line += fmt::format(" ttft_ms={:.1f}", a.ttft_s * 1000.0);
  if (!a.error.empty())
    line += fmt::format(" error=\"{}\"", a.error);
  spdlog::log(status >= 500 ? spdlog::level::warn : spdlog::level::info, "{}", line);
}

// The message of an error answer's body ({"error": {"message": ...}}), for the access log.
std::string error_message(const std::string& body) {
  boost::system::error_code ec;
  const auto v = boost::json::parse(body, ec);
  if (ec || !v.is_object())
    return {};
  const auto* err = v.as_object().if_contains("error");
  const auto* msg = err && err->is_object() ? err->as_object().if_contains("message") : nullptr;
  return msg && msg->is_string() ? std::string(msg->as_string()) : std::string();
}

// A read failed: answer what deserves an answer, then close.
net::awaitable<void> on_read_error(Connection& c, boost::system::error_code ec) {
  api::HttpError e;
  if (ec == http::error::body_limit) {
    e = api::payload_too_large(c.ctx.config.max_body_bytes);
  } else if (ec == http::error::header_limit) {
    e = api::invalid_request("The request headers are too large");
    e.status = 431;
  } else if (ec.category() == http::make_error_code(http::error::bad_method).category() &&
             ec != http::error::end_of_stream && ec != http::error::partial_message) {
    e = api::invalid_request(fmt::format("Malformed HTTP request: {}", ec.message()));
  } else {
    co_return;  // EOF, reset, timeout, cancelled: nobody to answer
  }
  c.keep_alive = false;
  co_await write_response(c, error_response(c, e));
  log_access(c, "-", "-");
  co_await linger_close(c);
}

// Waits for the first byte of the next request (state idle) unless some are buffered (a
// pipelined request). Returns false when the connection must close (EOF, timeout, reclaim).
net::awaitable<bool> await_request(Connection& c, bool first) {
  const auto& cfg = c.ctx.config;
  if (c.buffer.size() == 0) {
    c.stream.expires_after(client_timeout(c, first ? cfg.header_timeout : cfg.keep_alive_timeout));
    auto [ec, n] = co_await c.stream.async_read_some(c.buffer.prepare(4096), as_tuple_awaitable);
    if (ec)
      co_return false;
    c.buffer.commit(n);
  }
  co_return enter_state(c, ConnState::reading_headers);
}

// Serves one request. Returns whether the connection may serve another.
net::awaitable<bool> serve_one(Connection& c, bool first) {
  const auto& cfg = c.ctx.config;
  const auto arrived = Clock::now();
  if (!co_await await_request(c, first))
    co_return false;
  http::request_parser<http::string_body> parser;
  parser.header_limit(static_cast<std::uint32_t>(cfg.max_header_bytes));
  parser.body_limit(cfg.max_body_bytes);
  // A new connection's header timeout runs from its accept, a kept-alive one's from its byte.
  c.stream.expires_at((first ? arrived : Clock::now()) + client_timeout(c, cfg.header_timeout));
  auto [ec, n] = co_await http::async_read_header(c.stream, c.buffer, parser, as_tuple_awaitable);
  c.busy = true;
  c.request_start = Clock::now();
  c.endpoint = Endpoint::unknown;
  c.response_started = false;
  c.watch_socket = true;
  c.access = {};
  if (ec) {
    co_await on_read_error(c, ec);
    co_return false;
  }
  if (!enter_state(c, parser.is_done() ? ConnState::answering : ConnState::reading_body))
    co_return false;
  c.keep_alive = parser.get().keep_alive();
  if (auto early = check_header(c, parser)) {
    // An unread body would be taken for the next request: answer, then close.
    if (!parser.is_done())
      c.keep_alive = false;
    const bool ok = co_await write_response(c, std::move(*early));
    log_access(c, parser.get().method_string(), parser.get().target());
    if (!c.keep_alive)
      co_await linger_close(c);
    co_return ok&& c.keep_alive;
  }
  if (beast::iequals(parser.get()[http::field::expect], "100-continue")) {
    http::response<http::empty_body> cont{http::status::continue_, 11};
    co_await http::async_write(c.stream, cont, as_tuple_awaitable);
  }
  c.stream.expires_after(client_timeout(c, cfg.body_timeout));
  auto [bec, bn] = co_await http::async_read(c.stream, c.buffer, parser, as_tuple_awaitable);
  if (bec) {
    co_await on_read_error(c, bec);
    co_return false;
  }
  c.stream.expires_never();
  if (!enter_state(c, ConnState::answering))
    co_return false;
  Request req = parser.release();
  const bool again = co_await dispatch(c, req);
  log_access(c, req.method_string(), req.target());
  co_return again;
}

}  // namespace

std::string ServerContext::make_id(std::string_view prefix) {
  return fmt::format("{}{:016x}{:08x}", prefix, id_nonce, next_id.fetch_add(1));
}

bool enter_state(Connection& c, ConnState s) {
  return !c.slot || c.ctx.connections.enter(*c.slot, s);
}

std::chrono::milliseconds client_timeout(const Connection& c, std::chrono::milliseconds base) {
  if (!c.ctx.connections.under_pressure())
    return base;
  return std::chrono::duration_cast<std::chrono::milliseconds>(base *
                                                               c.ctx.config.pressure_timeout_scale);
}

net::awaitable<void> linger_close(Connection& c) {
  boost::system::error_code ec;
  c.stream.socket().shutdown(net::ip::tcp::socket::shutdown_send, ec);
  c.stream.expires_after(c.ctx.config.linger_timeout);
  std::array<char, 16384> scratch{};
  std::size_t total = 0;
  while (total < (64u << 20)) {
    auto [rec, n] = co_await c.stream.async_read_some(net::buffer(scratch), as_tuple_awaitable);
    if (rec)
      break;
    total += n;
  }
  c.stream.socket().close(ec);
}

Connection::Connection(beast::tcp_stream s, ServerContext& c)
    : stream(std::move(s)), ctx(c), deadline(stream.get_executor()) {
  deadline.expires_at(Clock::time_point::max());
}

void add_cors(const Connection& c, http::fields& fields) {
  if (c.ctx.config.cors_origin.empty())
    return;
  fields.set(http::field::access_control_allow_origin, c.ctx.config.cors_origin);
  if (c.ctx.config.cors_origin != "*")
    fields.set(http::field::vary, "Origin");
}

Response make_response(const Connection& c, http::status status, std::string body,
                       std::string_view content_type) {
  Response res{status, 11};
  res.set(http::field::server, "troupe");
  if (!content_type.empty())
    res.set(http::field::content_type, content_type);
  add_cors(c, res);
  res.body() = std::move(body);
  return res;
}

Response error_response(const Connection& c, const api::HttpError& error) {
  // Anthropic's routes answer in Anthropic's error shape and statuses (529 for overloaded).
  // Ollama's, in its shape ({"error": "..."}) with the same statuses.
  auto res = is_anthropic(c.endpoint)
                 ? make_response(c, static_cast<http::status>(api::anthropic_error_status(error)),
                                 api::anthropic_error_json(error))
             : is_ollama(c.endpoint)
                 ? make_response(c, static_cast<http::status>(error.status),
                                 api::ollama_error_json(error.message))
                 : make_response(c, static_cast<http::status>(error.status), api::to_json(error));
  if (error.retry_after_seconds > 0) {
    res.set(http::field::retry_after, std::to_string(error.retry_after_seconds));
  }
  return res;
}

net::awaitable<bool> answer_error(Connection& c, const Error& e) {
  co_return co_await write_response(
      c, error_response(c, api::to_http_error(e, c.ctx.config.retry_after_seconds)));
}

net::awaitable<bool> write_response(Connection& c, Response res) {
  res.keep_alive(c.keep_alive && !c.draining);
  res.prepare_payload();
  c.response_started = true;
  c.access.status = static_cast<int>(res.result_int());
  if (c.access.status >= 400)
    c.access.error = error_message(res.body());
  c.ctx.metrics.count_request(endpoint_name(c.endpoint), c.access.status);
  c.stream.expires_after(c.ctx.config.write_timeout);
  auto [ec, n] = co_await http::async_write(c.stream, res, as_tuple_awaitable);
  if (ec == beast::error::timeout)
    c.ctx.metrics.count_send_timeout();
  c.stream.expires_never();
  co_return !ec && res.keep_alive();
}

void SessionControl::post_drain(const std::shared_ptr<SessionControl>& control,
                                Clock::time_point deadline) {
  net::post(control->strand, [control, deadline] {
    control->drain_at = deadline;
    if (control->conn)
      begin_drain(*control->conn, deadline);
  });
}

void SessionControl::post_reclaim(const std::shared_ptr<SessionControl>& control) {
  net::post(control->strand, [control] {
    control->reclaimed = true;
    if (control->conn)
      control->conn->stream.cancel();  // its wait for bytes ends; enter_state() says close
  });
}

void begin_drain(Connection& c, Clock::time_point deadline) {
  c.draining = true;
  c.deadline.expires_at(deadline);
  if (!c.busy)
    c.stream.cancel();
}

net::awaitable<void> run_session(std::shared_ptr<SessionControl> control, beast::tcp_stream stream,
                                 ServerContext& ctx, ConnectionTable::SlotPtr slot) {
  Connection c(std::move(stream), ctx);
  c.slot = std::move(slot);
  control->conn = &c;
  ctx.metrics.connection_opened();
  if (control->drain_at)
    begin_drain(c, *control->drain_at);

  struct Exit {
    SessionControl& control;
    Metrics& metrics;
    ~Exit() {
      control.conn = nullptr;
      metrics.connection_closed();
    }
  } exit{*control, ctx.metrics};
  c.stream.socket().set_option(net::ip::tcp::no_delay(true));
  boost::system::error_code opt_ec;
  if (const auto peer = c.stream.socket().remote_endpoint(opt_ec); !opt_ec)
    c.peer = fmt::format("{}:{}", peer.address().to_string(), peer.port());
  // Synchronous calls on the socket return would_block instead of blocking: generations peek
  // at it for EOF and write events straight to it when there is room (generation.cpp).
  // Asynchronous operations are not affected.
  c.stream.socket().non_blocking(true, opt_ec);
  for (bool first = true; !control->reclaimed; first = false) {
    const bool again = co_await serve_one(c, first);
    c.busy = false;
    if (!again || c.draining || !enter_state(c, ConnState::idle))
      break;
  }
  boost::system::error_code ec;
  c.stream.socket().shutdown(net::ip::tcp::socket::shutdown_send, ec);
  c.stream.socket().close(ec);
}

}  // namespace troupe::server::detail
