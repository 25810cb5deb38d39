// Fuzzes what the server does with untrusted bytes before any I/O: an HTTP/1.1 request
// (Beast's parser, with the server's header and body limits), its route and method, and its
// body through the request parsers (OpenAI chat, completions, Responses, embeddings, rerank,
// Anthropic Messages, llama-server's slot actions) and the job builder. Every input must end as a
// request struct or an error value: no crash, no sanitizer report, no exception.

#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/string_body.hpp>
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "api/anthropic.hpp"
#include "api/embeddings.hpp"
#include "api/error.hpp"
#include "api/native.hpp"
#include "api/ollama.hpp"
#include "api/request.hpp"
#include "api/responses.hpp"
#include "server/job.hpp"
#include "server/router.hpp"

namespace {

namespace http = boost::beast::http;
using namespace troupe;

server::Method to_method(http::verb v) {
  if (v == http::verb::get)
    return server::Method::get;
  if (v == http::verb::post)
    return server::Method::post;
  if (v == http::verb::options)
    return server::Method::options;
  return server::Method::other;
}

const std::vector<engine::ModelInfo>& models() {
  static const std::vector<engine::ModelInfo> m = {{"tiny", 256, 512, "troupe", 0}};
  return m;
}

// A parsed chat request goes on into a job; a refusal into the error body it would send.
void chat_job_or_error(Result<api::ChatRequest> r) {
  if (r.ok())
    (void)server::make_chat_job(std::move(r).value(), models());
  else
    (void)api::to_json(api::to_http_error(r.error()));
}

void check_body(server::Endpoint e, std::string_view body) {
  switch (e) {
    case server::Endpoint::chat_completions:
      chat_job_or_error(api::parse_chat_request(body));
      break;
    case server::Endpoint::messages:
      chat_job_or_error(api::parse_messages_request(body));
      break;
    case server::Endpoint::count_tokens:
      chat_job_or_error(api::parse_count_tokens_request(body));
      break;
    case server::Endpoint::responses: {
      auto r = api::parse_responses_request(body);
      if (r.ok())
        chat_job_or_error(std::move(r).value().chat);
      break;
    }
    case server::Endpoint::embeddings:
    case server::Endpoint::native_embeddings:
      (void)api::parse_embeddings_request(body);
      break;
    case server::Endpoint::rerank:
      (void)api::parse_rerank_request(body);
      break;
    case server::Endpoint::ollama_chat:
    case server::Endpoint::ollama_generate: {
      auto r = server::Endpoint::ollama_chat == e ? api::parse_ollama_chat_request(body)
                                                  : api::parse_ollama_generate_request(body);
      if (r.ok() && std::holds_alternative<api::ChatRequest>(r->request))
        chat_job_or_error(std::get<api::ChatRequest>(std::move(r).value().request));
      break;
    }
    case server::Endpoint::ollama_embed:
      (void)api::parse_ollama_embed_request(body);
      break;
    case server::Endpoint::ollama_embeddings:
      (void)api::parse_ollama_embeddings_request(body);
      break;
    case server::Endpoint::ollama_show:
      (void)api::parse_ollama_show_request(body);
      break;
    case server::Endpoint::completions: {
      auto r = api::parse_completion_request(body);
      if (r.ok())
        (void)server::make_completion_job(std::move(r).value(), models());
      else
        (void)api::to_json(api::to_http_error(r.error()));
      break;
    }
    case server::Endpoint::infill: {
      auto r = api::parse_infill_request(body);
      if (r.ok())
        (void)server::make_infill_job(std::move(r).value(), models());
      else
        (void)api::to_json(api::to_http_error(r.error()));
      break;
    }
    case server::Endpoint::native_completion: {
      auto r = api::parse_native_completion_request(body);
      if (r.ok()) {
        auto job = server::make_native_completion_job(std::move(r).value(), models());
        for (std::size_t i = 0; job && i < job->answers(); ++i)
          (void)job->task_for(i);
      } else {
        (void)api::to_json(api::to_http_error(r.error()));
      }
      break;
    }
    case server::Endpoint::tokenize:
      (void)api::parse_tokenize_request(body);
      break;
    case server::Endpoint::detokenize:
      (void)api::parse_detokenize_request(body);
      break;
    case server::Endpoint::lora_adapters_set:
      (void)api::parse_lora_adapters_request(body);
      break;
    case server::Endpoint::slot_action:
      (void)api::parse_slot_file_request(body);
      break;
    default:
      break;
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  // The body alone, as JSON, for every parser: most of the surface is there.
  for (auto e :
       {server::Endpoint::chat_completions, server::Endpoint::completions,
        server::Endpoint::tokenize, server::Endpoint::detokenize, server::Endpoint::messages,
        server::Endpoint::count_tokens, server::Endpoint::responses, server::Endpoint::embeddings,
        server::Endpoint::rerank, server::Endpoint::infill, server::Endpoint::native_completion,
        server::Endpoint::lora_adapters_set, server::Endpoint::slot_action,
        server::Endpoint::ollama_chat, server::Endpoint::ollama_generate,
        server::Endpoint::ollama_embed, server::Endpoint::ollama_embeddings,
        server::Endpoint::ollama_show}) {
    check_body(e, input);
  }
  // The whole input as an HTTP request.
  http::request_parser<http::string_body> parser;
  parser.header_limit(16 * 1024);
  parser.body_limit(1 << 20);
  parser.eager(true);
  boost::system::error_code ec;
  parser.put(boost::asio::buffer(input.data(), input.size()), ec);
  if (ec || !parser.is_done())
    return 0;
  const auto& req = parser.get();
  const auto route = server::resolve(to_method(req.method()), req.target());
  (void)server::authorized(req[http::field::authorization], "sk-key");
  (void)server::slot_id(req.target());
  (void)server::query_param(req.target(), "action");
  if (route.method_allowed)
    check_body(route.endpoint, req.body());
  return 0;
}
