#include "api/native.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <boost/json.hpp>
#include <iterator>
#include <utility>

#include "api/error.hpp"

namespace troupe::api {
namespace {

// Per token and per second of `n` tokens in `ms`; 0 when either is 0.
std::pair<double, double> rates(std::int32_t n, double ms) {
  if (n <= 0 || ms <= 0.0)
    return {0.0, 0.0};
  return {ms / n, 1000.0 * n / ms};
}

void append_timings(std::string& out, const NativeTimings& t) {
  const auto [prompt_per_token, prompt_per_second] = rates(t.prompt_n, t.prompt_ms);
  const auto [predicted_per_token, predicted_per_second] = rates(t.predicted_n, t.predicted_ms);
  fmt::format_to(std::back_inserter(out),
                 "{{\"cache_n\":{},\"prompt_n\":{},\"prompt_ms\":{:.3f},"
                 "\"prompt_per_token_ms\":{:.3f},\"prompt_per_second\":{:.3f},"
                 "\"predicted_n\":{},\"predicted_ms\":{:.3f},\"predicted_per_token_ms\":{:.3f},"
                 "\"predicted_per_second\":{:.3f}}}",
                 t.cache_n, t.prompt_n, t.prompt_ms, prompt_per_token, prompt_per_second,
                 t.predicted_n, t.predicted_ms, predicted_per_token, predicted_per_second);
}

std::string whole_answer_json(const NativeCompletion& c) {
  std::string out = "{\"index\":0,\"content\":";
  append_json_string(out, c.content);
  out += ",\"stop\":true,\"model\":";
  append_json_string(out, c.model);
  fmt::format_to(std::back_inserter(out),
                 ",\"tokens_predicted\":{},\"tokens_evaluated\":{},\"tokens_cached\":{},"
                 "\"has_new_line\":{},\"truncated\":{},\"stop_type\":",
                 c.tokens_predicted, c.tokens_evaluated, c.tokens_cached, c.has_new_line,
                 c.truncated);
  append_json_string(out, c.stop_type);
  out += ",\"stopping_word\":";
  append_json_string(out, c.stopping_word);
  out += ",\"timings\":";
  append_timings(out, c.timings);
  out += '}';
  return out;
}

// `json` (an object) reduced to the values at `paths`, each keyed by its path.
std::string select_fields(const std::string& json, std::span<const std::string> paths) {
  const boost::json::value whole = boost::json::parse(json);
  boost::json::object out;
  for (const auto& path : paths) {
    const boost::json::value* at = &whole;
    for (std::size_t from = 0; at != nullptr && from <= path.size();) {
      const std::size_t to = std::min(path.find('/', from), path.size());
      const auto* obj = at->if_object();
      at = obj ? obj->if_contains(std::string_view(path).substr(from, to - from)) : nullptr;
      from = to + 1;
    }
    if (at != nullptr)
      out[path] = *at;
  }
  return boost::json::serialize(out);
}

}  // namespace

std::string native_completion_json(const NativeCompletion& c, std::span<const std::string> fields) {
  std::string whole = whole_answer_json(c);
  return fields.empty() ? whole : select_fields(whole, fields);
}

std::string native_chunk_json(std::string_view content, std::int32_t tokens_predicted,
                              std::int32_t tokens_evaluated) {
  std::string out = "{\"index\":0,\"content\":";
  append_json_string(out, content);
  fmt::format_to(std::back_inserter(out),
                 ",\"stop\":false,\"tokens_predicted\":{},\"tokens_evaluated\":{}}}",
                 tokens_predicted, tokens_evaluated);
  return out;
}

}  // namespace troupe::api
