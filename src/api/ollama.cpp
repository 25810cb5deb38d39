#include "api/ollama.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <boost/json.hpp>
#include <cctype>
#include <cmath>
#include <ctime>
#include <limits>

#include "api/embeddings.hpp"
#include "api/json_reader.hpp"

namespace troupe::api {
namespace json = boost::json;
namespace {

constexpr std::size_t max_stop_strings = 16;

Error invalid(std::string message, std::string param = {}) {
  return Error{Errc::invalid_request, std::move(message), std::move(param)};
}

// Ollama's `options`: the sampling and length options into `p`. Options that configure the
// loaded model (num_ctx, num_gpu, num_thread, ...) are the server's flags in troupe and are
// left to them; num_keep only matters when Ollama shifts a full context, which troupe never
// does; penalize_newline is ignored by Ollama itself. Unknown options are ignored, as Ollama.
void read_options(JsonReader& r, GenerationParams& p) {
  const json::value* v = r.find("options");
  if (v == nullptr || r.failed())
    return;
  if (!v->is_object())
    return r.fail("'options' must be an object", "options");
  JsonReader o(v->get_object());
  std::optional<std::int64_t> predict;
  o.integer("num_predict", predict, -2, std::numeric_limits<std::int32_t>::max());
  if (predict && *predict == 0)
    o.fail("'num_predict' must be -1 (no limit), -2 (the context) or at least 1", "num_predict");
  if (predict && *predict > 0)
    p.max_tokens = static_cast<std::int32_t>(*predict);
  o.number("temperature", p.temperature, {0, true}, {100, true});
  o.integer32("top_k", p.top_k, -1, std::numeric_limits<std::int32_t>::max());
  if (p.top_k && *p.top_k < 0)
    p.top_k = 0;
  o.number("top_p", p.top_p, {0, false}, {1, true});
  o.number("min_p", p.min_p, {0, true}, {1, true});
  o.number("typical_p", p.typical_p, {0, false}, {1, true});
  o.integer32("repeat_last_n", p.repeat_last_n, -1, std::numeric_limits<std::int32_t>::max());
  o.number("repeat_penalty", p.repeat_penalty, {0, false}, {10, true});
  o.number("presence_penalty", p.presence_penalty, {-2, true}, {2, true});
  o.number("frequency_penalty", p.frequency_penalty, {-2, true}, {2, true});
  o.integer("seed", p.seed, std::numeric_limits<std::int64_t>::min(),
            std::numeric_limits<std::int64_t>::max());
  if (p.seed && *p.seed < 0)
    p.seed.reset();  // Ollama: -1 is a random seed
  o.integer32("mirostat", p.mirostat, 0, 2);
  o.number("mirostat_tau", p.mirostat_tau, {0, true}, {1e9, true});
  o.number("mirostat_eta", p.mirostat_eta, {0, true}, {1e9, true});
  o.string_list("stop", p.stop, max_stop_strings);
  std::optional<double> tfs;
  o.number("tfs_z", tfs, {0, true}, {1e9, true});
  if (tfs && *tfs != 1.0)
    o.fail("'tfs_z' (tail-free sampling) was removed from llama.cpp: only 1 (off) is accepted",
           "tfs_z");
  if (o.failed())
    r.fail(o.error()->message, "options." + o.error()->param);
}

// `format`: "json" (any JSON object) or a JSON schema the answer must follow.
void read_format(JsonReader& r, GenerationParams& p) {
  const json::value* v = r.find("format");
  if (v == nullptr || r.failed())
    return;
  if (v->is_string()) {
    if (v->get_string() == "json")
      p.json_schema = R"({"type":"object"})";
    else if (!v->get_string().empty())
      r.fail("'format' must be \"json\" or a JSON schema object", "format");
  } else if (v->is_object()) {
    p.json_schema = v->get_object().empty() ? std::string(R"({"type":"object"})")
                                            : json::serialize(v->get_object());
  } else {
    r.fail("'format' must be \"json\" or a JSON schema object", "format");
  }
  if (p.json_schema)
    p.schema_param = "format";
}

// `think`: true (the template's thinking), false (off), or a level passed to the template.
void read_think(JsonReader& r, chatfmt::ChatOptions& chat) {
  const json::value* v = r.find("think");
  if (v == nullptr || r.failed())
    return;
  if (v->is_bool()) {
    if (!v->get_bool())
      chat.reasoning_effort = "none";
  } else if (v->is_string() && (v->get_string() == "low" || v->get_string() == "medium" ||
                                v->get_string() == "high" || v->get_string() == "max")) {
    chat.reasoning_effort = std::string(v->get_string());
  } else {
    r.fail("'think' must be true, false, \"low\", \"medium\", \"high\" or \"max\"", "think");
  }
}

bool has_images(const json::value* v) {
  return v != nullptr && v->is_array() && !v->get_array().empty();
}

// Fields of Ollama's requests that ask for what troupe does not do: refused unless neutral.
void refuse_unsupported(JsonReader& r) {
  if (r.failed())
    return;
  if (has_images(r.find("images")))
    return r.fail("images are not supported: the served models read text only", "images");
  static constexpr std::pair<const char*, const char*> refused_when_true[] = {
      {"truncate",
       "troupe does not cut a conversation to fit the context: a prompt longer than the "
       "context is refused; leave 'truncate' unset or false"},
      {"shift",
       "troupe does not shift a full context: an answer ends at the context's end "
       "(done_reason \"length\"); leave 'shift' unset or false"},
      {"_debug_render_only",
       "'_debug_render_only' is not supported: POST /apply-template renders a chat"},
  };
  for (const auto& [key, why] : refused_when_true) {
    bool on = false;
    r.boolean(key, on);
    if (on)
      return r.fail(why, key);
  }
}

// model, stream (true when absent), options, format, keep_alive, logprobs, top_logprobs.
void read_common(JsonReader& r, std::string& model, GenerationParams& p) {
  r.string("model", model);
  if (!r.failed() && model.empty())
    r.fail("model is required", "model");
  p.model = model;
  p.stream = true;
  r.boolean("stream", p.stream);
  read_options(r, p);
  read_format(r, p);
  read_keep_alive(r, p.keep_alive);
  refuse_unsupported(r);
}

void read_logprobs(JsonReader& r, ChatRequest& c) {
  r.boolean("logprobs", c.logprobs);
  std::optional<std::int32_t> top;
  r.integer32("top_logprobs", top, 0, 20);
  if (top && *top > 0) {
    if (!c.logprobs)
      return r.fail("'top_logprobs' needs 'logprobs': true", "top_logprobs");
    c.top_logprobs = *top;
  }
}

// An assistant message's tool_calls: [{"id"?, "function": {"name", "arguments": {...}}}].
std::optional<Error> read_tool_calls(const json::value& v, std::size_t message,
                                     chatfmt::Message& m) {
  const std::string param = fmt::format("messages[{}].tool_calls", message);
  if (v.is_null())
    return std::nullopt;
  if (!v.is_array())
    return invalid("'tool_calls' must be an array", param);
  for (std::size_t k = 0; k < v.get_array().size(); ++k) {
    const auto* call = v.get_array()[k].if_object();
    const auto* fn = call ? call->if_contains("function") : nullptr;
    const auto* name = fn && fn->is_object() ? fn->get_object().if_contains("name") : nullptr;
    if (name == nullptr || !name->is_string() || name->get_string().empty())
      return invalid("A tool call needs a 'function' with a 'name'", param);
    chatfmt::ToolCall c;
    c.name = std::string(name->get_string());
    const auto* args = fn->get_object().if_contains("arguments");
    if (args == nullptr || args->is_null())
      c.arguments = "{}";
    else if (args->is_object())
      c.arguments = json::serialize(*args);
    else if (args->is_string())
      c.arguments = std::string(args->get_string());  // already JSON text (OpenAI's way)
    else
      return invalid("A tool call's 'arguments' must be an object", param);
    const auto* id = call->if_contains("id");
    c.id = id && id->is_string() && !id->get_string().empty()
               ? std::string(id->get_string())
               : fmt::format("call_{}_{}", message, k);
    m.tool_calls.push_back(std::move(c));
  }
  return std::nullopt;
}

// The id of the call a tool result answers when it names only the tool (Ollama's tool_name):
// the earliest call of that name not answered yet, else the latest call.
std::string answered_call(const std::vector<chatfmt::Message>& before, const std::string& name) {
  std::vector<std::string> answered;
  for (const auto& m : before) {
    if (m.role == "tool")
      answered.push_back(m.tool_call_id);
  }
  std::string latest;
  for (const auto& m : before) {
    for (const auto& c : m.tool_calls) {
      if (!name.empty() && c.name != name)
        continue;
      if (std::find(answered.begin(), answered.end(), c.id) == answered.end())
        return c.id;
      latest = c.id;
    }
  }
  return latest;
}

Result<chatfmt::Message> read_message(const json::value& v, std::size_t i,
                                      const std::vector<chatfmt::Message>& before) {
  const std::string param = fmt::format("messages[{}]", i);
  const auto* obj = v.if_object();
  if (obj == nullptr)
    return invalid("Each message must be an object", param);
  chatfmt::Message m;
  const auto* role = obj->if_contains("role");
  if (role == nullptr || !role->is_string())
    return invalid("A message needs a string 'role'", param + ".role");
  m.role = std::string(role->get_string());
  std::transform(m.role.begin(), m.role.end(), m.role.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  if (m.role != "system" && m.role != "user" && m.role != "assistant" && m.role != "tool")
    return invalid("A message's 'role' must be system, user, assistant or tool", param + ".role");
  if (const auto* c = obj->if_contains("content"); c && !c->is_null()) {
    if (!c->is_string())
      return invalid("A message's 'content' must be a string", param + ".content");
    m.content = std::string(c->get_string());
  }
  if (has_images(obj->if_contains("images")))
    return invalid("images are not supported: the served models read text only", param + ".images");
  const auto text = [&](const char* key) -> std::string {
    const auto* f = obj->if_contains(key);
    return f && f->is_string() ? std::string(f->get_string()) : std::string();
  };
  if (m.role == "assistant") {
    m.reasoning_content = text("thinking");
    if (const auto* calls = obj->if_contains("tool_calls")) {
      if (auto e = read_tool_calls(*calls, i, m))
        return *e;
    }
  }
  if (m.role == "tool") {
    m.name = text("tool_name");
    m.tool_call_id = text("tool_call_id");
    if (m.tool_call_id.empty())
      m.tool_call_id = answered_call(before, m.name);
  }
  return m;
}

Result<std::vector<chatfmt::Message>> read_messages(const JsonReader& r) {
  std::vector<chatfmt::Message> out;
  const json::value* v = r.find("messages");
  if (v == nullptr)
    return out;
  if (!v->is_array())
    return invalid("'messages' must be an array", "messages");
  for (std::size_t i = 0; i < v->get_array().size(); ++i) {
    auto m = read_message(v->get_array()[i], i, out);
    if (!m)
      return m.error();
    out.push_back(std::move(m).value());
  }
  return out;
}

Result<json::object> parse_body(std::string_view body) {
  if (body.empty())
    return invalid("missing request body");
  return parse_json_object(body);
}

}  // namespace

const GenerationParams& OllamaGenerationRequest::params() const {
  return std::visit([](const auto& r) -> const GenerationParams& { return r.params; }, request);
}

GenerationParams& OllamaGenerationRequest::params() {
  return std::visit([](auto& r) -> GenerationParams& { return r.params; }, request);
}

Result<OllamaGenerationRequest> parse_ollama_chat_request(std::string_view body) {
  auto obj = parse_body(body);
  if (!obj)
    return obj.error();
  JsonReader r(*obj);
  OllamaGenerationRequest out;
  ChatRequest chat;
  read_common(r, out.model, chat.params);
  read_think(r, chat.chat);
  read_logprobs(r, chat);
  if (r.failed())
    return *r.error();
  if (auto e = read_function_tools(r, chat.chat))
    return *e;
  auto messages = read_messages(r);
  if (!messages)
    return messages.error();
  chat.messages = std::move(messages).value();
  chat.chat.stream = chat.params.stream;
  out.load_only = chat.messages.empty();
  out.request = std::move(chat);
  return out;
}

Result<OllamaGenerationRequest> parse_ollama_generate_request(std::string_view body) {
  auto obj = parse_body(body);
  if (!obj)
    return obj.error();
  JsonReader r(*obj);
  OllamaGenerationRequest out;
  GenerationParams params;
  read_common(r, out.model, params);
  std::string prompt, suffix, system, templ;
  bool raw = false;
  r.string("prompt", prompt);
  r.string("suffix", suffix);
  r.string("system", system);
  r.string("template", templ);
  r.boolean("raw", raw);
  if (!r.failed() && !templ.empty())
    r.fail(
        "'template' (a Go template) is not supported: troupe renders the model's own chat "
        "template (troupe serve --chat-template to choose another)",
        "template");
  if (const auto* c = r.find("context");
      !r.failed() && c && c->is_array() && !c->get_array().empty())
    r.fail("'context' (deprecated by Ollama) is not supported: send the conversation to /api/chat",
           "context");
  if (!r.failed() && !system.empty() && (raw || !suffix.empty()))
    r.fail("'system' has no place in a raw prompt or a fill-in-the-middle one", "system");
  ChatRequest chat;
  read_think(r, chat.chat);
  read_logprobs(r, chat);
  if (r.failed())
    return *r.error();
  out.load_only = prompt.empty() && suffix.empty();
  if ((raw || !suffix.empty()) && chat.chat.reasoning_effort)
    return invalid("'think' needs the chat template: not with a raw or fill-in-the-middle prompt",
                   "think");
  if (raw || !suffix.empty()) {
    CompletionRequest c;
    c.params = std::move(params);
    c.prompts.emplace_back(std::move(prompt));
    c.suffix = std::move(suffix);
    if (chat.logprobs)
      c.logprobs = chat.top_logprobs;
    out.request = std::move(c);
    return out;
  }
  chat.params = std::move(params);
  if (!system.empty())
    chat.messages.push_back(chatfmt::Message{"system", std::move(system), {}, {}, {}, {}});
  chat.messages.push_back(chatfmt::Message{"user", std::move(prompt), {}, {}, {}, {}});
  chat.chat.stream = chat.params.stream;
  out.request = std::move(chat);
  return out;
}

namespace {

Result<OllamaEmbedRequest> read_embed_common(JsonReader& r) {
  OllamaEmbedRequest e;
  r.string("model", e.model);
  if (!r.failed() && e.model.empty())
    r.fail("model is required", "model");
  read_keep_alive(r, e.keep_alive);
  if (const auto* o = r.find("options"); !r.failed() && o && !o->is_object())
    r.fail("'options' must be an object", "options");
  if (r.failed())
    return *r.error();
  return e;
}

}  // namespace

Result<OllamaEmbedRequest> parse_ollama_embed_request(std::string_view body) {
  auto obj = parse_body(body);
  if (!obj)
    return obj.error();
  JsonReader r(*obj);
  auto e = read_embed_common(r);
  if (!e)
    return e;
  r.boolean("truncate", e->truncate);
  r.integer32("dimensions", e->dimensions, 1, std::numeric_limits<std::int32_t>::max());
  const json::value* in = r.find("input");
  if (in != nullptr && in->is_string()) {
    if (!in->get_string().empty())
      e->inputs.emplace_back(in->get_string());
  } else if (in != nullptr && in->is_array()) {
    if (in->get_array().size() > 2048)
      r.fail("'input' may hold at most 2048 texts", "input");
    for (const auto& item : in->get_array()) {
      if (!item.is_string()) {
        r.fail("invalid input type: 'input' must be a string or an array of strings", "input");
        break;
      }
      if (item.get_string().empty()) {
        r.fail("'input' must not hold an empty text", "input");
        break;
      }
      e->inputs.emplace_back(item.get_string());
    }
  } else if (in != nullptr) {
    r.fail("invalid input type: 'input' must be a string or an array of strings", "input");
  }
  if (r.failed())
    return *r.error();
  return e;
}

Result<OllamaEmbedRequest> parse_ollama_embeddings_request(std::string_view body) {
  auto obj = parse_body(body);
  if (!obj)
    return obj.error();
  JsonReader r(*obj);
  auto e = read_embed_common(r);
  if (!e)
    return e;
  e->legacy = true;
  e->truncate = false;
  std::string prompt;
  r.string("prompt", prompt);
  if (r.failed())
    return *r.error();
  if (!prompt.empty())
    e->inputs.push_back(std::move(prompt));
  return e;
}

Result<std::string> parse_ollama_show_request(std::string_view body) {
  auto obj = parse_body(body);
  if (!obj)
    return obj.error();
  JsonReader r(*obj);
  std::string model;
  r.string("model", model);
  if (model.empty())
    r.string("name", model);  // Ollama's older field
  if (!r.failed() && model.empty())
    r.fail("model is required", "model");
  if (r.failed())
    return *r.error();
  return model;
}

std::string ollama_time(std::chrono::system_clock::time_point t) {
  const auto ns =
      std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count();
  const std::time_t secs = static_cast<std::time_t>(ns / 1'000'000'000);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  return fmt::format("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:09}Z", tm.tm_year + 1900, tm.tm_mon + 1,
                     tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ns % 1'000'000'000);
}

namespace {

void append_string(std::string& out, std::string_view s) {
  out += json::serialize(json::string_view(s.data(), s.size()));
}

// JSON has neither NaN nor infinities: a NaN is written 0 (a random model's overflow), an
// infinity +-1e308 (a -inf log-probability).
void append_float(std::string& out, float x) {
  if (std::isfinite(x))
    fmt::format_to(std::back_inserter(out), "{}", x);
  else
    out += std::isnan(x) ? "0" : (x < 0 ? "-1e308" : "1e308");
}

// A call's arguments as an object (their JSON text parsed), or the text itself when it is not
// a JSON object (a model that wrote broken arguments).
void append_arguments(std::string& out, const std::string& text) {
  boost::system::error_code ec;
  const json::value v = json::parse(text, ec);
  if (!ec && v.is_object())
    out += json::serialize(v);
  else
    append_string(out, text);
}

void append_tool_calls(std::string& out, std::span<const chatfmt::ToolCall> calls) {
  out += R"(,"tool_calls":[)";
  for (std::size_t i = 0; i < calls.size(); ++i) {
    if (i > 0)
      out += ',';
    out += R"({"id":)";
    append_string(out, calls[i].id);
    fmt::format_to(std::back_inserter(out), R"(,"function":{{"index":{},"name":)", i);
    append_string(out, calls[i].name);
    out += R"(,"arguments":)";
    append_arguments(out, calls[i].arguments);
    out += "}}";
  }
  out += ']';
}

void append_logprobs(std::string& out, const std::vector<TokenLogprob>& lps) {
  out += R"(,"logprobs":[)";
  for (std::size_t i = 0; i < lps.size(); ++i) {
    if (i > 0)
      out += ',';
    out += R"({"token":)";
    append_string(out, lps[i].token);
    out += R"(,"logprob":)";
    append_float(out, lps[i].logprob);
    if (!lps[i].top.empty()) {
      out += R"(,"top_logprobs":[)";
      for (std::size_t k = 0; k < lps[i].top.size(); ++k) {
        out += k > 0 ? R"(,{"token":)" : R"({"token":)";
        append_string(out, lps[i].top[k].first);
        out += R"(,"logprob":)";
        append_float(out, lps[i].top[k].second);
        out += '}';
      }
      out += ']';
    }
    out += '}';
  }
  out += ']';
}

}  // namespace

std::string ollama_answer_json(const OllamaAnswer& a) {
  std::string out = R"({"model":)";
  append_string(out, a.model);
  out += R"(,"created_at":)";
  append_string(out, a.created_at);
  if (a.chat) {
    out += R"(,"message":{"role":"assistant","content":)";
    append_string(out, a.content);
    if (!a.thinking.empty()) {
      out += R"(,"thinking":)";
      append_string(out, a.thinking);
    }
    if (!a.tool_calls.empty())
      append_tool_calls(out, a.tool_calls);
    out += '}';
  } else {
    out += R"(,"response":)";
    append_string(out, a.content);
    if (!a.thinking.empty()) {
      out += R"(,"thinking":)";
      append_string(out, a.thinking);
    }
  }
  if (a.logprobs != nullptr && !a.logprobs->empty())
    append_logprobs(out, *a.logprobs);
  fmt::format_to(std::back_inserter(out), R"(,"done":{})", a.done);
  if (a.done) {
    out += R"(,"done_reason":)";
    append_string(out, a.done_reason);
  }
  if (a.done && a.metrics != nullptr) {
    const OllamaMetrics& m = *a.metrics;
    fmt::format_to(std::back_inserter(out),
                   R"(,"total_duration":{},"load_duration":{},"prompt_eval_count":{},)"
                   R"("prompt_eval_duration":{},"eval_count":{},"eval_duration":{})",
                   m.total_ns, m.load_ns, m.prompt_tokens, m.prompt_ns, m.output_tokens,
                   m.output_ns);
  }
  out += '}';
  return out;
}

namespace {

// {"<key>": "<value>"}.
std::string string_object(std::string_view key, std::string_view value) {
  std::string out = "{";
  append_string(out, key);
  out += ':';
  append_string(out, value);
  out += '}';
  return out;
}

}  // namespace

std::string ollama_error_json(std::string_view message) {
  return string_object("error", message);
}

namespace {

std::string unix_time(std::int64_t seconds) {
  return ollama_time(std::chrono::system_clock::time_point(std::chrono::seconds(seconds)));
}

void append_strings(std::string& out, std::span<const std::string> v) {
  out += '[';
  for (std::size_t k = 0; k < v.size(); ++k) {
    if (k > 0)
      out += ',';
    append_string(out, v[k]);
  }
  out += ']';
}

// "details": {...} of a model, as /api/tags, /api/ps and /api/show write it.
void append_details(std::string& out, const OllamaModel& m) {
  out += R"("details":{"parent_model":"","format":"gguf","family":)";
  append_string(out, m.family);
  out += R"(,"families":)";
  const std::vector<std::string> families =
      m.family.empty() ? std::vector<std::string>{} : std::vector<std::string>{m.family};
  append_strings(out, families);
  out += R"(,"parameter_size":)";
  append_string(out, m.parameter_size);
  out += R"(,"quantization_level":)";
  append_string(out, m.quantization);
  out += '}';
}

// A listed model's fields, its object left open for /api/ps's.
void append_model(std::string& out, const OllamaModel& m) {
  out += R"({"name":)";
  append_string(out, m.name);
  out += R"(,"model":)";
  append_string(out, m.name);
  out += R"(,"modified_at":)";
  append_string(out, unix_time(m.modified));
  fmt::format_to(std::back_inserter(out), R"(,"size":{},"digest":"",)", m.size);
  append_details(out, m);
}

}  // namespace

std::string ollama_tags_json(std::span<const OllamaModel> models) {
  std::string out = R"({"models":[)";
  for (std::size_t i = 0; i < models.size(); ++i) {
    if (i > 0)
      out += ',';
    append_model(out, models[i]);
    out += '}';
  }
  out += "]}";
  return out;
}

std::string ollama_ps_json(std::span<const OllamaModel> models) {
  std::string out = R"({"models":[)";
  for (std::size_t i = 0; i < models.size(); ++i) {
    if (i > 0)
      out += ',';
    append_model(out, models[i]);
    out += R"(,"expires_at":"2318-01-01T00:00:00Z","size_vram":0})";
  }
  out += "]}";
  return out;
}

std::string ollama_show_json(const OllamaShow& s) {
  std::string out = R"({"license":"","modelfile":)";
  append_string(out, fmt::format("# served by troupe\nFROM {}\n", s.path));
  out += R"(,"parameters":"","template":)";
  append_string(out, s.chat_template);
  out += R"(,"system":"",)";
  append_details(out, s.model);
  out += R"(,"model_info":{"general.architecture":)";
  append_string(out, s.model.family);
  fmt::format_to(std::back_inserter(out), R"(,"general.parameter_count":{})", s.parameters);
  if (!s.model.family.empty()) {
    out += ',';
    append_string(out, s.model.family + ".context_length");
    fmt::format_to(std::back_inserter(out), ":{}", s.n_ctx);
  }
  out += R"(},"capabilities":)";
  append_strings(out, s.capabilities);
  out += R"(,"modified_at":)";
  append_string(out, unix_time(s.model.modified));
  out += '}';
  return out;
}

std::string ollama_version_json(std::string_view version) {
  return string_object("version", version);
}

std::string ollama_embed_json(std::string_view model, std::span<const std::vector<float>> vectors,
                              std::int64_t total_ns, std::int64_t prompt_tokens) {
  std::string out = R"({"model":)";
  append_string(out, model);
  out += R"(,"embeddings":[)";
  for (std::size_t i = 0; i < vectors.size(); ++i) {
    if (i > 0)
      out += ',';
    append_float_array(out, vectors[i]);
  }
  fmt::format_to(std::back_inserter(out),
                 R"(],"total_duration":{},"load_duration":0,"prompt_eval_count":{}}})", total_ns,
                 prompt_tokens);
  return out;
}

std::string ollama_embedding_json(std::span<const float> vector) {
  std::string out = R"({"embedding":)";
  append_float_array(out, vector);
  out += '}';
  return out;
}

}  // namespace troupe::api
