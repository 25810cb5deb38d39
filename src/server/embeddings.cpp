// The embedding endpoints: POST /v1/embeddings (and /embeddings), llama-server's POST /embedding
// (its own answer shape, and with pooling none a vector per token) and POST /v1/rerank (and
// /rerank, /v2/rerank). Each input (each query-document pair) is one engine request: up to 64
// are submitted ahead, so the engine packs them into as few decodes as its slots and batch
// budget allow, and their vectors are collected in input order. The first refusal answers the whole
// request (the other streams are dropped, which cancels them).
//
// Not watched here, unlike generations: the client leaving or the shutdown deadline. An
// embedding request is one decode per batch of inputs, so it ends soon in any case.

#include "api/embeddings.hpp"

#include <fmt/format.h>

#include <boost/asio/use_awaitable.hpp>

#include "api/error.hpp"
#include "engine/pooling.hpp"
#include "server/connection.hpp"

namespace troupe::server::detail {
namespace {

// Requests one input may have in flight: enough to fill a decode with many slots, few enough
// that one large request does not fill the engine's queue (2048 inputs would be refused).
constexpr std::size_t in_flight = 64;

// Waits for one stream's vector.
net::awaitable<Result<engine::Finished>> await_vector(engine::TokenStream& s) {
  for (;;) {
    auto ev = co_await s.next(net::use_awaitable);
    if (!ev)
      co_return Error{Errc::internal, "an embedding stream ended without an answer"};
    if (auto* f = std::get_if<engine::Failed>(&*ev))
      co_return std::move(f->error);
    if (auto* f = std::get_if<engine::Finished>(&*ev)) {
      if (f->embedding.empty())
        co_return Error{Errc::internal, "the backend returned no vector"};
      co_return std::move(*f);
    }
  }
}

}  // namespace

// Submits the tasks (at most `in_flight` ahead of the one awaited) and collects each vector in
// order.
net::awaitable<Result<EmbeddedVectors>> embed_tasks(Connection& c,
                                                    std::vector<engine::Task> tasks) {
  std::vector<engine::TokenStream> streams(tasks.size());
  std::size_t submitted = 0;
  EmbeddedVectors out;
  out.vectors.reserve(tasks.size());
  out.rows.reserve(tasks.size());
  for (std::size_t i = 0; i < tasks.size(); ++i) {
    for (; submitted < tasks.size() && submitted < i + in_flight; ++submitted)
      streams[submitted] = co_await c.ctx.backend.generate(std::move(tasks[submitted]));
    auto f = co_await await_vector(streams[i]);
    if (!f)
      co_return f.error();
    streams[i] = engine::TokenStream{};
    out.prompt_tokens += f->usage.prompt_tokens;
    out.vectors.push_back(std::move(f->embedding));
    out.rows.push_back(f->embedding_rows);
  }
  co_return out;
}

namespace {

std::string model_name(const Connection& c, const std::string& asked) {
  if (!asked.empty())
    return asked;
  auto models = c.ctx.backend.models();
  return models.empty() ? std::string() : models.front().id;
}

}  // namespace

net::awaitable<bool> handle_embeddings(Connection& c, Request& req) {
  auto parsed = api::parse_embeddings_request(req.body());
  if (!parsed)
    co_return co_await answer_error(c, parsed.error());
  api::EmbeddingsRequest& r = *parsed;
  c.access.model = r.model;
  // llama-server's shape on /embedding, and on every path for a body with `content`.
  const bool native = c.endpoint == Endpoint::native_embeddings || r.content;
  if (native && r.encoding_format == api::EncodingFormat::base64) {
    const Error floats{Errc::invalid_request,
                       "'encoding_format' \"base64\" is OpenAI's: ask POST /v1/embeddings with "
                       "'input'",
                       "encoding_format"};
    co_return co_await answer_error(c, floats);
  }
  std::vector<engine::Task> tasks;
  tasks.reserve(r.inputs.size());
  for (auto& in : r.inputs) {
    engine::Task t;
    t.model = r.model;
    if (auto* s = std::get_if<std::string>(&in))
      t.prompt = std::move(*s);
    else
      t.prompt = std::move(std::get<std::vector<std::int32_t>>(in));
    t.embedding = engine::EmbeddingParams{};
    t.embedding->norm = r.norm;
    t.embedding->truncate = r.truncate;
    // A vector per token only on /embedding: llama-server refuses pooling none on
    // /v1/embeddings whatever the body holds.
    t.embedding->per_token = c.endpoint == Endpoint::native_embeddings;
    t.lora = r.lora;
    tasks.push_back(std::move(t));
  }
  auto got = co_await embed_tasks(c, std::move(tasks));
  if (!got)
    co_return co_await answer_error(c, got.error());
  const auto n_embd = static_cast<std::int32_t>(got->vectors.front().size()) / got->rows.front();
  if (r.dimensions && *r.dimensions != n_embd) {
    co_return co_await answer_error(
        c, Error{Errc::invalid_request,
                 fmt::format("'dimensions' must be the model's embedding size, {}", n_embd),
                 "dimensions"});
  }
  c.access.prompt_tokens = got->prompt_tokens;
  c.access.completion_tokens = 0;
  c.ctx.metrics.count_embeddings(static_cast<std::int64_t>(got->vectors.size()),
                                 got->prompt_tokens);
  if (native) {
    co_return co_await write_response(
        c, make_response(c, http::status::ok,
                         api::write_native_embeddings_response(got->vectors, got->rows)));
  }
  api::EmbeddingsAnswer a{model_name(c, r.model), std::move(got->vectors), r.encoding_format,
                          got->prompt_tokens};
  co_return co_await write_response(
      c, make_response(c, http::status::ok, api::write_embeddings_response(a)));
}

net::awaitable<bool> handle_rerank(Connection& c, Request& req) {
  auto parsed = api::parse_rerank_request(req.body());
  if (!parsed)
    co_return co_await answer_error(c, parsed.error());
  api::RerankRequest& r = *parsed;
  c.access.model = r.model;
  std::vector<engine::Task> tasks;
  tasks.reserve(r.documents.size());
  for (const auto& doc : r.documents) {
    engine::Task t;
    t.model = r.model;
    t.embedding = engine::EmbeddingParams{};
    t.embedding->norm = engine::embd_norm_none;
    t.embedding->truncate = r.truncate;
    t.embedding->rerank = std::pair{r.query, doc};
    t.lora = r.lora;
    tasks.push_back(std::move(t));
  }
  auto got = co_await embed_tasks(c, std::move(tasks));
  if (!got)
    co_return co_await answer_error(c, got.error());
  std::vector<float> scores;
  scores.reserve(got->vectors.size());
  for (const auto& v : got->vectors)
    scores.push_back(v.front());
  c.access.prompt_tokens = got->prompt_tokens;
  c.access.completion_tokens = 0;
  c.ctx.metrics.count_embeddings(static_cast<std::int64_t>(scores.size()), got->prompt_tokens);
  api::RerankAnswer a{model_name(c, r.model), std::move(scores),
                      r.return_documents ? &r.documents : nullptr, r.top_n, got->prompt_tokens};
  co_return co_await write_response(
      c, make_response(c, http::status::ok, api::write_rerank_response(a)));
}

}  // namespace troupe::server::detail
