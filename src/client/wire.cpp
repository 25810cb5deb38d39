#include "client/wire.hpp"

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>

namespace troupe::client::wire {

namespace json = boost::json;

namespace {

void put_sampling(json::object& o, const Sampling& s) {
  for (auto& kv : sampling_json(s))
    o[kv.key()] = std::move(kv.value());
}

void finish_body(json::object& o, bool stream, bool include_usage, const json::object& extra) {
  o["stream"] = stream;
  if (stream && include_usage)
    o["stream_options"] = json::object{{"include_usage", true}};
  for (const auto& kv : extra)
    o[kv.key()] = kv.value();
}

Errc errc_from_status(int status) {
  switch (status) {
    case 400:
    case 413:
    case 422:
      return Errc::invalid_request;
    case 401:
    case 403:
      return Errc::unauthorized;
    case 404:
      return Errc::not_found;
    case 408:
      return Errc::timeout;
    case 429:
    case 503:
      return Errc::overloaded;
    default:
      return status >= 400 && status < 500 ? Errc::invalid_request : Errc::internal;
  }
}

// {"error": {"message": .., "type": ..}} or {"error": "text"} or {"message": ..}.
bool read_error_object(const json::value& v, std::string& message, std::string& type,
                       std::string* code = nullptr) {
  const auto* o = v.if_object();
  if (!o)
    return false;
  const json::value* e = o->if_contains("error");
  if (!e)
    e = o->if_contains("detail");  // FastAPI-style servers
  if (e && e->is_string()) {
    message = e->as_string();
    return true;
  }
  const auto* eo = e ? e->if_object() : o;
  if (!eo)
    return false;
  if (const auto* m = eo->if_contains("message"); m && m->is_string())
    message = m->as_string();
  if (const auto* t = eo->if_contains("type"); t && t->is_string())
    type = t->as_string();
  if (const auto* c = eo->if_contains("code"); code && c && c->is_string())
    *code = c->as_string();
  return !message.empty() || e != nullptr;
}

std::optional<Usage> read_usage(const json::object& o) {
  const auto* u = o.if_contains("usage");
  if (!u || !u->is_object())
    return std::nullopt;
  Usage usage;
  if (const auto* p = u->as_object().if_contains("prompt_tokens"); p && p->is_number())
    usage.prompt_tokens = static_cast<std::int32_t>(p->to_number<double>());
  if (const auto* c = u->as_object().if_contains("completion_tokens"); c && c->is_number())
    usage.completion_tokens = static_cast<std::int32_t>(c->to_number<double>());
  return usage;
}

const json::object* first_choice(const json::object& o) {
  const auto* ch = o.if_contains("choices");
  if (!ch || !ch->is_array() || ch->as_array().empty())
    return nullptr;
  return ch->as_array().front().if_object();
}

void assign_string(const json::object* o, std::string_view key, std::string& out) {
  if (!o)
    return;
  if (const auto* v = o->if_contains(key); v && v->is_string()) {
    out.assign(v->as_string().data(), v->as_string().size());
  }
}

// `function.arguments`: a string of JSON text; an object (some servers send one) is written
// out as JSON text.
void assign_arguments(const json::object* fn, std::string& out) {
  const auto* a = fn ? fn->if_contains("arguments") : nullptr;
  if (!a || a->is_null())
    return;
  if (a->is_string()) {
    out.assign(a->as_string().data(), a->as_string().size());
  } else {
    out = json::serialize(*a);
  }
}

const json::object* function_of(const json::object& call) {
  const auto* fn = call.if_contains("function");
  return fn ? fn->if_object() : nullptr;
}

// A message's `tool_calls` (non-streamed answers).
std::vector<ToolCall> read_tool_calls(const json::object* message) {
  std::vector<ToolCall> out;
  const auto* calls = message ? message->if_contains("tool_calls") : nullptr;
  if (!calls || !calls->is_array())
    return out;
  for (const auto& v : calls->as_array()) {
    const auto* o = v.if_object();
    if (!o)
      continue;
    ToolCall c;
    assign_string(o, "id", c.id);
    assign_string(function_of(*o), "name", c.name);
    assign_arguments(function_of(*o), c.arguments);
    out.push_back(std::move(c));
  }
  return out;
}

// A delta's `tool_calls` pieces into `out` (cleared first). Returns false for an index out of
// range. Pieces without an index take their position in the array.
bool read_tool_call_deltas(const json::object* delta, std::vector<ToolCallDelta>& out) {
  out.clear();
  const auto* calls = delta ? delta->if_contains("tool_calls") : nullptr;
  if (!calls || !calls->is_array())
    return true;
  const auto& array = calls->as_array();
  for (std::size_t i = 0; i < array.size(); ++i) {
    const auto* o = array[i].if_object();
    if (!o)
      continue;
    ToolCallDelta& d = out.emplace_back();
    d.index = i;
    if (const auto* index = o->if_contains("index"); index && index->is_number()) {
      const double at = index->to_number<double>();
      if (!(at >= 0 && at < static_cast<double>(kMaxToolCalls)))
        return false;
      d.index = static_cast<std::size_t>(at);
    }
    assign_string(o, "id", d.id);
    assign_string(function_of(*o), "name", d.name);
    assign_arguments(function_of(*o), d.arguments);
  }
  return true;
}

}  // namespace

json::object sampling_json(const Sampling& s) {
  json::object o;
  if (s.max_tokens)
    o["max_tokens"] = *s.max_tokens;
  if (s.temperature)
    o["temperature"] = *s.temperature;
  if (s.top_p)
    o["top_p"] = *s.top_p;
  if (s.seed)
    o["seed"] = *s.seed;
  if (!s.stop.empty()) {
    json::array stops;
    for (const auto& st : s.stop)
      stops.emplace_back(st);
    o["stop"] = std::move(stops);
  }
  return o;
}

json::object message_json(const Message& m) {
  json::object o{{"role", m.role}};
  if (m.content.empty() && !m.tool_calls.empty()) {
    o["content"] = nullptr;
  } else {
    o["content"] = m.content;
  }
  if (!m.tool_calls.empty()) {
    json::array calls;
    for (const auto& c : m.tool_calls) {
      calls.push_back({{"id", c.id},
                       {"type", "function"},
                       {"function", {{"name", c.name}, {"arguments", c.arguments}}}});
    }
    o["tool_calls"] = std::move(calls);
  }
  if (!m.tool_call_id.empty())
    o["tool_call_id"] = m.tool_call_id;
  return o;
}

std::string chat_body(const ChatRequest& r, bool stream) {
  json::object o;
  if (!r.model.empty())
    o["model"] = r.model;
  json::array msgs;
  for (const auto& m : r.messages)
    msgs.emplace_back(message_json(m));
  o["messages"] = std::move(msgs);
  if (!r.tools.empty())
    o["tools"] = r.tools;
  if (!r.tool_choice.empty())
    o["tool_choice"] = r.tool_choice;
  put_sampling(o, r.sampling);
  finish_body(o, stream, r.include_usage, r.extra);
  return json::serialize(o);
}

std::string completion_body(const CompletionRequest& r, bool stream) {
  json::object o;
  if (!r.model.empty())
    o["model"] = r.model;
  o["prompt"] = r.prompt;
  put_sampling(o, r.sampling);
  finish_body(o, stream, r.include_usage, r.extra);
  return json::serialize(o);
}

ClientError error_from_response(int status, std::string_view body) {
  ClientError e{errc_from_status(status), status, {}, {}};
  json::error_code ec;
  auto v = json::parse(body, ec);
  std::string code;
  const bool read = !ec && read_error_object(v, e.message, e.type, &code);
  // A prompt over the context: OpenAI's and troupe's code, llama-server's type.
  if (code == "context_length_exceeded" || e.type == "exceed_context_size_error")
    e.code = Errc::prompt_too_long;
  if (!read || e.message.empty()) {
    e.message = std::string(body.substr(0, 300));
    while (!e.message.empty() && (e.message.back() == '\n' || e.message.back() == '\r'))
      e.message.pop_back();
  }
  e.message = "HTTP " + std::to_string(status) + (e.message.empty() ? "" : ": " + e.message);
  return e;
}

ClientResult<Answer> parse_answer(std::string_view body, bool chat) {
  json::error_code ec;
  auto v = json::parse(body, ec);
  if (ec || !v.is_object()) {
    return ClientError{Errc::internal, 0, "malformed JSON in the response: " + ec.message(), {}};
  }
  Answer a;
  const auto& o = v.as_object();
  const auto* choice = first_choice(o);
  if (!choice)
    return ClientError{Errc::internal, 0, "response without choices", {}};
  if (chat) {
    const auto* m = choice->if_contains("message");
    const auto* mo = m ? m->if_object() : nullptr;
    assign_string(mo, "content", a.content);
    assign_string(mo, "reasoning_content", a.reasoning);
    a.tool_calls = read_tool_calls(mo);
  } else {
    assign_string(choice, "text", a.content);
  }
  assign_string(choice, "finish_reason", a.finish_reason);
  a.usage = read_usage(o);
  return a;
}

ChunkDecoder::ChunkDecoder()
    : arena_(scratch_, sizeof scratch_), parser_(json::storage_ptr(), json::parse_options{}) {}

Chunk ChunkDecoder::decode(std::string_view data, bool chat, ChunkText& text) {
  Chunk out;
  text.content.clear();
  text.reasoning.clear();
  text.tool_calls.clear();
  arena_.release();
  parser_.reset(json::storage_ptr(&arena_));
  json::error_code ec;
  parser_.write(data.data(), data.size(), ec);
  if (ec) {
    out.error = ClientError{Errc::internal, 0, "malformed JSON in the stream: " + ec.message(), {}};
    return out;
  }
  json::value v = parser_.release();
  const auto* o = v.if_object();
  if (!o) {
    out.error = ClientError{Errc::internal, 0, "stream chunk is not a JSON object", {}};
    return out;
  }
  if (o->contains("error")) {
    ClientError e{Errc::internal, 0, {}, {}};
    read_error_object(v, e.message, e.type);
    if (e.message.empty())
      e.message = "error in the stream";
    out.error = std::move(e);
    return out;
  }
  if (const auto* choice = first_choice(*o)) {
    const auto* d = chat ? choice->if_contains("delta") : nullptr;
    const auto* src = chat ? (d ? d->if_object() : nullptr) : choice;
    assign_string(src, chat ? "content" : "text", text.content);
    if (chat) {
      assign_string(src, "reasoning_content", text.reasoning);
      if (!read_tool_call_deltas(src, text.tool_calls)) {
        out.error =
            ClientError{Errc::internal, 0, "tool call index out of range in the stream", {}};
        return out;
      }
    }
    if (const auto* fr = choice->if_contains("finish_reason"); fr && fr->is_string()) {
      text.finish_reason.assign(fr->as_string().data(), fr->as_string().size());
      out.has_finish = true;
    }
  }
  out.has_text = !text.content.empty() || !text.reasoning.empty() || !text.tool_calls.empty();
  out.usage = read_usage(*o);
  return out;
}

}  // namespace troupe::client::wire
