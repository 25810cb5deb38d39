#include "chatfmt/chat_format.hpp"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <cctype>
#include <exception>
#include <random>
#include <regex>

// llama.cpp's common library: only this file includes it.
#include "chat.h"
#include "json-schema-to-grammar.h"
#include "json.h"

namespace troupe::chatfmt {

namespace {

common_reasoning_format to_common(ReasoningFormat f) {
  switch (f) {
    case ReasoningFormat::none:
      return COMMON_REASONING_FORMAT_NONE;
    case ReasoningFormat::automatic:
      return COMMON_REASONING_FORMAT_AUTO;
    case ReasoningFormat::deepseek:
      return COMMON_REASONING_FORMAT_DEEPSEEK;
    case ReasoningFormat::deepseek_legacy:
      return COMMON_REASONING_FORMAT_DEEPSEEK_LEGACY;
  }
  return COMMON_REASONING_FORMAT_AUTO;
}

common_chat_msg to_common(const Message& m) {
  common_chat_msg out;
  out.role = m.role;
  out.content = m.content;
  out.reasoning_content = m.reasoning_content;
  for (const auto& c : m.tool_calls)
    out.tool_calls.push_back({c.name, c.arguments, c.id});
  out.tool_call_id = m.tool_call_id;
  out.tool_name = m.name;
  return out;
}

Message from_common(const common_chat_msg& m) {
  Message out;
  out.role = m.role.empty() ? "assistant" : m.role;
  out.content = m.content;
  out.reasoning_content = m.reasoning_content;
  for (const auto& c : m.tool_calls)
    out.tool_calls.push_back({c.id, c.name, c.arguments});
  return out;
}

Error bad(std::string message, std::string param) {
  return Error{Errc::invalid_request, std::move(message), std::move(param)};
}

// The kwargs as the library takes them (name -> JSON text), with enable_thinking and
// reasoning_effort applied the way llama-server applies them.
Result<bool> apply_kwargs(const ChatOptions& o, common_chat_templates_inputs& in) {
  bool enable_thinking = true;
  for (const auto& [name, value] : o.template_kwargs) {
    in.chat_template_kwargs[name] = value;
    if (name != "enable_thinking")
      continue;
    if (value == "true" || value == "false") {
      enable_thinking = value == "true";
    } else {
      return bad("chat_template_kwargs.enable_thinking must be a boolean", "chat_template_kwargs");
    }
  }
  if (o.reasoning_effort) {
    if (*o.reasoning_effort == "none") {
      enable_thinking = false;
    } else {
      in.chat_template_kwargs["reasoning_effort"] = common_json(*o.reasoning_effort).dump();
    }
  }
  return enable_thinking;
}

std::optional<Error> set_tools(const ChatOptions& o, common_chat_templates_inputs& in) {
  for (const auto& t : o.tools) {
    if (o.tool_choice == ToolChoice::function && t.name != o.tool_choice_function)
      continue;  // a named choice shows and forces that one function
    in.tools.push_back({t.name, t.description, t.parameters.empty() ? "{}" : t.parameters});
  }
  switch (o.tool_choice) {
    case ToolChoice::automatic:
      in.tool_choice = COMMON_CHAT_TOOL_CHOICE_AUTO;
      break;
    case ToolChoice::none:
      in.tool_choice = COMMON_CHAT_TOOL_CHOICE_NONE;
      break;
    case ToolChoice::required:
    case ToolChoice::function:
      in.tool_choice = COMMON_CHAT_TOOL_CHOICE_REQUIRED;
      break;
  }
  if (o.tool_choice == ToolChoice::function && in.tools.empty()) {
    return bad(fmt::format("tool_choice names the function '{}', which is not in tools",
                           o.tool_choice_function),
               "tool_choice");
  }
  if (o.tool_choice == ToolChoice::required && in.tools.empty())
    return bad("tool_choice is 'required' but there are no tools", "tool_choice");
  return std::nullopt;
}

// The top-level elements of a GBNF rule body: quoted literals, character classes and
// parenthesized groups (with their repetition suffix) stay whole.
std::vector<std::string> top_level_elements(std::string_view body) {
  std::vector<std::string> out;
  std::string cur;
  int depth = 0;
  char quote = 0;  // '"' inside a literal, ']' inside a class
  for (std::size_t i = 0; i < body.size(); ++i) {
    const char c = body[i];
    if (quote != 0) {
      cur += c;
      if (c == '\\' && i + 1 < body.size())
        cur += body[++i];
      else if (c == quote)
        quote = 0;
      continue;
    }
    if (c == ' ' && depth == 0) {
      if (!cur.empty())
        out.push_back(std::move(cur));
      cur.clear();
      continue;
    }
    cur += c;
    if (c == '"')
      quote = '"';
    else if (c == '[')
      quote = ']';
    else if (c == '(')
      ++depth;
    else if (c == ')')
      --depth;
  }
  if (!cur.empty())
    out.push_back(std::move(cur));
  return out;
}

// Replaces the body of rule `name` in `gbnf` with what `edit` makes of it.
template <typename Edit>
std::string edit_rule(const std::string& gbnf, const std::string& name, Edit edit) {
  const std::string head = name + " ::= ";
  std::size_t at = gbnf.starts_with(head) ? 0 : gbnf.find("\n" + head);
  if (at == std::string::npos)
    return gbnf;
  if (at != 0 || !gbnf.starts_with(head))
    ++at;
  const std::size_t body = at + head.size();
  const std::size_t end = std::min(gbnf.find('\n', body), gbnf.size());
  return gbnf.substr(0, body) + edit(gbnf.substr(body, end - body)) + gbnf.substr(end);
}

// llama.cpp's grammar for a required tool call lets free text come first (`until-N`: any
// text up to the call's opening marker; gpt-oss: any number of other channel messages), so a
// weak model can ramble until it runs out of tokens, and with parallel calls off some
// families still allow several calls. troupe forces the call itself, as OpenAI and vLLM do:
// those free-text elements are taken out of the root rule (a thinking block stays allowed),
// and (one_call) `tool-calls ::= (tool-call space)+` becomes one call when parallel calls are
// off. Grammars of other shapes are kept as they are.
std::string tighten_required(const std::string& gbnf) {
  static const std::regex free_text(R"(until-[0-9]+\??|\(start any\)\*)");
  return edit_rule(gbnf, "root", [](const std::string& body) {
    std::string kept;
    for (const auto& e : top_level_elements(body)) {
      if (std::regex_match(e, free_text))
        continue;
      kept += (kept.empty() ? "" : " ") + e;
    }
    return kept;
  });
}

// A template that opens the thinking block itself whatever enable_thinking says (DeepSeek R1's
// llama.cpp template, QwQ) would leave a request that turned thinking off thinking anyway, and
// a forced call behind an unbounded thought. Such a block is closed in the prompt, an empty
// thought, as llama.cpp once did for DeepSeek R1: the grammar and the parser read the closed
// block as part of the generation prompt.
// Whether the prompt ends inside the template's reasoning block: its generation prompt ends
// with the block's opening tag (and white space).
bool opens_thinking(const common_chat_params& p) {
  if (p.thinking_start_tag.empty() || p.thinking_end_tags.empty())
    return false;
  std::string_view opened = p.generation_prompt;
  while (!opened.empty() && std::isspace(static_cast<unsigned char>(opened.back())) != 0)
    opened.remove_suffix(1);
  return opened.ends_with(p.thinking_start_tag) && p.prompt.ends_with(p.generation_prompt);
}

void close_opened_thinking(common_chat_params& p) {
  if (!opens_thinking(p))
    return;
  p.prompt += p.thinking_end_tags.front();
  p.generation_prompt += p.thinking_end_tags.front();
}

std::string one_call(const std::string& gbnf) {
  return edit_rule(gbnf, "tool-calls", [](const std::string& body) {
    if (body.size() > 3 && body.front() == '(' && body.ends_with(")+") &&
        top_level_elements(body).size() == 1)
      return body.substr(1, body.size() - 3);
    return body;
  });
}

// ---- forced calls of the families whose call grammar keeps free-text slots

// Calls `emit(kind, token)` for each token of a GBNF rule body: 'l' a quoted literal, 'c' a
// character class, 'r' a repetition count ({m,n}), 'i' a rule name, ' ' anything else (spaces,
// operators, parentheses), one character at a time.
template <typename Emit>
void scan_gbnf(std::string_view body, Emit emit) {
  std::size_t i = 0;
  auto until = [&](char close) {
    const std::size_t from = i++;
    while (i < body.size() && body[i] != close)
      i += body[i] == '\\' ? 2 : 1;
    i = std::min(i + 1, body.size());
    return body.substr(from, i - from);
  };
  while (i < body.size()) {
    const char c = body[i];
    if (c == '"') {
      emit('l', until('"'));
    } else if (c == '[') {
      emit('c', until(']'));
    } else if (c == '{') {
      emit('r', until('}'));
    } else if (std::isalpha(static_cast<unsigned char>(c))) {
      const std::size_t from = i;
      while (i < body.size() && (std::isalnum(static_cast<unsigned char>(body[i])) ||
                                 body[i] == '-' || body[i] == '_'))
        ++i;
      emit('i', body.substr(from, i - from));
    } else {
      emit(' ', body.substr(i++, 1));
    }
  }
}

// The rules of a grammar as llama.cpp writes them: one "name ::= body" per line.
std::vector<std::pair<std::string, std::string>> split_rules(const std::string& gbnf) {
  std::vector<std::pair<std::string, std::string>> rules;
  std::size_t at = 0;
  while (at < gbnf.size()) {
    std::size_t end = gbnf.find('\n', at);
    if (end == std::string::npos)
      end = gbnf.size();
    const std::string_view line(gbnf.data() + at, end - at);
    const std::size_t sep = line.find(" ::= ");
    if (sep != std::string_view::npos)
      rules.emplace_back(std::string(line.substr(0, sep)), std::string(line.substr(sep + 5)));
    at = end + 1;
  }
  return rules;
}

// A tool's parameters in Gemma 4's call syntax (`{days:3,city:<|"|>Paris<|"|>}`: bare keys,
// strings between <|"|> marks, everything else as JSON), from llama.cpp's JSON grammar of the
// schema: a key literal `"\"k\"" space ":"` becomes `"k:"`, a quote in any other literal becomes
// <|"|>, and every rule name gets `prefix`. Returns the rules (the root one named `prefix`
// + "root"), or nullopt for schemas with keys the schema does not name (free-form objects,
// additional properties), for which the family's own open dictionary stays.
std::optional<std::string> gemma4_arguments(const std::string& parameters,
                                            const std::string& prefix) {
  std::string json_gbnf;
  try {
    json_gbnf = json_schema_to_grammar(common_json::parse(parameters.empty() ? "{}" : parameters));
  } catch (const std::exception&) {
    return std::nullopt;
  }
  std::string out;
  bool open_keys = false;
  for (const auto& [name, body] : split_rules(json_gbnf)) {
    std::vector<std::pair<char, std::string>> tokens;
    scan_gbnf(body, [&](char kind, std::string_view t) {
      if (kind == ' ' && t == " ")
        return;  // separators are re-inserted below
      tokens.emplace_back(kind, std::string(t));
    });
    std::string rewritten;
    auto put = [&](const std::string& t) {
      // A repetition stays attached to what it repeats.
      const bool attached = t == "*" || t == "+" || t == "?" || t.starts_with("{");
      rewritten += (rewritten.empty() || attached ? "" : " ") + t;
    };
    static const std::regex key(R"re("\\"([A-Za-z0-9_$.-]+)\\"")re");
    for (std::size_t k = 0; k < tokens.size(); ++k) {
      const auto& [kind, t] = tokens[k];
      std::smatch m;
      if (kind == 'l' && k + 2 < tokens.size() &&
          tokens[k + 1] == std::pair<char, std::string>{'i', "space"} &&
          tokens[k + 2] == std::pair<char, std::string>{'l', "\":\""} &&
          std::regex_match(t, m, key)) {
        put("\"" + m[1].str() + ":\"");
        k += 2;
      } else if (kind == 'l' && t == "\":\"") {
        open_keys = true;  // a key from a rule: not one the schema names
        put(t);
      } else if (kind == 'l') {
        std::string lit;
        for (std::size_t j = 0; j < t.size(); ++j) {
          if (t[j] == '\\' && j + 1 < t.size()) {
            lit += t[j + 1] == '"' ? std::string("<|\\\"|>") : t.substr(j, 2);
            ++j;
          } else {
            lit += t[j];
          }
        }
        put(lit);
      } else if (kind == 'i') {
        put(prefix + t);
      } else {
        put(t);
      }
    }
    out.append(prefix).append(name).append(" ::= ").append(rewritten).append("\n");
  }
  if (open_keys)
    return std::nullopt;
  return out;
}

// llama.cpp's forced-call grammars for three families keep slots of free text inside the
// call, which a model that does not close them (a weak or random one) fills until it runs out
// of tokens. Each slot is bounded the way the family's parser still reads it:
// - Mistral Nemo's optional "id" (any string or number) is nine alphanumerics, the ids its
//   template takes back;
// - gpt-oss's channel header may carry `<|constrain|>` and any word; it keeps only "
// <|constrain|>json";
// - Gemma 4's arguments are an open dictionary (any key, any value): each tool's gets the
//   keys and value types of its parameter schema (gemma4_arguments).
std::string bound_call_slots(const std::string& gbnf, const std::vector<Tool>& tools) {
  auto rules = split_rules(gbnf);
  std::string extra;
  for (auto& [name, body] : rules) {
    // Nemo
    const auto elements = top_level_elements(body);
    std::string kept;
    bool changed = false;
    for (const auto& e : elements) {
      std::string element = e;
      if (e.starts_with(R"(("\"id\"" space ":" space )") && e.ends_with(")?")) {
        element = R"("\"id\"" space ":" space "\"" [a-zA-Z0-9]{9} "\"")";
        changed = true;
      }
      kept += (kept.empty() ? "" : " ") + element;
    }
    if (changed)
      body = kept;
    // gpt-oss
    static const std::string constrain = R"((space "<|constrain|>"? [A-Za-z0-9_-]+)?)";
    for (std::size_t at; (at = body.find(constrain)) != std::string::npos;)
      body.replace(at, constrain.size(), R"((" <|constrain|>json")?)");
    // Gemma 4
    for (const auto& tool : tools) {
      if (body != "(" + gbnf_format_literal(tool.name) + ") gemma4-dict")
        continue;
      const std::string prefix = name + "-args-";
      if (auto args = gemma4_arguments(tool.parameters, prefix)) {
        body = "(" + gbnf_format_literal(tool.name) + ") " + prefix + "root";
        extra += *args;
      }
    }
  }
  std::string out;
  for (const auto& [name, body] : rules)
    out.append(name).append(" ::= ").append(body).append("\n");
  return out + extra;
}

Grammar to_grammar(const common_chat_params& p) {
  Grammar g;
  g.gbnf = p.grammar;
  g.lazy = p.grammar_lazy;
  for (const auto& t : p.grammar_triggers) {
    GrammarTrigger out;
    out.value = t.value;
    switch (t.type) {
      case COMMON_GRAMMAR_TRIGGER_TYPE_PATTERN:
        out.kind = GrammarTrigger::Kind::pattern;
        break;
      case COMMON_GRAMMAR_TRIGGER_TYPE_PATTERN_FULL:
        out.kind = GrammarTrigger::Kind::pattern_full;
        break;
      default:  // a word, or a token named by its text
        out.kind = GrammarTrigger::Kind::word;
        break;
    }
    g.triggers.push_back(std::move(out));
  }
  g.preserved_tokens = p.preserved_tokens;
  return g;
}

// Nine alphanumeric characters: Mistral's templates refuse any other tool-call id when the
// conversation comes back, and other templates take any string.
std::string random_call_id(std::mt19937& rng) {
  static constexpr char alphabet[] =
      "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
  std::uniform_int_distribution<std::size_t> pick(0, sizeof(alphabet) - 2);
  std::string id;
  for (int i = 0; i < 9; ++i)
    id += alphabet[pick(rng)];
  return id;
}

// The part of `next` after `sent`, when `next` extends it (then `sent` becomes `next`).
std::string extend(const std::string& next, std::string& sent) {
  if (next.size() <= sent.size() || next.compare(0, sent.size(), sent) != 0)
    return {};
  std::string more = next.substr(sent.size());
  sent = next;
  return more;
}

}  // namespace

std::string trigger_pattern(const GrammarTrigger& t) {
  switch (t.kind) {
    case GrammarTrigger::Kind::pattern:
      return t.value;
    case GrammarTrigger::Kind::pattern_full: {
      if (t.value.empty())
        return "^$";
      return (t.value.front() == '^' ? "" : "^") + t.value + (t.value.back() == '$' ? "" : "$");
    }
    case GrammarTrigger::Kind::word:
      break;
  }
  std::string out;
  for (char c : t.value) {
    if (std::string_view("\\^$.|?*+()[]{}-").find(c) != std::string_view::npos)
      out += '\\';
    out += c;
  }
  return out;
}

// ---------------------------------------------------------------------------- ChatTemplate

struct ChatTemplate::Impl {
  common_chat_templates_ptr templates;
  std::string source;
};

ChatTemplate::ChatTemplate(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
ChatTemplate::~ChatTemplate() = default;

Result<std::unique_ptr<ChatTemplate>> ChatTemplate::create(const std::string& source,
                                                           const std::string& bos,
                                                           const std::string& eos) {
  if (source.empty())
    return bad("the chat template is empty", "chat_template");
  auto impl = std::make_unique<Impl>();
  try {
    impl->templates = common_chat_templates_init(nullptr, source, bos, eos);
    impl->source = common_chat_templates_source(impl->templates.get());
  } catch (const std::exception& e) {
    return bad(fmt::format("the chat template does not parse: {}", e.what()), "chat_template");
  }
  std::unique_ptr<ChatTemplate> t(new ChatTemplate(std::move(impl)));
  auto probe = t->render({{"user", "Hello"}}, ChatOptions{});
  if (!probe)
    return bad(probe.error().message, "chat_template");
  return t;
}

const std::string& ChatTemplate::source() const noexcept {
  return impl_->source;
}

bool ChatTemplate::supports_tool_calls() const {
  auto caps = common_chat_templates_get_caps(impl_->templates.get());
  return caps["supports_tool_calls"];
}

bool ChatTemplate::supports_thinking() const {
  try {
    return common_chat_templates_support_enable_thinking(impl_->templates.get());
  } catch (const std::exception&) {
    return false;
  }
}

Result<Rendered> ChatTemplate::render(const std::vector<Message>& messages,
                                      const ChatOptions& options) const {
  common_chat_templates_inputs in;
  for (const auto& m : messages)
    in.messages.push_back(to_common(m));
  if (auto e = set_tools(options, in))
    return *e;
  auto thinking = apply_kwargs(options, in);
  if (!thinking)
    return thinking.error();
  in.enable_thinking = thinking.value();
  in.reasoning_format = to_common(options.reasoning_format);
  auto caps = common_chat_templates_get_caps(impl_->templates.get());
  in.parallel_tool_calls =
      options.parallel_tool_calls.value_or(caps["supports_parallel_tool_calls"]);
  in.add_generation_prompt = options.add_generation_prompt;
  if (!options.json_schema.empty()) {
    if (!in.tools.empty() && in.tool_choice != COMMON_CHAT_TOOL_CHOICE_NONE) {
      return bad(
          "response_format cannot be combined with tools the model may call: the "
          "constrained answer would leave no room for a call",
          "response_format");
    }
    in.json_schema = options.json_schema;
  }
  const bool prefill = !messages.empty() && messages.back().role == "assistant" &&
                       messages.back().tool_calls.empty();
  if (prefill) {
    in.continue_final_message = COMMON_CHAT_CONTINUATION_AUTO;
    in.add_generation_prompt = false;
  }
  common_chat_params p;
  try {
    p = common_chat_templates_apply(impl_->templates.get(), in);
  } catch (const std::exception& e) {
    return bad(fmt::format("the chat template cannot render this conversation: {}", e.what()),
               "messages");
  }
  if (!in.enable_thinking && in.add_generation_prompt)
    close_opened_thinking(p);
  Rendered r;
  if (!p.thinking_start_tag.empty() && !p.thinking_end_tags.empty())
    r.thinking = Thinking{p.thinking_start_tag, p.thinking_end_tags, opens_thinking(p)};
  r.prompt = std::move(p.prompt);
  if (!p.grammar.empty()) {
    r.grammar = to_grammar(p);
    if (!r.grammar->lazy && in.tool_choice == COMMON_CHAT_TOOL_CHOICE_REQUIRED) {
      r.grammar->gbnf = tighten_required(r.grammar->gbnf);
      r.grammar->gbnf = bound_call_slots(r.grammar->gbnf, options.tools);
    }
    if (!in.parallel_tool_calls)
      r.grammar->gbnf = one_call(r.grammar->gbnf);
  } else if (in.tool_choice == COMMON_CHAT_TOOL_CHOICE_REQUIRED) {
    return bad(fmt::format("this model's chat template ({}) cannot force a tool call: use "
                           "tool_choice 'auto'",
                           common_chat_format_name(p.format)),
               "tool_choice");
  } else if (!options.json_schema.empty()) {
    // A template route that builds no grammar for a response format: constrain the answer
    // with the schema's own grammar rather than not at all.
    auto gbnf = schema_to_grammar(options.json_schema, "response_format");
    if (!gbnf)
      return gbnf.error();
    r.grammar = Grammar{std::move(gbnf).value(), false, {}, {}};
    r.grammar_reads_prompt = false;
  }
  r.additional_stops = p.additional_stops;
  r.preserved_tokens = p.preserved_tokens;
  r.format_name = common_chat_format_name(p.format);
  r.parser.format = static_cast<std::int32_t>(p.format);
  r.parser.parser = p.parser;
  r.parser.generation_prompt = p.generation_prompt;
  r.parser.reasoning_format = options.reasoning_format;
  r.parser.reasoning_in_content =
      options.stream && options.reasoning_format == ReasoningFormat::deepseek_legacy;
  r.parser.parse_tool_calls = !in.tools.empty() && in.tool_choice != COMMON_CHAT_TOOL_CHOICE_NONE;
  r.parser.is_continuation = prefill;
  return r;
}

// ---------------------------------------------------------------------------- OutputParser

struct OutputParser::Impl {
  common_chat_parser_params params;
  std::mt19937 rng{std::random_device{}()};
  std::vector<std::string> ids;  // the id of each tool call, once seen
};

OutputParser::OutputParser(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {
  message_.role = "assistant";
}
OutputParser::~OutputParser() = default;

Result<std::unique_ptr<OutputParser>> OutputParser::create(const ParserConfig& config,
                                                           bool incremental) {
  if (config.format < 0 || config.format >= COMMON_CHAT_FORMAT_COUNT)
    return bad(fmt::format("unknown chat output format {}", config.format), "chat_format");
  auto impl = std::make_unique<Impl>();
  auto& p = impl->params;
  p.format = static_cast<common_chat_format>(config.format);
  p.reasoning_format = to_common(config.reasoning_format);
  p.reasoning_in_content = config.reasoning_in_content;
  p.generation_prompt = config.generation_prompt;
  p.parse_tool_calls = config.parse_tool_calls;
  p.is_continuation = config.is_continuation;
  try {
    // Without the serialized parser, common_chat_parse parses no tool calls at all.
    if (!config.parser.empty())
      p.parser.load(config.parser);
  } catch (const std::exception& e) {
    return bad(fmt::format("the chat output parser does not load: {}", e.what()), "chat_parser");
  }
  std::unique_ptr<OutputParser> parser(new OutputParser(std::move(impl)));
  parser->incremental_ = incremental;
  if (config.is_continuation) {
    // What a continued message already holds is not output: start from its parse.
    try {
      parser->message_ = from_common(common_chat_parse("", true, parser->impl_->params));
    } catch (const std::exception&) {
    }
    parser->content_sent_ = parser->message_.content;
    parser->reasoning_sent_ = parser->message_.reasoning_content;
  }
  return parser;
}

namespace {

// Text no family's markup starts or continues: letters, digits, spaces and sentence
// punctuation, ending with a letter, digit or punctuation (a partial parse may hold back
// trailing whitespace). Every marker of llama.cpp's formats holds a character outside this
// set (<, [, {, |, :, =, newline, non-ASCII), so plain text appended to plain content or
// reasoning is that text appended, as the property tests check per family.
bool plain(std::string_view text) {
  if (text.empty() || text.back() == ' ')
    return false;
  for (const char c : text) {
    // ASCII only, whatever the locale.
    const bool alnum = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
    if (!alnum && c != ' ' && c != '.' && c != ',' && c != '!' && c != '?' && c != '\'')
      return false;
  }
  return true;
}

}  // namespace

MessageDelta OutputParser::feed(std::string_view text, bool final) {
  // Incremental: while the last parse took the last piece whole as content (or reasoning),
  // a plain piece extends that field: no re-parse. Anything else re-parses the whole output.
  if (!final && tail_ != Tail::unknown && plain(text)) {
    text_ += text;
    Message next = message_;
    (tail_ == Tail::content ? next.content : next.reasoning_content) += text;
    return diff(next, final);
  }
  text_ += text;
  tail_ = Tail::unknown;
  ++reparses_;
  Message next;
  try {
    next = from_common(common_chat_parse(text_, !final, impl_->params));
  } catch (const std::exception& e) {
    if (!final)
      return {};  // partial output the parser cannot read yet: wait for more
    spdlog::warn("chat output does not match its format ({}); keeping it as content", e.what());
    try {
      next = from_common(common_chat_parse(text_, true, impl_->params));
    } catch (const std::exception&) {
      next = message_;
    }
    if (next.tool_calls.empty() &&
        next.content.size() + next.reasoning_content.size() < text_.size())
      next.content = text_;
  }
  for (std::size_t i = 0; i < next.tool_calls.size(); ++i) {
    auto& call = next.tool_calls[i];
    if (impl_->ids.size() <= i)
      impl_->ids.push_back(call.id.empty() ? random_call_id(impl_->rng) : call.id);
    call.id = impl_->ids[i];
  }
  // Learnt only from a plain piece: text the parser held back (a possible marker's start,
  // which is never plain) and gives out now cannot pass for it.
  if (incremental_ && !final && plain(text) && next.tool_calls == message_.tool_calls) {
    const auto grew_by = [&](const std::string& now, const std::string& before) {
      return now.size() == before.size() + text.size() && now.starts_with(before) &&
             now.ends_with(text);
    };
    if (next.reasoning_content == message_.reasoning_content &&
        grew_by(next.content, message_.content))
      tail_ = Tail::content;
    else if (next.content == message_.content &&
             grew_by(next.reasoning_content, message_.reasoning_content))
      tail_ = Tail::reasoning;
  }
  return diff(next, final);
}

MessageDelta OutputParser::diff(const Message& next, bool final) {
  MessageDelta d;
  d.content = extend(next.content, content_sent_);
  d.reasoning = extend(next.reasoning_content, reasoning_sent_);
  calls_.resize(std::max(calls_.size(), next.tool_calls.size()));
  for (std::size_t i = 0; i < next.tool_calls.size(); ++i) {
    const auto& call = next.tool_calls[i];
    auto& state = calls_[i];
    if (state.announced) {
      auto more = extend(call.arguments, state.args_sent);
      if (!more.empty())
        d.tool_calls.push_back({i, "", "", std::move(more)});
      continue;
    }
    // A name may still grow while nothing follows it: announce it once it is complete.
    const bool name_done = !call.arguments.empty() || final || i + 1 < next.tool_calls.size();
    if (call.name.empty() || !name_done)
      continue;
    state.announced = true;
    d.tool_calls.push_back({i, call.id, call.name, extend(call.arguments, state.args_sent)});
  }
  message_ = next;
  return d;
}

}  // namespace troupe::chatfmt
