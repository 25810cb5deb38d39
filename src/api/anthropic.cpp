#include "api/anthropic.hpp"

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
constexpr std::size_t max_stop_sequences = 16;

Error invalid(std::string message, std::string param) {
  return Error{Errc::invalid_request, std::move(message), std::move(param)};
}

std::string_view type_of(const json::object& obj) {
  const auto* t = obj.if_contains("type");
  return t && t->is_string() ? std::string_view(t->get_string()) : std::string_view();
}

// Fields of Anthropic's request that ask for something troupe does not do; refused unless
// they hold their neutral value (null, empty).
constexpr const char* refused_fields[][2] = {
    {"container", "code execution containers are not supported"},
    {"mcp_servers", "MCP servers are not supported"},
    {"context_management", "context management is not supported"},
};

// Blocks that carry media or server-side results troupe cannot render.
std::string unsupported_block(std::string_view type) {
  if (type == "image")
    return "images are not supported: the served models read text only";
  if (type == "document")
    return "documents are not supported: send the text as a 'text' block";
  return fmt::format("content blocks of type '{}' are not supported", type);
}

// A text block's text ({"type":"text","text":...}); cache_control and citations are hints
// that change nothing in the answer (troupe's prefix cache reuses any repeated prefix).
Result<std::string> read_text_block(const json::object& b, const std::string& param) {
  const auto* t = b.if_contains("text");
  if (t == nullptr || !t->is_string())
    return invalid("A text block needs a string 'text'", param + ".text");
  return std::string(t->get_string());
}

// `system`: a string or an array of text blocks (joined with '\n').
Result<std::string> read_system(const json::value& v) {
  if (v.is_string())
    return std::string(v.get_string());
  if (!v.is_array())
    return invalid("'system' must be a string or an array of text blocks", "system");
  std::string out;
  for (std::size_t i = 0; i < v.get_array().size(); ++i) {
    const std::string param = fmt::format("system[{}]", i);
    const auto* b = v.get_array()[i].if_object();
    if (b == nullptr || type_of(*b) != "text")
      return invalid("'system' blocks must be of type 'text'", param);
    auto text = read_text_block(*b, param);
    if (!text)
      return text.error();
    if (!out.empty())
      out += '\n';
    out += *text;
  }
  return out;
}

// A tool_result's content: a string or an array of text blocks.
Result<std::string> read_tool_result_content(const json::value* v, const std::string& param) {
  if (v == nullptr || v->is_null())
    return std::string();
  if (v->is_string())
    return std::string(v->get_string());
  if (!v->is_array())
    return invalid("A tool_result's 'content' must be a string or an array of blocks", param);
  std::string out;
  for (std::size_t i = 0; i < v->get_array().size(); ++i) {
    const std::string p = fmt::format("{}[{}]", param, i);
    const auto* b = v->get_array()[i].if_object();
    if (b == nullptr)
      return invalid("Each block must be an object", p);
    if (type_of(*b) != "text")
      return invalid(fmt::format("'{}' is not supported in a tool result: {}", type_of(*b),
                                 unsupported_block(type_of(*b))),
                     p + ".type");
    auto text = read_text_block(*b, p);
    if (!text)
      return text.error();
    if (!out.empty())
      out += '\n';
    out += *text;
  }
  return out;
}

// The name of the tool an earlier assistant message called with `id` (for the tool message).
std::string tool_name_for(const std::vector<Message>& messages, std::string_view id) {
  // Not std::views::reverse: the fuzz build's clang 14 cannot compile GCC 12's ranges.
  for (auto m = messages.rbegin(); m != messages.rend(); ++m) {  // NOLINT(modernize-loop-convert)
    for (const auto& c : m->tool_calls) {
      if (c.id == id)
        return c.name;
    }
  }
  return {};
}

// One user message: its tool_result blocks become "tool" messages (in order, first: they answer
// the calls of the assistant message before), its text blocks one "user" message after them.
std::optional<Error> read_user(const json::value& content, const std::string& param,
                               std::vector<Message>& out) {
  if (content.is_string()) {
    out.push_back(Message{.role = "user", .content = std::string(content.get_string())});
    return std::nullopt;
  }
  std::string text;
  bool has_text = false;
  for (std::size_t i = 0; i < content.get_array().size(); ++i) {
    const std::string p = fmt::format("{}[{}]", param, i);
    const auto* b = content.get_array()[i].if_object();
    if (b == nullptr)
      return invalid("Each content block must be an object", p);
    const auto type = type_of(*b);
    if (type == "text") {
      auto t = read_text_block(*b, p);
      if (!t)
        return t.error();
      if (has_text)
        text += '\n';
      text += *t;
      has_text = true;
    } else if (type == "tool_result") {
      const auto* id = b->if_contains("tool_use_id");
      if (id == nullptr || !id->is_string() || id->get_string().empty())
        return invalid("A tool_result needs the 'tool_use_id' it answers", p + ".tool_use_id");
      auto body = read_tool_result_content(b->if_contains("content"), p + ".content");
      if (!body)
        return body.error();
      bool is_error = false;
      if (const auto* e = b->if_contains("is_error"); e && !e->is_null()) {
        if (!e->is_bool())
          return invalid("'is_error' must be a boolean", p + ".is_error");
        is_error = e->get_bool();
      }
      Message m{.role = "tool"};
      m.content = is_error ? "Error: " + *body : std::move(body).value();
      m.tool_call_id = std::string(id->get_string());
      m.name = tool_name_for(out, m.tool_call_id);
      out.push_back(std::move(m));
    } else if (type.empty()) {
      return invalid("Each content block needs a string 'type'", p + ".type");
    } else {
      return invalid(fmt::format("'{}' blocks are not supported in a user message: {}", type,
                                 unsupported_block(type)),
                     p + ".type");
    }
  }
  if (has_text)
    out.push_back(Message{.role = "user", .content = std::move(text)});
  return std::nullopt;
}

// One assistant message: text blocks into content, thinking blocks into reasoning_content,
// tool_use blocks into tool calls.
std::optional<Error> read_assistant(const json::value& content, const std::string& param,
                                    std::vector<Message>& out) {
  Message m{.role = "assistant"};
  if (content.is_string()) {
    m.content = std::string(content.get_string());
    out.push_back(std::move(m));
    return std::nullopt;
  }
  bool has_text = false;
  for (std::size_t i = 0; i < content.get_array().size(); ++i) {
    const std::string p = fmt::format("{}[{}]", param, i);
    const auto* b = content.get_array()[i].if_object();
    if (b == nullptr)
      return invalid("Each content block must be an object", p);
    const auto type = type_of(*b);
    if (type == "text") {
      auto t = read_text_block(*b, p);
      if (!t)
        return t.error();
      if (has_text)
        m.content += '\n';
      m.content += *t;
      has_text = true;
    } else if (type == "thinking") {
      const auto* t = b->if_contains("thinking");
      if (t == nullptr || !t->is_string())
        return invalid("A thinking block needs a string 'thinking'", p + ".thinking");
      if (!m.reasoning_content.empty())
        m.reasoning_content += '\n';
      m.reasoning_content += t->get_string();
    } else if (type == "redacted_thinking") {
      return invalid("'redacted_thinking' blocks cannot be read back: troupe never writes them",
                     p + ".type");
    } else if (type == "tool_use") {
      const auto* id = b->if_contains("id");
      const auto* name = b->if_contains("name");
      const auto* input = b->if_contains("input");
      if (id == nullptr || !id->is_string() || id->get_string().empty())
        return invalid("A tool_use block needs a string 'id'", p + ".id");
      if (name == nullptr || !name->is_string() || name->get_string().empty())
        return invalid("A tool_use block needs a string 'name'", p + ".name");
      if (input != nullptr && !input->is_null() && !input->is_object())
        return invalid("A tool_use block's 'input' must be an object", p + ".input");
      m.tool_calls.push_back(chatfmt::ToolCall{
          std::string(id->get_string()), std::string(name->get_string()),
          input && input->is_object() ? json::serialize(*input) : std::string("{}")});
    } else if (type.empty()) {
      return invalid("Each content block needs a string 'type'", p + ".type");
    } else {
      return invalid(fmt::format("'{}' blocks are not supported in an assistant message: {}", type,
                                 unsupported_block(type)),
                     p + ".type");
    }
  }
  out.push_back(std::move(m));
  return std::nullopt;
}

Result<std::vector<Message>> read_messages(const json::object& obj) {
  const auto* v = obj.if_contains("messages");
  if (v == nullptr || !v->is_array() || v->get_array().empty())
    return invalid("'messages' must be a non-empty array", "messages");
  std::vector<Message> out;
  for (std::size_t i = 0; i < v->get_array().size(); ++i) {
    const std::string param = fmt::format("messages[{}]", i);
    const auto* m = v->get_array()[i].if_object();
    if (m == nullptr)
      return invalid("Each message must be an object", param);
    const auto* role = m->if_contains("role");
    if (role == nullptr || !role->is_string() ||
        (role->get_string() != "user" && role->get_string() != "assistant"))
      return invalid("A message's 'role' must be 'user' or 'assistant'", param + ".role");
    const auto* content = m->if_contains("content");
    if (content == nullptr || !(content->is_string() || content->is_array()))
      return invalid("A message's 'content' must be a string or an array of blocks",
                     param + ".content");
    auto e = role->get_string() == "user" ? read_user(*content, param + ".content", out)
                                          : read_assistant(*content, param + ".content", out);
    if (e)
      return *e;
  }
  return out;
}

bool valid_tool_name(std::string_view name) {
  if (name.empty() || name.size() > 128)
    return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-';
  });
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
    const auto type = type_of(*t);
    if (!type.empty() && type != "custom")
      return invalid(fmt::format("Server tools ('{}') are not supported: give client tools with "
                                 "'name', 'description' and 'input_schema'",
                                 type),
                     param + ".type");
    chatfmt::Tool tool;
    const auto* name = t->if_contains("name");
    if (name == nullptr || !name->is_string() || !valid_tool_name(name->get_string()))
      return invalid("A tool's 'name' must be 1-128 letters, digits, '_' or '-'", param + ".name");
    tool.name = std::string(name->get_string());
    if (const auto* d = t->if_contains("description"); d && !d->is_null()) {
      if (!d->is_string())
        return invalid("'description' must be a string", param + ".description");
      tool.description = std::string(d->get_string());
    }
    const auto* schema = t->if_contains("input_schema");
    if (schema == nullptr || !schema->is_object())
      return invalid("A tool needs an 'input_schema' object", param + ".input_schema");
    tool.parameters = json::serialize(*schema);
    for (const auto& other : chat.tools) {
      if (other.name == tool.name)
        return invalid(fmt::format("Two tools are named '{}'", tool.name), param + ".name");
    }
    chat.tools.push_back(std::move(tool));
  }
  return std::nullopt;
}

// {"type": "auto" | "any" | "tool" (with "name") | "none", "disable_parallel_tool_use": bool}
std::optional<Error> read_tool_choice(const json::object& obj, chatfmt::ChatOptions& chat) {
  const auto* v = obj.if_contains("tool_choice");
  if (v == nullptr || v->is_null())
    return std::nullopt;
  const auto* c = v->if_object();
  const auto type = c ? type_of(*c) : std::string_view();
  if (type == "auto") {
    chat.tool_choice = chatfmt::ToolChoice::automatic;
  } else if (type == "any") {
    chat.tool_choice = chatfmt::ToolChoice::required;
  } else if (type == "none") {
    chat.tool_choice = chatfmt::ToolChoice::none;
  } else if (type == "tool") {
    const auto* name = c->if_contains("name");
    if (name == nullptr || !name->is_string())
      return invalid("A 'tool' tool_choice needs the tool's 'name'", "tool_choice.name");
    chat.tool_choice = chatfmt::ToolChoice::function;
    chat.tool_choice_function = std::string(name->get_string());
    if (std::none_of(chat.tools.begin(), chat.tools.end(),
                     [&](const chatfmt::Tool& t) { return t.name == chat.tool_choice_function; }))
      return invalid(fmt::format("'tool_choice' names the tool '{}', which is not in 'tools'",
                                 chat.tool_choice_function),
                     "tool_choice.name");
  } else {
    return invalid("'tool_choice' must be {\"type\": \"auto\" | \"any\" | \"tool\" | \"none\"}",
                   "tool_choice");
  }
  if (const auto* d = c->if_contains("disable_parallel_tool_use"); d && !d->is_null()) {
    if (!d->is_bool())
      return invalid("'disable_parallel_tool_use' must be a boolean",
                     "tool_choice.disable_parallel_tool_use");
    chat.parallel_tool_calls = !d->get_bool();
  }
  const bool forced = chat.tool_choice == chatfmt::ToolChoice::required ||
                      chat.tool_choice == chatfmt::ToolChoice::function;
  if (forced && chat.tools.empty())
    return invalid("'tool_choice' forces a tool call but there are no 'tools'", "tool_choice");
  return std::nullopt;
}

// thinking: {"type": "enabled", "budget_tokens": n} turns the model's reasoning on (a thinking
// family thinks, and its reasoning comes back as thinking blocks); {"type": "disabled"} or no
// field turns it off (reasoning_effort "none", as Anthropic answers without thinking unless
// asked). The budget is checked as Anthropic checks it (>= 1024, < max_tokens) and is the
// reasoning budget (engine::Task::reasoning_budget): past it the block is closed and the
// answer goes on, within max_tokens.
std::optional<Error> read_thinking(const json::object& obj, GenerationParams& p,
                                   chatfmt::ChatOptions& chat) {
  const std::optional<std::int32_t> max_tokens = p.max_tokens;
  const auto* v = obj.if_contains("thinking");
  if (v == nullptr || v->is_null()) {
    chat.reasoning_effort = "none";
    return std::nullopt;
  }
  const auto* t = v->if_object();
  const auto type = t ? type_of(*t) : std::string_view();
  if (type == "disabled") {
    chat.reasoning_effort = "none";
    return std::nullopt;
  }
  if (type != "enabled")
    return invalid(
        "'thinking' must be {\"type\": \"enabled\", \"budget_tokens\": n} or "
        "{\"type\": \"disabled\"}",
        "thinking.type");
  const auto* b = t->if_contains("budget_tokens");
  const auto budget = b ? as_integer(*b) : std::nullopt;
  if (!budget || *budget < min_thinking_budget || *budget > int32_max)
    return invalid(fmt::format("'budget_tokens' must be an integer >= {}", min_thinking_budget),
                   "thinking.budget_tokens");
  if (max_tokens && *budget >= *max_tokens)
    return invalid("'budget_tokens' must be less than 'max_tokens'", "thinking.budget_tokens");
  p.reasoning_budget = static_cast<std::int32_t>(*budget);
  return std::nullopt;
}

// The fields of both endpoints; `count`: count_tokens (max_tokens optional, no stream).
Result<ChatRequest> parse(std::string_view body, bool count) {
  auto parsed = parse_json_object(body);
  if (!parsed)
    return parsed.error();
  const json::object& obj = *parsed;
  JsonReader r(obj);
  ChatRequest req;
  auto& p = req.params;
  for (const auto& f : refused_fields) {
    const auto* v = r.find(f[0]);
    if (v != nullptr && !(v->is_array() && v->get_array().empty()) &&
        !(v->is_object() && v->get_object().empty()))
      return invalid(fmt::format("'{}' is not supported: {}", f[0], f[1]), f[0]);
  }
  if (const auto* m = obj.if_contains("model"); m == nullptr || !m->is_string())
    return invalid("'model' is required", "model");
  r.string("model", p.model);
  read_keep_alive(r, p.keep_alive);
  read_lora(r, p.lora);
  r.integer32("max_tokens", p.max_tokens, 1, int32_max);
  if (!count && !r.failed() && !p.max_tokens)
    return invalid("'max_tokens' is required", "max_tokens");
  r.number("temperature", p.temperature, {0, true}, {1, true});
  r.number("top_p", p.top_p, {0, false}, {1, true});
  r.integer32("top_k", p.top_k, 0, int32_max);
  r.string_list("stop_sequences", p.stop, max_stop_sequences);
  if (!r.failed() &&
      std::any_of(p.stop.begin(), p.stop.end(), [](const std::string& s) { return s.empty(); }))
    r.fail("'stop_sequences' must not hold an empty string", "stop_sequences");
  r.boolean("stream", p.stream);
  // llama-server's extensions, as in chat completions (troupe bench sends them).
  r.boolean("ignore_eos", p.ignore_eos);
  std::optional<std::int32_t> min_tokens;
  r.integer32("min_tokens", min_tokens, 0, int32_max);
  p.min_tokens = min_tokens.value_or(0);
  if (count && p.stream)
    r.fail("count_tokens does not stream", "stream");
  if (const auto* md = r.failed() ? nullptr : r.find("metadata")) {
    const auto* o = md->if_object();
    if (o == nullptr)
      return invalid("'metadata' must be an object", "metadata");
    if (const auto* u = o->if_contains("user_id"); u && !u->is_null()) {
      if (!u->is_string())
        return invalid("'metadata.user_id' must be a string", "metadata.user_id");
      p.user = std::string(u->get_string());  // the request's user, as chat completions' `user`
    }
  }
  if (const auto* tier = r.failed() ? nullptr : r.find("service_tier")) {
    if (!tier->is_string() ||
        (tier->get_string() != "auto" && tier->get_string() != "standard_only"))
      return invalid("'service_tier' must be 'auto' or 'standard_only' (troupe has one tier)",
                     "service_tier");
  }
  if (r.failed())
    return *r.error();
  auto messages = read_messages(obj);
  if (!messages)
    return messages.error();
  if (const auto* s = obj.if_contains("system"); s && !s->is_null()) {
    auto system = read_system(*s);
    if (!system)
      return system.error();
    messages->insert(messages->begin(), Message{.role = "system", .content = std::move(*system)});
  }
  req.messages = std::move(messages).value();
  if (auto e = read_tools(obj, req.chat))
    return *e;
  if (auto e = read_tool_choice(obj, req.chat))
    return *e;
  if (auto e = read_thinking(obj, p, req.chat))
    return *e;
  req.chat.stream = p.stream;
  p.include_usage = p.stream;
  return req;
}

void append_usage(std::string& out, const Usage& u) {
  const auto cached = std::min(u.cached_tokens, u.prompt_tokens);
  fmt::format_to(std::back_inserter(out),
                 "{{\"input_tokens\":{},\"cache_creation_input_tokens\":0,"
                 "\"cache_read_input_tokens\":{},\"output_tokens\":{}}}",
                 u.prompt_tokens - cached, cached, u.completion_tokens);
}

// A tool call's arguments as the input object (an unparsable text, which a grammar-bound call
// never is, becomes {}).
void append_input(std::string& out, std::string_view arguments) {
  boost::system::error_code ec;
  const auto v = json::parse(arguments, ec);
  out += !ec && v.is_object() ? json::serialize(v) : std::string("{}");
}

void append_nullable(std::string& out, std::string_view s) {
  if (s.empty())
    out += "null";
  else
    append_json_string(out, s);
}

std::string message_prefix(const ResponseHead& head) {
  std::string out = "{\"id\":";
  append_json_string(out, head.id);
  out += ",\"type\":\"message\",\"role\":\"assistant\",\"model\":";
  append_json_string(out, head.model);
  return out;
}

}  // namespace

Result<ChatRequest> parse_messages_request(std::string_view body) {
  return parse(body, /*count=*/false);
}

Result<ChatRequest> parse_count_tokens_request(std::string_view body) {
  return parse(body, /*count=*/true);
}

std::string anthropic_message_json(const ResponseHead& head, const CompletionResult& r,
                                   const StopInfo& stop) {
  std::string out = message_prefix(head);
  out += ",\"content\":[";
  bool first = true;
  const auto sep = [&] {
    if (!first)
      out += ',';
    first = false;
  };
  if (!r.reasoning_content.empty()) {
    sep();
    out += "{\"type\":\"thinking\",\"thinking\":";
    append_json_string(out, r.reasoning_content);
    out += ",\"signature\":\"\"}";
  }
  if (!r.text.empty() || r.tool_calls.empty()) {
    sep();
    out += "{\"type\":\"text\",\"text\":";
    append_json_string(out, r.text);
    out += '}';
  }
  for (const auto& c : r.tool_calls) {
    sep();
    out += "{\"type\":\"tool_use\",\"id\":";
    append_json_string(out, c.id);
    out += ",\"name\":";
    append_json_string(out, c.name);
    out += ",\"input\":";
    append_input(out, c.arguments);
    out += '}';
  }
  out += "],\"stop_reason\":";
  append_json_string(out, stop.reason);
  out += ",\"stop_sequence\":";
  append_nullable(out, stop.sequence);
  out += ",\"usage\":";
  append_usage(out, r.usage);
  out += '}';
  return out;
}

std::string count_tokens_json(std::int32_t input_tokens) {
  return fmt::format("{{\"input_tokens\":{}}}", input_tokens);
}

int anthropic_error_status(const HttpError& e) {
  if (e.code == "overloaded")
    return 529;
  return e.status;
}

std::string anthropic_error_json(const HttpError& e) {
  std::string_view type = "api_error";
  switch (anthropic_error_status(e)) {
    case 401:
      type = "authentication_error";
      break;
    case 403:
      type = "permission_error";
      break;
    case 404:
      type = "not_found_error";
      break;
    case 413:
      type = "request_too_large";
      break;
    case 429:
      type = "rate_limit_error";
      break;
    case 529:
      type = "overloaded_error";
      break;
    default:
      if (e.status >= 400 && e.status < 500 && e.status != 499)
        type = "invalid_request_error";
  }
  std::string out = "{\"type\":\"error\",\"error\":{\"type\":";
  append_json_string(out, type);
  out += ",\"message\":";
  append_json_string(out, e.message);
  out += "}}";
  return out;
}

MessagesStreamWriter::MessagesStreamWriter(const ResponseHead& head)
    : message_json_prefix_(message_prefix(head)) {}

void MessagesStreamWriter::start(const Usage& usage, std::vector<SseEvent>& out) {
  std::string data = "{\"type\":\"message_start\",\"message\":";
  data += message_json_prefix_;
  data += ",\"content\":[],\"stop_reason\":null,\"stop_sequence\":null,\"usage\":";
  append_usage(data, usage);
  data += "}}";
  out.push_back({"message_start", std::move(data)});
  out.push_back(ping());
}

SseEvent MessagesStreamWriter::ping() {
  return {"ping", "{\"type\":\"ping\"}"};
}

SseEvent MessagesStreamWriter::error(const HttpError& e) {
  return {"error", anthropic_error_json(e)};
}

void MessagesStreamWriter::open(Block kind, std::vector<SseEvent>& out, std::string_view id,
                                std::string_view name) {
  close(out);
  open_ = kind;
  ++index_;
  std::string data =
      fmt::format("{{\"type\":\"content_block_start\",\"index\":{},\"content_block\":", index_);
  switch (kind) {
    case Block::thinking:
      data += "{\"type\":\"thinking\",\"thinking\":\"\",\"signature\":\"\"}";
      break;
    case Block::text:
      data += "{\"type\":\"text\",\"text\":\"\"}";
      break;
    case Block::tool_use:
      data += "{\"type\":\"tool_use\",\"id\":";
      append_json_string(data, id);
      data += ",\"name\":";
      append_json_string(data, name);
      data += ",\"input\":{}}";
      break;
    case Block::none:
      break;
  }
  data += '}';
  out.push_back({"content_block_start", std::move(data)});
}

void MessagesStreamWriter::close(std::vector<SseEvent>& out) {
  if (open_ == Block::none)
    return;
  open_ = Block::none;
  out.push_back({"content_block_stop",
                 fmt::format("{{\"type\":\"content_block_stop\",\"index\":{}}}", index_)});
}

SseEvent MessagesStreamWriter::block_delta(std::string_view type, std::string_view field,
                                           std::string_view value) const {
  std::string data = fmt::format(
      "{{\"type\":\"content_block_delta\",\"index\":{},\"delta\":{{\"type\":\"{}\","
      "\"{}\":",
      index_, type, field);
  append_json_string(data, value);
  data += "}}";
  return {"content_block_delta", std::move(data)};
}

void MessagesStreamWriter::delta(std::string_view text, std::string_view reasoning,
                                 const std::vector<chatfmt::ToolCallDelta>& tool_calls,
                                 std::vector<SseEvent>& out) {
  if (!reasoning.empty()) {
    if (open_ != Block::thinking)
      open(Block::thinking, out);
    out.push_back(block_delta("thinking_delta", "thinking", reasoning));
  }
  if (!text.empty()) {
    if (open_ != Block::text)
      open(Block::text, out);
    out.push_back(block_delta("text_delta", "text", text));
  }
  for (const auto& c : tool_calls) {
    const bool new_call = !c.name.empty() || !tool_open_ || c.index != tool_index_;
    if (new_call || open_ != Block::tool_use) {
      open(Block::tool_use, out, c.id, c.name);
      tool_open_ = true;
      tool_index_ = c.index;
    }
    if (!c.arguments.empty())
      out.push_back(block_delta("input_json_delta", "partial_json", c.arguments));
  }
}

void MessagesStreamWriter::finish(const StopInfo& stop, const Usage& usage,
                                  std::vector<SseEvent>& out) {
  if (index_ < 0) {  // no output at all: one empty text block, as Anthropic sends
    open(Block::text, out);
  }
  close(out);
  std::string data = "{\"type\":\"message_delta\",\"delta\":{\"stop_reason\":";
  append_json_string(data, stop.reason);
  data += ",\"stop_sequence\":";
  append_nullable(data, stop.sequence);
  data += "},\"usage\":";
  append_usage(data, usage);
  data += '}';
  out.push_back({"message_delta", std::move(data)});
  out.push_back({"message_stop", "{\"type\":\"message_stop\"}"});
}

void append_sse(std::string& out, const SseEvent& e) {
  out += "event: ";
  out += e.name;
  out += "\ndata: ";
  out += e.data;
  out += "\n\n";
}

}  // namespace troupe::api
