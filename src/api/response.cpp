#include "api/response.hpp"

#include <fmt/format.h>

#include <cmath>
#include <iterator>

#include "api/error.hpp"

namespace troupe::api {
namespace {

// Length of the valid UTF-8 sequence at s[i], or 0 when it is not one.
std::size_t utf8_sequence(std::string_view s, std::size_t i) {
  const auto b = [&](std::size_t k) { return static_cast<unsigned char>(s[i + k]); };
  const unsigned char c = b(0);
  std::size_t n = 0;
  if (c < 0x80)
    return 1;
  if (c >= 0xc2 && c <= 0xdf)
    n = 2;
  else if (c >= 0xe0 && c <= 0xef)
    n = 3;
  else if (c >= 0xf0 && c <= 0xf4)
    n = 4;
  else
    return 0;
  if (i + n > s.size())
    return 0;
  for (std::size_t k = 1; k < n; ++k) {
    if ((b(k) & 0xc0) != 0x80)
      return 0;
  }
  if (c == 0xe0 && b(1) < 0xa0)
    return 0;  // overlong
  if (c == 0xed && b(1) > 0x9f)
    return 0;  // surrogates
  if (c == 0xf0 && b(1) < 0x90)
    return 0;  // overlong
  if (c == 0xf4 && b(1) > 0x8f)
    return 0;  // above U+10FFFF
  return n;
}

void append_usage(std::string& out, const Usage& u) {
  fmt::format_to(std::back_inserter(out),
                 "{{\"prompt_tokens\":{},\"completion_tokens\":{},\"total_tokens\":{},"
                 "\"prompt_tokens_details\":{{\"cached_tokens\":{}}},"
                 "\"completion_tokens_details\":{{\"reasoning_tokens\":{},"
                 "\"accepted_prediction_tokens\":{},\"rejected_prediction_tokens\":{}}}}}",
                 u.prompt_tokens, u.completion_tokens, u.prompt_tokens + u.completion_tokens,
                 u.cached_tokens, u.reasoning_tokens, u.accepted_prediction_tokens,
                 u.rejected_prediction_tokens);
}

// Chat shape: {"content": [{"token", "logprob", "bytes", "top_logprobs": [...]}]}
void append_chat_logprobs(std::string& out, const std::vector<TokenLogprob>& lps) {
  out += "{\"content\":[";
  for (std::size_t i = 0; i < lps.size(); ++i) {
    if (i > 0)
      out += ',';
    const auto one = [&](std::string_view token, float lp) {
      out += "{\"token\":";
      append_json_string(out, sanitize_utf8(token));
      out += ",\"logprob\":";
      append_number(out, lp);
      out += ",\"bytes\":";
      append_bytes(out, token);
    };
    one(lps[i].token, lps[i].logprob);
    out += ",\"top_logprobs\":[";
    for (std::size_t k = 0; k < lps[i].top.size(); ++k) {
      if (k > 0)
        out += ',';
      one(lps[i].top[k].first, lps[i].top[k].second);
      out += '}';
    }
    out += "]}";
  }
  out += "],\"refusal\":null}";
}

// Legacy completions shape: {"tokens", "token_logprobs", "top_logprobs", "text_offset"}.
void append_text_logprobs(std::string& out, const std::vector<TokenLogprob>& lps,
                          std::size_t& offset) {
  const auto list = [&](const char* name, auto&& item) {
    fmt::format_to(std::back_inserter(out), "\"{}\":[", name);
    for (std::size_t i = 0; i < lps.size(); ++i) {
      if (i > 0)
        out += ',';
      item(lps[i]);
    }
    out += ']';
  };
  out += '{';
  list("tokens", [&](const TokenLogprob& t) { append_json_string(out, sanitize_utf8(t.token)); });
  out += ',';
  list("token_logprobs", [&](const TokenLogprob& t) { append_number(out, t.logprob); });
  out += ',';
  list("top_logprobs", [&](const TokenLogprob& t) {
    out += '{';
    for (std::size_t k = 0; k < t.top.size(); ++k) {
      if (k > 0)
        out += ',';
      append_json_string(out, sanitize_utf8(t.top[k].first));
      out += ':';
      append_number(out, t.top[k].second);
    }
    out += '}';
  });
  out += ',';
  list("text_offset", [&](const TokenLogprob& t) {
    fmt::format_to(std::back_inserter(out), "{}", offset);
    offset += t.token.size();
  });
  out += '}';
}

std::string head_json(const ResponseHead& head, std::string_view object) {
  std::string out = "{\"id\":";
  append_json_string(out, head.id);
  fmt::format_to(std::back_inserter(out), ",\"object\":\"{}\",\"created\":{},\"model\":", object,
                 head.created);
  append_json_string(out, head.model);
  out += ",\"system_fingerprint\":\"troupe\",\"choices\":[";
  return out;
}

}  // namespace

void append_number(std::string& out, float x) {
  // JSON has no infinities: a -inf logprob (impossible token) becomes a very small number.
  const double v = std::isfinite(x) ? x : -9999.0;
  const std::size_t start = out.size();
  fmt::format_to(std::back_inserter(out), "{}", v);
  // Keep it a JSON float for typed clients: -1 -> -1.0.
  if (out.find_first_of(".en", start) == std::string::npos)
    out += ".0";
}

void append_bytes(std::string& out, std::string_view s) {
  out += '[';
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (i > 0)
      out += ',';
    fmt::format_to(std::back_inserter(out), "{}", static_cast<unsigned char>(s[i]));
  }
  out += ']';
}

std::string sanitize_utf8(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (std::size_t i = 0; i < s.size();) {
    const std::size_t n = utf8_sequence(s, i);
    if (n == 0) {
      out += "\xef\xbf\xbd";
      ++i;
    } else {
      out.append(s.substr(i, n));
      i += n;
    }
  }
  return out;
}

namespace {
// `,"finish_reason":...}`: how every choice of a non-streaming response ends.
void append_finish_reason(std::string& out, const CompletionResult& r) {
  out += ",\"finish_reason\":";
  append_json_string(out, r.finish_reason);
  out += '}';
}

// `],"usage":{...}}`: after the last choice.
void append_usage_tail(std::string& out, const Usage& usage) {
  out += "],\"usage\":";
  append_usage(out, usage);
  out += '}';
}
}  // namespace

namespace {
void append_tool_call(std::string& out, std::size_t index, std::string_view id,
                      std::string_view name, std::string_view arguments, bool with_index) {
  out += '{';
  if (with_index)
    fmt::format_to(std::back_inserter(out), "\"index\":{},", index);
  if (!id.empty()) {
    out += "\"id\":";
    append_json_string(out, id);
    out += ",\"type\":\"function\",";
  }
  out += "\"function\":{";
  if (!name.empty()) {
    out += "\"name\":";
    append_json_string(out, name);
    out += ',';
  }
  out += "\"arguments\":";
  append_json_string(out, arguments);
  out += "}}";
}
}  // namespace

namespace {
void append_chat_choice(std::string& out, std::size_t index, const CompletionResult& r) {
  fmt::format_to(std::back_inserter(out),
                 "{{\"index\":{},\"message\":{{\"role\":\"assistant\",\"content\":", index);
  if (r.text.empty() && !r.tool_calls.empty()) {
    out += "null";
  } else {
    append_json_string(out, r.text);
  }
  if (!r.reasoning_content.empty()) {
    out += ",\"reasoning_content\":";
    append_json_string(out, r.reasoning_content);
  }
  if (!r.tool_calls.empty()) {
    out += ",\"tool_calls\":[";
    for (std::size_t i = 0; i < r.tool_calls.size(); ++i) {
      if (i > 0)
        out += ',';
      const auto& c = r.tool_calls[i];
      append_tool_call(out, i, c.id, c.name, c.arguments, false);
    }
    out += ']';
  }
  out += ",\"refusal\":null},\"logprobs\":";
  if (r.logprobs) {
    append_chat_logprobs(out, *r.logprobs);
  } else {
    out += "null";
  }
  append_finish_reason(out, r);
}

void append_text_choice(std::string& out, std::size_t index, const CompletionResult& r) {
  out += "{\"text\":";
  append_json_string(out, r.text);
  fmt::format_to(std::back_inserter(out), ",\"index\":{},\"logprobs\":", index);
  if (r.logprobs) {
    std::size_t offset = 0;
    append_text_logprobs(out, *r.logprobs, offset);
  } else {
    out += "null";
  }
  append_finish_reason(out, r);
}

}  // namespace

std::string completions_json(CompletionKind kind, const ResponseHead& head,
                             std::span<const CompletionResult> choices, const Usage& usage) {
  const bool chat = kind == CompletionKind::chat;
  std::string out = head_json(head, chat ? "chat.completion" : "text_completion");
  for (std::size_t i = 0; i < choices.size(); ++i) {
    if (i > 0)
      out += ',';
    if (chat)
      append_chat_choice(out, i, choices[i]);
    else
      append_text_choice(out, i, choices[i]);
  }
  append_usage_tail(out, usage);
  return out;
}

std::string chat_completion_json(const ResponseHead& head, const CompletionResult& r) {
  return completions_json(CompletionKind::chat, head, {&r, 1}, r.usage);
}

std::string text_completion_json(const ResponseHead& head, const CompletionResult& r) {
  return completions_json(CompletionKind::text, head, {&r, 1}, r.usage);
}

ChunkWriter::ChunkWriter(CompletionKind kind, const ResponseHead& head, bool include_usage,
                         std::size_t index)
    : kind_(kind),
      include_usage_(include_usage),
      index_(index),
      prefix_(head_json(
          head, kind == CompletionKind::chat ? "chat.completion.chunk" : "text_completion")) {}

std::string ChunkWriter::begin_choice() const {
  if (kind_ == CompletionKind::chat)
    return prefix_ + fmt::format("{{\"index\":{},\"delta\":", index_);
  return prefix_ + "{\"text\":";
}

std::string ChunkWriter::end_choice(std::string_view finish_reason) const {
  std::string out = ",\"finish_reason\":";
  if (finish_reason.empty()) {
    out += "null";
  } else {
    append_json_string(out, finish_reason);
  }
  out += "}]";
  if (include_usage_)
    out += ",\"usage\":null";
  out += '}';
  return out;
}

std::string ChunkWriter::role_chunk() const {
  return begin_choice() + "{\"role\":\"assistant\",\"content\":\"\",\"refusal\":null}" +
         ",\"logprobs\":null" + end_choice({});
}

std::string ChunkWriter::delta_chunk(std::string_view text,
                                     const std::vector<TokenLogprob>* logprobs) {
  std::string out = begin_choice();
  if (kind_ == CompletionKind::chat) {
    out += "{\"content\":";
    append_json_string(out, text);
    out += "},\"logprobs\":";
    if (logprobs)
      append_chat_logprobs(out, *logprobs);
  } else {
    append_json_string(out, text);
    fmt::format_to(std::back_inserter(out), ",\"index\":{},\"logprobs\":", index_);
    if (logprobs)
      append_text_logprobs(out, *logprobs, text_offset_);
  }
  if (!logprobs)
    out += "null";
  out += end_choice({});
  return out;
}

std::string ChunkWriter::chat_delta_chunk(std::string_view content, std::string_view reasoning,
                                          const std::vector<chatfmt::ToolCallDelta>& tool_calls,
                                          const std::vector<TokenLogprob>* logprobs) {
  std::string out = begin_choice();
  out += '{';
  bool first = true;
  const auto field = [&](const char* name) {
    out += first ? "\"" : ",\"";
    out += name;
    out += "\":";
    first = false;
  };
  if (!content.empty() || (reasoning.empty() && tool_calls.empty())) {
    field("content");
    append_json_string(out, content);
  }
  if (!reasoning.empty()) {
    field("reasoning_content");
    append_json_string(out, reasoning);
  }
  if (!tool_calls.empty()) {
    field("tool_calls");
    out += '[';
    for (std::size_t i = 0; i < tool_calls.size(); ++i) {
      if (i > 0)
        out += ',';
      const auto& c = tool_calls[i];
      append_tool_call(out, c.index, c.id, c.name, c.arguments, true);
    }
    out += ']';
  }
  out += "},\"logprobs\":";
  if (logprobs) {
    append_chat_logprobs(out, *logprobs);
  } else {
    out += "null";
  }
  out += end_choice({});
  return out;
}

std::string ChunkWriter::finish_chunk(std::string_view finish_reason) const {
  std::string out = begin_choice();
  if (kind_ == CompletionKind::chat)
    out += "{},\"logprobs\":null";
  else
    fmt::format_to(std::back_inserter(out), "\"\",\"index\":{},\"logprobs\":null", index_);
  out += end_choice(finish_reason);
  return out;
}

std::string ChunkWriter::usage_chunk(const Usage& usage) const {
  std::string out = prefix_;
  out += "],\"usage\":";
  append_usage(out, usage);
  out += '}';
  return out;
}

std::string model_json(const ModelEntry& model) {
  std::string out = "{\"id\":";
  append_json_string(out, model.id);
  fmt::format_to(std::back_inserter(out),
                 ",\"object\":\"model\",\"created\":{},\"owned_by\":", model.created);
  append_json_string(out, model.owned_by);
  fmt::format_to(std::back_inserter(out), ",\"meta\":{{\"n_ctx\":{}}}", model.n_ctx);
  if (!model.aliases.empty()) {
    out += ",\"aliases\":[";
    for (std::size_t i = 0; i < model.aliases.size(); ++i) {
      if (i > 0)
        out += ',';
      append_json_string(out, model.aliases[i]);
    }
    out += ']';
  }
  if (!model.state.empty()) {
    out += ",\"status\":{\"value\":";
    append_json_string(out, model.state);
    if (model.state == "failed")
      out += ",\"failed\":true";
    if (!model.state_message.empty()) {
      out += ",\"message\":";
      append_json_string(out, model.state_message);
    }
    out += '}';
  }
  out += '}';
  return out;
}

std::string models_json(const std::vector<ModelEntry>& models) {
  std::string out = "{\"object\":\"list\",\"data\":[";
  for (std::size_t i = 0; i < models.size(); ++i) {
    if (i > 0)
      out += ',';
    out += model_json(models[i]);
  }
  out += "]}";
  return out;
}

std::string tokenize_json(const std::vector<std::int32_t>& tokens,
                          const std::vector<std::string>* pieces) {
  std::string out = "{\"tokens\":[";
  for (std::size_t i = 0; i < tokens.size(); ++i) {
    if (i > 0)
      out += ',';
    if (pieces == nullptr || i >= pieces->size()) {
      fmt::format_to(std::back_inserter(out), "{}", tokens[i]);
      continue;
    }
    fmt::format_to(std::back_inserter(out), "{{\"id\":{},\"piece\":", tokens[i]);
    const std::string& p = (*pieces)[i];
    if (sanitize_utf8(p) == p) {
      append_json_string(out, p);
    } else {
      append_bytes(out, p);
    }
    out += '}';
  }
  out += "]}";
  return out;
}

std::string detokenize_json(std::string_view content) {
  std::string out = "{\"content\":";
  append_json_string(out, sanitize_utf8(content));
  out += '}';
  return out;
}

std::string apply_template_json(std::string_view prompt) {
  std::string out = "{\"prompt\":";
  append_json_string(out, sanitize_utf8(prompt));
  out += '}';
  return out;
}

}  // namespace troupe::api
