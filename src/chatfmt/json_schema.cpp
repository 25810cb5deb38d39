// JSON schemas for structured output: llama.cpp's converter, and a check of what it honours.
//
// llama.cpp's converter (common_chat_schema_from_json + json_schema_to_grammar) reads a subset
// of JSON Schema and quietly drops the rest: unknown keywords, bounds on numbers, formats it
// does not know, a pattern it cannot translate ("accepting any string", on stderr), keywords
// beside a $ref or an anyOf. A grammar that drops a constraint produces output that does not
// validate, so check_schema() refuses all of that up front, naming the keyword and where it is.

#include <fmt/format.h>

#include <boost/json.hpp>
#include <cstddef>
#include <exception>
#include <mutex>
#include <optional>
#include <string_view>

#include "chatfmt/chat_format.hpp"
#include "util/lru_cache.hpp"

// llama.cpp's common library: only chatfmt includes it.
#include "json-schema-to-grammar.h"
#include "json.h"

namespace troupe::chatfmt {
namespace {

namespace bj = boost::json;

Error refused(std::string message, const std::string& param) {
  return Error{Errc::invalid_request, std::move(message), param};
}

// Keywords that only annotate (or hold definitions) and constrain nothing.
bool is_annotation(std::string_view k) {
  static constexpr std::string_view keys[] = {
      "title", "description", "default",         "examples",         "$schema",
      "$id",   "$comment",    "readOnly",        "writeOnly",        "deprecated",
      "$defs", "definitions", "contentEncoding", "contentMediaType", "$anchor"};
  for (auto a : keys) {
    if (a == k)
      return true;
  }
  return false;
}

// Keywords the converter reads.
bool is_supported(std::string_view k) {
  static constexpr std::string_view keys[] = {"$ref",
                                              "anyOf",
                                              "oneOf",
                                              "allOf",
                                              "type",
                                              "const",
                                              "enum",
                                              "properties",
                                              "required",
                                              "additionalProperties",
                                              "items",
                                              "prefixItems",
                                              "minItems",
                                              "maxItems",
                                              "pattern",
                                              "format",
                                              "minLength",
                                              "maxLength",
                                              "minimum",
                                              "maximum",
                                              "exclusiveMinimum",
                                              "exclusiveMaximum"};
  for (auto s : keys) {
    if (s == k)
      return true;
  }
  return false;
}

bool has_type(const bj::object& schema, std::string_view type) {
  const auto* t = schema.if_contains("type");
  if (t == nullptr)
    return false;
  if (t->is_string())
    return t->get_string() == type;
  if (t->is_array()) {
    for (const auto& each : t->get_array()) {
      if (each.is_string() && each.get_string() == type)
        return true;
    }
  }
  return false;
}

// Walks a schema and refuses what the converter would not honour exactly.
class SchemaCheck {
 public:
  // `strict`: refuse every keyword the converter does not honour exactly; otherwise only
  // what it cannot convert and what goes past the limits (the schema of a tool the model may
  // call or not: llama.cpp's converter constrains what it reads and skips the rest).
  SchemaCheck(const SchemaLimits& limits, bool strict) : limits_(limits), strict_(strict) {}

  // The problem and where it is, or an empty string.
  std::string check(const bj::value& root) {
    visit(root, "#", 0);
    return problem_;
  }

 private:
  bool fail(const std::string& path, std::string why) {
    if (problem_.empty())
      problem_ = fmt::format("{} (at {})", why, path);
    return false;
  }

  bool count_limit(const bj::object& schema, const char* key, std::int64_t max,
                   const std::string& path) {
    const auto* v = schema.if_contains(key);
    if (v == nullptr || !v->is_number())
      return true;
    if (v->to_number<double>() > static_cast<double>(max)) {
      return fail(path, fmt::format("'{}' above {} would make the grammar too large", key, max));
    }
    return true;
  }

  bool visit_all(const bj::value& list, const std::string& path, int depth) {
    if (!list.is_array())
      return true;  // the converter reports the wrong shape itself
    const auto& a = list.get_array();
    for (std::size_t i = 0; i < a.size(); ++i) {
      if (!visit(a[i], fmt::format("{}/{}", path, i), depth + 1))
        return false;
    }
    return true;
  }

  bool visit(const bj::value& value, const std::string& path, int depth) {
    if (depth > limits_.max_depth)
      return fail(path, fmt::format("the schema nests deeper than {} levels", limits_.max_depth));
    if (++nodes_ > limits_.max_nodes)
      return fail(path, fmt::format("the schema has more than {} subschemas", limits_.max_nodes));
    if (value.is_bool() && strict_)
      return fail(path, "boolean schemas are not supported");
    if (!value.is_object())
      return true;  // the converter refuses it with its own message
    const auto& schema = value.get_object();
    for (const auto& [key, sub] : schema) {
      if (strict_ && !is_annotation(key) && !is_supported(key)) {
        return fail(path, fmt::format("the keyword '{}' is not supported (a grammar cannot "
                                      "enforce it)",
                                      key));
      }
    }
    if (strict_ && !check_siblings(schema, path))
      return false;
    if (!check_values(schema, path))
      return false;
    for (const char* defs : {"$defs", "definitions"}) {
      if (const auto* d = schema.if_contains(defs); d && d->is_object()) {
        for (const auto& [name, sub] : d->get_object()) {
          if (!visit(sub, fmt::format("{}/{}/{}", path, defs, name), depth + 1))
            return false;
        }
      }
    }
    for (const char* list : {"anyOf", "oneOf", "allOf", "prefixItems"}) {
      if (const auto* l = schema.if_contains(list)) {
        if (!visit_all(*l, path + "/" + list, depth))
          return false;
      }
    }
    if (const auto* items = schema.if_contains("items")) {
      if (!(items->is_array() ? visit_all(*items, path + "/items", depth)
                              : visit(*items, path + "/items", depth + 1)))
        return false;
    }
    if (const auto* props = schema.if_contains("properties"); props && props->is_object()) {
      for (const auto& [name, sub] : props->get_object()) {
        if (!visit(sub, fmt::format("{}/properties/{}", path, name), depth + 1))
          return false;
      }
    }
    if (const auto* extra = schema.if_contains("additionalProperties"); extra && extra->is_object())
      return visit(*extra, path + "/additionalProperties", depth + 1);
    return true;
  }

  // The converter takes the first of $ref, anyOf/oneOf, const, enum and ignores what stands
  // beside it; only annotations may.
  bool check_siblings(const bj::object& schema, const std::string& path) {
    const char* leader = nullptr;
    for (const char* k : {"$ref", "anyOf", "oneOf"}) {
      if (schema.contains(k)) {
        leader = k;
        break;
      }
    }
    if (leader == nullptr)
      return check_all_of(schema, path);
    for (const auto& [key, value] : schema) {
      if (key != leader && !is_annotation(key)) {
        return fail(path, fmt::format("'{}' beside '{}' is not supported: move it into the "
                                      "alternatives (or the referenced schema)",
                                      key, leader));
      }
    }
    return true;
  }

  // allOf is honoured only on its own (with a type at most).
  bool check_all_of(const bj::object& schema, const std::string& path) {
    if (!schema.contains("allOf"))
      return true;
    for (const auto& [key, value] : schema) {
      if (key != "allOf" && key != "type" && !is_annotation(key))
        return fail(path, fmt::format("'{}' beside 'allOf' is not supported", key));
    }
    return true;
  }

  bool check_values(const bj::object& schema, const std::string& path) {
    if (const auto* e = schema.if_contains("enum"); e && e->is_array()) {
      enum_values_ += static_cast<std::int64_t>(e->get_array().size());
      if (enum_values_ > limits_.max_enum_values) {
        return fail(path, fmt::format("the schema's enums hold more than {} values in all",
                                      limits_.max_enum_values));
      }
    }
    const bool number_only = has_type(schema, "number") && !has_type(schema, "integer");
    if (number_only && strict_) {
      for (const char* k : {"minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"}) {
        if (schema.contains(k)) {
          return fail(path, fmt::format("'{}' on a 'number' is not supported (it is on an "
                                        "'integer')",
                                        k));
        }
      }
    }
    if (!count_limit(schema, "minItems", limits_.max_repeat, path) ||
        !count_limit(schema, "maxItems", limits_.max_repeat, path) ||
        !count_limit(schema, "minLength", limits_.max_repeat, path) ||
        !count_limit(schema, "maxLength", limits_.max_repeat, path))
      return false;
    return !strict_ || check_string(schema, path);
  }

  bool check_string(const bj::object& schema, const std::string& path) {
    const bool pattern = schema.contains("pattern");
    const bool length = schema.contains("minLength") || schema.contains("maxLength");
    if (const auto* fmt_value = schema.if_contains("format"); fmt_value && fmt_value->is_string()) {
      const std::string f(fmt_value->get_string());
      const bool known = f == "date" || f == "time" || f == "date-time" || f == "uuid" ||
                         (f.size() == 5 && f.starts_with("uuid") && f[4] >= '1' && f[4] <= '5');
      if (!known) {
        return fail(path, fmt::format("the string format '{}' is not supported (date, time, "
                                      "date-time and uuid are)",
                                      f));
      }
      if (pattern || length)
        return fail(path, "'format' together with 'pattern' or a length is not supported");
    }
    if (pattern && length)
      return fail(path, "'pattern' together with 'minLength'/'maxLength' is not supported");
    if (pattern) {
      const auto& p = schema.at("pattern");
      if (p.is_string() && !pattern_supported(std::string(p.get_string()))) {
        return fail(path, fmt::format("the pattern '{}' cannot be turned into a grammar (it must "
                                      "be anchored with ^ and $ and use plain regular syntax)",
                                      std::string_view(p.get_string())));
      }
    }
    return true;
  }

  // The converter replaces a pattern it cannot translate with "any string" (a warning on
  // stderr), the same grammar whatever the pattern: that of an unanchored one ("x").
  static bool pattern_supported(const std::string& pattern) {
    try {
      const common_json fallback = {{"type", "string"}, {"pattern", "x"}};
      const common_json with = {{"type", "string"}, {"pattern", pattern}};
      return json_schema_to_grammar(with) != json_schema_to_grammar(fallback);
    } catch (const std::exception&) {
      return true;  // an invalid pattern: the real conversion reports it
    }
  }

  const SchemaLimits& limits_;
  const bool strict_;
  std::string problem_;
  std::int64_t nodes_ = 0;
  std::int64_t enum_values_ = 0;
};

// Schema text -> grammar, or the reason it was refused.
struct Converted {
  bool ok = false;
  std::string text;  // the grammar, or why the schema was refused
};

// The conversions, least recently used evicted; shared by every request thread.
class SchemaCache {
 public:
  std::optional<Converted> find(const std::string& schema) {
    std::lock_guard lock(mutex_);
    const Converted* c = cache_.find(schema);
    return c ? std::optional<Converted>(*c) : std::nullopt;
  }
  void put(const std::string& schema, Converted c) {
    std::lock_guard lock(mutex_);
    cache_.put(schema, std::move(c));
  }

 private:
  std::mutex mutex_;
  util::LruCache<Converted> cache_{128};
};

SchemaCache& cache() {
  static SchemaCache c;
  return c;
}

Converted convert(const std::string& schema_text, const SchemaLimits& limits, bool strict) {
  if (schema_text.size() > limits.max_schema_bytes) {
    return {false, fmt::format("the schema is larger than {} bytes", limits.max_schema_bytes)};
  }
  try {
    boost::system::error_code ec;
    bj::parse_options options;
    options.max_depth = 4 * static_cast<std::size_t>(limits.max_depth);  // SchemaCheck says
    const bj::value parsed = bj::parse(schema_text, ec, {}, options);
    if (ec)
      return {false, fmt::format("the schema is not valid JSON ({})", ec.message())};
    if (!parsed.is_object())
      return {false, "the schema must be a JSON object"};
    if (auto why = SchemaCheck(limits, strict).check(parsed); !why.empty())
      return {false, why};
    std::string gbnf = json_schema_to_grammar(common_json::parse(schema_text));
    if (gbnf.size() > limits.max_grammar_bytes) {
      return {false,
              fmt::format("its grammar would be larger than {} bytes", limits.max_grammar_bytes)};
    }
    return {true, std::move(gbnf)};
  } catch (const std::exception& e) {
    return {false, e.what()};
  }
}

// The conversion of `schema`, from the cache when it is there. The lenient check's entries
// are kept under a key no schema text starts with.
Converted cached_convert(const std::string& schema, bool strict) {
  static const SchemaLimits limits;
  const std::string key = strict ? schema : "\x01lenient\x01" + schema;
  auto entry = cache().find(key);
  if (!entry) {
    entry = convert(schema, limits, strict);
    if (schema.size() <= limits.max_schema_bytes)
      cache().put(key, *entry);
  }
  return std::move(*entry);
}

}  // namespace

Result<std::string> schema_to_grammar(const std::string& schema, const std::string& param) {
  auto entry = cached_convert(schema, true);
  if (!entry.ok)
    return refused(fmt::format("The JSON schema cannot be used: {}", entry.text), param);
  return std::move(entry.text);
}

std::optional<std::string> check_tool_schema(const std::string& parameters, bool forced) {
  if (parameters.empty())
    return std::nullopt;
  auto entry = cached_convert(parameters, forced);
  if (!entry.ok)
    return std::move(entry.text);
  return std::nullopt;
}

}  // namespace troupe::chatfmt
