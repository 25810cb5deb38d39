#include "server/router.hpp"

#include <gtest/gtest.h>

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

const std::vector<engine::ModelInfo> models = {{"m", 256, 100, "troupe", 0}};

TEST(Job, FillsTheTaskFromTheRequest) {
  auto req = api::parse_chat_request(
      R"({"messages":[{"role":"user","content":"hi"}],"temperature":0.5,"stop":["x"],"seed":3})");
  ASSERT_TRUE(req.ok());
  auto job = make_chat_job(*req, models);
  ASSERT_TRUE(job.ok());
  EXPECT_EQ(job->model, "m");
  EXPECT_EQ(job->task.stop.max_tokens, 256);  // no max_tokens: up to the context
  EXPECT_FLOAT_EQ(*job->task.sampling.temperature, 0.5f);
  EXPECT_EQ(*job->task.sampling.seed, 3u);
  EXPECT_EQ(job->task.stop.stop, std::vector<std::string>{"x"});
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
