// The server in front of a ModelSet: /v1/models with each model's status, POST /models/load
// and /models/unload, their errors, streaming to two models; and a fixed-model backend's
// refusal.

#include <gtest/gtest.h>

#include "models/model_set.hpp"
#include "models/tiny_models.hpp"
#include "server/test_server.hpp"
#include "support/test_models.hpp"

namespace troupe::models {
namespace {

using server::test::TestServer;
namespace json = boost::json;

ModelSetOptions two_models() {
  return test_models::alpha_and_beta();
}

std::string status_of(const json::value& models, const std::string& id) {
  for (const auto& m : models.at("data").as_array()) {
    if (m.at("id").as_string() == id)
      return std::string(m.at("status").at("value").as_string());
  }
  return "absent";
}

struct Fixture : ::testing::Test {
  TestServer srv{{}, make_model_set(two_models()).value()};
};

TEST_F(Fixture, ModelsListEveryModelWithItsStatus) {
  auto r = srv.request(server::test::http::verb::get, "/v1/models");
  ASSERT_EQ(r.status, 200);
  const auto body = r.body();
  EXPECT_EQ(body.at("object").as_string(), "list");
  EXPECT_EQ(body.at("data").as_array().size(), 2u);
  EXPECT_EQ(status_of(body, "alpha"), "unloaded");
  EXPECT_EQ(body.at("data").as_array()[0].at("object").as_string(), "model");
  auto load = srv.post("/models/load", R"({"model":"beta"})");
  ASSERT_EQ(load.status, 200) << load.raw.body();
  EXPECT_EQ(load.body().at("id").as_string(), "beta");
  EXPECT_EQ(load.body().at("status").at("value").as_string(), "loaded");
  EXPECT_EQ(status_of(srv.request(server::test::http::verb::get, "/v1/models").body(), "beta"),
            "loaded");
  auto unload = srv.post("/models/unload", R"({"model":"beta"})");
  ASSERT_EQ(unload.status, 200) << unload.raw.body();
  EXPECT_EQ(unload.body().at("status").at("value").as_string(), "unloaded");
}

TEST_F(Fixture, LoadAndUnloadErrorsTakeTheApiShape) {
  auto unknown = srv.post("/models/load", R"({"model":"gamma"})");
  EXPECT_EQ(unknown.status, 404);
  EXPECT_EQ(unknown.body().at("error").at("code").as_string(), "model_not_found");
  EXPECT_EQ(srv.post("/models/unload", R"({"model":"gamma"})").status, 404);
  for (const char* bad : {"{}", R"({"model":3})", R"({"model":""})"}) {
    auto r = srv.post("/models/load", bad);
    EXPECT_EQ(r.status, 400) << bad;
    EXPECT_EQ(r.body().at("error").at("param").as_string(), "model") << bad;
  }
  for (const char* bad : {"not json", "[]"})
    EXPECT_EQ(srv.post("/models/unload", bad).status, 400) << bad;
  EXPECT_EQ(srv.request(server::test::http::verb::get, "/models/load").status, 405);
}

TEST_F(Fixture, StreamsFromTwoModels) {
  for (const char* m : {"alpha", "beta", "alpha"}) {
    auto r =
        srv.post("/v1/chat/completions", std::string(R"({"model":")") + m +
                                             R"(","stream":true,"max_tokens":4,"ignore_eos":true,)"
                                             R"("messages":[{"role":"user","content":"hi"}]})");
    ASSERT_EQ(r.status, 200) << r.raw.body();
    const auto events = r.events();
    ASSERT_GE(events.size(), 3u);
    EXPECT_EQ(events.back(), "[DONE]");
    EXPECT_EQ(json::parse(events.front()).at("model").as_string(), m);
  }
  const auto metrics = srv.request(server::test::http::verb::get, "/metrics").raw.body();
  EXPECT_NE(metrics.find("troupe_model_loads_total{model=\"alpha\"} 1"), std::string::npos);
  EXPECT_NE(metrics.find("includes loading the model"), std::string::npos);
}

TEST(FixedModel, LoadAndUnloadAreRefusedWithTheReason) {
  TestServer srv;  // a FakeBackend: one fixed model
  for (const char* path : {"/models/load", "/models/unload"}) {
    auto r = srv.post(path, R"({"model":"x"})");
    EXPECT_EQ(r.status, 400) << path;
    EXPECT_NE(std::string(r.body().at("error").at("message").as_string()).find("one fixed model"),
              std::string::npos);
  }
  // A fixed model's /v1/models entry has no status.
  auto models = srv.request(server::test::http::verb::get, "/v1/models").body();
  EXPECT_EQ(models.at("data").as_array()[0].as_object().if_contains("status"), nullptr);
}

}  // namespace
}  // namespace troupe::models
