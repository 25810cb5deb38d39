// Integration tests of Ollama's API: the real Server on a loopback port, over the FakeBackend
// (the answers' shapes, streamed as newline-delimited JSON, errors, loads) and over
// Coordinators with generated models (embeddings, /api/show, tool calls of a real template).

#include <gtest/gtest.h>

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <sstream>

#include "engine/coordinator.hpp"
#include "support/test_models.hpp"
#include "test_server.hpp"

namespace troupe::server {
namespace {

using test::Reply;
using test::TestServer;
namespace json = boost::json;
namespace http = boost::beast::http;
namespace net = boost::asio;

// The JSON objects of a newline-delimited body.
std::vector<json::value> lines(const Reply& r) {
  std::vector<json::value> out;
  std::istringstream in(r.raw.body());
  for (std::string line; std::getline(in, line);) {
    if (!line.empty())
      out.push_back(json::parse(line));
  }
  return out;
}

void expect_ollama_error(const Reply& r, int status, std::string_view part) {
  EXPECT_EQ(r.status, status) << r.raw.body();
  const json::value v = r.body();
  ASSERT_TRUE(v.as_object().contains("error")) << r.raw.body();
  ASSERT_TRUE(v.at("error").is_string()) << r.raw.body();  // Ollama's shape: a string
  EXPECT_NE(std::string(v.at("error").as_string()).find(part), std::string::npos) << r.raw.body();
}

std::string chat(const std::string& content, const std::string& extra = {}) {
  return R"({"model":"fake","messages":[{"role":"user","content":")" + content + "\"}]" +
         (extra.empty() ? "" : "," + extra) + "}";
}

// Streamed by default: one object per token, then the last one with the counts.
TEST(OllamaServer, ChatStreamsNewlineDelimitedJson) {
  TestServer t;
  auto r = t.post("/api/chat", chat("hello there", R"("options":{"num_predict":3})"));
  ASSERT_EQ(r.status, 200) << r.raw.body();
  EXPECT_EQ(r.raw[http::field::content_type], "application/x-ndjson");
  const auto objs = lines(r);
  ASSERT_EQ(objs.size(), 4u) << r.raw.body();
  std::string text;
  for (std::size_t i = 0; i < 3; ++i) {
    EXPECT_EQ(objs[i].at("model"), "fake");
    EXPECT_EQ(objs[i].at("done"), false);
    EXPECT_EQ(objs[i].at("message").at("role"), "assistant");
    EXPECT_TRUE(objs[i].at("created_at").is_string());
    text += objs[i].at("message").at("content").as_string();
  }
  EXPECT_EQ(text, "t0 t1 t2 ");
  const auto& last = objs.back();
  EXPECT_EQ(last.at("done"), true);
  EXPECT_EQ(last.at("done_reason"), "length");
  EXPECT_EQ(last.at("message").at("content"), "");
  EXPECT_EQ(last.at("prompt_eval_count"), 2);
  EXPECT_EQ(last.at("eval_count"), 3);
  EXPECT_GT(last.at("total_duration").as_int64(), 0);
  EXPECT_GE(last.at("eval_duration").as_int64(), 0);
  // The options reached the task.
  const auto task = t.backend.tasks().back();
  EXPECT_EQ(task.stop.max_tokens, 3);
}

TEST(OllamaServer, ChatAndGenerateWithoutStreaming) {
  TestServer t;
  auto r = t.post("/api/chat", chat("hi", R"("stream":false,"options":{"num_predict":2,
      "temperature":0.3,"stop":["t1"]})"));
  ASSERT_EQ(r.status, 200) << r.raw.body();
  EXPECT_EQ(r.raw[http::field::content_type], "application/json");
  const json::value v = r.body();
  EXPECT_EQ(v.at("message").at("content"), "t0 ");
  EXPECT_EQ(v.at("done"), true);
  EXPECT_EQ(v.at("done_reason"), "stop");
  EXPECT_EQ(t.backend.tasks().back().sampling.temperature, 0.3f);

  auto g = t.post(
      "/api/generate",
      R"({"model":"fake:latest","prompt":"Why?","stream":false,"options":{"num_predict":2}})");
  ASSERT_EQ(g.status, 200) << g.raw.body();
  const json::value gv = g.body();
  EXPECT_EQ(gv.at("model"), "fake:latest");  // as asked
  EXPECT_EQ(gv.at("response"), "t0 t1 ");
  EXPECT_FALSE(gv.as_object().contains("message"));
  EXPECT_EQ(gv.at("eval_count"), 2);

  auto raw = t.post("/api/generate", R"({"model":"fake","prompt":"a b c","raw":true,
      "options":{"num_predict":1}})");
  ASSERT_EQ(raw.status, 200) << raw.raw.body();
  const auto objs = lines(raw);
  ASSERT_EQ(objs.size(), 2u);
  EXPECT_EQ(objs[0].at("response"), "t0 ");
  EXPECT_EQ(objs[1].at("done"), true);
  EXPECT_EQ(std::get<std::string>(t.backend.tasks().back().prompt), "a b c");  // untemplated
}

// Tool calls come whole (arguments as an object) before the last object; thinking apart.
TEST(OllamaServer, ToolCallsAndThinking) {
  TestServer t;
  const std::string tools =
      R"("tools":[{"type":"function","function":{"name":"get_weather","parameters":{
      "type":"object","properties":{"city":{"type":"string"}}}}}])";
  auto r = t.post("/api/chat", chat("toolcall", tools));
  ASSERT_EQ(r.status, 200) << r.raw.body();
  const auto objs = lines(r);
  std::string thinking, content;
  const json::value* calls = nullptr;
  for (const auto& o : objs) {
    const auto& m = o.at("message");
    if (m.as_object().contains("thinking"))
      thinking += m.at("thinking").as_string();
    content += m.at("content").as_string();
    if (m.as_object().contains("tool_calls"))
      calls = &m.at("tool_calls");
  }
  EXPECT_EQ(thinking, "hmm");
  EXPECT_EQ(content, "Checking.");
  ASSERT_NE(calls, nullptr) << r.raw.body();
  ASSERT_EQ(calls->as_array().size(), 1u);
  EXPECT_EQ(calls->at(0).at("function").at("name"), "get_weather");
  EXPECT_EQ(calls->at(0).at("function").at("arguments").at("city"), "Paris");
  EXPECT_EQ(objs.back().at("done_reason"), "stop");

  auto whole = t.post("/api/chat", chat("toolcall", tools + R"(,"stream":false)"));
  ASSERT_EQ(whole.status, 200) << whole.raw.body();
  const json::value v = whole.body();
  EXPECT_EQ(v.at("message").at("tool_calls").at(0).at("function").at("arguments").at("city"),
            "Paris");
  EXPECT_EQ(v.at("message").at("thinking"), "hmm");
  EXPECT_EQ(t.backend.tasks().back().chat.tools.size(), 1u);
}

TEST(OllamaServer, ErrorsInOllamasShape) {
  TestServer t;
  expect_ollama_error(t.post("/api/chat", R"({"model":"nope","messages":[{"role":"user",
      "content":"x"}]})"),
                      404, "nope");
  expect_ollama_error(t.post("/api/chat", R"({"messages":[]})"), 400, "model is required");
  expect_ollama_error(t.post("/api/chat", "not json"), 400, "JSON");
  expect_ollama_error(t.post("/api/chat", chat("x", R"("truncate":true)")), 400, "truncate");
  expect_ollama_error(t.post("/api/generate", R"({"model":"fake","prompt":"x","images":["aGk="]})"),
                      400, "images");
  expect_ollama_error(t.post("/api/chat", chat("overloaded")), 503, "");
  EXPECT_EQ(t.request(http::verb::get, "/api/chat").status, 405);
}

// A client that leaves a stream (ollama-js's abort()) cancels the generation.
TEST(OllamaServer, LeavingAStreamCancelsTheGeneration) {
  TestServer t;
  net::io_context ioc;
  auto s = test::send_raw(ioc, t.port(), chat("hold"), "/api/chat");
  std::string got;
  ASSERT_NO_FATAL_FAILURE(test::read_until_or_fail(s, R"("content":"held")", got));
  ASSERT_TRUE(t.backend.wait_running(1));
  s.close();
  ASSERT_TRUE(t.backend.wait_running(0));
  EXPECT_EQ(t.backend.cancelled(), 1);
}

// An empty conversation or prompt loads the model; keep_alive 0 asks to unload it, which a
// server of one fixed model refuses.
TEST(OllamaServer, EmptyRequestsLoadTheModel) {
  TestServer t;
  auto chat_load = t.post("/api/chat", R"({"model":"fake","messages":[]})");
  ASSERT_EQ(chat_load.status, 200) << chat_load.raw.body();
  EXPECT_EQ(chat_load.body().at("done_reason"), "load");
  EXPECT_EQ(chat_load.body().at("message").at("content"), "");
  auto gen_load = t.post("/api/generate", R"({"model":"fake"})");
  ASSERT_EQ(gen_load.status, 200) << gen_load.raw.body();
  EXPECT_EQ(gen_load.body().at("done_reason"), "load");
  EXPECT_EQ(gen_load.body().at("response"), "");
  EXPECT_TRUE(t.backend.tasks().empty());  // nothing was generated
  expect_ollama_error(t.post("/api/generate", R"({"model":"fake","keep_alive":0})"), 400,
                      "fixed model");
}

TEST(OllamaServer, TagsPsAndVersion) {
  TestServer t;
  auto tags = t.request(http::verb::get, "/api/tags");
  ASSERT_EQ(tags.status, 200) << tags.raw.body();
  const json::value v = tags.body();
  ASSERT_EQ(v.at("models").as_array().size(), 1u);
  EXPECT_EQ(v.at("models").at(0).at("name"), "fake");
  EXPECT_EQ(v.at("models").at(0).at("details").at("format"), "gguf");
  auto ps = t.request(http::verb::get, "/api/ps");
  ASSERT_EQ(ps.status, 200);
  EXPECT_EQ(ps.body().at("models").at(0).at("name"), "fake");
  auto version = t.request(http::verb::get, "/api/version");
  ASSERT_EQ(version.status, 200);
  EXPECT_TRUE(version.body().at("version").is_string());
  ServerConfig keyed;
  keyed.api_key = "k";
  TestServer locked(keyed);
  expect_ollama_error(locked.request(http::verb::get, "/api/tags"), 401, "");
  EXPECT_EQ(
      locked.request(http::verb::get, "/api/tags", "", {{"Authorization", "Bearer k"}}).status,
      200);
}

// Over a real model: /api/show's details and capabilities, and a templated answer.
TEST(OllamaServer, ShowDescribesTheModel) {
  auto backend = test::tiny_engine(2, 1024);
  ASSERT_NE(backend, nullptr);
  TestServer t(ServerConfig{}, std::move(backend));
  auto show = t.post("/api/show", R"({"model":"tiny:latest"})");
  ASSERT_EQ(show.status, 200) << show.raw.body();
  const json::value v = show.body();
  EXPECT_EQ(v.at("details").at("family"), "llama");
  EXPECT_EQ(v.at("details").at("format"), "gguf");
  EXPECT_FALSE(v.at("details").at("parameter_size").as_string().empty());
  EXPECT_FALSE(v.at("details").at("quantization_level").as_string().empty());
  EXPECT_GT(v.at("model_info").at("general.parameter_count").as_int64(), 0);
  EXPECT_EQ(v.at("model_info").at("llama.context_length"), 512);
  EXPECT_EQ(v.at("capabilities").at(0), "completion");
  EXPECT_FALSE(v.at("template").as_string().empty());
  auto tags = t.request(http::verb::get, "/api/tags");
  const json::value listed = tags.body();
  EXPECT_GT(listed.at("models").at(0).at("size").as_int64(), 0);
  expect_ollama_error(t.post("/api/show", R"({"model":"other"})"), 404, "other");
  auto g = t.post("/api/generate", R"({"model":"tiny","prompt":"Once upon a time",
      "stream":false,"options":{"num_predict":4,"temperature":0}})");
  ASSERT_EQ(g.status, 200) << g.raw.body();
  EXPECT_EQ(g.body().at("eval_count"), 4);
  EXPECT_EQ(g.body().at("done_reason"), "length");
}

}  // namespace
}  // namespace troupe::server
