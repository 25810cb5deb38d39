#include "api/json_reader.hpp"

#include <fmt/format.h>

#include <boost/json/parse.hpp>
#include <cmath>
#include <limits>

namespace troupe::api {
namespace json = boost::json;

Result<json::object> parse_json_object(std::string_view body) {
  if (body.empty())
    return Error{Errc::invalid_request, "The request body is empty"};
  json::parse_options opts;
  // Deep enough for a response-format schema at its nesting limit (chatfmt::SchemaLimits:
  // 32 subschemas, two JSON levels each, inside the body's own levels); shallow enough that
  // no body can exhaust the stack.
  opts.max_depth = 100;
  opts.allow_invalid_utf8 = false;
  boost::system::error_code ec;
  json::value v = json::parse(json::string_view(body.data(), body.size()), ec, {}, opts);
  if (ec) {
    return Error{Errc::invalid_request,
                 fmt::format("The request body is not valid JSON: {}", ec.message())};
  }
  if (!v.is_object()) {
    return Error{Errc::invalid_request, "The request body must be a JSON object"};
  }
  return std::move(v.as_object());
}

std::optional<std::int64_t> as_integer(const json::value& v) {
  if (v.is_int64())
    return v.get_int64();
  if (v.is_uint64()) {
    if (v.get_uint64() > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())) {
      return std::nullopt;
    }
    return static_cast<std::int64_t>(v.get_uint64());
  }
  if (v.is_double()) {
    const double d = v.get_double();
    if (std::isfinite(d) && d == std::floor(d) && std::fabs(d) < 9.0e15) {
      return static_cast<std::int64_t>(d);
    }
  }
  return std::nullopt;
}

namespace {

std::string describe(Bound lo, Bound hi) {
  return fmt::format("{}{}, {}{}", lo.inclusive ? '[' : '(', lo.value, hi.value,
                     hi.inclusive ? ']' : ')');
}

bool within(double x, Bound lo, Bound hi) {
  const bool above = lo.inclusive ? x >= lo.value : x > lo.value;
  const bool below = hi.inclusive ? x <= hi.value : x < hi.value;
  return above && below;
}

}  // namespace

const json::value* JsonReader::find(std::string_view key) const {
  const json::value* v = obj_.if_contains(json::string_view(key.data(), key.size()));
  return (v == nullptr || v->is_null()) ? nullptr : v;
}

void JsonReader::fail(std::string message, std::string param) {
  if (!error_)
    error_ = Error{Errc::invalid_request, std::move(message), std::move(param)};
}

void JsonReader::number(std::string_view key, std::optional<double>& out, Bound lo, Bound hi) {
  const json::value* v = failed() ? nullptr : find(key);
  if (v == nullptr)
    return;
  if (!v->is_number())
    return fail(fmt::format("'{}' must be a number", key), std::string(key));
  const double x = v->to_number<double>();
  if (!std::isfinite(x) || !within(x, lo, hi)) {
    return fail(fmt::format("'{}' must be in {}, got {}", key, describe(lo, hi), x),
                std::string(key));
  }
  out = x;
}

void JsonReader::integer(std::string_view key, std::optional<std::int64_t>& out, std::int64_t lo,
                         std::int64_t hi) {
  const json::value* v = failed() ? nullptr : find(key);
  if (v == nullptr)
    return;
  auto i = as_integer(*v);
  if (!i)
    return fail(fmt::format("'{}' must be an integer", key), std::string(key));
  if (*i < lo || *i > hi) {
    return fail(fmt::format("'{}' must be in [{}, {}], got {}", key, lo, hi, *i), std::string(key));
  }
  out = *i;
}

void JsonReader::integer32(std::string_view key, std::optional<std::int32_t>& out, std::int32_t lo,
                           std::int32_t hi) {
  std::optional<std::int64_t> wide;
  integer(key, wide, lo, hi);
  if (wide)
    out = static_cast<std::int32_t>(*wide);
}

void JsonReader::boolean(std::string_view key, bool& out) {
  const json::value* v = failed() ? nullptr : find(key);
  if (v == nullptr)
    return;
  if (!v->is_bool())
    return fail(fmt::format("'{}' must be a boolean", key), std::string(key));
  out = v->get_bool();
}

void JsonReader::string(std::string_view key, std::string& out) {
  const json::value* v = failed() ? nullptr : find(key);
  if (v == nullptr)
    return;
  if (!v->is_string())
    return fail(fmt::format("'{}' must be a string", key), std::string(key));
  out = std::string(v->get_string());
}

void JsonReader::string_list(std::string_view key, std::vector<std::string>& out,
                             std::size_t max_items) {
  const json::value* v = failed() ? nullptr : find(key);
  if (v == nullptr)
    return;
  const auto bad = [&] {
    fail(fmt::format("'{}' must be a string or an array of at most {} strings", key, max_items),
         std::string(key));
  };
  if (v->is_string()) {
    out.assign(1, std::string(v->get_string()));
    return;
  }
  if (!v->is_array() || v->get_array().size() > max_items)
    return bad();
  out.clear();
  for (const auto& item : v->get_array()) {
    if (!item.is_string())
      return bad();
    out.emplace_back(item.get_string());
  }
}

void JsonReader::int_array(std::string_view key, std::vector<std::int32_t>& out, std::int64_t lo,
                           std::int64_t hi) {
  const json::value* v = failed() ? nullptr : find(key);
  if (v == nullptr)
    return;
  if (!v->is_array()) {
    return fail(fmt::format("'{}' must be an array of integers", key), std::string(key));
  }
  out.clear();
  out.reserve(v->get_array().size());
  for (const auto& item : v->get_array()) {
    auto i = as_integer(item);
    if (!i || *i < lo || *i > hi) {
      return fail(fmt::format("'{}' must be an array of integers in [{}, {}]", key, lo, hi),
                  std::string(key));
    }
    out.push_back(static_cast<std::int32_t>(*i));
  }
}

}  // namespace troupe::api
