// Ollama's API over the same backend as every other endpoint: /api/chat and /api/generate are
// generation jobs answered by generation.cpp's OllamaWriter (newline-delimited JSON when
// streamed, Ollama's default); /api/embed and /api/embeddings are embedding tasks; /api/tags,
// /api/ps and /api/show describe the served models; /api/version troupe's version.
//
// A name Ollama's clients write with its default tag ("tiny:latest") finds the served "tiny".
// An empty conversation or prompt loads the model (keep_alive 0: unloads it), as in Ollama.

#include "api/ollama.hpp"

#include <fmt/format.h>

#include <boost/asio/use_awaitable.hpp>

#include "actor/overloaded.hpp"
#include "engine/pooling.hpp"
#include "server/connection.hpp"

namespace troupe::server::detail {
namespace {

net::awaitable<bool> answer_json(Connection& c, std::string body) {
  co_return co_await write_response(c, make_response(c, http::status::ok, std::move(body)));
}

// The served model an Ollama name refers to: itself, or the name without Ollama's default tag.
std::string served_name(const std::string& name, const std::vector<engine::ModelInfo>& models) {
  constexpr std::string_view latest = ":latest";
  if (find_model(name, models) || !name.ends_with(latest))
    return name;
  std::string base = name.substr(0, name.size() - latest.size());
  return find_model(base, models) ? base : name;
}

api::OllamaModel ollama_model(const engine::ModelInfo& m) {
  api::OllamaModel o;
  o.name = m.id;
  o.modified = m.details.modified != 0 ? m.details.modified : m.created;
  o.size = m.details.size_bytes;
  o.family = m.details.architecture;
  o.parameter_size = m.details.parameters > 0 ? engine::parameter_size(m.details.parameters) : "";
  o.quantization = m.details.quantization;
  return o;
}

bool is_loaded(const engine::ModelInfo& m) {
  return m.state.empty() || m.state == "loaded" || m.state == "unloading";
}

// Loads the model (a fixed one is loaded already) or, with `unload`, unloads it.
net::awaitable<Result<engine::ModelInfo>> load_or_unload(Connection& c, const std::string& model,
                                                         bool unload) {
  auto info = find_model(model, c.ctx.backend.models());
  if (!info)
    co_return info.error();
  if (unload)
    co_return co_await c.ctx.backend.unload_model(info->id);
  if (is_loaded(*info))
    co_return info;
  co_return co_await c.ctx.backend.load_model(info->id);
}

// An empty conversation or prompt: Ollama's way to load (or, keep_alive 0, unload) a model.
net::awaitable<bool> answer_load(Connection& c, const api::OllamaGenerationRequest& r, bool chat) {
  const auto& keep = r.params().keep_alive;
  const bool unload = keep && keep->count() == 0;
  auto done = co_await load_or_unload(c, r.params().model, unload);
  if (!done)
    co_return co_await answer_error(c, done.error());
  const std::string now = api::ollama_time(std::chrono::system_clock::now());
  api::OllamaAnswer a;
  a.chat = chat;
  a.model = r.model;
  a.created_at = now;
  a.done = true;
  a.done_reason = unload ? "unload" : "load";
  co_return co_await answer_json(c, api::ollama_answer_json(a));
}

net::awaitable<bool> answer_generation_request(Connection& c, const Request& req) {
  const bool chat = c.endpoint == Endpoint::ollama_chat;
  auto parsed = chat ? api::parse_ollama_chat_request(req.body())
                     : api::parse_ollama_generate_request(req.body());
  if (!parsed)
    co_return co_await answer_error(c, parsed.error());
  const auto models = c.ctx.backend.models();
  parsed->params().model = served_name(parsed->model, models);
  c.access.model = parsed->model;
  if (parsed->load_only)
    co_return co_await answer_load(c, *parsed, chat);
  Result<GenerationJob> job = std::visit(
      actor::Overloaded{
          [&](api::ChatRequest& r) { return make_chat_job(std::move(r), models); },
          [&](api::CompletionRequest& r) { return make_completion_job(std::move(r), models); }},
      parsed->request);
  if (job) {
    job->dialect = Dialect::ollama;
    job->ollama_generate = !chat;
    job->model = parsed->model;  // Ollama's answers name the model as it was asked for
  }
  co_return co_await answer_generation(c, std::move(job));
}

// /api/embed: L2-normalised vectors (cut to `dimensions` and normalised again); the legacy
// /api/embeddings: one raw vector.
net::awaitable<bool> answer_embed(Connection& c, const Request& req) {
  const bool legacy = c.endpoint == Endpoint::ollama_embeddings;
  const auto begun = Clock::now();
  auto parsed = legacy ? api::parse_ollama_embeddings_request(req.body())
                       : api::parse_ollama_embed_request(req.body());
  if (!parsed)
    co_return co_await answer_error(c, parsed.error());
  const std::string model = served_name(parsed->model, c.ctx.backend.models());
  c.access.model = parsed->model;
  if (parsed->inputs.empty()) {  // Ollama loads the model and answers no vector
    auto loaded = co_await load_or_unload(c, model, false);
    if (!loaded)
      co_return co_await answer_error(c, loaded.error());
    // Named locals, not temporaries inside co_await: GCC 12 destroys those twice.
    std::string body = legacy ? api::ollama_embedding_json(std::span<const float>())
                              : api::ollama_embed_json(parsed->model, {}, 0, 0);
    co_return co_await answer_json(c, std::move(body));
  }
  std::vector<engine::Task> tasks;
  tasks.reserve(parsed->inputs.size());
  for (auto& text : parsed->inputs) {
    engine::Task t;
    t.model = model;
    t.prompt = std::move(text);
    t.embedding = engine::EmbeddingParams{};
    t.embedding->norm = legacy ? engine::embd_norm_none : engine::embd_norm_euclidean;
    t.embedding->truncate = parsed->truncate;
    t.keep_alive = parsed->keep_alive;
    tasks.push_back(std::move(t));
  }
  auto got = co_await embed_tasks(c, std::move(tasks));
  if (!got)
    co_return co_await answer_error(c, got.error());
  if (parsed->dimensions) {
    const auto n = static_cast<std::size_t>(*parsed->dimensions);
    if (n > got->vectors.front().size()) {
      const Error wide{
          Errc::invalid_request,
          fmt::format("'dimensions' must be at most the model's {}", got->vectors.front().size()),
          "dimensions"};
      co_return co_await answer_error(c, wide);
    }
    for (auto& v : got->vectors) {
      v.resize(n);
      engine::normalize_embedding(v, engine::embd_norm_euclidean);
    }
  }
  c.access.prompt_tokens = got->prompt_tokens;
  c.access.completion_tokens = 0;
  c.ctx.metrics.count_embeddings(static_cast<std::int64_t>(got->vectors.size()),
                                 got->prompt_tokens);
  if (legacy)
    co_return co_await answer_json(c, api::ollama_embedding_json(got->vectors.front()));
  const auto total =
      std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now() - begun).count();
  co_return co_await answer_json(
      c, api::ollama_embed_json(parsed->model, got->vectors, total, got->prompt_tokens));
}

// /api/tags lists every served model; /api/ps the loaded ones.
net::awaitable<bool> answer_models(Connection& c) {
  const bool loaded_only = c.endpoint == Endpoint::ollama_ps;
  std::vector<api::OllamaModel> out;
  for (const auto& m : c.ctx.backend.models()) {
    if (!loaded_only || is_loaded(m))
      out.push_back(ollama_model(m));
  }
  std::string body = loaded_only ? api::ollama_ps_json(out) : api::ollama_tags_json(out);
  co_return co_await answer_json(c, std::move(body));
}

// /api/show: the model's details, its chat template and what it can do (as /props, a model
// of a set is loaded to answer).
net::awaitable<bool> answer_show(Connection& c, const Request& req) {
  auto name = api::parse_ollama_show_request(req.body());
  if (!name)
    co_return co_await answer_error(c, name.error());
  const auto models = c.ctx.backend.models();
  auto info = find_model(served_name(*name, models), models);
  if (!info)
    co_return co_await answer_error(c, info.error());
  auto props = co_await c.ctx.backend.props(info->id);
  if (!props)
    co_return co_await answer_error(c, props.error());
  api::OllamaShow s;
  s.model = ollama_model(*info);
  s.path = props->model_path;
  s.chat_template = props->chat_template;
  s.n_ctx = props->n_ctx;
  s.parameters = info->details.parameters;
  if (props->generates)
    s.capabilities.emplace_back("completion");
  if (props->embeddings)
    s.capabilities.emplace_back("embedding");
  if (props->generates && props->tools)
    s.capabilities.emplace_back("tools");
  if (props->generates && props->thinking)
    s.capabilities.emplace_back("thinking");
  if (props->generates && props->infill)
    s.capabilities.emplace_back("insert");
  co_return co_await answer_json(c, api::ollama_show_json(s));
}

}  // namespace

net::awaitable<bool> handle_ollama(Connection& c, Request& req) {
  switch (c.endpoint) {
    case Endpoint::ollama_chat:
    case Endpoint::ollama_generate:
      co_return co_await answer_generation_request(c, req);
    case Endpoint::ollama_embed:
    case Endpoint::ollama_embeddings:
      co_return co_await answer_embed(c, req);
    case Endpoint::ollama_tags:
    case Endpoint::ollama_ps:
      co_return co_await answer_models(c);
    case Endpoint::ollama_show:
      co_return co_await answer_show(c, req);
    default:
      break;
  }
  co_return co_await answer_json(c, api::ollama_version_json(TROUPE_VERSION));
}

}  // namespace troupe::server::detail
