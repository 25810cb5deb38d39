#include "cluster/cluster_protocol.hpp"

#include <bit>
#include <cstring>

namespace troupe::cluster {

using remote::WireReader;
using remote::WireWriter;

namespace {

void f32(WireWriter& w, float v) {
  w.u32(std::bit_cast<std::uint32_t>(v));
}
float f32(WireReader& r) {
  return std::bit_cast<float>(r.u32());
}

// A count read from the wire, refused when it cannot fit the bytes left (each element takes
// at least `min_bytes`), so a hostile count never allocates.
bool read_count(WireReader& r, std::size_t min_bytes, std::uint32_t& n) {
  n = r.u32();
  if (!r.ok() || static_cast<std::size_t>(n) * min_bytes > r.remaining()) {
    r.fail();
    return false;
  }
  return true;
}

void encode_tool_calls(const std::vector<chatfmt::ToolCall>& calls, WireWriter& w) {
  w.u32(static_cast<std::uint32_t>(calls.size()));
  for (const auto& c : calls) {
    w.str(c.id);
    w.str(c.name);
    w.str(c.arguments);
  }
}

bool decode_tool_calls(WireReader& r, std::vector<chatfmt::ToolCall>& calls) {
  std::uint32_t n = 0;
  if (!read_count(r, 12, n))
    return false;
  calls.resize(n);
  for (auto& c : calls) {
    c.id = r.str();
    c.name = r.str();
    c.arguments = r.str();
  }
  return r.ok();
}

void encode_messages(const std::vector<engine::ChatMessage>& ms, WireWriter& w) {
  w.u32(static_cast<std::uint32_t>(ms.size()));
  for (const auto& m : ms) {
    w.str(m.role);
    w.str(m.content);
    w.str(m.reasoning_content);
    encode_tool_calls(m.tool_calls, w);
    w.str(m.tool_call_id);
    w.str(m.name);
  }
}

bool decode_messages(WireReader& r, std::vector<engine::ChatMessage>& ms) {
  std::uint32_t n = 0;
  if (!read_count(r, 24, n))
    return false;
  ms.resize(n);
  for (auto& m : ms) {
    m.role = r.str();
    m.content = r.str();
    m.reasoning_content = r.str();
    if (!decode_tool_calls(r, m.tool_calls))
      return false;
    m.tool_call_id = r.str();
    m.name = r.str();
  }
  return r.ok();
}

// A Task's chat options: what the worker's chat template renders besides the messages.
void encode_chat_options(const chatfmt::ChatOptions& o, WireWriter& w) {
  w.u32(static_cast<std::uint32_t>(o.tools.size()));
  for (const auto& t : o.tools) {
    w.str(t.name);
    w.str(t.description);
    w.str(t.parameters);
  }
  w.u8(static_cast<std::uint8_t>(o.tool_choice));
  w.str(o.tool_choice_function);
  w.u8(o.parallel_tool_calls ? (*o.parallel_tool_calls ? 2 : 1) : 0);
  w.u32(static_cast<std::uint32_t>(o.template_kwargs.size()));
  for (const auto& [k, v] : o.template_kwargs) {
    w.str(k);
    w.str(v);
  }
  w.u8(static_cast<std::uint8_t>(o.reasoning_format));
  w.u8(o.reasoning_effort ? 1 : 0);
  w.str(o.reasoning_effort.value_or(""));
  w.u8(o.add_generation_prompt ? 1 : 0);
  w.u8(o.stream ? 1 : 0);
  w.str(o.json_schema);
}

bool decode_chat_options(WireReader& r, chatfmt::ChatOptions& o) {
  std::uint32_t n = 0;
  if (!read_count(r, 12, n))
    return false;
  o.tools.resize(n);
  for (auto& t : o.tools) {
    t.name = r.str();
    t.description = r.str();
    t.parameters = r.str();
  }
  const auto choice = r.u8();
  if (choice > static_cast<std::uint8_t>(chatfmt::ToolChoice::function))
    r.fail();
  o.tool_choice = static_cast<chatfmt::ToolChoice>(choice);
  o.tool_choice_function = r.str();
  const auto parallel = r.u8();
  if (parallel != 0)
    o.parallel_tool_calls = parallel == 2;
  if (!read_count(r, 8, n))
    return false;
  o.template_kwargs.resize(n);
  for (auto& [k, v] : o.template_kwargs) {
    k = r.str();
    v = r.str();
  }
  const auto format = r.u8();
  if (format > static_cast<std::uint8_t>(chatfmt::ReasoningFormat::deepseek_legacy))
    r.fail();
  o.reasoning_format = static_cast<chatfmt::ReasoningFormat>(format);
  const bool has_effort = r.u8() != 0;
  std::string effort = r.str();
  if (has_effort)
    o.reasoning_effort = std::move(effort);
  o.add_generation_prompt = r.u8() != 0;
  o.stream = r.u8() != 0;
  o.json_schema = r.str();
  return r.ok();
}

void encode_prompt(const engine::Prompt& p, WireWriter& w) {
  w.u8(static_cast<std::uint8_t>(p.index()));
  if (const auto* s = std::get_if<std::string>(&p))
    w.str(*s);
  else if (const auto* t = std::get_if<std::vector<engine::Token>>(&p))
    encode_tokens(*t, w);
  else
    encode_messages(std::get<std::vector<engine::ChatMessage>>(p), w);
}

bool decode_prompt(WireReader& r, engine::Prompt& p) {
  switch (r.u8()) {
    case 0:
      p = r.str();
      return r.ok();
    case 1: {
      std::vector<engine::Token> t;
      if (!decode_tokens(r, t))
        return false;
      p = std::move(t);
      return true;
    }
    case 2: {
      std::vector<engine::ChatMessage> ms;
      if (!decode_messages(r, ms))
        return false;
      p = std::move(ms);
      return true;
    }
    default:
      r.fail();
      return false;
  }
}

// An optional value: a presence byte, then the value (written either way: fixed layout).
void opt_f32(WireWriter& w, const std::optional<float>& v) {
  w.u8(v ? 1 : 0);
  f32(w, v.value_or(0.0f));
}
void opt_i32(WireWriter& w, const std::optional<std::int32_t>& v) {
  w.u8(v ? 1 : 0);
  w.u32(static_cast<std::uint32_t>(v.value_or(0)));
}
std::optional<float> opt_f32(WireReader& r) {
  const bool has = r.u8() != 0;
  const float v = f32(r);
  return has ? std::optional<float>(v) : std::nullopt;
}
std::optional<std::int32_t> opt_i32(WireReader& r) {
  const bool has = r.u8() != 0;
  const auto v = static_cast<std::int32_t>(r.u32());
  return has ? std::optional<std::int32_t>(v) : std::nullopt;
}

void encode_strings(const std::vector<std::string>& v, WireWriter& w) {
  w.u32(static_cast<std::uint32_t>(v.size()));
  for (const auto& x : v)
    w.str(x);
}

bool decode_strings(WireReader& r, std::vector<std::string>& v) {
  std::uint32_t n = 0;
  if (!read_count(r, 4, n))
    return false;
  v.resize(n);
  for (auto& x : v)
    x = r.str();
  return r.ok();
}

// llama-server's samplers beyond OpenAI's.
void encode_llama_samplers(const engine::SamplingParams& s, WireWriter& w) {
  f32(w, s.typical_p);
  f32(w, s.top_n_sigma);
  f32(w, s.dynatemp_range);
  f32(w, s.dynatemp_exponent);
  f32(w, s.dry_multiplier);
  f32(w, s.dry_base);
  w.u32(static_cast<std::uint32_t>(s.dry_allowed_length));
  w.u32(static_cast<std::uint32_t>(s.dry_penalty_last_n));
  encode_strings(s.dry_sequence_breakers, w);
  f32(w, s.xtc_probability);
  f32(w, s.xtc_threshold);
  w.u32(static_cast<std::uint32_t>(s.mirostat));
  f32(w, s.mirostat_tau);
  f32(w, s.mirostat_eta);
  w.u32(static_cast<std::uint32_t>(s.logit_bias_text.size()));
  for (const auto& [text, bias] : s.logit_bias_text) {
    w.str(text);
    f32(w, bias);
  }
}

bool decode_llama_samplers(WireReader& r, engine::SamplingParams& s) {
  s.typical_p = f32(r);
  s.top_n_sigma = f32(r);
  s.dynatemp_range = f32(r);
  s.dynatemp_exponent = f32(r);
  s.dry_multiplier = f32(r);
  s.dry_base = f32(r);
  s.dry_allowed_length = static_cast<std::int32_t>(r.u32());
  s.dry_penalty_last_n = static_cast<std::int32_t>(r.u32());
  if (!decode_strings(r, s.dry_sequence_breakers))
    return false;
  s.xtc_probability = f32(r);
  s.xtc_threshold = f32(r);
  s.mirostat = static_cast<std::int32_t>(r.u32());
  s.mirostat_tau = f32(r);
  s.mirostat_eta = f32(r);
  std::uint32_t n = 0;
  if (!read_count(r, 8, n))
    return false;
  s.logit_bias_text.resize(n);
  for (auto& [text, bias] : s.logit_bias_text) {
    text = r.str();
    bias = f32(r);
  }
  return r.ok();
}

// Unset fields travel unset: the worker's engine fills its own defaults.
void encode_sampling(const engine::SamplingParams& s, WireWriter& w) {
  opt_f32(w, s.temperature);
  opt_i32(w, s.top_k);
  opt_f32(w, s.top_p);
  opt_f32(w, s.min_p);
  opt_f32(w, s.repeat_penalty);
  w.u32(static_cast<std::uint32_t>(s.repeat_last_n));
  f32(w, s.presence_penalty);
  f32(w, s.frequency_penalty);
  w.u8(s.seed ? 1 : 0);
  w.u32(s.seed.value_or(0));
  w.u32(static_cast<std::uint32_t>(s.logit_bias.size()));
  for (const auto& [tok, bias] : s.logit_bias) {
    w.u32(static_cast<std::uint32_t>(tok));
    f32(w, bias);
  }
  encode_llama_samplers(s, w);
  w.u8(s.logprobs ? 1 : 0);
  w.u32(static_cast<std::uint32_t>(s.top_logprobs));
  w.u8(s.grammar ? 1 : 0);
  if (s.grammar) {
    w.str(s.grammar->gbnf);
    w.u8(s.grammar->lazy ? 1 : 0);
    w.u32(static_cast<std::uint32_t>(s.grammar->trigger_patterns.size()));
    for (const auto& p : s.grammar->trigger_patterns)
      w.str(p);
    encode_tokens(s.grammar->trigger_tokens, w);
    w.str(s.grammar->prefill);
  }
  w.u32(static_cast<std::uint32_t>(s.samplers.size()));
  for (auto stage : s.samplers)
    w.u8(static_cast<std::uint8_t>(stage));
}

bool decode_sampling(WireReader& r, engine::SamplingParams& s) {
  s.temperature = opt_f32(r);
  s.top_k = opt_i32(r);
  s.top_p = opt_f32(r);
  s.min_p = opt_f32(r);
  s.repeat_penalty = opt_f32(r);
  s.repeat_last_n = static_cast<std::int32_t>(r.u32());
  s.presence_penalty = f32(r);
  s.frequency_penalty = f32(r);
  const bool has_seed = r.u8() != 0;
  const std::uint32_t seed = r.u32();
  if (has_seed)
    s.seed = seed;
  std::uint32_t n = 0;
  if (!read_count(r, 8, n))
    return false;
  s.logit_bias.resize(n);
  for (auto& [tok, bias] : s.logit_bias) {
    tok = static_cast<engine::Token>(r.u32());
    bias = f32(r);
  }
  if (!decode_llama_samplers(r, s))
    return false;
  s.logprobs = r.u8() != 0;
  s.top_logprobs = static_cast<std::int32_t>(r.u32());
  if (r.u8() != 0) {
    engine::GrammarSpec g;
    g.gbnf = r.str();
    g.lazy = r.u8() != 0;
    if (!read_count(r, 4, n))
      return false;
    g.trigger_patterns.resize(n);
    for (auto& p : g.trigger_patterns)
      p = r.str();
    if (!decode_tokens(r, g.trigger_tokens))
      return false;
    g.prefill = r.str();
    s.grammar = std::move(g);
  }
  if (!read_count(r, 1, n))
    return false;
  s.samplers.clear();
  for (std::uint32_t i = 0; i < n; ++i) {
    const auto stage = r.u8();
    if (stage > static_cast<std::uint8_t>(engine::SamplerStage::infill)) {
      r.fail();
      return false;
    }
    s.samplers.push_back(static_cast<engine::SamplerStage>(stage));
  }
  return r.ok();
}

void encode_stop(const engine::StopParams& s, WireWriter& w) {
  opt_i32(w, s.max_tokens);
  w.u32(static_cast<std::uint32_t>(s.stop.size()));
  for (const auto& x : s.stop)
    w.str(x);
  w.u8(s.ignore_eos ? 1 : 0);
  w.u32(static_cast<std::uint32_t>(s.min_tokens));
  w.u32(static_cast<std::uint32_t>(s.n_indent));
  w.u32(static_cast<std::uint32_t>(s.max_predict_ms));
}

bool decode_stop(WireReader& r, engine::StopParams& s) {
  s.max_tokens = opt_i32(r);
  std::uint32_t n = 0;
  if (!read_count(r, 4, n))
    return false;
  s.stop.resize(n);
  for (auto& x : s.stop)
    x = r.str();
  s.ignore_eos = r.u8() != 0;
  s.min_tokens = static_cast<std::int32_t>(r.u32());
  s.n_indent = static_cast<std::int32_t>(r.u32());
  s.max_predict_ms = static_cast<std::int32_t>(r.u32());
  return r.ok();
}

void encode_logprob(const engine::TokenLogprob& l, WireWriter& w) {
  w.u32(static_cast<std::uint32_t>(l.token));
  w.str(l.text);
  f32(w, l.logprob);
}

bool decode_logprob(WireReader& r, engine::TokenLogprob& l) {
  l.token = static_cast<engine::Token>(r.u32());
  l.text = r.str();
  l.logprob = f32(r);
  return r.ok();
}

void encode_logprobs(const std::vector<engine::TokenLogprob>& ls, WireWriter& w) {
  w.u32(static_cast<std::uint32_t>(ls.size()));
  for (const auto& l : ls)
    encode_logprob(l, w);
}

bool decode_logprobs(WireReader& r, std::vector<engine::TokenLogprob>& ls) {
  std::uint32_t n = 0;
  if (!read_count(r, 12, n))
    return false;
  ls.resize(n);
  for (auto& l : ls) {
    if (!decode_logprob(r, l))
      return false;
  }
  return true;
}

void encode_delta(const engine::Delta& d, WireWriter& w) {
  w.str(d.text);
  w.str(d.reasoning);
  w.u32(static_cast<std::uint32_t>(d.tool_calls.size()));
  for (const auto& c : d.tool_calls) {
    w.u32(static_cast<std::uint32_t>(c.index));
    w.str(c.id);
    w.str(c.name);
    w.str(c.arguments);
  }
  encode_tokens(d.tokens, w);
  encode_logprobs(d.logprobs, w);
  w.u32(static_cast<std::uint32_t>(d.top.size()));
  for (const auto& t : d.top)
    encode_logprobs(t, w);
}

bool decode_delta(WireReader& r, engine::Delta& d) {
  d.text = r.str();
  d.reasoning = r.str();
  std::uint32_t calls = 0;
  if (!read_count(r, 16, calls))
    return false;
  d.tool_calls.resize(calls);
  for (auto& c : d.tool_calls) {
    c.index = r.u32();
    c.id = r.str();
    c.name = r.str();
    c.arguments = r.str();
  }
  if (!decode_tokens(r, d.tokens) || !decode_logprobs(r, d.logprobs))
    return false;
  std::uint32_t n = 0;
  if (!read_count(r, 4, n))
    return false;
  d.top.resize(n);
  for (auto& t : d.top) {
    if (!decode_logprobs(r, t))
      return false;
  }
  return true;
}

void encode_usage(const engine::Usage& u, WireWriter& w) {
  w.u32(static_cast<std::uint32_t>(u.prompt_tokens));
  w.u32(static_cast<std::uint32_t>(u.completion_tokens));
  w.u32(static_cast<std::uint32_t>(u.cached_tokens));
  w.u32(static_cast<std::uint32_t>(u.reasoning_tokens));
  w.u32(static_cast<std::uint32_t>(u.accepted_prediction_tokens));
  w.u32(static_cast<std::uint32_t>(u.rejected_prediction_tokens));
}

void decode_usage(WireReader& r, engine::Usage& u) {
  u.prompt_tokens = static_cast<std::int32_t>(r.u32());
  u.completion_tokens = static_cast<std::int32_t>(r.u32());
  u.cached_tokens = static_cast<std::int32_t>(r.u32());
  u.reasoning_tokens = static_cast<std::int32_t>(r.u32());
  u.accepted_prediction_tokens = static_cast<std::int32_t>(r.u32());
  u.rejected_prediction_tokens = static_cast<std::int32_t>(r.u32());
}

}  // namespace

std::string engine_name(std::string_view model) {
  return std::string(kEnginePrefix) + std::string(model);
}

void encode_tokens(const std::vector<engine::Token>& t, WireWriter& w) {
  w.u32(static_cast<std::uint32_t>(t.size()));
  for (auto tok : t)
    w.u32(static_cast<std::uint32_t>(tok));
}

bool decode_tokens(WireReader& r, std::vector<engine::Token>& t) {
  std::uint32_t n = 0;
  if (!read_count(r, 4, n))
    return false;
  t.resize(n);
  for (auto& tok : t)
    tok = static_cast<engine::Token>(r.u32());
  return r.ok();
}

void encode_error(const Error& e, WireWriter& w) {
  w.u8(static_cast<std::uint8_t>(e.code));
  w.str(e.message);
  w.str(e.param);
}

bool decode_error(WireReader& r, Error& e) {
  const auto code = r.u8();
  if (code > static_cast<std::uint8_t>(Errc::internal)) {
    r.fail();
    return false;
  }
  e.code = static_cast<Errc>(code);
  e.message = r.str();
  e.param = r.str();
  return r.ok();
}

void encode_infill(const std::optional<engine::InfillParams>& p, WireWriter& w) {
  w.u8(p ? 1 : 0);
  if (!p)
    return;
  w.str(p->prefix);
  w.str(p->suffix);
  w.u8(p->trim ? 1 : 0);
  w.u32(static_cast<std::uint32_t>(p->extra.size()));
  for (const auto& [file, text] : p->extra) {
    w.str(file);
    w.str(text);
  }
}

bool decode_infill(WireReader& r, std::optional<engine::InfillParams>& p) {
  p.reset();
  if (r.u8() == 0)
    return r.ok();
  engine::InfillParams f;
  f.prefix = r.str();
  f.suffix = r.str();
  f.trim = r.u8() != 0;
  std::uint32_t n = 0;
  if (!read_count(r, 8, n))  // two string lengths each
    return false;
  f.extra.reserve(n);
  for (std::uint32_t i = 0; i < n && r.ok(); ++i) {
    std::string file = r.str();
    f.extra.emplace_back(std::move(file), r.str());
  }
  p = std::move(f);
  return r.ok();
}

void encode_lora(const std::optional<engine::LoraRequest>& l, WireWriter& w) {
  w.u8(l ? 1 : 0);
  if (!l)
    return;
  w.u32(static_cast<std::uint32_t>(l->size()));
  for (const auto& [id, scale] : *l) {
    w.u32(static_cast<std::uint32_t>(id));
    f32(w, scale);
  }
}

bool decode_lora(WireReader& r, std::optional<engine::LoraRequest>& l) {
  l.reset();
  if (r.u8() == 0)
    return r.ok();
  std::uint32_t n = 0;
  if (!read_count(r, 8, n))
    return false;
  engine::LoraRequest out;
  out.reserve(n);
  for (std::uint32_t i = 0; i < n && r.ok(); ++i) {
    const auto id = static_cast<std::int32_t>(r.u32());
    out.emplace_back(id, f32(r));
  }
  l = std::move(out);
  return r.ok();
}

void encode_task(const engine::Task& t, WireWriter& w) {
  w.str(t.model);
  encode_prompt(t.prompt, w);
  encode_sampling(t.sampling, w);
  encode_stop(t.stop, w);
  w.str(t.request_id);
  encode_chat_options(t.chat, w);
  w.str(t.prediction);
  encode_infill(t.infill, w);
  encode_lora(t.lora, w);
  opt_i32(w, t.n_cache_reuse);
  opt_i32(w, t.reasoning_budget);
  w.u8(t.reasoning_budget_message ? 1 : 0);
  if (t.reasoning_budget_message)
    w.str(*t.reasoning_budget_message);
}

bool decode_task(WireReader& r, engine::Task& t) {
  t.model = r.str();
  if (!decode_prompt(r, t.prompt) || !decode_sampling(r, t.sampling) || !decode_stop(r, t.stop))
    return false;
  t.request_id = r.str();
  if (!decode_chat_options(r, t.chat))
    return false;
  t.prediction = r.str();
  if (!decode_infill(r, t.infill) || !decode_lora(r, t.lora))
    return false;
  t.n_cache_reuse = opt_i32(r);
  t.reasoning_budget = opt_i32(r);
  t.reasoning_budget_message.reset();
  if (r.u8() != 0)
    t.reasoning_budget_message = r.str();
  return r.ok();
}

void encode_event(const engine::StreamEvent& e, WireWriter& w) {
  w.u8(static_cast<std::uint8_t>(e.index()));
  if (const auto* s = std::get_if<engine::Started>(&e)) {
    w.u32(static_cast<std::uint32_t>(s->prompt_tokens));
    w.u32(static_cast<std::uint32_t>(s->cached_tokens));
    w.u8(s->truncated ? 1 : 0);
  } else if (const auto* d = std::get_if<engine::Delta>(&e)) {
    encode_delta(*d, w);
  } else if (const auto* f = std::get_if<engine::Finished>(&e)) {
    w.u8(static_cast<std::uint8_t>(f->reason));
    encode_usage(f->usage, w);
    w.str(f->stop_string);
  } else {
    encode_error(std::get<engine::Failed>(e).error, w);
  }
}

void encode_embedding_params(const std::optional<engine::EmbeddingParams>& p, WireWriter& w) {
  w.u8(p ? 1 : 0);
  if (!p)
    return;
  w.u32(static_cast<std::uint32_t>(p->norm));
  w.u8(p->truncate ? 1 : 0);
  w.u8(p->per_token ? 1 : 0);
  w.u8(p->rerank ? 1 : 0);
  if (p->rerank) {
    w.str(p->rerank->first);
    w.str(p->rerank->second);
  }
}

bool decode_embedding_params(WireReader& r, std::optional<engine::EmbeddingParams>& p) {
  p.reset();
  if (r.u8() == 0)
    return r.ok();
  engine::EmbeddingParams e;
  e.norm = static_cast<std::int32_t>(r.u32());
  e.truncate = r.u8() != 0;
  e.per_token = r.u8() != 0;
  if (r.u8() != 0) {
    std::string query = r.str();
    e.rerank = std::pair{std::move(query), r.str()};
  }
  p = std::move(e);
  return r.ok();
}

void encode_embedding_finished(const engine::Finished& f, WireWriter& w) {
  encode_usage(f.usage, w);
  w.u32(static_cast<std::uint32_t>(f.embedding_rows));
  w.u32(static_cast<std::uint32_t>(f.embedding.size()));
  for (float x : f.embedding) {
    std::uint32_t bits;
    std::memcpy(&bits, &x, sizeof bits);
    w.u32(bits);
  }
}

bool decode_embedding_finished(WireReader& r, engine::Finished& f) {
  f = engine::Finished{};
  decode_usage(r, f.usage);
  f.embedding_rows = static_cast<std::int32_t>(r.u32());
  std::uint32_t n = 0;
  if (!read_count(r, 4, n))
    return false;
  if (f.embedding_rows < 1 || n % static_cast<std::uint32_t>(f.embedding_rows) != 0)
    return false;
  f.embedding.resize(n);
  for (float& x : f.embedding) {
    const std::uint32_t bits = r.u32();
    std::memcpy(&x, &bits, sizeof bits);
  }
  return r.ok();
}

void encode_props(const engine::ModelProps& p, WireWriter& w) {
  w.str(p.id);
  w.u32(static_cast<std::uint32_t>(p.n_ctx));
  w.u32(static_cast<std::uint32_t>(p.total_slots));
  w.str(p.model_path);
  w.str(p.chat_template);
  w.str(p.bos_token);
  w.str(p.eos_token);
  const auto& d = p.defaults;
  f32(w, d.temperature);
  w.u32(static_cast<std::uint32_t>(d.top_k));
  f32(w, d.top_p);
  f32(w, d.min_p);
  f32(w, d.repeat_penalty);
  opt_i32(w,
          d.seed ? std::optional<std::int32_t>(static_cast<std::int32_t>(*d.seed)) : std::nullopt);
  opt_i32(w, d.n_predict);
  w.u8(p.embeddings ? 1 : 0);
  w.u8(static_cast<std::uint8_t>((p.generates ? 1 : 0) | (p.tools ? 2 : 0) | (p.thinking ? 4 : 0) |
                                 (p.infill ? 8 : 0)));
}

bool decode_props(WireReader& r, engine::ModelProps& p) {
  p = engine::ModelProps{};
  p.id = r.str();
  p.n_ctx = static_cast<std::int32_t>(r.u32());
  p.total_slots = static_cast<std::int32_t>(r.u32());
  p.model_path = r.str();
  p.chat_template = r.str();
  p.bos_token = r.str();
  p.eos_token = r.str();
  auto& d = p.defaults;
  d.temperature = f32(r);
  d.top_k = static_cast<std::int32_t>(r.u32());
  d.top_p = f32(r);
  d.min_p = f32(r);
  d.repeat_penalty = f32(r);
  if (const auto seed = opt_i32(r))
    d.seed = static_cast<std::uint32_t>(*seed);
  d.n_predict = opt_i32(r);
  p.embeddings = r.u8() != 0;
  const std::uint8_t can = r.u8();
  p.generates = (can & 1) != 0;
  p.tools = (can & 2) != 0;
  p.thinking = (can & 4) != 0;
  p.infill = (can & 8) != 0;
  return r.ok();
}

bool decode_event(WireReader& r, engine::StreamEvent& e) {
  switch (r.u8()) {
    case 0: {
      engine::Started s;
      s.prompt_tokens = static_cast<std::int32_t>(r.u32());
      s.cached_tokens = static_cast<std::int32_t>(r.u32());
      s.truncated = r.u8() != 0;
      e = s;
      return r.ok();
    }
    case 1: {
      engine::Delta d;
      if (!decode_delta(r, d))
        return false;
      e = std::move(d);
      return true;
    }
    case 2: {
      engine::Finished f;
      const auto reason = r.u8();
      if (reason > static_cast<std::uint8_t>(engine::FinishReason::tool_calls))
        r.fail();
      f.reason = static_cast<engine::FinishReason>(reason);
      decode_usage(r, f.usage);
      f.stop_string = r.str();
      e = std::move(f);
      return r.ok();
    }
    case 3: {
      engine::Failed f;
      if (!decode_error(r, f.error))
        return false;
      e = std::move(f);
      return true;
    }
    default:
      r.fail();
      return false;
  }
}

}  // namespace troupe::cluster
