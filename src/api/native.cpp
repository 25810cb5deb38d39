#include "api/native.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <boost/json.hpp>
#include <iterator>
#include <utility>

#include "api/error.hpp"
#include "api/request.hpp"
#include "api/response.hpp"

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

void append_tokens(std::string& out, std::span<const std::int32_t> tokens) {
  out += '[';
  for (std::size_t i = 0; i < tokens.size(); ++i)
    fmt::format_to(std::back_inserter(out), "{}{}", i > 0 ? "," : "", tokens[i]);
  out += ']';
}

// {"id", "token", "bytes", "logprob"}: `token` is the piece as valid UTF-8, `bytes` its own.
void append_token_prob(std::string& out, const NativeTokenProb& p) {
  fmt::format_to(std::back_inserter(out), "{{\"id\":{},\"token\":", p.id);
  append_json_string(out, sanitize_utf8(p.text));
  out += ",\"bytes\":";
  append_bytes(out, p.text);
  out += ",\"logprob\":";
  append_number(out, p.logprob);
}

// llama-server's completion_probabilities: per token, itself and its top_logprobs.
void append_probs(std::string& out, std::span<const NativeProb> probs) {
  out += ",\"completion_probabilities\":[";
  for (std::size_t i = 0; i < probs.size(); ++i) {
    if (i > 0)
      out += ',';
    append_token_prob(out, probs[i].token);
    out += ",\"top_logprobs\":[";
    for (std::size_t k = 0; k < probs[i].top.size(); ++k) {
      if (k > 0)
        out += ',';
      append_token_prob(out, probs[i].top[k]);
      out += '}';
    }
    out += "]}";
  }
  out += ']';
}

std::string whole_answer_json(const NativeCompletion& c) {
  std::string out = fmt::format("{{\"index\":{},\"content\":", c.index);
  append_json_string(out, c.content);
  out += ",\"tokens\":";
  append_tokens(out, c.tokens);
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
  if (!c.probs.empty())
    append_probs(out, c.probs);
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

std::string native_chunk_json(const NativeChunk& c) {
  std::string out = fmt::format("{{\"index\":{},\"content\":", c.index);
  append_json_string(out, c.content);
  out += ",\"tokens\":";
  append_tokens(out, c.tokens);
  fmt::format_to(std::back_inserter(out),
                 ",\"stop\":false,\"tokens_predicted\":{},\"tokens_evaluated\":{}",
                 c.tokens_predicted, c.tokens_evaluated);
  if (c.timings != nullptr) {
    out += ",\"timings\":";
    append_timings(out, *c.timings);
  }
  if (!c.probs.empty())
    append_probs(out, c.probs);
  out += '}';
  return out;
}

std::string props_json(const NativeProps& p) {
  const auto text = [](std::string& out, std::string_view key, std::string_view value) {
    fmt::format_to(std::back_inserter(out), ",\"{}\":", key);
    append_json_string(out, sanitize_utf8(value));
  };
  std::string out =
      fmt::format("{{\"default_generation_settings\":{{\"n_ctx\":{},\"params\":{{", p.n_ctx);
  fmt::format_to(std::back_inserter(out),
                 "\"n_predict\":{},\"seed\":{},\"temperature\":", p.n_predict, p.seed);
  append_number(out, p.temperature);
  fmt::format_to(std::back_inserter(out), ",\"top_k\":{},\"top_p\":", p.top_k);
  append_number(out, p.top_p);
  out += ",\"min_p\":";
  append_number(out, p.min_p);
  out += ",\"repeat_penalty\":";
  append_number(out, p.repeat_penalty);
  fmt::format_to(std::back_inserter(out), "}}}},\"total_slots\":{}", p.total_slots);
  text(out, "model_alias", p.model_alias);
  text(out, "model_path", p.model_path);
  out += ",\"modalities\":{\"vision\":false,\"video\":false,\"audio\":false}";
  text(out, "chat_template", p.chat_template);
  text(out, "bos_token", p.bos_token);
  text(out, "eos_token", p.eos_token);
  text(out, "build_info", p.build_info);
  fmt::format_to(std::back_inserter(out),
                 ",\"embeddings\":{},\"is_sleeping\":false,\"endpoint_slots\":{},"
                 "\"endpoint_props\":false,\"endpoint_metrics\":true}}",
                 p.embeddings, p.endpoint_slots);
  return out;
}

std::string lora_adapters_json(std::span<const NativeLoraAdapter> adapters) {
  std::string out = "[";
  for (std::size_t i = 0; i < adapters.size(); ++i) {
    const NativeLoraAdapter& a = adapters[i];
    fmt::format_to(std::back_inserter(out), "{}{{\"id\":{},\"path\":", i == 0 ? "" : ",", i);
    append_json_string(out, sanitize_utf8(a.path));
    out += ",\"scale\":";
    append_number(out, a.scale);
    out += ",\"task_name\":";
    append_json_string(out, sanitize_utf8(a.task_name));
    out += ",\"prompt_prefix\":";
    append_json_string(out, sanitize_utf8(a.prompt_prefix));
    out += '}';
  }
  out += ']';
  return out;
}

std::string slots_json(std::span<const NativeSlot> slots, std::int32_t n_ctx, bool speculative) {
  std::string out = "[";
  for (const NativeSlot& s : slots) {
    fmt::format_to(std::back_inserter(out),
                   R"({}{{"id":{},"n_ctx":{},"speculative":{},"is_processing":{})",
                   out.size() > 1 ? "," : "", s.id, n_ctx, speculative, s.busy);
    if (s.busy) {
      const std::int32_t remain = s.max_tokens < 0 ? -1 : std::max(0, s.max_tokens - s.n_decoded);
      fmt::format_to(std::back_inserter(out),
                     R"(,"id_task":{},"n_prompt_tokens":{},"n_prompt_tokens_processed":{},)"
                     R"("n_prompt_tokens_cache":{},"next_token":[{{"has_next_token":{},)"
                     R"("has_new_line":false,"n_remain":{},"n_decoded":{}}}])",
                     s.task, s.n_prompt, s.n_processed, s.n_cached, remain != 0, remain,
                     s.n_decoded);
    }
    out += '}';
  }
  out += ']';
  return out;
}

Result<std::vector<std::pair<std::int32_t, float>>> parse_lora_adapters_request(
    std::string_view body) {
  boost::system::error_code ec;
  const boost::json::value v = boost::json::parse(body, ec);
  if (ec)
    return Error{Errc::invalid_request, "the body is not valid JSON"};
  return read_lora_entries(v);
}

bool valid_slot_filename(std::string_view name) {
  if (name.empty() || name.size() > 255)
    return false;
  if (name.front() == '.' || name.front() == ' ' || name.back() == '.' || name.back() == ' ')
    return false;
  return std::none_of(name.begin(), name.end(), [](char ch) {
    const auto c = static_cast<unsigned char>(ch);
    return c < 0x20 || c == 0x7f ||
           std::string_view(R"(/\:*?"<>|)").find(ch) != std::string_view::npos;
  });
}

Result<std::string> parse_slot_file_request(std::string_view body) {
  boost::system::error_code ec;
  const boost::json::value v = boost::json::parse(body, ec);
  if (ec)
    return Error{Errc::invalid_request, "the body is not valid JSON"};
  const auto* obj = v.if_object();
  const auto* name = obj != nullptr ? obj->if_contains("filename") : nullptr;
  if (name == nullptr || !name->is_string())
    return Error{Errc::invalid_request, "'filename' (a string) is required", "filename"};
  const std::string_view s = name->get_string();
  if (!valid_slot_filename(s)) {
    return Error{Errc::invalid_request,
                 "Invalid filename: a plain file name is required (no directories, no leading "
                 "or trailing dot or space, no control characters, at most 255 bytes)",
                 "filename"};
  }
  return std::string(s);
}

std::string slot_action_json(const NativeSlotAction& a) {
  boost::json::object o;
  o["id_slot"] = a.id;
  if (a.action == "erase") {
    o["n_erased"] = a.n_tokens;
    return boost::json::serialize(o);
  }
  const bool save = a.action == "save";
  o["filename"] = a.filename;
  o[save ? "n_saved" : "n_restored"] = a.n_tokens;
  o[save ? "n_written" : "n_read"] = a.n_bytes;
  boost::json::object timings;
  timings[save ? "save_ms" : "restore_ms"] = a.ms;
  o["timings"] = std::move(timings);
  return boost::json::serialize(o);
}

}  // namespace troupe::api
