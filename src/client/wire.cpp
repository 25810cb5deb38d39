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

namespace {

json::value parsed_or_empty(std::string_view text) {
  json::error_code ec;
  auto v = json::parse(text, ec);
  return !ec && v.is_object() ? v : json::value(json::object{});
}

}  // namespace

std::string messages_body(const ChatRequest& r, bool stream) {
  json::object o;
  o["model"] = r.model;
  std::string system;
  json::array msgs;
  const auto append_block = [&](std::string_view role, json::object block) {
    if (msgs.empty() || msgs.back().at("role").as_string() != role)
      msgs.push_back(json::object{{"role", role}, {"content", json::array{}}});
    msgs.back().at("content").as_array().push_back(std::move(block));
  };
  for (const auto& m : r.messages) {
    if (m.role == "system") {
      system += system.empty() ? m.content : "\n" + m.content;
    } else if (m.role == "tool") {
      append_block(
          "user",
          {{"type", "tool_result"}, {"tool_use_id", m.tool_call_id}, {"content", m.content}});
    } else {
      if (!m.content.empty())
        append_block(m.role, {{"type", "text"}, {"text", m.content}});
      for (const auto& c : m.tool_calls) {
        append_block(m.role, {{"type", "tool_use"},
                              {"id", c.id},
                              {"name", c.name},
                              {"input", parsed_or_empty(c.arguments)}});
      }
    }
  }
  if (!system.empty())
    o["system"] = system;
  o["messages"] = std::move(msgs);
  if (!r.tools.empty()) {
    json::array tools;
    for (const auto& t : r.tools) {
      const auto* f = t.is_object() ? t.as_object().if_contains("function") : nullptr;
      if (f == nullptr || !f->is_object())
        continue;
      const auto& fn = f->as_object();
      json::object tool;
      if (const auto* n = fn.if_contains("name"))
        tool["name"] = *n;
      if (const auto* d = fn.if_contains("description"))
        tool["description"] = *d;
      const auto* params = fn.if_contains("parameters");
      tool["input_schema"] = params ? *params : json::value(json::object{{"type", "object"}});
      tools.push_back(std::move(tool));
    }
    o["tools"] = std::move(tools);
  }
  if (!r.tool_choice.empty()) {
    const std::string_view c = r.tool_choice;
    o["tool_choice"] = json::object{{"type", c == "required" ? "any" : c}};
  }
  o["max_tokens"] = r.sampling.max_tokens.value_or(4096);
  if (r.sampling.temperature)
    o["temperature"] = *r.sampling.temperature;
  if (r.sampling.top_p)
    o["top_p"] = *r.sampling.top_p;
  if (!r.sampling.stop.empty()) {
    json::array stops;
    for (const auto& st : r.sampling.stop)
      stops.emplace_back(st);
    o["stop_sequences"] = std::move(stops);
  }
  o["stream"] = stream;
  for (const auto& kv : r.extra)
    o[kv.key()] = kv.value();
  return json::serialize(o);
}

Chunk AnthropicDecoder::decode(std::string_view event, std::string_view data, ChunkText& text) {
  Chunk out;
  text.content.clear();
  text.reasoning.clear();
  text.tool_calls.clear();
  if (event == "ping")
    return out;
  json::error_code ec;
  const json::value v = json::parse(data, ec);
  const auto* o = ec ? nullptr : v.if_object();
  if (o == nullptr) {
    out.error = ClientError{Errc::internal, 0, "malformed JSON in the stream", {}};
    return out;
  }
  const auto str = [](const json::object* obj, std::string_view key) -> std::string_view {
    const auto* x = obj ? obj->if_contains(key) : nullptr;
    return x && x->is_string() ? std::string_view(x->as_string()) : std::string_view();
  };
  const auto num = [](const json::object* obj, std::string_view key) -> std::int32_t {
    const auto* x = obj ? obj->if_contains(key) : nullptr;
    return x && x->is_int64() ? static_cast<std::int32_t>(x->as_int64()) : 0;
  };
  const auto obj_at = [](const json::object* obj, std::string_view key) -> const json::object* {
    const auto* x = obj ? obj->if_contains(key) : nullptr;
    return x ? x->if_object() : nullptr;
  };
  const std::string_view type = str(o, "type");
  if (type == "error") {
    ClientError e{Errc::internal, 0, {}, {}};
    read_error_object(v, e.message, e.type);
    out.error = std::move(e);
  } else if (type == "message_start") {
    const auto* usage = obj_at(obj_at(o, "message"), "usage");
    input_tokens_ = num(usage, "input_tokens") + num(usage, "cache_read_input_tokens");
  } else if (type == "content_block_start") {
    const auto* block = obj_at(o, "content_block");
    if (str(block, "type") == "tool_use") {
      if (tools_ >= kMaxToolCalls) {
        out.error = ClientError{Errc::internal, 0, "too many tool calls in the stream", {}};
        return out;
      }
      text.tool_calls.push_back(
          {tools_++, std::string(str(block, "id")), std::string(str(block, "name")), {}});
    }
  } else if (type == "content_block_delta") {
    const auto* d = obj_at(o, "delta");
    const auto kind = str(d, "type");
    if (kind == "text_delta")
      text.content.assign(str(d, "text"));
    else if (kind == "thinking_delta")
      text.reasoning.assign(str(d, "thinking"));
    else if (kind == "input_json_delta" && tools_ > 0)
      text.tool_calls.push_back({tools_ - 1, {}, {}, std::string(str(d, "partial_json"))});
  } else if (type == "message_delta") {
    text.finish_reason.assign(str(obj_at(o, "delta"), "stop_reason"));
    out.has_finish = true;
    const auto* usage = obj_at(o, "usage");
    out.usage = Usage{input_tokens_, num(usage, "output_tokens")};
  }
  out.has_text = !text.content.empty() || !text.reasoning.empty() || !text.tool_calls.empty();
  return out;
}

std::string responses_body(const ChatRequest& r, bool stream) {
  json::object o;
  o["model"] = r.model;
  std::string instructions;
  json::array input;
  for (const auto& m : r.messages) {
    if (m.role == "system") {
      instructions += instructions.empty() ? m.content : "\n" + m.content;
    } else if (m.role == "tool") {
      input.push_back(json::object{
          {"type", "function_call_output"}, {"call_id", m.tool_call_id}, {"output", m.content}});
    } else {
      if (!m.content.empty() || m.tool_calls.empty())
        input.push_back(json::object{{"role", m.role}, {"content", m.content}});
      for (const auto& c : m.tool_calls) {
        input.push_back(json::object{{"type", "function_call"},
                                     {"call_id", c.id},
                                     {"name", c.name},
                                     {"arguments", c.arguments}});
      }
    }
  }
  if (!instructions.empty())
    o["instructions"] = instructions;
  o["input"] = std::move(input);
  if (!r.tools.empty()) {
    json::array tools;
    for (const auto& t : r.tools) {
      const auto* f = t.is_object() ? t.as_object().if_contains("function") : nullptr;
      if (f == nullptr || !f->is_object())
        continue;
      json::object tool = f->as_object();
      tool["type"] = "function";
      tools.push_back(std::move(tool));
    }
    o["tools"] = std::move(tools);
  }
  if (!r.tool_choice.empty())
    o["tool_choice"] = r.tool_choice;
  if (r.sampling.max_tokens)
    o["max_output_tokens"] = *r.sampling.max_tokens;
  if (r.sampling.temperature)
    o["temperature"] = *r.sampling.temperature;
  if (r.sampling.top_p)
    o["top_p"] = *r.sampling.top_p;
  o["store"] = false;
  o["stream"] = stream;
  for (const auto& kv : r.extra)
    o[kv.key()] = kv.value();
  return json::serialize(o);
}

Chunk ResponsesDecoder::decode(std::string_view data, ChunkText& text) {
  Chunk out;
  text.content.clear();
  text.reasoning.clear();
  text.tool_calls.clear();
  json::error_code ec;
  const json::value v = json::parse(data, ec);
  const auto* o = ec ? nullptr : v.if_object();
  if (o == nullptr) {
    out.error = ClientError{Errc::internal, 0, "malformed JSON in the stream", {}};
    return out;
  }
  const auto str = [](const json::object* obj, std::string_view key) -> std::string_view {
    const auto* x = obj ? obj->if_contains(key) : nullptr;
    return x && x->is_string() ? std::string_view(x->as_string()) : std::string_view();
  };
  const auto obj_at = [](const json::object* obj, std::string_view key) -> const json::object* {
    const auto* x = obj ? obj->if_contains(key) : nullptr;
    return x ? x->if_object() : nullptr;
  };
  const std::string_view type = str(o, "type");
  if (type == "response.output_text.delta") {
    text.content.assign(str(o, "delta"));
  } else if (type == "response.reasoning_text.delta" ||
             type == "response.reasoning_summary_text.delta") {
    text.reasoning.assign(str(o, "delta"));
  } else if (type == "response.output_item.added") {
    const auto* item = obj_at(o, "item");
    if (str(item, "type") == "function_call") {
      if (tools_ >= kMaxToolCalls) {
        out.error = ClientError{Errc::internal, 0, "too many tool calls in the stream", {}};
        return out;
      }
      text.tool_calls.push_back(
          {tools_++, std::string(str(item, "call_id")), std::string(str(item, "name")), {}});
    }
  } else if (type == "response.function_call_arguments.delta" && tools_ > 0) {
    text.tool_calls.push_back({tools_ - 1, {}, {}, std::string(str(o, "delta"))});
  } else if (type == "response.completed" || type == "response.incomplete") {
    const auto* response = obj_at(o, "response");
    bool calls = false;
    if (const auto* items = response ? response->if_contains("output") : nullptr;
        items && items->is_array()) {
      for (const auto& i : items->as_array())
        calls = calls || (i.is_object() && str(&i.as_object(), "type") == "function_call");
    }
    text.finish_reason = type == "response.incomplete" ? "length" : calls ? "tool_calls" : "stop";
    out.has_finish = true;
    if (const auto* u = obj_at(response, "usage")) {
      const auto num = [&](std::string_view key) {
        const auto* x = u->if_contains(key);
        return x && x->is_int64() ? static_cast<std::int32_t>(x->as_int64()) : 0;
      };
      out.usage = Usage{num("input_tokens"), num("output_tokens")};
    }
  } else if (type == "response.failed" || type == "error") {
    const auto* response = obj_at(o, "response");
    const auto* err = obj_at(response ? response : o, "error");
    std::string message(str(err, "message"));
    out.error = ClientError{
        Errc::internal, 0, message.empty() ? std::string("the response failed") : message, {}};
  }
  out.has_text = !text.content.empty() || !text.reasoning.empty() || !text.tool_calls.empty();
  return out;
}

}  // namespace troupe::client::wire
