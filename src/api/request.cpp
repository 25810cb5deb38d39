#include "api/request.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <boost/json.hpp>
#include <cctype>
#include <charconv>
#include <cmath>
#include <iterator>
#include <limits>
#include <string_view>
#include <utility>

#include "api/json_reader.hpp"
#include "util/duration.hpp"

namespace troupe::api {
namespace json = boost::json;
namespace {

constexpr std::int32_t int32_max = std::numeric_limits<std::int32_t>::max();
constexpr std::size_t max_stop_strings = 4;

Error invalid(std::string message, std::string param) {
  return Error{Errc::invalid_request, std::move(message), std::move(param)};
}

// A bias: a number in [-100, 100], or false (never: -inf).
std::optional<float> read_bias(const json::value& v) {
  if (v.is_bool() && !v.get_bool())
    return -std::numeric_limits<float>::infinity();
  if (v.is_number() && std::abs(v.to_number<double>()) <= 100.0)
    return static_cast<float>(v.to_number<double>());
  return std::nullopt;
}

// One logit_bias entry: a token id (an integer, or an object key that is one) or a text.
bool add_bias(GenerationParams& p, std::optional<std::int64_t> id, std::string_view text,
              const json::value& bias) {
  const auto b = read_bias(bias);
  if (!b || (id && (*id < 0 || *id > int32_max)))
    return false;
  if (id)
    p.logit_bias.emplace_back(static_cast<std::int32_t>(*id), *b);
  else
    p.logit_bias_text.emplace_back(std::string(text), *b);
  return true;
}

// An object key that is an integer (digits, an optional sign) names a token id.
std::optional<std::int64_t> id_key(std::string_view key) {
  std::int64_t id = 0;
  const auto [ptr, ec] = std::from_chars(key.data(), key.data() + key.size(), id);
  if (ec == std::errc::result_out_of_range)
    return -1;  // an integer, out of range
  if (ec != std::errc{} || ptr != key.data() + key.size())
    return std::nullopt;
  return id;
}

void read_logit_bias(JsonReader& r, GenerationParams& p) {
  const json::value* v = r.failed() ? nullptr : r.find("logit_bias");
  if (v == nullptr)
    return;
  const auto bad = [&] {
    r.fail(
        "'logit_bias' maps token ids (in [0, 2^31)) or texts to a number in [-100, 100] or "
        "false: {\"15043\": -1, \"Hello\": false} or [[15043, -1], [\"Hello\", false]]",
        "logit_bias");
  };
  if (const auto* obj = v->if_object()) {
    for (const auto& [key, bias] : *obj) {
      const std::string_view k(key.data(), key.size());
      if (!add_bias(p, id_key(k), k, bias))
        return bad();
    }
    return;
  }
  if (!v->is_array())
    return bad();
  for (const auto& item : v->get_array()) {
    const auto* pair = item.if_array();
    if (pair == nullptr || pair->size() != 2)
      return bad();
    const json::value& what = (*pair)[0];
    const auto* text = what.if_string();
    const auto id = text ? std::nullopt : as_integer(what);
    if ((text == nullptr && !id) ||
        !add_bias(p, id, text ? std::string_view(text->data(), text->size()) : "", (*pair)[1])) {
      return bad();
    }
  }
}

// dry_sequence_breakers: an array of 1 to 32 non-empty strings (llama-server takes no single
// string).
void read_dry_breakers(JsonReader& r, GenerationParams& p) {
  const json::value* v = r.failed() ? nullptr : r.find("dry_sequence_breakers");
  if (v == nullptr)
    return;
  constexpr std::size_t max_breakers = 32;  // engine::max_dry_sequence_breakers
  const auto* arr = v->if_array();
  if (arr == nullptr || arr->empty() || arr->size() > max_breakers ||
      std::any_of(arr->begin(), arr->end(),
                  [](const auto& b) { return !b.is_string() || b.get_string().empty(); })) {
    return r.fail(fmt::format("'dry_sequence_breakers' must be an array of 1 to {} non-empty "
                              "strings",
                              max_breakers),
                  "dry_sequence_breakers");
  }
  auto& out = p.dry_sequence_breakers.emplace();
  for (const auto& b : *arr)
    out.emplace_back(b.get_string());
}

// llama-server's samplers beyond OpenAI's, with llama-server's names and ranges.
// llama-server's names of a chain stage (and their aliases: kebab-case, no underscores,
// "nucleus", "temp", "typ"), lower case, to the canonical name; empty: unknown.
std::string_view canonical_stage(std::string_view name) {
  static constexpr std::pair<std::string_view, std::string_view> names[] = {
      {"penalties", "penalties"},
      {"dry", "dry"},
      {"top_n_sigma", "top_n_sigma"},
      {"top-n-sigma", "top_n_sigma"},
      {"topnsigma", "top_n_sigma"},
      {"top_k", "top_k"},
      {"top-k", "top_k"},
      {"topk", "top_k"},
      {"typ_p", "typ_p"},
      {"typ-p", "typ_p"},
      {"typp", "typ_p"},
      {"typ", "typ_p"},
      {"typical_p", "typ_p"},
      {"top_p", "top_p"},
      {"top-p", "top_p"},
      {"topp", "top_p"},
      {"nucleus", "top_p"},
      {"min_p", "min_p"},
      {"min-p", "min_p"},
      {"minp", "min_p"},
      {"xtc", "xtc"},
      {"temperature", "temperature"},
      {"temp", "temperature"},
      {"infill", "infill"},
  };
  for (const auto& [alias, canonical] : names) {
    if (alias == name)
      return canonical;
  }
  return {};
}

// llama-server's `samplers`: an array of stage names, or a string of their letters
// ("dkypsmtxie"); canonical names, each at most once.
void read_sampler_order(JsonReader& r, GenerationParams& p) {
  const json::value* v = r.failed() ? nullptr : r.find("samplers");
  if (v == nullptr)
    return;
  std::vector<std::string> names;
  if (const auto* letters = v->if_string()) {
    static constexpr std::pair<char, std::string_view> by_letter[] = {
        {'e', "penalties"},   {'d', "dry"},   {'s', "top_n_sigma"}, {'k', "top_k"},
        {'y', "typ_p"},       {'p', "top_p"}, {'m', "min_p"},       {'x', "xtc"},
        {'t', "temperature"}, {'i', "infill"}};
    for (char c : *letters) {
      const auto* it = std::find_if(std::begin(by_letter), std::end(by_letter),
                                    [c](const auto& e) { return e.first == c; });
      if (it == std::end(by_letter)) {
        return r.fail(
            fmt::format("'samplers' has no stage '{}' (letters: dkypsmtxie)", std::string(1, c)),
            "samplers");
      }
      names.emplace_back(it->second);
    }
  } else if (const auto* list = v->if_array()) {
    for (const auto& item : *list) {
      if (!item.is_string())
        return r.fail("'samplers' must be an array of stage names or a string", "samplers");
      std::string lower(item.get_string());
      std::transform(lower.begin(), lower.end(), lower.begin(),
                     [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
      const auto canonical = canonical_stage(lower);
      if (canonical.empty()) {
        return r.fail(fmt::format("'samplers' has no stage '{}' (known: penalties, dry, "
                                  "top_n_sigma, top_k, typ_p, top_p, min_p, xtc, temperature, "
                                  "infill)",
                                  std::string(item.get_string())),
                      "samplers");
      }
      names.emplace_back(canonical);
    }
  } else {
    return r.fail("'samplers' must be an array of stage names or a string", "samplers");
  }
  if (names.empty())
    return r.fail("'samplers' must name at least one stage", "samplers");
  for (std::size_t i = 0; i < names.size(); ++i) {
    if (std::find(names.begin(), names.begin() + static_cast<std::ptrdiff_t>(i), names[i]) !=
        names.begin() + static_cast<std::ptrdiff_t>(i)) {
      return r.fail(fmt::format("'samplers' names '{}' twice", names[i]), "samplers");
    }
  }
  p.samplers = std::move(names);
}

void read_llama_samplers(JsonReader& r, GenerationParams& p) {
  constexpr Bound zero{0, true}, one{1, true};
  constexpr Bound any_low{std::numeric_limits<double>::lowest(), true};
  constexpr Bound any_high{std::numeric_limits<double>::max(), true};
  r.integer32("repeat_last_n", p.repeat_last_n, -1, int32_max);
  r.number("typical_p", p.typical_p, {0, false}, one);
  r.number("top_n_sigma", p.top_n_sigma, any_low, any_high);
  r.number("dynatemp_range", p.dynatemp_range, zero, any_high);
  r.number("dynatemp_exponent", p.dynatemp_exponent, zero, any_high);
  r.number("dry_multiplier", p.dry_multiplier, zero, any_high);
  r.number("dry_base", p.dry_base, one, any_high);
  r.integer32("dry_allowed_length", p.dry_allowed_length, 0, int32_max);
  r.integer32("dry_penalty_last_n", p.dry_penalty_last_n, -1, int32_max);
  read_dry_breakers(r, p);
  r.number("xtc_probability", p.xtc_probability, zero, one);
  r.number("xtc_threshold", p.xtc_threshold, zero, one);
  r.integer32("mirostat", p.mirostat, 0, 2);
  r.number("mirostat_tau", p.mirostat_tau, zero, any_high);
  r.number("mirostat_eta", p.mirostat_eta, zero, any_high);
  read_sampler_order(r, p);
}

void read_stream_options(JsonReader& r, GenerationParams& p) {
  const json::value* v = r.failed() ? nullptr : r.find("stream_options");
  if (v == nullptr)
    return;
  if (!v->is_object())
    return r.fail("'stream_options' must be an object", "stream_options");
  if (!p.stream) {
    return r.fail("'stream_options' is only allowed when 'stream' is true", "stream_options");
  }
  JsonReader sub(v->get_object());
  sub.boolean("include_usage", p.include_usage);
  if (sub.failed())
    r.fail(sub.error()->message, "stream_options.include_usage");
}

void read_stop(JsonReader& r, GenerationParams& p) {
  r.string_list("stop", p.stop, max_stop_strings);
  std::erase_if(p.stop, [](const std::string& s) { return s.empty(); });
}

void read_n(JsonReader& r, GenerationParams& p) {
  std::optional<std::int32_t> n;
  r.integer32("n", n, 1, max_choices);
  p.n = n.value_or(1);
}

// Fields of the OpenAI and llama-server APIs that would change the answer and that troupe
// does not implement: present with anything but their neutral value, they are a 400 naming
// them rather than a quietly different answer. Unknown fields stay accepted (docs/API.md).
struct Unsupported {
  const char* field;
  bool (*neutral)(const json::value&);  // the value that asks for nothing
  const char* why;
  bool native = false;  // llama-server's own answer shape carries it (read_native_options)
};

bool is_null_or_false(const json::value& v) {
  return v.is_null() || (v.is_bool() && !v.get_bool());
}
bool is_null_or_empty(const json::value& v) {
  return v.is_null() || (v.is_string() && v.get_string().empty()) ||
         (v.is_array() && v.get_array().empty()) || (v.is_object() && v.get_object().empty());
}
bool is_null_or_zero(const json::value& v) {
  return v.is_null() || (v.is_number() && v.to_number<double>() == 0.0);
}
bool is_null_or_one(const json::value& v) {
  return v.is_null() || (v.is_number() && v.to_number<double>() == 1.0);
}
bool is_text_only(const json::value& v) {
  if (v.is_null())
    return true;
  const auto* a = v.if_array();
  return a && std::all_of(a->begin(), a->end(), [](const json::value& m) {
           return m.is_string() && m.get_string() == "text";
         });
}
// llama-server's off value for a sampler parameter: a negative number.
bool is_null_or_negative(const json::value& v) {
  return v.is_null() || (v.is_number() && v.to_number<double>() < 0.0);
}
bool is_medium(const json::value& v) {
  return v.is_null() || (v.is_string() && v.get_string() == "medium");
}

constexpr Unsupported unsupported_fields[] = {
    {"audio", is_null_or_empty, "audio output is not supported"},
    {"modalities", is_text_only, "only the \"text\" modality is supported"},
    {"functions", is_null_or_empty, "the legacy 'functions' field is not supported: use 'tools'"},
    {"function_call", is_null_or_empty,
     "the legacy 'function_call' field is not supported: use 'tool_choice'"},
    {"web_search_options", is_null_or_empty, "web search is not supported"},
    {"store", is_null_or_false, "stored completions are not supported"},
    {"verbosity", is_medium, "only the default verbosity is supported"},
    {"best_of", is_null_or_one, "best_of is not supported"},
    {"n_probs", is_null_or_zero, "use 'logprobs' / 'top_logprobs' (or llama-server's /completion)",
     true},
    {"n_keep", is_null_or_zero, "context shifting (n_keep) is not supported"},
    {"post_sampling_probs", is_null_or_false, "post-sampling probabilities are not supported"},
    {"timings_per_token", is_null_or_false, "per-token timings are llama-server's /completion's",
     true},
    {"return_tokens", is_null_or_false, "token ids are returned by llama-server's /completion",
     true},
    {"image_url", is_null_or_empty, "images are not supported"},
    {"return_progress", is_null_or_false, "prompt progress events are not supported"},
    {"min_keep", is_null_or_zero, "min_keep is not supported"},
    {"adaptive_target", is_null_or_negative, "the adaptive-p sampler is not supported"},
    {"grammar_lazy", is_null_or_false,
     "a lazy grammar is not supported on its own (tools with tool_choice 'auto' make one)"},
    {"n_discard", is_null_or_zero, "context shifting (n_discard) is not supported"},
    {"backend_sampling", is_null_or_false, "backend sampling is not supported"},
    {"reasoning_control", is_null_or_false, "ending reasoning at run time is not supported"},
    {"reasoning_budget_start_tag", is_null_or_empty,
     "a reasoning budget's tags are the chat template's: give reasoning_budget_tokens with "
     "messages"},
    {"reasoning_budget_end_tags", is_null_or_empty,
     "a reasoning budget's tags are the chat template's: give reasoning_budget_tokens with "
     "messages"},
};

// `native`: the request is answered in llama-server's own shape, which carries more.
void refuse_unsupported(JsonReader& r, bool native = false) {
  for (const auto& u : unsupported_fields) {
    if (r.failed())
      return;
    if (native && u.native)
      continue;
    const json::value* v = r.find(u.field);
    if (v != nullptr && !u.neutral(*v))
      r.fail(fmt::format("'{}' is not supported: {}", u.field, u.why), u.field);
  }
}

// llama-server's `response_fields` picks fields of its own answer shape (/completion's,
// /infill's): an OpenAI answer has no such shape, so a non-empty list there is refused, not
// ignored.
void refuse_response_fields(JsonReader& r) {
  if (const auto* v = r.find("response_fields"); v && !is_null_or_empty(*v) && !r.failed()) {
    r.fail(
        "'response_fields' selects fields of llama-server's answer shape: only /completion and "
        "/infill have it",
        "response_fields");
  }
}

// llama-server's name for max_tokens (-1: up to the context).
void read_n_predict(JsonReader& r, GenerationParams& p) {
  std::optional<std::int64_t> n;
  r.integer("n_predict", n, -1, int32_max);
  if (n && *n == 0)
    r.fail("'n_predict' must be -1 or at least 1", "n_predict");
  if (n && *n > 0 && !p.max_tokens)
    p.max_tokens = static_cast<std::int32_t>(*n);
}

// A schema as the converter takes it: an empty one ({}) means any JSON object.
std::string schema_text(const json::object& schema) {
  if (schema.empty())
    return R"({"type":"object"})";
  return json::serialize(schema);
}

// response_format (OpenAI: text, json_object, json_schema), llama-server's json_schema (a
// schema object) and grammar (GBNF text).
void read_structured_output(JsonReader& r, GenerationParams& p) {
  if (r.failed())
    return;
  if (const json::value* v = r.find("grammar"); v != nullptr && !v->is_null()) {
    if (!v->is_string())
      return r.fail("'grammar' must be a string of GBNF", "grammar");
    if (!v->get_string().empty())
      p.grammar = std::string(v->get_string());
  }
  if (const json::value* v = r.find("json_schema"); v != nullptr && !v->is_null()) {
    if (!v->is_object())
      return r.fail("'json_schema' must be a JSON schema object", "json_schema");
    p.json_schema = schema_text(v->get_object());
    p.schema_param = "json_schema";
  }
  const json::value* v = r.find("response_format");
  if (v != nullptr && !v->is_null()) {
    const auto* obj = v->if_object();
    const auto* type = obj ? obj->if_contains("type") : nullptr;
    if (type == nullptr || !type->is_string()) {
      return r.fail("'response_format' must be an object with a string 'type'", "response_format");
    }
    const auto t = type->get_string();
    if (t == "json_object" || t == "json_schema") {
      if (p.json_schema)
        return r.fail("Give 'response_format' or 'json_schema', not both", "response_format");
      const json::value* schema = nullptr;
      if (t == "json_object") {
        schema = obj->if_contains("schema");  // llama-server's extension
        p.schema_param = "response_format.schema";
      } else {
        const auto* wrapper = obj->if_contains("json_schema");
        if (wrapper == nullptr || !wrapper->is_object()) {
          return r.fail("A 'json_schema' response format needs a 'json_schema' object",
                        "response_format.json_schema");
        }
        const auto& w = wrapper->get_object();
        if (const auto* name = w.if_contains("name"); name && !name->is_string())
          return r.fail("'name' must be a string", "response_format.json_schema.name");
        if (const auto* strict = w.if_contains("strict");
            strict && !strict->is_bool() && !strict->is_null())
          return r.fail("'strict' must be a boolean", "response_format.json_schema.strict");
        schema = w.if_contains("schema");
        p.schema_param = "response_format.json_schema.schema";
      }
      if (schema != nullptr && !schema->is_null() && !schema->is_object())
        return r.fail("The schema must be a JSON object", p.schema_param);
      p.json_schema = schema && schema->is_object() ? schema_text(schema->get_object())
                                                    : R"({"type":"object"})";
    } else if (t != "text") {
      return r.fail(fmt::format("Unknown response_format type '{}': use 'text', 'json_object' "
                                "or 'json_schema'",
                                std::string_view(t)),
                    "response_format.type");
    }
  }
  if (p.json_schema && p.grammar) {
    r.fail("A request may constrain its output with a JSON schema or a grammar, not both",
           "grammar");
  }
}

}  // namespace

void read_keep_alive(JsonReader& r, std::optional<std::chrono::milliseconds>& out) {
  const json::value* v = r.find("keep_alive");
  if (v == nullptr || r.failed())
    return;
  constexpr const char* what =
      "keep_alive must be a number of seconds or a duration such as \"5m\" (negative: keep "
      "the model loaded)";
  if (v->is_number()) {
    const double s = v->to_number<double>();
    if (!std::isfinite(s) || s > 1e9)
      return r.fail(what, "keep_alive");
    out = s < 0 ? std::chrono::milliseconds(-1)
                : std::chrono::milliseconds(static_cast<std::int64_t>(s * 1000.0));
    return;
  }
  if (!v->is_string())
    return r.fail(what, "keep_alive");
  std::string_view text = v->get_string();
  const bool negative = !text.empty() && text.front() == '-';
  auto d = util::parse_duration(negative ? text.substr(1) : text, util::DurationUnit::seconds);
  if (!d)
    return r.fail(what, "keep_alive");
  out = negative ? std::chrono::milliseconds(-1)
                 : std::chrono::duration_cast<std::chrono::milliseconds>(*d);
}

void read_lora(JsonReader& r, std::optional<std::vector<std::pair<std::int32_t, float>>>& out) {
  const json::value* v = r.find("lora");
  if (r.failed() || v == nullptr || v->is_null())
    return;
  auto entries = read_lora_entries(*v);
  if (!entries)
    return r.fail(entries.error().message, "lora");
  if (!entries->empty())  // [] asks for nothing: the server-wide scales, as in llama-server
    out = std::move(entries).value();
}

namespace {

Result<std::string> read_content(const json::value* v, const std::string& param);

// OpenAI's Predicted Outputs: {"type": "content", "content": a string or text parts}.
void read_prediction(JsonReader& r, GenerationParams& p) {
  const json::value* v = r.find("prediction");
  if (r.failed() || v == nullptr || v->is_null())
    return;
  const auto* obj = v->if_object();
  const auto* type = obj ? obj->if_contains("type") : nullptr;
  if (type == nullptr || !type->is_string() || type->get_string() != "content")
    return r.fail("'prediction' must be {\"type\": \"content\", \"content\": ...}", "prediction");
  auto content = read_content(obj->if_contains("content"), "prediction");
  if (!content)
    return r.fail(content.error().message, "prediction");
  p.prediction = std::move(content).value();
}

// Reads the fields shared by chat and text completions.
void read_generation(JsonReader& r, GenerationParams& p, bool chat) {
  r.string("model", p.model);
  r.integer32("max_tokens", p.max_tokens, 1, int32_max);
  if (chat)
    r.integer32("max_completion_tokens", p.max_tokens, 1, int32_max);
  r.number("temperature", p.temperature, {0, true}, {2, true});
  r.number("top_p", p.top_p, {0, false}, {1, true});
  r.integer32("top_k", p.top_k, -1, int32_max);
  if (p.top_k && *p.top_k < 0)
    p.top_k = 0;
  r.number("min_p", p.min_p, {0, true}, {1, true});
  r.number("presence_penalty", p.presence_penalty, {-2, true}, {2, true});
  r.number("frequency_penalty", p.frequency_penalty, {-2, true}, {2, true});
  r.number("repeat_penalty", p.repeat_penalty, {0, false}, {10, true});
  r.integer("seed", p.seed, std::numeric_limits<std::int64_t>::min(),
            std::numeric_limits<std::int64_t>::max());
  read_logit_bias(r, p);
  read_llama_samplers(r, p);
  read_stop(r, p);
  read_n(r, p);
  r.boolean("stream", p.stream);
  read_stream_options(r, p);
  r.boolean("ignore_eos", p.ignore_eos);
  std::optional<std::int32_t> min_tokens;
  r.integer32("min_tokens", min_tokens, 0, int32_max);
  p.min_tokens = min_tokens.value_or(0);
  std::optional<std::int32_t> limit;
  r.integer32("n_indent", limit, 0, int32_max);
  p.n_indent = limit.value_or(0);
  limit.reset();
  r.integer32("t_max_predict_ms", limit, 0, int32_max);
  p.max_predict_ms = limit.value_or(0);
  r.string("user", p.user);
  read_structured_output(r, p);
  read_keep_alive(r, p.keep_alive);
  read_prediction(r, p);
  read_lora(r, p.lora);
  r.integer32("id_slot", p.id_slot, -1, int32_max);
  if (p.id_slot == -1)
    p.id_slot.reset();
  r.integer32("n_cache_reuse", p.n_cache_reuse, 0, int32_max);
  r.integer32("sse_ping_interval", p.sse_ping_interval, -1, int32_max);
}

// Content as a string, or an array of {"type": "text", "text": "..."} parts joined by '\n'.
Result<std::string> read_content(const json::value* v, const std::string& param) {
  if (v == nullptr)
    return std::string();
  if (v->is_string())
    return std::string(v->get_string());
  if (!v->is_array())
    return invalid("'content' must be a string or an array of parts", param);
  std::string text;
  for (const auto& part : v->get_array()) {
    const auto* obj = part.if_object();
    const auto* type = obj ? obj->if_contains("type") : nullptr;
    const auto* t = obj ? obj->if_contains("text") : nullptr;
    if (type == nullptr || !type->is_string() || type->get_string() != "text" || t == nullptr ||
        !t->is_string()) {
      return invalid("Only content parts of type 'text' with a string 'text' are supported", param);
    }
    if (!text.empty())
      text += '\n';
    text += t->get_string();
  }
  return text;
}

// Arguments as OpenAI sends them (a string of JSON) or as an object; kept as JSON text.
Result<std::string> read_arguments(const json::value* v, const std::string& param) {
  if (v == nullptr)
    return std::string("{}");
  if (v->is_object())
    return json::serialize(*v);
  if (!v->is_string())
    return invalid("'arguments' must be a string of JSON", param);
  boost::system::error_code ec;
  const auto parsed = json::parse(v->get_string(), ec);
  if (ec || !parsed.is_object())
    return invalid("'arguments' must be a JSON object", param);
  return std::string(v->get_string());
}

Result<chatfmt::ToolCall> read_tool_call(const json::value& v, const std::string& param) {
  const auto* obj = v.if_object();
  const auto* fn = obj ? obj->if_contains("function") : nullptr;
  if (fn == nullptr || !fn->is_object())
    return invalid("Each tool call needs a 'function' object", param);
  if (const auto* type = obj->if_contains("type");
      type && !(type->is_string() && type->get_string() == "function")) {
    return invalid("Only tool calls of type 'function' are supported", param + ".type");
  }
  chatfmt::ToolCall call;
  if (const auto* id = obj->if_contains("id"); id && !id->is_null()) {
    if (!id->is_string())
      return invalid("'id' must be a string", param + ".id");
    call.id = std::string(id->get_string());
  }
  const auto* name = fn->get_object().if_contains("name");
  if (name == nullptr || !name->is_string() || name->get_string().empty())
    return invalid("Each tool call needs a function 'name'", param + ".function.name");
  call.name = std::string(name->get_string());
  auto args =
      read_arguments(fn->get_object().if_contains("arguments"), param + ".function.arguments");
  if (!args)
    return args.error();
  call.arguments = std::move(args).value();
  return call;
}

// An assistant's tool_calls and reasoning_content.
std::optional<Error> read_assistant_fields(const json::object& obj, const std::string& param,
                                           Message& m) {
  if (const auto* r = obj.if_contains("reasoning_content"); r && !r->is_null()) {
    if (!r->is_string())
      return invalid("'reasoning_content' must be a string", param + ".reasoning_content");
    m.reasoning_content = std::string(r->get_string());
  }
  const auto* calls = obj.if_contains("tool_calls");
  if (calls == nullptr || calls->is_null())
    return std::nullopt;
  if (!calls->is_array())
    return invalid("'tool_calls' must be an array", param + ".tool_calls");
  for (std::size_t k = 0; k < calls->get_array().size(); ++k) {
    auto c = read_tool_call(calls->get_array()[k], fmt::format("{}.tool_calls[{}]", param, k));
    if (!c)
      return c.error();
    m.tool_calls.push_back(std::move(c).value());
  }
  return std::nullopt;
}

std::optional<Error> read_tool_fields(const json::object& obj, const std::string& param,
                                      Message& m) {
  const auto* id = obj.if_contains("tool_call_id");
  if (id == nullptr || !id->is_string() || id->get_string().empty()) {
    return invalid("A message with role 'tool' needs the 'tool_call_id' it answers",
                   param + ".tool_call_id");
  }
  m.tool_call_id = std::string(id->get_string());
  if (const auto* name = obj.if_contains("name"); name && name->is_string())
    m.name = std::string(name->get_string());
  return std::nullopt;
}

Result<Message> read_message(const json::value& v, std::size_t i) {
  const std::string param = fmt::format("messages[{}]", i);
  const auto* obj = v.if_object();
  if (obj == nullptr)
    return invalid("Each message must be an object", param);
  const auto* role = obj->if_contains("role");
  if (role == nullptr || !role->is_string()) {
    return invalid("Each message needs a string 'role'", param + ".role");
  }
  Message m;
  m.role = std::string(role->get_string());
  if (m.role == "developer")
    m.role = "system";
  if (m.role != "system" && m.role != "user" && m.role != "assistant" && m.role != "tool") {
    return invalid(fmt::format("Unknown role '{}': use system, user, assistant or tool", m.role),
                   param + ".role");
  }
  const auto* content = obj->if_contains("content");
  if (content != nullptr && content->is_null())
    content = nullptr;
  if (content == nullptr && m.role != "assistant") {
    return invalid("Messages need 'content'", param + ".content");
  }
  auto text = read_content(content, param + ".content");
  if (!text)
    return text.error();
  m.content = std::move(text).value();
  std::optional<Error> e;
  if (m.role == "assistant")
    e = read_assistant_fields(*obj, param, m);
  if (m.role == "tool")
    e = read_tool_fields(*obj, param, m);
  if (e)
    return *e;
  return m;
}

Result<std::vector<Message>> read_messages(const JsonReader& r) {
  const json::value* v = r.find("messages");
  if (v == nullptr)
    return invalid("'messages' is required", "messages");
  if (!v->is_array() || v->get_array().empty()) {
    return invalid("'messages' must be a non-empty array", "messages");
  }
  std::vector<Message> out;
  out.reserve(v->get_array().size());
  for (std::size_t i = 0; i < v->get_array().size(); ++i) {
    auto m = read_message(v->get_array()[i], i);
    if (!m)
      return m.error();
    out.push_back(std::move(m).value());
  }
  return out;
}

// One prompt of a list: a string, or a non-empty array of token ids.
Result<CompletionPrompt> read_one_prompt(const json::value& v, bool listed) {
  if (v.is_string())
    return CompletionPrompt(std::string(v.get_string()));
  const auto* arr = v.if_array();
  if (arr == nullptr) {
    return invalid(listed ? "each prompt of a list must be a string or an array of token ids"
                          : "'prompt' must be a string or an array",
                   "prompt");
  }
  if (arr->empty())
    return invalid("'prompt' must not be an empty array", "prompt");
  std::vector<std::int32_t> tokens;
  tokens.reserve(arr->size());
  for (const auto& item : *arr) {
    if (item.is_string() || item.is_array()) {
      return invalid(
          "a prompt mixing token ids with text is not supported: give token ids "
          "or text",
          "prompt");
    }
    auto i = as_integer(item);
    if (!i || *i < 0 || *i > int32_max)
      return invalid("'prompt' token ids must be non-negative integers", "prompt");
    tokens.push_back(static_cast<std::int32_t>(*i));
  }
  return CompletionPrompt(std::move(tokens));
}

// A string, an array of token ids, or an array of those (several prompts).
Result<std::vector<CompletionPrompt>> read_prompts(const JsonReader& r) {
  const json::value* v = r.find("prompt");
  if (v == nullptr)
    return invalid("'prompt' is required", "prompt");
  const auto* arr = v->if_array();
  std::vector<CompletionPrompt> out;
  if (arr == nullptr || arr->empty() || !(arr->front().is_string() || arr->front().is_array())) {
    auto one = read_one_prompt(*v, /*listed=*/false);
    if (!one)
      return one.error();
    out.push_back(std::move(one).value());
    return out;
  }
  if (arr->size() > static_cast<std::size_t>(max_answers)) {
    return invalid(
        fmt::format("'prompt' lists {} prompts: at most {} per request", arr->size(), max_answers),
        "prompt");
  }
  out.reserve(arr->size());
  for (const auto& item : *arr) {
    auto one = read_one_prompt(item, /*listed=*/true);
    if (!one)
      return one.error();
    out.push_back(std::move(one).value());
  }
  return out;
}

// A tool name as OpenAI allows it: 1-64 of a-z, A-Z, 0-9, '_' and '-'.
bool valid_tool_name(std::string_view name) {
  if (name.empty() || name.size() > 64)
    return false;
  for (char c : name) {
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-'))
      return false;
  }
  return true;
}

Result<chatfmt::Tool> read_tool(const json::value& v, const std::string& param) {
  const auto* obj = v.if_object();
  if (obj == nullptr)
    return invalid("Each tool must be an object", param);
  const auto* type = obj->if_contains("type");
  if (type == nullptr || !type->is_string() || type->get_string() != "function")
    return invalid("Only tools of type 'function' are supported", param + ".type");
  const auto* fn = obj->if_contains("function");
  if (fn == nullptr || !fn->is_object())
    return invalid("A tool needs a 'function' object", param + ".function");
  const auto& f = fn->get_object();
  chatfmt::Tool tool;
  const auto* name = f.if_contains("name");
  if (name == nullptr || !name->is_string() || !valid_tool_name(name->get_string())) {
    return invalid("A function's 'name' must be 1-64 letters, digits, '_' or '-'",
                   param + ".function.name");
  }
  tool.name = std::string(name->get_string());
  if (const auto* d = f.if_contains("description"); d && !d->is_null()) {
    if (!d->is_string())
      return invalid("'description' must be a string", param + ".function.description");
    tool.description = std::string(d->get_string());
  }
  if (const auto* p = f.if_contains("parameters"); p && !p->is_null()) {
    if (!p->is_object())
      return invalid("'parameters' must be a JSON schema object", param + ".function.parameters");
    tool.parameters = json::serialize(*p);
  }
  return tool;
}

std::optional<Error> read_tools(const JsonReader& r, chatfmt::ChatOptions& chat) {
  const json::value* v = r.find("tools");
  if (v == nullptr)
    return std::nullopt;
  if (!v->is_array())
    return invalid("'tools' must be an array", "tools");
  for (std::size_t i = 0; i < v->get_array().size(); ++i) {
    const std::string param = fmt::format("tools[{}]", i);
    auto t = read_tool(v->get_array()[i], param);
    if (!t)
      return t.error();
    for (const auto& other : chat.tools) {
      if (other.name == t->name) {
        return invalid(fmt::format("Two tools are named '{}'", t->name), param + ".function.name");
      }
    }
    chat.tools.push_back(std::move(t).value());
  }
  return std::nullopt;
}

std::optional<Error> read_tool_choice(const JsonReader& r, chatfmt::ChatOptions& chat) {
  const json::value* v = r.find("tool_choice");
  if (v == nullptr)
    return std::nullopt;
  const auto bad = [] {
    return invalid(
        "'tool_choice' must be 'auto', 'none', 'required' or "
        "{\"type\": \"function\", \"function\": {\"name\": ...}}",
        "tool_choice");
  };
  if (v->is_string()) {
    const auto s = v->get_string();
    if (s == "auto")
      chat.tool_choice = chatfmt::ToolChoice::automatic;
    else if (s == "none")
      chat.tool_choice = chatfmt::ToolChoice::none;
    else if (s == "required")
      chat.tool_choice = chatfmt::ToolChoice::required;
    else
      return bad();
  } else {
    const auto* obj = v->if_object();
    const auto* fn = obj ? obj->if_contains("function") : nullptr;
    const auto* name = fn && fn->is_object() ? fn->get_object().if_contains("name") : nullptr;
    if (name == nullptr || !name->is_string())
      return bad();
    chat.tool_choice = chatfmt::ToolChoice::function;
    chat.tool_choice_function = std::string(name->get_string());
  }
  const bool forced = chat.tool_choice == chatfmt::ToolChoice::required ||
                      chat.tool_choice == chatfmt::ToolChoice::function;
  if (forced && chat.tools.empty())
    return invalid("'tool_choice' forces a call but there are no 'tools'", "tool_choice");
  if (chat.tool_choice == chatfmt::ToolChoice::function &&
      std::none_of(chat.tools.begin(), chat.tools.end(),
                   [&](const chatfmt::Tool& t) { return t.name == chat.tool_choice_function; })) {
    return invalid(fmt::format("'tool_choice' names the function '{}', which is not in 'tools'",
                               chat.tool_choice_function),
                   "tool_choice");
  }
  return std::nullopt;
}

std::optional<Error> read_template_kwargs(const JsonReader& r, chatfmt::ChatOptions& chat) {
  const json::value* v = r.find("chat_template_kwargs");
  if (v == nullptr)
    return std::nullopt;
  if (!v->is_object())
    return invalid("'chat_template_kwargs' must be an object", "chat_template_kwargs");
  for (const auto& [key, value] : v->get_object())
    chat.template_kwargs.emplace_back(std::string(key), json::serialize(value));
  return std::nullopt;
}

// llama-server's reasoning budget of a conversation: reasoning_budget_tokens (its other name
// thinking_budget_tokens; -1: none) and reasoning_budget_message.
void read_reasoning_budget(JsonReader& r, GenerationParams& p) {
  const char* key = r.find("reasoning_budget_tokens") == nullptr && r.find("thinking_budget_tokens")
                        ? "thinking_budget_tokens"
                        : "reasoning_budget_tokens";
  r.integer32(key, p.reasoning_budget, -1, int32_max);
  if (const auto* v = r.find("reasoning_budget_message"); v != nullptr && !v->is_null()) {
    std::string message;
    r.string("reasoning_budget_message", message);
    p.reasoning_budget_message = std::move(message);
  }
}

// tools, tool_choice, parallel_tool_calls, reasoning_format, reasoning_effort and
// chat_template_kwargs.
std::optional<Error> read_chat_options(JsonReader& r, chatfmt::ChatOptions& chat) {
  if (auto e = read_tools(r, chat))
    return e;
  if (auto e = read_tool_choice(r, chat))
    return e;
  if (r.find("parallel_tool_calls") != nullptr) {
    bool parallel = false;
    r.boolean("parallel_tool_calls", parallel);
    chat.parallel_tool_calls = parallel;
  }
  std::string format;
  r.string("reasoning_format", format);
  if (format == "none")
    chat.reasoning_format = chatfmt::ReasoningFormat::none;
  else if (format == "deepseek")
    chat.reasoning_format = chatfmt::ReasoningFormat::deepseek;
  else if (format == "deepseek-legacy")
    chat.reasoning_format = chatfmt::ReasoningFormat::deepseek_legacy;
  else if (!format.empty() && format != "auto")
    r.fail("'reasoning_format' must be 'none', 'auto', 'deepseek' or 'deepseek-legacy'",
           "reasoning_format");
  std::string effort;
  r.string("reasoning_effort", effort);
  if (!effort.empty())
    chat.reasoning_effort = effort;
  if (r.failed())
    return *r.error();
  return read_template_kwargs(r, chat);
}

}  // namespace

std::optional<Error> read_function_tools(const JsonReader& r, chatfmt::ChatOptions& chat) {
  return read_tools(r, chat);
}

Result<ChatRequest> parse_chat_request(std::string_view body) {
  auto obj = parse_json_object(body);
  if (!obj)
    return obj.error();
  JsonReader r(*obj);
  ChatRequest req;
  refuse_unsupported(r);
  refuse_response_fields(r);
  if (const auto* v = r.find("suffix"); v && !is_null_or_empty(*v) && !r.failed()) {
    r.fail("'suffix' (fill in the middle) is a text completion's field: use /v1/completions",
           "suffix");
  }
  read_generation(r, req.params, /*chat=*/true);
  read_n_predict(r, req.params);
  r.boolean("add_generation_prompt", req.chat.add_generation_prompt);
  r.boolean("logprobs", req.logprobs);
  std::optional<std::int32_t> top;
  r.integer32("top_logprobs", top, 0, 20);
  req.top_logprobs = top.value_or(0);
  if (req.top_logprobs > 0 && !req.logprobs) {
    r.fail("'top_logprobs' requires 'logprobs' to be true", "top_logprobs");
  }
  if (r.failed())
    return *r.error();
  auto messages = read_messages(r);
  if (!messages)
    return messages.error();
  req.messages = std::move(messages).value();
  if (auto e = read_chat_options(r, req.chat))
    return *e;
  read_reasoning_budget(r, req.params);
  if (r.failed())
    return *r.error();
  // llama-server's continue_final_message: troupe continues a final assistant message (without
  // tool calls), and only that; asking otherwise would be answered differently.
  if (const json::value* v = r.find("continue_final_message"); v && !v->is_null()) {
    const auto& last = req.messages.back();
    const bool continues = last.role == "assistant" && last.tool_calls.empty();
    if (!v->is_bool() || v->get_bool() != continues) {
      return invalid(continues ? "'continue_final_message' must be true or absent: a final "
                                 "assistant message is always continued"
                               : "'continue_final_message' needs a final assistant message "
                                 "(without tool calls) to continue",
                     "continue_final_message");
    }
  }
  req.chat.stream = req.params.stream;
  return req;
}

namespace {

// The fields /v1/completions, /completion and /infill share, all but the prompt.
void read_completion(JsonReader& r, CompletionRequest& req, bool native) {
  refuse_unsupported(r, native);
  read_generation(r, req.params, /*chat=*/false);
  read_n_predict(r, req.params);
  r.integer32("logprobs", req.logprobs, 0, 5);
  bool echo = false;
  r.boolean("echo", echo);
  if (echo)
    r.fail("'echo' is not supported", "echo");
}

// The prompts, and whether their answers fit one request.
std::optional<Error> read_completion_prompts(const JsonReader& r, CompletionRequest& req) {
  auto prompts = read_prompts(r);
  if (!prompts)
    return prompts.error();
  req.prompts = std::move(prompts).value();
  const auto answers = static_cast<std::int64_t>(req.prompts.size()) * req.params.n;
  if (answers > max_answers) {
    return invalid(fmt::format("{} prompts with 'n' {} ask for {} answers: at most {} per request",
                               req.prompts.size(), req.params.n, answers, max_answers),
                   "n");
  }
  return std::nullopt;
}

// llama-server's fields of its own answer shape, and its names for two of `req`'s:
// `logprobs` is n_probs when that is absent, `n_cmpl` is n.
void read_native_options(JsonReader& r, CompletionRequest& req, NativeOptions& out) {
  r.string_list("response_fields", out.response_fields, 64);
  std::optional<std::int32_t> n_probs;
  r.integer32("n_probs", n_probs, 0, 20);
  out.n_probs = n_probs.value_or(req.logprobs.value_or(0));
  req.logprobs.reset();
  r.boolean("return_tokens", out.return_tokens);
  r.boolean("timings_per_token", out.timings_per_token);
  std::optional<std::int32_t> n_cmpl;
  r.integer32("n_cmpl", n_cmpl, 1, max_choices);
  if (n_cmpl)
    req.params.n = *n_cmpl;
}

}  // namespace

Result<CompletionRequest> parse_completion_request(std::string_view body) {
  auto obj = parse_json_object(body);
  if (!obj)
    return obj.error();
  JsonReader r(*obj);
  CompletionRequest req;
  read_completion(r, req, /*native=*/false);
  r.string("suffix", req.suffix);
  refuse_response_fields(r);
  if (r.failed())
    return *r.error();
  if (auto e = read_completion_prompts(r, req))
    return *e;
  if (!req.suffix.empty()) {
    for (const auto& p : req.prompts) {
      if (!std::holds_alternative<std::string>(p)) {
        return invalid("a 'suffix' needs a text 'prompt' (the text before it), not token ids",
                       "suffix");
      }
    }
  }
  return req;
}

Result<NativeCompletionRequest> parse_native_completion_request(std::string_view body) {
  auto obj = parse_json_object(body);
  if (!obj)
    return obj.error();
  JsonReader r(*obj);
  NativeCompletionRequest req;
  read_completion(r, req.completion, /*native=*/true);
  read_native_options(r, req.completion, req.native);
  if (const auto* v = r.find("suffix"); v && !is_null_or_empty(*v) && !r.failed())
    r.fail("/completion does not fill in the middle: use /infill or /v1/completions", "suffix");
  if (r.failed())
    return *r.error();
  if (auto e = read_completion_prompts(r, req.completion))
    return *e;
  return req;
}

Result<InfillRequest> parse_infill_request(std::string_view body) {
  auto obj = parse_json_object(body);
  if (!obj)
    return obj.error();
  JsonReader r(*obj);
  InfillRequest req;
  read_completion(r, req.completion, /*native=*/true);
  read_native_options(r, req.completion, req.native);
  for (auto [key, out] : {std::pair{"input_prefix", &req.input_prefix},
                          std::pair{"input_suffix", &req.input_suffix}}) {
    if (!r.failed() && r.find(key) == nullptr)
      r.fail(fmt::format("'{}' is required", key), key);
    r.string(key, *out);
  }
  std::string prompt;
  r.string("prompt", prompt);
  if (const auto* v = r.find("suffix"); v && !r.failed())
    r.fail("/infill takes the text after the insertion as 'input_suffix'", "suffix");
  if (r.failed())
    return *r.error();
  req.completion.prompts = {CompletionPrompt(std::move(prompt))};
  if (const auto* extra = r.find("input_extra")) {
    constexpr std::size_t kMaxChunks = 1024;
    const auto* chunks = extra->if_array();
    if (chunks == nullptr || chunks->size() > kMaxChunks) {
      return invalid(fmt::format("'input_extra' must be an array of at most {} objects "
                                 "{{\"text\": string, \"filename\": string}}",
                                 kMaxChunks),
                     "input_extra");
    }
    for (std::size_t i = 0; i < chunks->size(); ++i) {
      const auto* chunk = (*chunks)[i].if_object();
      const std::string param = fmt::format("input_extra[{}]", i);
      if (chunk == nullptr)
        return invalid("an 'input_extra' item must be an object", param);
      JsonReader c(*chunk);
      std::string file, text;
      if (c.find("text") == nullptr)
        return invalid("an 'input_extra' item needs a string 'text'", param + ".text");
      c.string("text", text);
      c.string("filename", file);
      if (c.failed())
        return invalid(c.error()->message, param + "." + c.error()->param);
      req.input_extra.emplace_back(std::move(file), std::move(text));
    }
  }
  return req;
}

Result<TokenizeRequest> parse_tokenize_request(std::string_view body) {
  auto obj = parse_json_object(body);
  if (!obj)
    return obj.error();
  JsonReader r(*obj);
  TokenizeRequest req;
  r.string("model", req.model);
  r.string("content", req.content);
  r.boolean("add_special", req.add_special);
  r.boolean("parse_special", req.parse_special);
  r.boolean("with_pieces", req.with_pieces);
  if (!r.failed() && r.find("content") == nullptr)
    r.fail("'content' is required", "content");
  if (r.failed())
    return *r.error();
  return req;
}

Result<DetokenizeRequest> parse_detokenize_request(std::string_view body) {
  auto obj = parse_json_object(body);
  if (!obj)
    return obj.error();
  JsonReader r(*obj);
  DetokenizeRequest req;
  r.string("model", req.model);
  r.int_array("tokens", req.tokens, 0, int32_max);
  if (!r.failed() && r.find("tokens") == nullptr)
    r.fail("'tokens' is required", "tokens");
  if (r.failed())
    return *r.error();
  return req;
}

Result<std::string> parse_model_action_request(std::string_view body) {
  auto obj = parse_json_object(body);
  if (!obj)
    return obj.error();
  const auto* m = obj->if_contains("model");
  if (m == nullptr || !m->is_string() || m->get_string().empty())
    return invalid("'model' is required: the id of a model, e.g. {\"model\": \"qwen\"}", "model");
  return std::string(m->get_string());
}

Result<std::vector<std::pair<std::int32_t, float>>> read_lora_entries(const json::value& v) {
  constexpr std::string_view what =
      "'lora' must be an array of {\"id\": adapter id, \"scale\": number}";
  const auto* entries = v.if_array();
  if (entries == nullptr)
    return invalid(std::string(what), "lora");
  std::vector<std::pair<std::int32_t, float>> out;
  for (const json::value& e : *entries) {
    const auto* obj = e.if_object();
    const auto* id = obj ? obj->if_contains("id") : nullptr;
    const auto* scale = obj ? obj->if_contains("scale") : nullptr;
    if (id == nullptr || !(id->is_int64() || id->is_uint64()) || scale == nullptr ||
        !scale->is_number())
      return invalid(std::string(what), "lora");
    const double n = id->to_number<double>();
    const double x = scale->to_number<double>();
    if (n < 0 || n > int32_max)
      return invalid("a LoRA adapter's id is a number from 0", "lora");
    if (!std::isfinite(x) || std::abs(x) > std::numeric_limits<float>::max())
      return invalid("a LoRA adapter's scale must be a finite number", "lora");
    out.emplace_back(static_cast<std::int32_t>(n), static_cast<float>(x));
  }
  return out;
}

}  // namespace troupe::api
