#include "server/router.hpp"

#include <gtest/gtest.h>

#include <limits>

#include "server/job.hpp"

namespace troupe::server {
namespace {

TEST(Router, ResolvesRoutesWithAndWithoutPrefix) {
  EXPECT_EQ(resolve(Method::post, "/v1/chat/completions").endpoint, Endpoint::chat_completions);
  EXPECT_EQ(resolve(Method::post, "/chat/completions").endpoint, Endpoint::chat_completions);
  EXPECT_EQ(resolve(Method::get, "/v1/models?x=1").endpoint, Endpoint::models);
  EXPECT_EQ(resolve(Method::get, "/health/").endpoint, Endpoint::health);
  EXPECT_EQ(resolve(Method::get, "/nope").endpoint, Endpoint::unknown);
  auto wrong = resolve(Method::get, "/v1/completions");
  EXPECT_EQ(wrong.endpoint, Endpoint::completions);
  EXPECT_FALSE(wrong.method_allowed);
  EXPECT_EQ(wrong.allowed, Method::post);
  EXPECT_TRUE(resolve(Method::options, "/v1/completions").method_allowed);
  EXPECT_EQ(resolve(Method::post, "/infill").endpoint, Endpoint::infill);
  EXPECT_FALSE(resolve(Method::get, "/infill").method_allowed);
  EXPECT_EQ(endpoint_name(Endpoint::infill), "infill");
  EXPECT_EQ(resolve(Method::post, "/completion").endpoint, Endpoint::native_completion);
  EXPECT_EQ(endpoint_name(Endpoint::native_completion), "completion");
  EXPECT_EQ(resolve(Method::post, "/completions").endpoint, Endpoint::completions);  // OpenAI's
  for (const char* path : {"/rerank", "/v1/rerank", "/v2/rerank", "/reranking", "/v1/reranking"})
    EXPECT_EQ(resolve(Method::post, path).endpoint, Endpoint::rerank) << path;
  EXPECT_EQ(resolve(Method::get, "/props?model=x").endpoint, Endpoint::props);
  EXPECT_FALSE(resolve(Method::post, "/props").method_allowed);
  // One path, two endpoints: the method picks.
  EXPECT_EQ(resolve(Method::get, "/lora-adapters").endpoint, Endpoint::lora_adapters);
  EXPECT_EQ(resolve(Method::post, "/lora-adapters?model=m").endpoint, Endpoint::lora_adapters_set);
  EXPECT_TRUE(resolve(Method::post, "/lora-adapters").method_allowed);
  EXPECT_TRUE(resolve(Method::options, "/lora-adapters").method_allowed);
  const auto put = resolve(Method::del, "/lora-adapters");
  EXPECT_FALSE(put.method_allowed);
  EXPECT_EQ(put.allowed, Method::get);
  EXPECT_EQ(endpoint_name(Endpoint::lora_adapters_set), "lora_adapters_set");
}

TEST(Router, ReadsAQueryParameter) {
  EXPECT_EQ(query_param("/props?model=tiny", "model"), "tiny");
  EXPECT_EQ(query_param("/props?a=1&model=a%2Fb+c&model=x", "model"), "a/b c");
  EXPECT_EQ(query_param("/props?models=x", "model"), "");
  EXPECT_EQ(query_param("/props", "model"), "");
  EXPECT_EQ(query_param("/props?model=%zz%4", "model"), "%zz%4");  // not an escape: as it is
  EXPECT_EQ(query_param("/props?model", "model"), "");
}

TEST(Router, TheChatPageTakesGetAndHeadWithoutAKey) {
  for (const auto* path : {"/", "/?c=1", "/webui/app.js", "/webui/x/y.css"}) {
    const auto r = resolve(Method::get, path);
    EXPECT_EQ(r.endpoint, Endpoint::webui) << path;
    EXPECT_TRUE(r.method_allowed) << path;
    EXPECT_TRUE(resolve(Method::head, path).method_allowed) << path;
    EXPECT_FALSE(resolve(Method::post, path).method_allowed) << path;
  }
  EXPECT_EQ(resolve(Method::get, "/webui").endpoint, Endpoint::unknown);
  EXPECT_EQ(resolve(Method::get, "/webuix/a.js").endpoint, Endpoint::unknown);
  EXPECT_FALSE(resolve(Method::head, "/v1/models").method_allowed);
  EXPECT_FALSE(needs_auth(Endpoint::webui));
  EXPECT_EQ(endpoint_name(Endpoint::webui), "webui");
  EXPECT_EQ(method_name(Method::head), "HEAD");
}

TEST(Router, ChecksBearerKeys) {
  EXPECT_TRUE(authorized("Bearer sk-1", "sk-1"));
  EXPECT_TRUE(authorized("bearer sk-1", "sk-1"));
  EXPECT_FALSE(authorized("Bearer sk-2", "sk-1"));
  EXPECT_FALSE(authorized("sk-1", "sk-1"));
  EXPECT_FALSE(authorized("", "sk-1"));
  EXPECT_FALSE(needs_auth(Endpoint::health));
  EXPECT_TRUE(needs_auth(Endpoint::chat_completions));
}

TEST(Router, AnthropicAndResponsesRoutes) {
  EXPECT_EQ(resolve(Method::post, "/v1/messages").endpoint, Endpoint::messages);
  EXPECT_EQ(resolve(Method::post, "/v1/messages/count_tokens").endpoint, Endpoint::count_tokens);
  EXPECT_TRUE(is_anthropic(Endpoint::messages));
  EXPECT_TRUE(is_anthropic(Endpoint::count_tokens));
  EXPECT_FALSE(is_anthropic(Endpoint::responses));
  EXPECT_EQ(resolve(Method::post, "/v1/responses").endpoint, Endpoint::responses);
  const auto item = resolve(Method::get, "/v1/responses/resp_1");
  EXPECT_EQ(item.endpoint, Endpoint::response_item);
  EXPECT_TRUE(item.method_allowed);
  EXPECT_TRUE(resolve(Method::del, "/v1/responses/resp_1").method_allowed);
  EXPECT_FALSE(resolve(Method::post, "/v1/responses/resp_1").method_allowed);
  EXPECT_EQ(response_id("/v1/responses/resp_1?x=1"), "resp_1");
  EXPECT_EQ(response_id("/v1/responses/a/b"), "");
  // Not a stored response's id: the token count of a Responses request.
  for (const char* path : {"/v1/responses/input_tokens", "/responses/input_tokens/"}) {
    const auto count = resolve(Method::post, path);
    EXPECT_EQ(count.endpoint, Endpoint::response_input_tokens) << path;
    EXPECT_TRUE(count.method_allowed) << path;
    EXPECT_FALSE(resolve(Method::get, path).method_allowed) << path;
  }
  EXPECT_TRUE(needs_auth(Endpoint::response_input_tokens));
  for (const char* path : {"/v1/chat/completions/input_tokens", "/chat/completions/input_tokens"})
    EXPECT_EQ(resolve(Method::post, path).endpoint, Endpoint::chat_input_tokens) << path;
  EXPECT_TRUE(needs_auth(Endpoint::chat_input_tokens));
  EXPECT_EQ(resolve(Method::get, "/v1/responses/a/b").endpoint, Endpoint::unknown);
  EXPECT_TRUE(needs_auth(Endpoint::response_item));
}

TEST(Router, ChecksXApiKeys) {
  EXPECT_TRUE(authorized_api_key("sk-1", "sk-1"));
  EXPECT_FALSE(authorized_api_key("sk-2", "sk-1"));
  EXPECT_FALSE(authorized_api_key("", "sk-1"));
  EXPECT_FALSE(authorized_api_key("Bearer sk-1", "sk-1"));
}

const std::vector<engine::ModelInfo> models = {{"m", 256, 100, "troupe", 0}};

TEST(Job, FillsTheTaskFromTheRequest) {
  auto req = api::parse_chat_request(
      R"({"messages":[{"role":"user","content":"hi"}],"temperature":0.5,"stop":["x"],"seed":3})");
  ASSERT_TRUE(req.ok());
  auto job = make_chat_job(*req, models);
  ASSERT_TRUE(job.ok());
  EXPECT_EQ(job->model, "m");
  EXPECT_EQ(job->task.stop.max_tokens, std::nullopt);  // the serving engine's default
  EXPECT_FLOAT_EQ(*job->task.sampling.temperature, 0.5f);
  EXPECT_EQ(*job->task.sampling.seed, 3u);
  EXPECT_EQ(job->task.stop.stop, std::vector<std::string>{"x"});
  // Unset: the engine that serves the request fills its defaults (a gateway's worker's).
  EXPECT_FALSE(job->task.sampling.top_k || job->task.sampling.top_p || job->task.sampling.min_p ||
               job->task.sampling.repeat_penalty);
}

TEST(Job, CarriesLlamaServersSamplers) {
  auto req = api::parse_completion_request(R"({"prompt":"x","max_tokens":7,"top_k":0,
      "top_p":1,"min_p":0,"repeat_penalty":1.1,"repeat_last_n":-1,"typical_p":0.9,
      "top_n_sigma":1.5,"dynatemp_range":0.3,"dynatemp_exponent":2,"dry_multiplier":0.8,
      "dry_base":2,"dry_allowed_length":3,"dry_penalty_last_n":128,
      "dry_sequence_breakers":["\n","."],"xtc_probability":0.5,"xtc_threshold":0.2,
      "mirostat":2,"mirostat_tau":4,"mirostat_eta":0.2,
      "logit_bias":{"5":-1,"Hello":false}})");
  ASSERT_TRUE(req.ok()) << req.error().message;
  auto job = make_completion_job(*req, models);
  ASSERT_TRUE(job.ok()) << job.error().message;
  const auto& s = job->task.sampling;
  EXPECT_EQ(job->task.stop.max_tokens, 7);
  EXPECT_EQ(s.top_k, 0);
  EXPECT_EQ(s.top_p, 1.0f);
  EXPECT_EQ(s.min_p, 0.0f);
  EXPECT_FLOAT_EQ(*s.repeat_penalty, 1.1f);
  EXPECT_EQ(s.repeat_last_n, -1);
  EXPECT_FLOAT_EQ(s.typical_p, 0.9f);
  EXPECT_FLOAT_EQ(s.top_n_sigma, 1.5f);
  EXPECT_FLOAT_EQ(s.dynatemp_range, 0.3f);
  EXPECT_FLOAT_EQ(s.dynatemp_exponent, 2.0f);
  EXPECT_FLOAT_EQ(s.dry_multiplier, 0.8f);
  EXPECT_FLOAT_EQ(s.dry_base, 2.0f);
  EXPECT_EQ(s.dry_allowed_length, 3);
  EXPECT_EQ(s.dry_penalty_last_n, 128);
  EXPECT_EQ(s.dry_sequence_breakers, (std::vector<std::string>{"\n", "."}));
  EXPECT_FLOAT_EQ(s.xtc_probability, 0.5f);
  EXPECT_FLOAT_EQ(s.xtc_threshold, 0.2f);
  EXPECT_EQ(s.mirostat, 2);
  EXPECT_FLOAT_EQ(s.mirostat_tau, 4.0f);
  EXPECT_FLOAT_EQ(s.mirostat_eta, 0.2f);
  ASSERT_EQ(s.logit_bias.size(), 1u);
  EXPECT_EQ(s.logit_bias[0], (std::pair<engine::Token, float>{5, -1.0f}));
  ASSERT_EQ(s.logit_bias_text.size(), 1u);
  EXPECT_EQ(s.logit_bias_text[0].first, "Hello");
  EXPECT_EQ(s.logit_bias_text[0].second, -std::numeric_limits<float>::infinity());
  // Left out, they stay off (or at llama-server's values).
  auto plain = make_completion_job(*api::parse_completion_request(R"({"prompt":"x"})"), models);
  const engine::SamplingParams off;
  EXPECT_EQ(plain->task.sampling.typical_p, off.typical_p);
  EXPECT_EQ(plain->task.sampling.dry_multiplier, 0.0f);
  EXPECT_EQ(plain->task.sampling.dry_sequence_breakers, off.dry_sequence_breakers);
  EXPECT_EQ(plain->task.sampling.mirostat, 0);
}

// A list of prompts: answer i takes prompt i / n, and the answers to one prompt differ by seed.
TEST(Job, SeveralPromptsGiveEachAnswerItsPromptAndSeed) {
  auto req = api::parse_completion_request(R"({"prompt":["a",[1,2]],"n":3,"seed":7})");
  ASSERT_TRUE(req.ok()) << req.error().message;
  auto job = make_completion_job(*req, models);
  ASSERT_TRUE(job.ok()) << job.error().message;
  ASSERT_EQ(job->answers(), 6u);
  for (std::size_t i = 0; i < 6; ++i) {
    const auto task = job->task_for(i);
    if (i < 3)
      EXPECT_EQ(std::get<std::string>(task.prompt), "a") << i;
    else
      EXPECT_EQ(std::get<std::vector<engine::Token>>(task.prompt),
                (std::vector<engine::Token>{1, 2}))
          << i;
    EXPECT_EQ(*task.sampling.seed, 7u + i % 3) << i;
  }
  // One prompt: the job's own task, as before.
  auto one = make_completion_job(*api::parse_completion_request(R"({"prompt":"x","n":2})"), models);
  ASSERT_TRUE(one.ok());
  EXPECT_TRUE(one->prompts.empty());
  EXPECT_EQ(one->answers(), 2u);
  EXPECT_EQ(std::get<std::string>(one->task_for(1).prompt), "x");
}

TEST(Job, RejectsUnknownModelsAndForeignTokens) {
  auto chat =
      api::parse_chat_request(R"({"model":"gpt-4","messages":[{"role":"user","content":"x"}]})");
  auto job = make_chat_job(*chat, models);
  ASSERT_FALSE(job.ok());
  EXPECT_EQ(job.error().code, Errc::not_found);
  EXPECT_EQ(job.error().param, "model");
  auto text = api::parse_completion_request(R"({"prompt":[1,100]})");
  auto tj = make_completion_job(*text, models);
  ASSERT_FALSE(tj.ok());
  EXPECT_EQ(tj.error().param, "prompt");
  auto bias = api::parse_completion_request(R"({"prompt":"x","logit_bias":{"500":1}})");
  EXPECT_FALSE(make_completion_job(*bias, models).ok());
  EXPECT_EQ(make_chat_job(*chat, {}).error().code, Errc::unavailable);
}

}  // namespace
}  // namespace troupe::server
