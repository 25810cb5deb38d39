#include "api/responses.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <boost/json.hpp>
#include <cctype>
#include <limits>

#include "api/json_reader.hpp"

namespace troupe::api {
namespace json = boost::json;
namespace {

constexpr std::int32_t int32_max = std::numeric_limits<std::int32_t>::max();

Error invalid(std::string message, std::string param) {
  return Error{Errc::invalid_request, std::move(message), std::move(param)};
}

std::string_view str(const json::object& o, std::string_view key) {
  const auto* v = o.if_contains(key);
  return v && v->is_string() ? std::string_view(v->get_string()) : std::string_view();
}

// A message item's content: a string, or input_text / output_text parts joined with '\n'.
Result<std::string> read_content(const json::value* v, const std::string& param) {
  if (v == nullptr || v->is_null())
    return invalid("A message item needs 'content'", param);
  if (v->is_string())
    return std::string(v->get_string());
  if (!v->is_array())
    return invalid("'content' must be a string or an array of parts", param);
  std::string out;
  for (std::size_t i = 0; i < v->get_array().size(); ++i) {
    const std::string p = fmt::format("{}[{}]", param, i);
    const auto* part = v->get_array()[i].if_object();
    if (part == nullptr)
      return invalid("Each content part must be an object", p);
    const auto type = str(*part, "type");
    if (type != "input_text" && type != "output_text" && type != "text")
      return invalid(fmt::format("Content parts of type '{}' are not supported (text only)", type),
                     p + ".type");
    const auto* t = part->if_contains("text");
    if (t == nullptr || !t->is_string())
      return invalid("A text part needs a string 'text'", p + ".text");
    if (!out.empty())
      out += '\n';
    out += t->get_string();
  }
  return out;
}

// The last message if it is an assistant's that more calls or reasoning may join, else a new one.
Message& assistant_turn(std::vector<Message>& out) {
  if (out.empty() || out.back().role != "assistant")
    out.push_back(Message{.role = "assistant"});
  return out.back();
}

std::optional<Error> read_input(const json::value& v, std::vector<Message>& out) {
  if (v.is_string()) {
    out.push_back(Message{.role = "user", .content = std::string(v.get_string())});
    return std::nullopt;
  }
  if (!v.is_array())
    return invalid("'input' must be a string or an array of items", "input");
  std::string pending_reasoning;  // a reasoning item joins the next assistant turn
  for (std::size_t i = 0; i < v.get_array().size(); ++i) {
    const std::string param = fmt::format("input[{}]", i);
    const auto* item = v.get_array()[i].if_object();
    if (item == nullptr)
      return invalid("Each input item must be an object", param);
    auto type = str(*item, "type");
    if (type.empty() && item->contains("role"))
      type = "message";
    if (type == "message") {
      std::string role(str(*item, "role"));
      if (role == "developer")
        role = "system";
      if (role != "user" && role != "assistant" && role != "system")
        return invalid("A message item's 'role' must be user, assistant, system or developer",
                       param + ".role");
      auto content = read_content(item->if_contains("content"), param + ".content");
      if (!content)
        return content.error();
      if (role == "assistant") {
        Message& m = out.empty() || out.back().role != "assistant" || !out.back().content.empty()
                         ? out.emplace_back(Message{.role = "assistant"})
                         : out.back();
        m.content = std::move(content).value();
        m.reasoning_content = std::exchange(pending_reasoning, {});
      } else {
        out.push_back(Message{.role = role, .content = std::move(content).value()});
      }
    } else if (type == "function_call") {
      const auto call_id = str(*item, "call_id");
      const auto name = str(*item, "name");
      const auto args = str(*item, "arguments");
      if (call_id.empty())
        return invalid("A function_call item needs its 'call_id'", param + ".call_id");
      if (name.empty())
        return invalid("A function_call item needs its 'name'", param + ".name");
      boost::system::error_code ec;
      const auto parsed = json::parse(args, ec);
      if (ec || !parsed.is_object())
        return invalid("'arguments' must be a string of a JSON object", param + ".arguments");
      Message& m = assistant_turn(out);
      if (!pending_reasoning.empty())
        m.reasoning_content = std::exchange(pending_reasoning, {});
      m.tool_calls.push_back({std::string(call_id), std::string(name), std::string(args)});
    } else if (type == "function_call_output") {
      const auto call_id = str(*item, "call_id");
      if (call_id.empty())
        return invalid("A function_call_output item needs the 'call_id' it answers",
                       param + ".call_id");
      const auto* o = item->if_contains("output");
      std::string output;
      if (o && o->is_string()) {
        output = std::string(o->get_string());
      } else {
        auto parts = read_content(o, param + ".output");
        if (!parts)
          return invalid("'output' must be a string or text parts", param + ".output");
        output = std::move(parts).value();
      }
      Message m{.role = "tool", .content = std::move(output)};
      m.tool_call_id = std::string(call_id);
      for (auto it = out.rbegin(); it != out.rend() && m.name.empty(); ++it) {
        for (const auto& c : it->tool_calls) {
          if (c.id == m.tool_call_id)
            m.name = c.name;
        }
      }
      out.push_back(std::move(m));
    } else if (type == "reasoning") {
      // The reasoning text troupe wrote (content reasoning_text), else its summary.
      std::string text;
      for (const char* key : {"content", "summary"}) {
        const auto* parts = item->if_contains(key);
        if (!text.empty() || parts == nullptr || !parts->is_array())
          continue;
        for (const auto& p : parts->get_array()) {
          if (const auto* po = p.if_object()) {
            if (!text.empty())
              text += '\n';
            text += str(*po, "text");
          }
        }
      }
      pending_reasoning = std::move(text);
    } else if (type == "item_reference") {
      return invalid("'item_reference' items are not supported: use previous_response_id",
                     param + ".type");
    } else {
      return invalid(fmt::format("Input items of type '{}' are not supported", type),
                     param + ".type");
    }
  }
  if (out.empty())
    return invalid("'input' must not be empty", "input");
  return std::nullopt;
}

std::optional<Error> read_tools(const json::object& obj, chatfmt::ChatOptions& chat) {
  const auto* v = obj.if_contains("tools");
  if (v == nullptr || v->is_null())
    return std::nullopt;
  if (!v->is_array())
    return invalid("'tools' must be an array", "tools");
  for (std::size_t i = 0; i < v->get_array().size(); ++i) {
    const std::string param = fmt::format("tools[{}]", i);
    const auto* t = v->get_array()[i].if_object();
    if (t == nullptr)
      return invalid("Each tool must be an object", param);
    const auto type = str(*t, "type");
    if (type != "function")
      return invalid(fmt::format("Only tools of type 'function' are supported, not '{}'", type),
                     param + ".type");
    chatfmt::Tool tool;
    tool.name = std::string(str(*t, "name"));
    if (tool.name.empty() || tool.name.size() > 64 ||
        !std::all_of(tool.name.begin(), tool.name.end(), [](char c) {
          return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-';
        }))
      return invalid("A function's 'name' must be 1-64 letters, digits, '_' or '-'",
                     param + ".name");
    tool.description = std::string(str(*t, "description"));
    if (const auto* p = t->if_contains("parameters"); p && !p->is_null()) {
      if (!p->is_object())
        return invalid("'parameters' must be a JSON schema object", param + ".parameters");
      tool.parameters = json::serialize(*p);
    }
    for (const auto& other : chat.tools) {
      if (other.name == tool.name)
        return invalid(fmt::format("Two tools are named '{}'", tool.name), param + ".name");
    }
    chat.tools.push_back(std::move(tool));
  }
  return std::nullopt;
}

std::optional<Error> read_tool_choice(const json::object& obj, chatfmt::ChatOptions& chat) {
  const auto* v = obj.if_contains("tool_choice");
  if (v == nullptr || v->is_null())
    return std::nullopt;
  if (v->is_string()) {
    const auto s = v->get_string();
    if (s == "auto")
      chat.tool_choice = chatfmt::ToolChoice::automatic;
    else if (s == "none")
      chat.tool_choice = chatfmt::ToolChoice::none;
    else if (s == "required")
      chat.tool_choice = chatfmt::ToolChoice::required;
    else
      return invalid("'tool_choice' must be 'auto', 'none', 'required' or a function",
                     "tool_choice");
  } else if (const auto* o = v->if_object(); o && str(*o, "type") == "function") {
    chat.tool_choice = chatfmt::ToolChoice::function;
    chat.tool_choice_function = std::string(str(*o, "name"));
    if (std::none_of(chat.tools.begin(), chat.tools.end(),
                     [&](const chatfmt::Tool& t) { return t.name == chat.tool_choice_function; }))
      return invalid("'tool_choice' names a function that is not in 'tools'", "tool_choice.name");
  } else {
    return invalid(
        "'tool_choice' must be 'auto', 'none', 'required' or "
        "{\"type\": \"function\", \"name\": ...}",
        "tool_choice");
  }
  if (chat.tool_choice == chatfmt::ToolChoice::required && chat.tools.empty())
    return invalid("'tool_choice' forces a call but there are no 'tools'", "tool_choice");
  return std::nullopt;
}

// text.format: text, json_object, json_schema {name, schema, strict}.
std::optional<Error> read_text(const json::object& obj, GenerationParams& p) {
  const auto* v = obj.if_contains("text");
  if (v == nullptr || v->is_null())
    return std::nullopt;
  const auto* t = v->if_object();
  if (t == nullptr)
    return invalid("'text' must be an object", "text");
  if (const auto* verbosity = t->if_contains("verbosity");
      verbosity && !verbosity->is_null() &&
      !(verbosity->is_string() && verbosity->get_string() == "medium"))
    return invalid("Only the default verbosity ('medium') is supported", "text.verbosity");
  const auto* f = t->if_contains("format");
  if (f == nullptr || f->is_null())
    return std::nullopt;
  const auto* fo = f->if_object();
  const auto type = fo ? str(*fo, "type") : std::string_view();
  if (type == "text")
    return std::nullopt;
  if (type == "json_object") {
    p.json_schema = R"({"type":"object"})";
    p.schema_param = "text.format";
    return std::nullopt;
  }
  if (type != "json_schema")
    return invalid("'text.format.type' must be 'text', 'json_object' or 'json_schema'",
                   "text.format.type");
  const auto* schema = fo->if_contains("schema");
  if (schema == nullptr || !schema->is_object())
    return invalid("A json_schema format needs a 'schema' object", "text.format.schema");
  p.json_schema =
      schema->get_object().empty() ? std::string(R"({"type":"object"})") : json::serialize(*schema);
  p.schema_param = "text.format.schema";
  return std::nullopt;
}

// reasoning: {effort, summary}. effort passes to the template as chat's reasoning_effort does
// ("none" turns thinking off); troupe writes no summaries, so only "auto" (the server's choice)
// or none is accepted for summary.
std::optional<Error> read_reasoning(const json::object& obj, chatfmt::ChatOptions& chat) {
  const auto* v = obj.if_contains("reasoning");
  if (v == nullptr || v->is_null())
    return std::nullopt;
  const auto* r = v->if_object();
  if (r == nullptr)
    return invalid("'reasoning' must be an object", "reasoning");
  if (const auto* e = r->if_contains("effort"); e && !e->is_null()) {
    static constexpr std::string_view efforts[] = {"none", "minimal", "low", "medium", "high"};
    if (!e->is_string() || std::find(std::begin(efforts), std::end(efforts),
                                     std::string_view(e->get_string())) == std::end(efforts))
      return invalid("'reasoning.effort' must be none, minimal, low, medium or high",
                     "reasoning.effort");
    chat.reasoning_effort = std::string(e->get_string());
  }
  for (const char* key : {"summary", "generate_summary"}) {
    const auto* s = r->if_contains(key);
    if (s && !s->is_null() && !(s->is_string() && s->get_string() == "auto"))
      return invalid(
          "Reasoning summaries are not written: troupe returns the model's whole "
          "reasoning as a reasoning item; use summary 'auto' or none",
          std::string("reasoning.") + key);
  }
  return std::nullopt;
}

constexpr const char* refused_fields[][2] = {
    {"background", "background responses are not supported"},
    {"conversation", "conversations are not supported: use previous_response_id"},
    {"prompt", "prompt templates are not supported"},
    {"include", "no extra output can be included"},
    {"max_tool_calls", "a limit on tool calls is not supported"},
    {"top_logprobs", "log probabilities are not supported on this endpoint"},
};

bool neutral(const json::value& v) {
  return v.is_null() || (v.is_bool() && !v.get_bool()) || (v.is_array() && v.get_array().empty()) ||
         (v.is_object() && v.get_object().empty()) || (v.is_number() && v.to_number<double>() == 0);
}

void append_nullable(std::string& out, std::string_view s) {
  if (s.empty())
    out += "null";
  else
    append_json_string(out, s);
}

std::string reasoning_item(std::string_view id, std::string_view text) {
  std::string out = "{\"id\":";
  append_json_string(out, id);
  out +=
      ",\"type\":\"reasoning\",\"summary\":[],\"content\":[{\"type\":\"reasoning_text\",\"text\":";
  append_json_string(out, text);
  out += "}]}";
  return out;
}

std::string message_item(std::string_view id, std::string_view text, std::string_view status) {
  std::string out = "{\"id\":";
  append_json_string(out, id);
  out += ",\"type\":\"message\",\"status\":";
  append_json_string(out, status);
  out += ",\"role\":\"assistant\",\"content\":[";
  if (status == "completed") {
    out += "{\"type\":\"output_text\",\"text\":";
    append_json_string(out, text);
    out += ",\"annotations\":[],\"logprobs\":[]}";
  }
  out += "]}";
  return out;
}

std::string call_item(std::string_view id, std::string_view call_id, std::string_view name,
                      std::string_view arguments, std::string_view status) {
  std::string out = "{\"id\":";
  append_json_string(out, id);
  out += ",\"type\":\"function_call\",\"status\":";
  append_json_string(out, status);
  out += ",\"call_id\":";
  append_json_string(out, call_id);
  out += ",\"name\":";
  append_json_string(out, name);
  out += ",\"arguments\":";
  append_json_string(out, arguments);
  out += '}';
  return out;
}

std::string item_id(std::string_view prefix, std::string_view response_id, int index) {
  const auto tail = response_id.substr(std::min<std::size_t>(5, response_id.size()));
  return fmt::format("{}{}_{}", prefix, tail, index);
}

// The response object; `output` the items' JSON, `usage` null while in progress.
std::string response_object(const ResponsesHead& h, std::string_view status,
                            const std::string& output, const CompletionResult* r, bool length) {
  std::string out = "{\"id\":";
  append_json_string(out, h.id);
  out += fmt::format(",\"object\":\"response\",\"created_at\":{},\"status\":", h.created_at);
  append_json_string(out, status);
  out += ",\"error\":null,\"incomplete_details\":";
  out += length ? "{\"reason\":\"max_output_tokens\"}" : "null";
  out += ",\"instructions\":";
  append_nullable(out, h.instructions);
  out += ",\"model\":";
  append_json_string(out, h.model);
  out += ",\"output\":[";
  out += output;
  out += "],\"parallel_tool_calls\":";
  out += h.tools.parallel_tool_calls ? "true" : "false";
  out += ",\"previous_response_id\":";
  append_nullable(out, h.previous_response_id);
  out += ",\"store\":";
  out += h.store ? "true" : "false";
  out += ",\"tool_choice\":";
  out += h.tools.tool_choice;
  out += ",\"tools\":";
  out += h.tools.tools;
  out += ",\"usage\":";
  if (r == nullptr) {
    out += "null";
  } else {
    const auto& u = r->usage;
    out += fmt::format(
        "{{\"input_tokens\":{},\"input_tokens_details\":{{\"cached_tokens\":{}}},"
        "\"output_tokens\":{},\"output_tokens_details\":{{\"reasoning_tokens\":{}}},"
        "\"total_tokens\":{}}}",
        u.prompt_tokens, u.cached_tokens, u.completion_tokens, u.reasoning_tokens,
        u.prompt_tokens + u.completion_tokens);
  }
  out += '}';
  return out;
}

std::string output_items(const ResponsesHead& h, const CompletionResult& r) {
  std::string out;
  int index = 0;
  const auto sep = [&] {
    if (!out.empty())
      out += ',';
  };
  if (!r.reasoning_content.empty()) {
    sep();
    out += reasoning_item(item_id("rs_", h.id, index++), r.reasoning_content);
  }
  if (!r.text.empty() || r.tool_calls.empty()) {
    sep();
    out += message_item(item_id("msg_", h.id, index++), r.text, "completed");
  }
  for (const auto& c : r.tool_calls) {
    sep();
    out += call_item(item_id("fc_", h.id, index++), c.id, c.name, c.arguments, "completed");
  }
  return out;
}

}  // namespace

Result<ResponsesRequest> parse_responses_request(std::string_view body) {
  auto parsed = parse_json_object(body);
  if (!parsed)
    return parsed.error();
  const json::object& obj = *parsed;
  for (const auto& f : refused_fields) {
    if (const auto* v = obj.if_contains(f[0]); v && !neutral(*v))
      return invalid(fmt::format("'{}' is not supported: {}", f[0], f[1]), f[0]);
  }
  if (const auto* t = obj.if_contains("truncation");
      t && !t->is_null() && !(t->is_string() && t->get_string() == "disabled"))
    return invalid(
        "Only truncation 'disabled' is supported: a prompt longer than the context is "
        "a 400",
        "truncation");
  JsonReader r(obj);
  ResponsesRequest req;
  auto& p = req.chat.params;
  r.string("model", p.model);
  read_keep_alive(r, p.keep_alive);
  read_lora(r, p.lora);
  r.integer32("max_output_tokens", p.max_tokens, 1, int32_max);
  r.number("temperature", p.temperature, {0, true}, {2, true});
  r.number("top_p", p.top_p, {0, false}, {1, true});
  r.boolean("stream", p.stream);
  r.boolean("store", req.store);
  r.string("previous_response_id", req.previous_response_id);
  r.string("instructions", req.instructions);
  r.string("user", p.user);
  // llama-server's extensions, as in chat completions (troupe bench sends them).
  r.boolean("ignore_eos", p.ignore_eos);
  std::optional<std::int32_t> min_tokens;
  r.integer32("min_tokens", min_tokens, 0, int32_max);
  p.min_tokens = min_tokens.value_or(0);
  if (obj.contains("parallel_tool_calls")) {
    bool parallel = true;
    r.boolean("parallel_tool_calls", parallel);
    req.chat.chat.parallel_tool_calls = parallel;
    req.tools.parallel_tool_calls = parallel;
  }
  if (const auto* m = r.failed() ? nullptr : r.find("metadata"); m && !m->is_object())
    r.fail("'metadata' must be an object", "metadata");
  if (r.failed())
    return *r.error();
  const auto* input = obj.if_contains("input");
  if (input == nullptr || input->is_null())
    return invalid("'input' is required", "input");
  std::vector<Message> messages;
  if (!req.instructions.empty())
    messages.push_back(Message{.role = "system", .content = req.instructions});
  if (auto e = read_input(*input, messages))
    return *e;
  req.chat.messages = std::move(messages);
  if (auto e = read_tools(obj, req.chat.chat))
    return *e;
  if (auto e = read_tool_choice(obj, req.chat.chat))
    return *e;
  // Echoed as given: both were checked above.
  if (const auto* t = obj.if_contains("tools"); t && !t->is_null())
    req.tools.tools = json::serialize(*t);
  if (const auto* c = obj.if_contains("tool_choice"); c && !c->is_null())
    req.tools.tool_choice = json::serialize(*c);
  if (auto e = read_text(obj, p))
    return *e;
  if (auto e = read_reasoning(obj, req.chat.chat))
    return *e;
  req.chat.chat.stream = p.stream;
  return req;
}

std::string response_json(const ResponsesHead& head, const CompletionResult& result, bool length) {
  return response_object(head, length ? "incomplete" : "completed", output_items(head, result),
                         &result, length);
}

std::string response_input_tokens_json(std::int32_t input_tokens) {
  return fmt::format(R"({{"object":"response.input_tokens","input_tokens":{}}})", input_tokens);
}

std::string response_deleted_json(std::string_view id) {
  std::string out = "{\"id\":";
  append_json_string(out, id);
  out += ",\"object\":\"response\",\"deleted\":true}";
  return out;
}

Message response_message(const CompletionResult& r) {
  Message m{.role = "assistant", .content = r.text, .reasoning_content = r.reasoning_content};
  m.tool_calls = r.tool_calls;
  return m;
}

ResponsesStreamWriter::ResponsesStreamWriter(ResponsesHead head) : head_(std::move(head)) {}

void ResponsesStreamWriter::emit(std::string_view type, std::string_view body,
                                 std::vector<SseEvent>& out) {
  std::string data = "{\"type\":";
  append_json_string(data, type);
  data += fmt::format(",\"sequence_number\":{}", seq_++);
  if (!body.empty()) {
    data += ',';
    data += body;
  }
  data += '}';
  out.push_back({type, std::move(data)});
}

std::string ResponsesStreamWriter::skeleton(std::string_view status) const {
  return response_object(head_, status, {}, nullptr, false);
}

void ResponsesStreamWriter::start(std::vector<SseEvent>& out) {
  emit("response.created", "\"response\":" + skeleton("in_progress"), out);
  emit("response.in_progress", "\"response\":" + skeleton("in_progress"), out);
}

std::string ResponsesStreamWriter::item_json(bool done) const {
  const std::string_view status = done ? "completed" : "in_progress";
  switch (open_) {
    case Item::reasoning:
      return reasoning_item(item_id_, done ? std::string_view(text_) : std::string_view());
    case Item::message:
      return message_item(item_id_, text_, status);
    case Item::function_call:
      return call_item(item_id_, call_id_, name_, done ? std::string_view(text_) : "", status);
    case Item::none:
      break;
  }
  return "null";
}

void ResponsesStreamWriter::open(Item kind, std::vector<SseEvent>& out, std::string_view call_id,
                                 std::string_view name) {
  close(out);
  open_ = kind;
  ++output_index_;
  text_.clear();
  call_id_ = call_id;
  name_ = name;
  item_id_ = item_id(kind == Item::reasoning ? "rs_"
                     : kind == Item::message ? "msg_"
                                             : "fc_",
                     head_.id, output_index_);
  emit("response.output_item.added",
       fmt::format("\"output_index\":{},\"item\":{}", output_index_, item_json(false)), out);
  if (kind == Item::message) {
    std::string b = "\"item_id\":";
    append_json_string(b, item_id_);
    b += fmt::format(
        ",\"output_index\":{},\"content_index\":0,\"part\":{{\"type\":"
        "\"output_text\",\"text\":\"\",\"annotations\":[]}}",
        output_index_);
    emit("response.content_part.added", std::move(b), out);
  }
}

void ResponsesStreamWriter::close(std::vector<SseEvent>& out) {
  if (open_ == Item::none)
    return;
  std::string ids = "\"item_id\":";
  append_json_string(ids, item_id_);
  ids += fmt::format(",\"output_index\":{}", output_index_);
  switch (open_) {
    case Item::reasoning: {
      std::string b = ids + ",\"content_index\":0,\"text\":";
      append_json_string(b, text_);
      emit("response.reasoning_text.done", std::move(b), out);
      break;
    }
    case Item::message: {
      std::string b = ids + ",\"content_index\":0,\"text\":";
      append_json_string(b, text_);
      b += ",\"logprobs\":[]";
      emit("response.output_text.done", std::move(b), out);
      std::string part = ids + ",\"content_index\":0,\"part\":{\"type\":\"output_text\",\"text\":";
      append_json_string(part, text_);
      part += ",\"annotations\":[]}";
      emit("response.content_part.done", std::move(part), out);
      break;
    }
    case Item::function_call: {
      std::string b = ids + ",\"name\":";
      append_json_string(b, name_);
      b += ",\"arguments\":";
      append_json_string(b, text_);
      emit("response.function_call_arguments.done", std::move(b), out);
      break;
    }
    case Item::none:
      break;
  }
  emit("response.output_item.done",
       fmt::format("\"output_index\":{},\"item\":{}", output_index_, item_json(true)), out);
  open_ = Item::none;
}

void ResponsesStreamWriter::delta(std::string_view text, std::string_view reasoning,
                                  const std::vector<chatfmt::ToolCallDelta>& tool_calls,
                                  std::vector<SseEvent>& out) {
  const auto ids = [&] {
    std::string b = "\"item_id\":";
    append_json_string(b, item_id_);
    b += fmt::format(",\"output_index\":{}", output_index_);
    return b;
  };
  if (!reasoning.empty()) {
    if (open_ != Item::reasoning)
      open(Item::reasoning, out);
    text_ += reasoning;
    std::string b = ids() + ",\"content_index\":0,\"delta\":";
    append_json_string(b, reasoning);
    emit("response.reasoning_text.delta", std::move(b), out);
  }
  if (!text.empty()) {
    if (open_ != Item::message)
      open(Item::message, out);
    text_ += text;
    std::string b = ids() + ",\"content_index\":0,\"delta\":";
    append_json_string(b, text);
    b += ",\"logprobs\":[]";
    emit("response.output_text.delta", std::move(b), out);
  }
  for (const auto& c : tool_calls) {
    if (!c.name.empty() || open_ != Item::function_call || c.index != tool_index_) {
      open(Item::function_call, out, c.id, c.name);
      tool_index_ = c.index;
    }
    if (c.arguments.empty())
      continue;
    text_ += c.arguments;
    std::string b = ids() + ",\"delta\":";
    append_json_string(b, c.arguments);
    emit("response.function_call_arguments.delta", std::move(b), out);
  }
}

void ResponsesStreamWriter::finish(const CompletionResult& result, bool length,
                                   std::vector<SseEvent>& out) {
  if (output_index_ < 0)
    open(Item::message, out);  // no output at all: one empty message, as the object has
  close(out);
  emit(length ? "response.incomplete" : "response.completed",
       "\"response\":" + response_json(head_, result, length), out);
}

void ResponsesStreamWriter::fail(const HttpError& error, std::vector<SseEvent>& out) {
  std::string r = response_object(head_, "failed", {}, nullptr, false);
  std::string e = "\"error\":{\"code\":";
  append_json_string(e, error.code.empty() ? std::string_view("server_error") : error.code);
  e += ",\"message\":";
  append_json_string(e, error.message);
  e += '}';
  // The failed response carries the error instead of null.
  const auto at = r.find("\"error\":null");
  r.replace(at, 12, e);
  emit("response.failed", "\"response\":" + r, out);
}

}  // namespace troupe::api
