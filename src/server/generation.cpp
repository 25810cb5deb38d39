// The generation endpoints: POST /v1/chat/completions, /v1/completions and Anthropic's
// /v1/messages, streaming (SSE) and not; one loop for all, each API's shapes written by its
// AnswerWriter. While a request runs, one ClientWatch waits for the two interruptions (the client
// closing its socket, the server's shutdown deadline) once per request, not per token; the
// response loop waits on the TokenStream alone, takes every event already queued at each
// wake-up, and writes them together, straight to the socket when its send buffer has room.

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/bind_executor.hpp>
#include <boost/asio/deferred.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/experimental/parallel_group.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/write.hpp>
#include <chrono>
#include <functional>
#include <random>

#include "api/anthropic.hpp"
#include "api/native.hpp"
#include "api/ollama.hpp"
#include "api/request.hpp"
#include "api/response.hpp"
#include "api/responses.hpp"
#include "server/connection.hpp"
#include "server/job.hpp"

namespace troupe::server::detail {
namespace {

using net::use_awaitable;
using tcp = net::ip::tcp;
constexpr auto as_tuple_awaitable = net::as_tuple(net::use_awaitable);

enum class Interrupt { none, client_closed, deadline };

double seconds_since(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

// Looks at the socket while no request is due (it is in non-blocking mode, see run_session):
// EOF (or an error) means the client is gone; bytes mean a pipelined request, which stays
// unread (and ends the watching); nothing means nothing happened.
Interrupt check_socket(Connection& c) {
  char byte = 0;
  boost::system::error_code ec;
  const std::size_t n =
      c.stream.socket().receive(net::buffer(&byte, 1), tcp::socket::message_peek, ec);
  if (ec == net::error::would_block || ec == net::error::try_again)
    return Interrupt::none;
  if (ec || n == 0)
    return Interrupt::client_closed;
  c.watch_socket = false;
  return Interrupt::none;
}

// Watches one generation for the client leaving and the shutdown deadline: one wait on the
// socket's readability and one on the deadline timer for the whole request. When either
// fires it records why and cancels the request's TokenStreams (`cancel`), which stops the
// generation and makes the session's wait on a stream return at once (with nothing).
//
// Lives in the generation's frame, on the connection's strand, and must be destroyed before
// the stream and the connection. Its handlers run on that strand (the executor of the socket
// and of the timer) and hold only the shared state, so they may complete after it is gone.
class ClientWatch {
 public:
  ClientWatch(Connection& c, engine::TokenStream& stream)
      : ClientWatch(c, [&stream] { stream.cancel(); }) {}
  ClientWatch(Connection& c, std::function<void()> cancel)
      : s_(std::make_shared<State>(c, std::move(cancel))) {
    watch_socket(s_);
    watch_deadline(s_);
  }
  ~ClientWatch() {
    s_->stopped = true;
    boost::system::error_code ec;
    if (s_->socket_pending)
      s_->c.stream.socket().cancel(ec);  // nothing else waits on the socket now
    if (s_->timer_pending)
      s_->c.deadline.cancel();
  }
  ClientWatch(const ClientWatch&) = delete;
  ClientWatch& operator=(const ClientWatch&) = delete;

  Interrupt interrupt() const noexcept { return s_->interrupt; }

 private:
  struct State {
    State(Connection& conn, std::function<void()> f) : c(conn), cancel(std::move(f)) {}
    Connection& c;                 // touched only while !stopped
    std::function<void()> cancel;  // likewise: it refers to the generation's streams
    Interrupt interrupt = Interrupt::none;
    bool stopped = false;
    bool socket_pending = false;
    bool timer_pending = false;
  };

  static void fire(State& s, Interrupt i) {
    if (s.interrupt != Interrupt::none)
      return;
    s.interrupt = i;
    s.cancel();
  }

  // Waits for readability, then looks: the wait only sees what arrives after it started (the
  // reactor is edge-triggered), so EOF or bytes that came earlier are found by the look.
  static void watch_socket(const std::shared_ptr<State>& s) {
    if (!s->c.watch_socket || s->interrupt != Interrupt::none)
      return;
    if (!s->socket_pending) {
      s->socket_pending = true;
      s->c.stream.socket().async_wait(tcp::socket::wait_read, [s](boost::system::error_code ec) {
        s->socket_pending = false;
        if (s->stopped || !s->c.watch_socket)
          return;
        if (ec) {
          fire(*s, Interrupt::client_closed);
          return;
        }
        watch_socket(s);
      });
    }
    if (const Interrupt i = check_socket(s->c); i != Interrupt::none)
      fire(*s, i);
  }

  // Beginning a drain moves the deadline, which ends the wait early: wait again then.
  static void watch_deadline(const std::shared_ptr<State>& s) {
    s->timer_pending = true;
    s->c.deadline.async_wait([s](boost::system::error_code) {
      s->timer_pending = false;
      if (s->stopped || s->interrupt != Interrupt::none)
        return;
      if (Clock::now() >= s->c.deadline.expiry())
        fire(*s, Interrupt::deadline);
      else
        watch_deadline(s);
    });
  }

  std::shared_ptr<State> s_;
};

std::vector<api::TokenLogprob> to_api_logprobs(const engine::Delta& d) {
  std::vector<api::TokenLogprob> out;
  out.reserve(d.logprobs.size());
  for (std::size_t i = 0; i < d.logprobs.size(); ++i) {
    api::TokenLogprob lp{d.logprobs[i].text, d.logprobs[i].logprob, {}};
    if (i < d.top.size()) {
      for (const auto& alt : d.top[i])
        lp.top.emplace_back(alt.text, alt.logprob);
    }
    out.push_back(std::move(lp));
  }
  return out;
}

std::string_view finish_reason_name(engine::FinishReason r) {
  switch (r) {
    case engine::FinishReason::length:
      return "length";
    case engine::FinishReason::tool_calls:
      return "tool_calls";
    default:
      return "stop";
  }
}

// Adds a Delta's tool-call deltas to the calls of a whole answer.
void add_tool_calls(const engine::Delta& d, std::vector<chatfmt::ToolCall>& calls) {
  for (const auto& c : d.tool_calls) {
    if (calls.size() <= c.index)
      calls.resize(c.index + 1);
    auto& call = calls[c.index];
    if (!c.id.empty())
      call.id = c.id;
    if (!c.name.empty())
      call.name = c.name;
    call.arguments += c.arguments;
  }
}

api::Usage to_api_usage(const engine::Usage& u) {
  return {u.prompt_tokens,    u.completion_tokens,          u.cached_tokens,
          u.reasoning_tokens, u.accepted_prediction_tokens, u.rejected_prediction_tokens};
}

// Appends one SSE event as one HTTP chunk: "<hex>\r\ndata: <payload>\n\n\r\n".
void append_event(std::string& out, std::string_view payload) {
  fmt::format_to(std::back_inserter(out), "{:x}\r\ndata: ", payload.size() + 8);
  out += payload;
  out += "\n\n\r\n";
}

void note_usage(Connection& c, const engine::Usage& u) {
  c.access.prompt_tokens = u.prompt_tokens;
  c.access.completion_tokens = u.completion_tokens;
}

Error shutdown_error() {
  return Error{Errc::unavailable, "The server is shutting down"};
}

// Why a wait on the stream returned nothing: the watch's interruption, or the stream ended.
Error interrupt_error(Interrupt i, const char* otherwise) {
  return i == Interrupt::deadline ? shutdown_error() : Error{Errc::internal, otherwise};
}

// Appends one HTTP chunk holding `body` (a complete SSE event).
void append_chunk(std::string& out, std::string_view body) {
  fmt::format_to(std::back_inserter(out), "{:x}\r\n", body.size());
  out += body;
  out += "\r\n";
}

// An OpenAI chunk for a Delta (nothing when it carries nothing to show).
void append_openai_delta(api::ChunkWriter& chunks, const engine::Delta& d, bool logprobs,
                         std::string& out) {
  const bool parsed = !d.reasoning.empty() || !d.tool_calls.empty();
  if (d.text.empty() && !parsed && !(logprobs && !d.logprobs.empty()))
    return;
  std::vector<api::TokenLogprob> lps;
  if (logprobs)
    lps = to_api_logprobs(d);
  const auto* lp = logprobs ? &lps : nullptr;
  append_event(out, parsed ? chunks.chat_delta_chunk(d.text, d.reasoning, d.tool_calls, lp)
                           : chunks.delta_chunk(d.text, lp));
}

// A Delta added to a non-streaming answer.
void accumulate(api::CompletionResult& result, const engine::Delta& d) {
  result.text += d.text;
  result.reasoning_content += d.reasoning;
  add_tool_calls(d, result.tool_calls);
  if (result.logprobs) {
    for (auto& lp : to_api_logprobs(d))
      result.logprobs->push_back(std::move(lp));
  }
}

// A keep-alive on an SSE stream: a comment, which every client skips and proxies count as
// traffic (one HTTP chunk).
void append_keep_alive(std::string& out) {
  append_chunk(out, ":\n\n");
}

// How long an event stream may stay silent before a keep-alive: the request's
// sse_ping_interval (seconds) or the server's --sse-ping-interval; 0: never.
std::chrono::milliseconds sse_ping_interval(const ServerConfig& config, const GenerationJob& job) {
  if (job.sse_ping_interval)
    return std::chrono::seconds(std::max(*job.sse_ping_interval, 0));
  return config.sse_ping_interval;
}

// How one API writes a generation's answer: the body of a complete answer, or the events of a
// stream (each appended to `out` as an HTTP chunk). The Generation's loop is the same for every
// API; only this differs.
class AnswerWriter {
 public:
  virtual ~AnswerWriter() = default;
  // `result` holds the whole output, its finish_reason and usage.
  virtual std::string body(const api::CompletionResult& result, const engine::Finished& f) = 0;
  virtual void start(const engine::Started& s, std::string& out) = 0;
  // Every answer, streamed or not: the generation began (before start()), a Delta came
  // (before delta(), or in its place for an answer that is not streamed).
  virtual void began(const engine::Started&) {}
  virtual void seen(const engine::Delta&) {}
  virtual void delta(const engine::Delta& d, std::string& out) = 0;
  // The last events and the terminating chunk.
  virtual void finish(const engine::Finished& f, std::string& out) = 0;
  virtual void fail(const Error& e, std::string& out) = 0;
  // A keep-alive while nothing else comes for `ping_every`: an SSE comment, which every event
  // stream's client skips (Anthropic's: its ping event; Ollama's lines: none).
  virtual std::chrono::milliseconds ping_every(const ServerConfig& config,
                                               const GenerationJob& job) const {
    return sse_ping_interval(config, job);
  }
  virtual void ping(std::string& out) { append_keep_alive(out); }
};

// OpenAI's chat and text completions.
class OpenAiWriter final : public AnswerWriter {
 public:
  OpenAiWriter(const GenerationJob& job, const api::ResponseHead& head)
      : head_(head),
        kind_(job.kind),
        logprobs_(job.logprobs),
        include_usage_(job.include_usage),
        chunks_(job.kind, head, job.include_usage) {}

  std::string body(const api::CompletionResult& r, const engine::Finished&) override {
    return kind_ == api::CompletionKind::chat ? api::chat_completion_json(head_, r)
                                              : api::text_completion_json(head_, r);
  }
  void start(const engine::Started&, std::string& out) override {
    if (kind_ == api::CompletionKind::chat)
      append_event(out, chunks_.role_chunk());
  }
  void delta(const engine::Delta& d, std::string& out) override {
    append_openai_delta(chunks_, d, logprobs_, out);
  }
  void finish(const engine::Finished& f, std::string& out) override {
    append_event(out, chunks_.finish_chunk(finish_reason_name(f.reason)));
    if (include_usage_)
      append_event(out, chunks_.usage_chunk(to_api_usage(f.usage)));
    append_event(out, "[DONE]");
    out += "0\r\n\r\n";
  }
  void fail(const Error& e, std::string& out) override {
    append_event(out, api::to_json(api::to_http_error(e)));
    out += "0\r\n\r\n";
  }

 private:
  const api::ResponseHead& head_;
  api::CompletionKind kind_;
  bool logprobs_;
  bool include_usage_;
  api::ChunkWriter chunks_;
};

// Anthropic's Messages.
class MessagesWriter final : public AnswerWriter {
 public:
  MessagesWriter(const GenerationJob& job, const api::ResponseHead& head)
      : head_(head), stops_(job.task.stop.stop), events_(head) {}

  std::string body(const api::CompletionResult& r, const engine::Finished& f) override {
    return api::anthropic_message_json(head_, r, stop_info(f));
  }
  void start(const engine::Started& s, std::string& out) override {
    api::Usage u;
    u.prompt_tokens = s.prompt_tokens;
    u.cached_tokens = s.cached_tokens;
    events_.start(u, pending_);
    flush(out);
  }
  void delta(const engine::Delta& d, std::string& out) override {
    events_.delta(d.text, d.reasoning, d.tool_calls, pending_);
    flush(out);
  }
  void finish(const engine::Finished& f, std::string& out) override {
    events_.finish(stop_info(f), to_api_usage(f.usage), pending_);
    flush(out);
    out += "0\r\n\r\n";
  }
  void fail(const Error& e, std::string& out) override {
    pending_.push_back(api::MessagesStreamWriter::error(api::to_http_error(e)));
    flush(out);
    out += "0\r\n\r\n";
  }
  std::chrono::milliseconds ping_every(const ServerConfig& config,
                                       const GenerationJob&) const override {
    return config.ping_interval;
  }
  void ping(std::string& out) override {
    pending_.push_back(api::MessagesStreamWriter::ping());
    flush(out);
  }

 private:
  // A stop string of the request's own is a stop_sequence; one the chat template added (its
  // end-of-turn text) ends the turn.
  api::StopInfo stop_info(const engine::Finished& f) const {
    switch (f.reason) {
      case engine::FinishReason::tool_calls:
        return {"tool_use", {}};
      case engine::FinishReason::length:
        return {"max_tokens", {}};
      default:
        break;
    }
    if (!f.stop_string.empty() &&
        std::find(stops_.begin(), stops_.end(), f.stop_string) != stops_.end())
      return {"stop_sequence", f.stop_string};
    return {"end_turn", {}};
  }
  void flush(std::string& out) {
    for (const auto& e : pending_) {
      scratch_.clear();
      api::append_sse(scratch_, e);
      append_chunk(out, scratch_);
    }
    pending_.clear();
  }

  const api::ResponseHead& head_;
  std::vector<std::string> stops_;
  api::MessagesStreamWriter events_;
  std::vector<api::SseEvent> pending_;
  std::string scratch_;
};

// Appends SSE events (named) as one HTTP chunk each and clears them.
void append_events(std::string& out, std::vector<api::SseEvent>& events, std::string& scratch) {
  for (const auto& e : events) {
    scratch.clear();
    api::append_sse(scratch, e);
    append_chunk(out, scratch);
  }
  events.clear();
}

// OpenAI's Responses: the answer as a response object or its event stream; a stored response
// (store: true) is kept with its conversation for GET and previous_response_id.
class ResponsesWriter final : public AnswerWriter {
 public:
  ResponsesWriter(ServerContext& ctx, const GenerationJob& job, const api::ResponseHead& head)
      : ctx_(ctx),
        head_{head.id,   head.model, head.created, job.instructions, job.previous_response_id,
              job.store, job.tools},
        conversation_(job.store ? job.conversation : std::vector<chatfmt::Message>{}),
        events_(head_) {}

  std::string body(const api::CompletionResult& r, const engine::Finished& f) override {
    const bool length = f.reason == engine::FinishReason::length;
    std::string json = api::response_json(head_, r, length);
    remember(r, json);
    return json;
  }
  void start(const engine::Started&, std::string& out) override {
    events_.start(pending_);
    append_events(out, pending_, scratch_);
  }
  void delta(const engine::Delta& d, std::string& out) override {
    result_.text += d.text;
    result_.reasoning_content += d.reasoning;
    add_tool_calls(d, result_.tool_calls);
    events_.delta(d.text, d.reasoning, d.tool_calls, pending_);
    append_events(out, pending_, scratch_);
  }
  void finish(const engine::Finished& f, std::string& out) override {
    const bool length = f.reason == engine::FinishReason::length;
    result_.usage = to_api_usage(f.usage);
    events_.finish(result_, length, pending_);
    remember(result_, api::response_json(head_, result_, length));
    append_events(out, pending_, scratch_);
    out += "0\r\n\r\n";
  }
  void fail(const Error& e, std::string& out) override {
    events_.fail(api::to_http_error(e), pending_);
    append_events(out, pending_, scratch_);
    out += "0\r\n\r\n";
  }

 private:
  void remember(const api::CompletionResult& r, std::string json) {
    if (!head_.store)
      return;
    conversation_.push_back(api::response_message(r));
    ctx_.responses.put(head_.id,
                       StoredResponse{std::move(json), std::move(conversation_), head_.model});
  }

  ServerContext& ctx_;
  api::ResponsesHead head_;
  std::vector<chatfmt::Message> conversation_;
  api::ResponsesStreamWriter events_;
  api::CompletionResult result_;
  std::vector<api::SseEvent> pending_;
  std::string scratch_;
};

// An answer's times: when its request arrived (about: when its writer was made) and when its
// first token came; llama-server's timings and Ollama's durations are read off it.
struct AnswerClock {
  Clock::time_point begun = Clock::now();
  Clock::time_point first_token{};

  void saw(const engine::Delta& d) {
    if (first_token == Clock::time_point{} && !d.tokens.empty())
      first_token = Clock::now();
  }
  // The first token's time, or `now` while none came.
  Clock::time_point first_or(Clock::time_point now) const {
    return first_token == Clock::time_point{} ? now : first_token;
  }
};

// llama-server's own shapes (/completion, /infill): the answer's object, or its pieces and
// then that object. `index`: the answer's place among a request's several.
class NativeWriter final : public AnswerWriter {
 public:
  NativeWriter(const api::ResponseHead& head, const GenerationJob& job, std::int32_t index = 0)
      : model_(head.model),
        stops_(job.task.stop.stop),
        options_(job.native),
        stream_(job.stream),
        index_(index) {}

  std::string body(const api::CompletionResult& r, const engine::Finished& f) override {
    return api::native_completion_json(answer(r.text, f), options_.response_fields);
  }
  void began(const engine::Started& s) override { started_ = s; }
  void seen(const engine::Delta& d) override {
    clock_.saw(d);
    predicted_ += static_cast<std::int32_t>(d.tokens.size());
    has_new_line_ = has_new_line_ || d.text.find('\n') != std::string::npos;
    if (stream_)
      return;
    if (options_.return_tokens)
      tokens_.insert(tokens_.end(), d.tokens.begin(), d.tokens.end());
    add_probs(d, probs_);
  }
  void start(const engine::Started&, std::string&) override {}
  void delta(const engine::Delta& d, std::string& out) override {
    std::vector<api::NativeProb> probs;
    add_probs(d, probs);
    if (d.text.empty() && d.tokens.empty())
      return;
    // A piece carries its token ids whatever return_tokens says, as llama-server's do.
    api::NativeChunk chunk{index_, d.text, d.tokens, probs, predicted_, started_.prompt_tokens,
                           nullptr};
    api::NativeTimings timings;
    if (options_.timings_per_token) {
      timings =
          timings_so_far(engine::Usage{started_.prompt_tokens, predicted_, started_.cached_tokens});
      chunk.timings = &timings;
    }
    append_event(out, api::native_chunk_json(chunk));
  }
  // The whole answer's object that ends a streamed answer (its text came in the pieces).
  void final_event(const engine::Finished& f, std::string& out) const {
    append_event(out, api::native_completion_json(answer({}, f), options_.response_fields));
  }
  void finish(const engine::Finished& f, std::string& out) override {
    final_event(f, out);
    out += "0\r\n\r\n";
  }
  void fail(const Error& e, std::string& out) override {
    append_event(out, api::to_json(api::to_http_error(e)));
    out += "0\r\n\r\n";
  }

 private:
  // A Delta's probabilities in llama-server's shape (none unless n_probs asked for them).
  static void add_probs(const engine::Delta& d, std::vector<api::NativeProb>& out) {
    for (std::size_t i = 0; i < d.logprobs.size(); ++i) {
      const auto& lp = d.logprobs[i];
      api::NativeProb p{{lp.token, lp.text, lp.logprob}, {}};
      if (i < d.top.size()) {
        for (const auto& alt : d.top[i])
          p.top.push_back({alt.token, alt.text, alt.logprob});
      }
      out.push_back(std::move(p));
    }
  }

  api::NativeTimings timings_so_far(const engine::Usage& u) const {
    const auto now = Clock::now();
    const auto first = clock_.first_or(now);
    const auto ms = [](Clock::duration d) {
      return std::chrono::duration<double, std::milli>(d).count();
    };
    return {u.cached_tokens, u.prompt_tokens - u.cached_tokens, ms(first - clock_.begun),
            u.completion_tokens, ms(now - first)};
  }

  api::NativeCompletion answer(std::string content, const engine::Finished& f) const {
    api::NativeCompletion c;
    c.index = index_;
    c.has_new_line = has_new_line_;
    c.content = std::move(content);
    c.model = model_;
    c.tokens = tokens_;
    c.probs = probs_;
    c.tokens_predicted = f.usage.completion_tokens;
    c.tokens_evaluated = f.usage.prompt_tokens;
    c.tokens_cached = f.usage.cached_tokens;
    c.truncated = started_.truncated;
    if (f.reason == engine::FinishReason::length) {
      c.stop_type = "limit";
    } else if (!f.stop_string.empty() &&
               std::find(stops_.begin(), stops_.end(), f.stop_string) != stops_.end()) {
      c.stop_type = "word";
      c.stopping_word = f.stop_string;
    } else {
      c.stop_type = "eos";
    }
    c.timings = timings_so_far(f.usage);
    return c;
  }

  std::string model_;
  std::vector<std::string> stops_;  // the request's own
  api::NativeOptions options_;
  bool stream_;
  std::int32_t index_;
  engine::Started started_;
  AnswerClock clock_;
  std::int32_t predicted_ = 0;
  bool has_new_line_ = false;
  std::vector<std::int32_t> tokens_;    // not streamed, return_tokens: the answer's
  std::vector<api::NativeProb> probs_;  // not streamed, n_probs: the answer's
};

// Ollama's /api/chat and /api/generate: newline-delimited JSON objects, one per piece of text
// (content and thinking), the tool calls whole in one object once the answer has ended (Ollama
// sends them parsed, arguments as objects), then the last object with done_reason and the
// counts and times; not streamed, the whole answer in one object.
class OllamaWriter final : public AnswerWriter {
 public:
  explicit OllamaWriter(const GenerationJob& job)
      : model_(job.model), chat_(!job.ollama_generate), logprobs_(job.logprobs) {}

  std::chrono::milliseconds ping_every(const ServerConfig&, const GenerationJob&) const override {
    return std::chrono::milliseconds{0};  // a line that is not an object would break a client
  }

  std::string body(const api::CompletionResult& r, const engine::Finished& f) override {
    const api::OllamaMetrics m = metrics(f);
    const std::string now = api::ollama_time(std::chrono::system_clock::now());
    api::OllamaAnswer a = answer(now);
    a.content = r.text;
    a.thinking = r.reasoning_content;
    a.tool_calls = r.tool_calls;
    a.logprobs = r.logprobs ? &*r.logprobs : nullptr;
    a.done = true;
    a.done_reason = reason(f);
    a.metrics = &m;
    return api::ollama_answer_json(a);
  }
  void seen(const engine::Delta& d) override {
    clock_.saw(d);
    add_tool_calls(d, calls_);
  }
  void start(const engine::Started&, std::string&) override {}
  void delta(const engine::Delta& d, std::string& out) override {
    if (d.text.empty() && d.reasoning.empty())
      return;  // a tool call's pieces: sent whole at the end
    const std::string now = api::ollama_time(std::chrono::system_clock::now());
    api::OllamaAnswer a = answer(now);
    a.content = d.text;
    a.thinking = d.reasoning;
    std::vector<api::TokenLogprob> lps;
    if (logprobs_) {
      lps = to_api_logprobs(d);
      a.logprobs = &lps;
    }
    line(out, api::ollama_answer_json(a));
  }
  void finish(const engine::Finished& f, std::string& out) override {
    const std::string now = api::ollama_time(std::chrono::system_clock::now());
    if (!calls_.empty()) {
      api::OllamaAnswer calls = answer(now);
      calls.tool_calls = calls_;
      line(out, api::ollama_answer_json(calls));
    }
    const api::OllamaMetrics m = metrics(f);
    api::OllamaAnswer last = answer(now);
    last.done = true;
    last.done_reason = reason(f);
    last.metrics = &m;
    line(out, api::ollama_answer_json(last));
    out += "0\r\n\r\n";
  }
  void fail(const Error& e, std::string& out) override {
    line(out, api::ollama_error_json(e.message));
    out += "0\r\n\r\n";
  }

 private:
  api::OllamaAnswer answer(std::string_view now) const {
    api::OllamaAnswer a;
    a.chat = chat_;
    a.model = model_;
    a.created_at = now;
    return a;
  }
  static std::string_view reason(const engine::Finished& f) {
    return f.reason == engine::FinishReason::length ? "length" : "stop";
  }
  api::OllamaMetrics metrics(const engine::Finished& f) const {
    const auto ns = [](Clock::duration d) {
      return std::chrono::duration_cast<std::chrono::nanoseconds>(d).count();
    };
    const Clock::time_point end = Clock::now();
    const Clock::time_point first = clock_.first_or(end);
    api::OllamaMetrics m;
    m.total_ns = ns(end - clock_.begun);
    m.prompt_tokens = f.usage.prompt_tokens;
    m.prompt_ns = ns(first - clock_.begun);
    m.output_tokens = f.usage.completion_tokens;
    m.output_ns = ns(end - first);
    return m;
  }
  static void line(std::string& out, std::string json) {
    json += '\n';
    append_chunk(out, json);
  }

  std::string model_;
  bool chat_;
  bool logprobs_;
  AnswerClock clock_;
  std::vector<chatfmt::ToolCall> calls_;
};

std::string_view id_prefix(const GenerationJob& job) {
  if (job.dialect == Dialect::anthropic)
    return "msg_";
  if (job.dialect == Dialect::responses)
    return "resp_";
  return job.kind == api::CompletionKind::chat ? "chatcmpl-" : "cmpl-";
}

std::unique_ptr<AnswerWriter> make_writer(ServerContext& ctx, const GenerationJob& job,
                                          const api::ResponseHead& head) {
  if (job.dialect == Dialect::anthropic)
    return std::make_unique<MessagesWriter>(job, head);
  if (job.dialect == Dialect::responses)
    return std::make_unique<ResponsesWriter>(ctx, job, head);
  if (job.dialect == Dialect::llama)
    return std::make_unique<NativeWriter>(head, job);
  if (job.dialect == Dialect::ollama)
    return std::make_unique<OllamaWriter>(job);
  return std::make_unique<OpenAiWriter>(job, head);
}

// What every generation answer needs, whatever its number of choices: the connection, the
// response's id, the token timing metrics, and the writes.
class GenerationBase {
 protected:
  GenerationBase(Connection& c, const GenerationJob& job)
      : c_(c),
        head_{c.ctx.make_id(id_prefix(job)), job.model,
              std::chrono::duration_cast<std::chrono::seconds>(
                  std::chrono::system_clock::now().time_since_epoch())
                  .count()},
        stream_type_(job.dialect == Dialect::ollama ? "application/x-ndjson"
                                                    : "text/event-stream") {
    c.access.model = job.model;
  }

  net::awaitable<bool> fail(const Error& e) {
    return write_response(
        c_, error_response(c_, api::to_http_error(e, c_.ctx.config.retry_after_seconds)));
  }
  net::awaitable<bool> write_sse_header();
  net::awaitable<bool> send(std::string_view data);
  void observe_tokens(std::size_t n);

  Connection& c_;
  api::ResponseHead head_;
  std::string_view stream_type_;  // a stream's Content-Type: SSE, or Ollama's NDJSON

 private:
  Clock::time_point last_token_{};
  bool first_token_ = true;
};

// One generation request from its parsed job to its last byte.
class Generation : GenerationBase {
 public:
  Generation(Connection& c, GenerationJob job)
      : GenerationBase(c, job), job_(std::move(job)), writer_(make_writer(c.ctx, job_, head_)) {
    job_.task.request_id = head_.id;
  }

  net::awaitable<bool> run();

 private:
  enum class Step { more, finished, failed };

  net::awaitable<bool> run_plain(engine::TokenStream& stream, const ClientWatch& watch);
  net::awaitable<bool> run_streaming(engine::TokenStream& stream, const ClientWatch& watch,
                                     const engine::Started& started);
  net::awaitable<std::optional<engine::StreamEvent>> wait(engine::TokenStream& stream,
                                                          std::string& out);
  Step add_event(const engine::StreamEvent& ev, std::string& out, std::size_t& tokens);

  GenerationJob job_;
  std::unique_ptr<AnswerWriter> writer_;
  bool send_failed_ = false;  // a ping could not be written
};

void GenerationBase::observe_tokens(std::size_t n) {
  if (n == 0)
    return;
  auto& m = c_.ctx.metrics;
  const auto now = Clock::now();
  if (first_token_) {
    c_.access.ttft_s = seconds_since(c_.request_start);
    m.time_to_first_token.observe(c_.access.ttft_s);
    first_token_ = false;
  } else {
    const double gap = std::chrono::duration<double>(now - last_token_).count();
    for (std::size_t i = 0; i < n; ++i)
      m.inter_token_latency.observe(gap / static_cast<double>(n));
  }
  last_token_ = now;
}

// Every wait on the stream is `try_next()`, then, with nothing queued and no interruption,
// `co_await stream.next()`: the ClientWatch cancels the stream to end such a wait, and the
// wait then returns nullopt.
net::awaitable<bool> Generation::run() {
  engine::TokenStream stream = co_await c_.ctx.backend.generate(std::move(job_.task));
  const ClientWatch watch(c_, stream);
  std::optional<engine::StreamEvent> first = stream.try_next();
  if (!first && watch.interrupt() == Interrupt::none)
    first = co_await stream.next();
  if (watch.interrupt() == Interrupt::client_closed) {
    c_.ctx.metrics.count_disconnect();
    co_return false;
  }
  if (watch.interrupt() == Interrupt::deadline)
    co_return co_await fail(shutdown_error());
  if (first) {
    if (const auto* f = std::get_if<engine::Failed>(&*first))
      co_return co_await fail(f->error);
  }
  if (!first || !std::holds_alternative<engine::Started>(*first))
    co_return co_await fail(Error{Errc::internal, "The generation did not start"});
  c_.ctx.metrics.request_queue_time.observe(seconds_since(c_.request_start));
  writer_->began(std::get<engine::Started>(*first));
  // Not a conditional expression: GCC 12 evaluates both co_await operands of ?: .
  if (job_.stream)
    co_return co_await run_streaming(stream, watch, std::get<engine::Started>(*first));
  co_return co_await run_plain(stream, watch);
}

net::awaitable<bool> Generation::run_plain(engine::TokenStream& stream, const ClientWatch& watch) {
  api::CompletionResult result;
  if (job_.logprobs)
    result.logprobs.emplace();
  std::size_t tokens = 0;  // since the last wait
  for (;;) {
    std::optional<engine::StreamEvent> ev = stream.try_next();
    if (!ev && watch.interrupt() == Interrupt::none) {
      observe_tokens(std::exchange(tokens, 0));
      ev = co_await stream.next();
    }
    if (!ev) {
      if (watch.interrupt() == Interrupt::client_closed) {
        c_.ctx.metrics.count_disconnect();
        co_return false;
      }
      co_return co_await fail(interrupt_error(watch.interrupt(), "The generation ended early"));
    }
    if (auto* d = std::get_if<engine::Delta>(&*ev)) {
      tokens += d->tokens.size();
      writer_->seen(*d);
      accumulate(result, *d);
    } else if (auto* f = std::get_if<engine::Finished>(&*ev)) {
      observe_tokens(tokens);
      c_.ctx.metrics.e2e_request_latency.observe(seconds_since(c_.request_start));
      result.finish_reason = finish_reason_name(f->reason);
      result.usage = to_api_usage(f->usage);
      note_usage(c_, f->usage);
      std::string body = writer_->body(result, *f);
      co_return co_await write_response(c_, make_response(c_, http::status::ok, std::move(body)));
    } else if (auto* e = std::get_if<engine::Failed>(&*ev)) {
      co_return co_await fail(e->error);
    }
  }
}

net::awaitable<bool> GenerationBase::write_sse_header() {
  http::response<http::empty_body> res{http::status::ok, 11};
  res.set(http::field::server, "troupe");
  res.set(http::field::content_type, stream_type_);
  res.set(http::field::cache_control, "no-cache");
  add_cors(c_, res);
  res.keep_alive(c_.keep_alive && !c_.draining);
  res.chunked(true);
  http::response_serializer<http::empty_body> sr{res};
  enter_state(c_, ConnState::streaming);  // from answering: never reclaimed
  c_.stream.expires_after(c_.ctx.config.write_timeout);
  auto [ec, n] = co_await http::async_write_header(c_.stream, sr, as_tuple_awaitable);
  if (ec == beast::error::timeout)
    c_.ctx.metrics.count_send_timeout();
  c_.ctx.metrics.count_request(endpoint_name(c_.endpoint), 200);
  c_.response_started = true;
  co_return !ec;
}

// Writes `data` (which must live until this completes): first straight to the socket, which
// is in non-blocking mode, so that while the kernel's send buffer has room a write costs one
// send() and no handler, timer or suspension; then what did not fit, asynchronously, under
// the write timeout.
net::awaitable<bool> GenerationBase::send(std::string_view data) {
  boost::system::error_code ec;
  const std::size_t n = c_.stream.socket().write_some(net::buffer(data), ec);
  if (ec && ec != net::error::would_block && ec != net::error::try_again) {
    c_.ctx.metrics.count_disconnect();
    co_return false;
  }
  if (n == data.size())
    co_return true;
  data.remove_prefix(n);
  c_.stream.expires_after(c_.ctx.config.write_timeout);
  auto [wec, wn] = co_await net::async_write(c_.stream, net::buffer(data), as_tuple_awaitable);
  if (wec == beast::error::timeout)
    c_.ctx.metrics.count_send_timeout();  // it stopped reading: the generation ends with us
  if (wec)
    c_.ctx.metrics.count_disconnect();
  co_return !wec;
}

// Appends the SSE events (one HTTP chunk each) that `ev` calls for, and after a final event
// the terminating chunk; counts the tokens of a Delta into `tokens`.
Generation::Step Generation::add_event(const engine::StreamEvent& ev, std::string& out,
                                       std::size_t& tokens) {
  if (const auto* d = std::get_if<engine::Delta>(&ev)) {
    tokens += d->tokens.size();
    writer_->seen(*d);
    writer_->delta(*d, out);
    return Step::more;
  }
  if (const auto* f = std::get_if<engine::Finished>(&ev)) {
    c_.ctx.metrics.e2e_request_latency.observe(seconds_since(c_.request_start));
    note_usage(c_, f->usage);
    writer_->finish(*f, out);
    return Step::finished;
  }
  if (const auto* e = std::get_if<engine::Failed>(&ev)) {
    writer_->fail(e->error, out);
    return Step::failed;
  }
  return Step::more;
}

// Waits for the next event. For writers that ping, a wait longer than the ping interval
// sends a ping (through `out`, which is empty on entry and left empty) and waits again; a
// cancelled wait on the stream leaves its events queued, so nothing is lost.
net::awaitable<std::optional<engine::StreamEvent>> Generation::wait(engine::TokenStream& stream,
                                                                    std::string& out) {
  const std::chrono::milliseconds every = writer_->ping_every(c_.ctx.config, job_);
  if (every.count() <= 0)
    co_return co_await stream.next();
  using namespace net::experimental::awaitable_operators;
  net::steady_timer timer(c_.stream.get_executor());
  for (;;) {
    timer.expires_after(every);
    auto r = co_await (stream.next() || timer.async_wait(as_tuple_awaitable));
    if (r.index() == 0)
      co_return std::move(std::get<0>(r));
    writer_->ping(out);
    const bool ok = co_await send(out);
    out.clear();
    if (!ok) {
      send_failed_ = true;
      co_return std::nullopt;
    }
  }
}

// Each wake-up takes every event already queued and writes them in one go: nothing waits to
// be batched, a token goes out as soon as the session sees it.
net::awaitable<bool> Generation::run_streaming(engine::TokenStream& stream,
                                               const ClientWatch& watch,
                                               const engine::Started& started) {
  if (!co_await write_sse_header())
    co_return false;
  std::string out;
  writer_->start(started, out);
  for (;;) {
    if (!out.empty()) {
      if (!co_await send(out))
        co_return false;
      out.clear();
    }
    std::optional<engine::StreamEvent> ev = stream.try_next();
    if (!ev && watch.interrupt() == Interrupt::none)
      ev = co_await wait(stream, out);
    if (!ev && watch.interrupt() == Interrupt::client_closed) {
      c_.ctx.metrics.count_disconnect();
      co_return false;
    }
    if (send_failed_)
      co_return false;  // a ping found the client gone; the stream is cancelled with us
    const engine::StreamEvent first =
        ev ? std::move(*ev)
           : engine::StreamEvent(engine::Failed{interrupt_error(watch.interrupt(), "ended early")});
    std::size_t tokens = 0;
    Step step = add_event(first, out, tokens);
    while (step == Step::more) {
      auto more = stream.try_next();
      if (!more)
        break;
      step = add_event(*more, out, tokens);
    }
    observe_tokens(tokens);
    if (step == Step::finished)
      co_return co_await send(out) && !c_.draining && c_.keep_alive;
    if (step == Step::failed) {
      co_await send(out);
      co_return false;
    }
  }
}

// OpenAI's n > 1 and lists of prompts: one task per answer (GenerationJob::task_for),
// answered as one response whose choices carry their index (in a stream, their chunks
// interleave as their tokens come); in llama-server's shape (/completion) an array of its
// answer objects, each with its index. Answer 0 goes first; the others are submitted once its
// first token has come, when its prompt is in the KV cache: the other answers to that prompt
// then take those cells (the engine's prefix reuse copies them from another slot holding the
// prompt) instead of evaluating the prompt again. At most api::choices_at_once answers are in
// the engine at a time; the next is submitted when one finishes. A stream begins with answer
// 0's first token; the others join it as the engine starts them. Any answer failing fails the
// request (the others are cancelled).
class Choices : GenerationBase {
 public:
  Choices(Connection& c, GenerationJob job) : GenerationBase(c, job), job_(std::move(job)) {
    job_.task.request_id = head_.id;
  }

  net::awaitable<bool> run();

 private:
  struct Choice {
    engine::TokenStream stream;
    api::ChunkWriter chunks;
    api::CompletionResult result;
    bool done = false;
    std::unique_ptr<NativeWriter> native;  // llama-server's shape (Dialect::llama)
    engine::Finished finished;
  };
  using Event = std::pair<std::size_t, engine::StreamEvent>;  // a choice's event

  net::awaitable<std::optional<engine::StreamEvent>> next(engine::TokenStream& stream,
                                                          const ClientWatch& watch);
  net::awaitable<std::vector<Event>> wait_any(std::chrono::milliseconds every, bool& silent);
  std::chrono::milliseconds ping_every() const;
  net::awaitable<bool> interrupted(const ClientWatch& watch);
  void take(const Event& ev, std::string& out, std::size_t& tokens);
  std::string body();
  void finish(std::string& out) const;

  GenerationJob job_;
  std::vector<Choice> choices_;
  std::optional<Error> failed_;  // the first choice that failed
  engine::Usage usage_;          // the prompt once, the completions of every choice
};

// The stream's next event; nullopt when the watch cancelled the request.
net::awaitable<std::optional<engine::StreamEvent>> Choices::next(engine::TokenStream& stream,
                                                                 const ClientWatch& watch) {
  std::optional<engine::StreamEvent> ev = stream.try_next();
  if (!ev && watch.interrupt() == Interrupt::none)
    ev = co_await stream.next();
  co_return ev;
}

// Waits until at least one unfinished choice has an event and returns every event the wait
// got (the losers' waits are cancelled, but one may have completed first). Empty when the
// watch cancelled the streams, or when `every` (> 0) passed without an event: then
// `silent` is set.
net::awaitable<std::vector<Choices::Event>> Choices::wait_any(std::chrono::milliseconds every,
                                                              bool& silent) {
  // Each wait is bound to this coroutine's executor, so that the stream completes it there
  // (a deferred operation has no executor of its own).
  const auto ex = co_await net::this_coro::executor;
  using Op =
      decltype(std::declval<engine::TokenStream&>().next(net::bind_executor(ex, net::deferred)));
  std::vector<Op> ops;
  std::vector<std::size_t> which;
  for (std::size_t i = 0; i < choices_.size(); ++i) {
    if (!choices_[i].done) {
      ops.push_back(choices_[i].stream.next(net::bind_executor(ex, net::deferred)));
      which.push_back(i);
    }
  }
  auto streams = net::experimental::make_parallel_group(std::move(ops));
  std::vector<std::size_t> order;
  std::vector<std::optional<engine::StreamEvent>> events;
  silent = false;
  if (every.count() > 0) {
    // The streams' group and a timer: the timer's end cancels the group, which still hands
    // over whatever event a stream completed with first.
    net::steady_timer timer(ex, every);
    auto [first, timer_ec, o, e] =
        co_await net::experimental::make_parallel_group(
            timer.async_wait(net::bind_executor(ex, net::deferred)),
            streams.async_wait(net::experimental::wait_for_one(),
                               net::bind_executor(ex, net::deferred)))
            .async_wait(net::experimental::wait_for_one(), use_awaitable);
    silent = first[0] == 0 && !timer_ec;
    order = std::move(o);
    events = std::move(e);
  } else {
    std::tie(order, events) =
        co_await streams.async_wait(net::experimental::wait_for_one(), use_awaitable);
  }
  std::vector<Event> got;
  for (std::size_t k : order) {
    if (events[k])
      got.emplace_back(which[k], std::move(*events[k]));
  }
  if (!got.empty())
    silent = false;
  co_return got;
}

// A stream of several answers pings as one answer's does (AnswerWriter::ping_every): an SSE
// comment, OpenAI's and llama-server's shapes alike.
std::chrono::milliseconds Choices::ping_every() const {
  return job_.stream ? sse_ping_interval(c_.ctx.config, job_) : std::chrono::milliseconds(0);
}

// Before anything was written: the client left (nothing to answer) or the server's shutdown
// deadline came (an error response).
net::awaitable<bool> Choices::interrupted(const ClientWatch& watch) {
  if (watch.interrupt() == Interrupt::client_closed) {
    c_.ctx.metrics.count_disconnect();
    co_return false;
  }
  co_return co_await fail(interrupt_error(watch.interrupt(), "The generation ended early"));
}

void Choices::take(const Event& ev, std::string& out, std::size_t& tokens) {
  Choice& ch = choices_[ev.first];
  if (const auto* s = std::get_if<engine::Started>(&ev.second)) {
    if (ch.native)
      ch.native->began(*s);
  } else if (const auto* d = std::get_if<engine::Delta>(&ev.second)) {
    tokens += d->tokens.size();
    if (ch.native) {
      ch.native->seen(*d);
      if (job_.stream)
        ch.native->delta(*d, out);
      else
        ch.result.text += d->text;
    } else if (job_.stream) {
      append_openai_delta(ch.chunks, *d, job_.logprobs, out);
    } else {
      accumulate(ch.result, *d);
    }
  } else if (const auto* f = std::get_if<engine::Finished>(&ev.second)) {
    ch.done = true;
    ch.result.finish_reason = finish_reason_name(f->reason);
    ch.finished = *f;
    // Each prompt counted once: by its first answer.
    if (ev.first % static_cast<std::size_t>(job_.choices) == 0) {
      usage_.prompt_tokens += f->usage.prompt_tokens;
      usage_.cached_tokens += f->usage.cached_tokens;
    }
    usage_.completion_tokens += f->usage.completion_tokens;
    usage_.reasoning_tokens += f->usage.reasoning_tokens;
    usage_.accepted_prediction_tokens += f->usage.accepted_prediction_tokens;
    usage_.rejected_prediction_tokens += f->usage.rejected_prediction_tokens;
    if (job_.stream && ch.native)
      ch.native->final_event(*f, out);
    else if (job_.stream)
      append_event(out, ch.chunks.finish_chunk(ch.result.finish_reason));
  } else if (const auto* e = std::get_if<engine::Failed>(&ev.second)) {
    ch.done = true;
    if (!failed_)
      failed_ = e->error;
  }
}

// The whole answer, once every choice has finished (their results are moved out).
std::string Choices::body() {
  if (job_.dialect == Dialect::llama) {  // llama-server's: an array of its answers
    std::string out = "[";
    for (std::size_t i = 0; i < choices_.size(); ++i) {
      if (i > 0)
        out += ',';
      out += choices_[i].native->body(choices_[i].result, choices_[i].finished);
    }
    out += ']';
    return out;
  }
  std::vector<api::CompletionResult> results;
  results.reserve(choices_.size());
  for (auto& ch : choices_)
    results.push_back(std::move(ch.result));
  return api::completions_json(job_.kind, head_, results, to_api_usage(usage_));
}

// After the last choice's finish chunk: the usage, [DONE] and the terminating chunk (in
// llama-server's shape the terminating chunk alone).
void Choices::finish(std::string& out) const {
  if (job_.dialect == Dialect::llama) {
    out += "0\r\n\r\n";
    return;
  }
  if (job_.include_usage)
    append_event(out, choices_.front().chunks.usage_chunk(to_api_usage(usage_)));
  append_event(out, "[DONE]");
  out += "0\r\n\r\n";
}

net::awaitable<bool> Choices::run() {
  const std::size_t n = job_.answers();
  choices_.reserve(n);
  const ClientWatch watch(c_, [this] {
    for (auto& ch : choices_)
      ch.stream.cancel();
  });
  const auto submit = [this](std::size_t i) -> net::awaitable<void> {
    engine::TokenStream stream = co_await c_.ctx.backend.generate(job_.task_for(i));
    choices_.push_back(Choice{std::move(stream),
                              api::ChunkWriter(job_.kind, head_, job_.include_usage, i),
                              {},
                              false,
                              nullptr,
                              {}});
    if (job_.dialect == Dialect::llama)
      choices_.back().native =
          std::make_unique<NativeWriter>(head_, job_, static_cast<std::int32_t>(i));
    if (job_.logprobs)
      choices_.back().result.logprobs.emplace();
  };
  // Choice 0 decides the response's status: refused before it starts, the request is an
  // HTTP error.
  co_await submit(0);
  auto started = co_await next(choices_[0].stream, watch);
  if (!started)
    co_return co_await interrupted(watch);
  if (const auto* f = std::get_if<engine::Failed>(&*started))
    co_return co_await fail(f->error);
  if (!std::holds_alternative<engine::Started>(*started))
    co_return co_await fail(Error{Errc::internal, "The generation did not start"});
  c_.ctx.metrics.request_queue_time.observe(seconds_since(c_.request_start));
  if (choices_[0].native)
    choices_[0].native->began(std::get<engine::Started>(*started));
  auto first_token = co_await next(choices_[0].stream, watch);
  if (!first_token)
    co_return co_await interrupted(watch);
  // The others start when the engine has room for them; until then choice 0 streams alone.
  // One of them refused later fails the request like any choice failing midway.
  const auto at_once = static_cast<std::size_t>(api::choices_at_once);
  for (std::size_t i = 1; i < std::min(n, at_once); ++i)
    co_await submit(i);
  std::string out;
  if (job_.stream) {
    if (!co_await write_sse_header())
      co_return false;
    if (job_.kind == api::CompletionKind::chat) {
      for (const auto& ch : choices_)
        append_event(out, ch.chunks.role_chunk());
    }
  }
  std::vector<Event> events;
  events.emplace_back(0, std::move(*first_token));
  for (;;) {
    std::size_t tokens = 0;
    for (const auto& ev : events)
      take(ev, out, tokens);
    for (std::size_t i = 0; i < choices_.size() && !failed_; ++i) {
      while (!choices_[i].done) {
        auto ev = choices_[i].stream.try_next();
        if (!ev)
          break;
        take({i, std::move(*ev)}, out, tokens);
      }
    }
    observe_tokens(tokens);
    // The choices still to come take the places of those that finished.
    auto in_engine = static_cast<std::size_t>(
        std::count_if(choices_.begin(), choices_.end(), [](const Choice& ch) { return !ch.done; }));
    for (; !failed_ && choices_.size() < n && in_engine < at_once; ++in_engine) {
      co_await submit(choices_.size());
      if (job_.stream && job_.kind == api::CompletionKind::chat)
        append_event(out, choices_.back().chunks.role_chunk());
    }
    const bool all_done = in_engine == 0;
    if (failed_ || all_done) {
      c_.ctx.metrics.e2e_request_latency.observe(seconds_since(c_.request_start));
      note_usage(c_, usage_);
    }
    if (failed_ && !job_.stream)
      co_return co_await fail(*failed_);
    if (failed_) {
      append_event(out, api::to_json(api::to_http_error(*failed_)));
      out += "0\r\n\r\n";
      co_await send(out);
      co_return false;
    }
    if (all_done && !job_.stream)
      co_return co_await write_response(c_, make_response(c_, http::status::ok, body()));
    if (all_done)
      finish(out);
    if (!out.empty()) {
      if (!co_await send(out))
        co_return false;
      out.clear();
    }
    if (all_done)
      co_return !c_.draining && c_.keep_alive;
    events.clear();
    bool silent = false;
    if (watch.interrupt() == Interrupt::none)
      events = co_await wait_any(ping_every(), silent);
    if (silent && watch.interrupt() == Interrupt::none) {
      append_keep_alive(out);  // the loop sends it
      continue;
    }
    if (events.empty() && watch.interrupt() == Interrupt::client_closed) {
      c_.ctx.metrics.count_disconnect();
      co_return false;
    }
    if (events.empty() && watch.interrupt() != Interrupt::none)
      failed_ = interrupt_error(watch.interrupt(), "The generation ended early");
  }
}

// A Responses request's job. The conversation: this request's instructions, the history of
// previous_response_id (a stored response), this input.
Result<GenerationJob> responses_job(const Connection& c, api::ResponsesRequest parsed) {
  std::vector<chatfmt::Message> input = std::move(parsed.chat.messages);
  std::optional<chatfmt::Message> instructions;
  if (!parsed.instructions.empty()) {
    instructions = std::move(input.front());
    input.erase(input.begin());
  }
  std::vector<chatfmt::Message> conversation;
  if (!parsed.previous_response_id.empty()) {
    auto prev = c.ctx.responses.get(parsed.previous_response_id);
    if (!prev) {
      return Error{Errc::not_found,
                   fmt::format("No stored response has the id '{}'", parsed.previous_response_id),
                   "previous_response_id"};
    }
    conversation = std::move(prev->conversation);
  }
  conversation.insert(conversation.end(), input.begin(), input.end());
  parsed.chat.messages = conversation;
  if (instructions)
    parsed.chat.messages.insert(parsed.chat.messages.begin(), std::move(*instructions));
  auto job = make_chat_job(std::move(parsed.chat), c.ctx.backend.models());
  if (job) {
    job->dialect = Dialect::responses;
    job->instructions = std::move(parsed.instructions);
    job->previous_response_id = std::move(parsed.previous_response_id);
    job->store = parsed.store;
    job->tools = std::move(parsed.tools);
    if (job->store)
      job->conversation = std::move(conversation);
  }
  return job;
}

Result<GenerationJob> parse_job(const Connection& c, const Request& req) {
  auto models = c.ctx.backend.models();
  if (c.endpoint == Endpoint::messages) {
    auto parsed = api::parse_messages_request(req.body());
    if (!parsed)
      return parsed.error();
    auto job = make_chat_job(std::move(parsed).value(), models);
    if (job)
      job->dialect = Dialect::anthropic;
    return job;
  }
  if (c.endpoint == Endpoint::responses) {
    auto parsed = api::parse_responses_request(req.body());
    if (!parsed)
      return parsed.error();
    return responses_job(c, std::move(parsed).value());
  }
  if (c.endpoint == Endpoint::chat_completions) {
    auto parsed = api::parse_chat_request(req.body());
    if (!parsed)
      return parsed.error();
    return make_chat_job(std::move(parsed).value(), models);
  }
  if (c.endpoint == Endpoint::infill) {
    auto parsed = api::parse_infill_request(req.body());
    if (!parsed)
      return parsed.error();
    return make_infill_job(std::move(parsed).value(), models);
  }
  if (c.endpoint == Endpoint::native_completion) {
    auto parsed = api::parse_native_completion_request(req.body());
    if (!parsed)
      return parsed.error();
    return make_native_completion_job(std::move(parsed).value(), models);
  }
  auto parsed = api::parse_completion_request(req.body());
  if (!parsed)
    return parsed.error();
  return make_completion_job(std::move(parsed).value(), models);
}

}  // namespace

net::awaitable<bool> handle_generation(Connection& c, Request& req) {
  co_return co_await answer_generation(c, parse_job(c, req));
}

net::awaitable<bool> answer_generation(Connection& c, Result<GenerationJob> job) {
  if (!job) {
    co_return co_await write_response(
        c, error_response(c, api::to_http_error(job.error(), c.ctx.config.retry_after_seconds)));
  }
  if (job->answers() > 1) {
    Choices choices(c, std::move(job).value());
    co_return co_await choices.run();
  }
  Generation g(c, std::move(job).value());
  co_return co_await g.run();
}

net::awaitable<bool> handle_stored_response(Connection& c, Request& req) {
  const std::string id(response_id(req.target()));
  const auto missing = [&] {
    return error_response(c, api::to_http_error(Error{Errc::not_found,
                                                      fmt::format("No stored response has the id "
                                                                  "'{}'",
                                                                  id),
                                                      "response_id"}));
  };
  if (req.method() == http::verb::delete_) {
    if (!c.ctx.responses.erase(id))
      co_return co_await write_response(c, missing());
    co_return co_await write_response(
        c, make_response(c, http::status::ok, api::response_deleted_json(id)));
  }
  auto stored = c.ctx.responses.get(id);
  if (!stored)
    co_return co_await write_response(c, missing());
  co_return co_await write_response(c, make_response(c, http::status::ok, std::move(stored->json)));
}

// The prompt's tokens as generate() would render and tokenize them: the template's text,
// tokenized with the model's special tokens.
net::awaitable<Result<std::int32_t>> count_prompt_tokens(Connection& c, Result<GenerationJob> job) {
  if (!job)
    co_return job.error();
  const std::string model = job->model;
  auto prompt = co_await c.ctx.backend.apply_template(std::move(job->task));
  if (!prompt)
    co_return prompt.error();
  auto tokens = co_await c.ctx.backend.tokenize(model, std::move(prompt).value(), true, true);
  if (!tokens)
    co_return tokens.error();
  co_return static_cast<std::int32_t>(tokens->size());
}

// The job of a count request: a Messages, a Responses or a chat completion request's.
Result<GenerationJob> count_job(const Connection& c, const Request& req) {
  if (c.endpoint == Endpoint::chat_input_tokens) {
    auto parsed = api::parse_chat_request(req.body());
    if (!parsed)
      return parsed.error();
    if (parsed->params.stream)
      return Error{Errc::invalid_request, "input_tokens does not stream", "stream"};
    return make_chat_job(std::move(parsed).value(), c.ctx.backend.models());
  }
  if (c.endpoint == Endpoint::response_input_tokens) {
    auto parsed = api::parse_responses_request(req.body());
    if (!parsed)
      return parsed.error();
    if (parsed->chat.params.stream)
      return Error{Errc::invalid_request, "input_tokens does not stream", "stream"};
    return responses_job(c, std::move(parsed).value());
  }
  auto parsed = api::parse_count_tokens_request(req.body());
  if (!parsed)
    return parsed.error();
  return make_chat_job(std::move(parsed).value(), c.ctx.backend.models());
}

// Anthropic's count_tokens, OpenAI's responses/input_tokens and llama-server's
// chat/completions/input_tokens: the count in each API's shape (the last two share OpenAI's).
// (No conditional expressions in this coroutine: GCC 12 mishandles their temporaries.)
net::awaitable<bool> handle_count_tokens(Connection& c, Request& req) {
  auto count = co_await count_prompt_tokens(c, count_job(c, req));
  if (!count) {
    co_return co_await write_response(
        c, error_response(c, api::to_http_error(count.error(), c.ctx.config.retry_after_seconds)));
  }
  std::string body;
  if (c.endpoint == Endpoint::response_input_tokens || c.endpoint == Endpoint::chat_input_tokens)
    body = api::response_input_tokens_json(*count);
  else
    body = api::count_tokens_json(*count);
  co_return co_await write_response(c, make_response(c, http::status::ok, std::move(body)));
}

// The job of an apply-template request: a chat completion's.
Result<GenerationJob> template_job(const Connection& c, const Request& req) {
  auto parsed = api::parse_chat_request(req.body());
  if (!parsed)
    return parsed.error();
  return make_chat_job(std::move(parsed).value(), c.ctx.backend.models());
}

// (No conditional expressions in this coroutine: GCC 12 evaluates both co_await operands of
// ?: and mishandles the temporaries of others.)
net::awaitable<bool> handle_apply_template(Connection& c, Request& req) {
  auto job = template_job(c, req);
  Result<std::string> prompt = Error{Errc::internal, "no prompt"};
  if (job)
    prompt = co_await c.ctx.backend.apply_template(std::move(job->task));
  else
    prompt = job.error();
  if (!prompt) {
    co_return co_await write_response(
        c, error_response(c, api::to_http_error(prompt.error(), c.ctx.config.retry_after_seconds)));
  }
  co_return co_await write_response(
      c, make_response(c, http::status::ok, api::apply_template_json(*prompt)));
}

}  // namespace troupe::server::detail
