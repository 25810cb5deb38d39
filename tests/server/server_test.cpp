// Integration tests: the real Server on a loopback ephemeral port over a FakeBackend, driven
// by blocking Beast clients from the test thread.

#include "server/server.hpp"

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <filesystem>
#include <fstream>
#include <future>
#include <map>
#include <set>
#include <sstream>
#include <thread>

#include "api/request.hpp"
#include "engine/coordinator.hpp"
#include "engine/sim_backend.hpp"
#include "fake_backend.hpp"
#include "support/promtool.hpp"
#include "support/test_models.hpp"
#include "test_server.hpp"

namespace troupe::server {
namespace {

namespace net = boost::asio;
namespace http = boost::beast::http;
namespace json = boost::json;
using tcp = net::ip::tcp;

using test::read_until_or_fail;
using test::Reply;
using test::send_raw;
using test::TestServer;

std::string chat_body(const std::string& content, const std::string& extra = {}) {
  return R"({"model":"fake","messages":[{"role":"user","content":")" + content + "\"}]" +
         (extra.empty() ? "" : "," + extra) + "}";
}

void expect_error(const Reply& r, int status, const std::string& param = {}) {
  EXPECT_EQ(r.status, status) << r.raw.body();
  auto v = r.body();
  ASSERT_TRUE(v.as_object().contains("error")) << r.raw.body();
  const auto& e = v.at("error");
  EXPECT_TRUE(e.at("message").is_string());
  EXPECT_TRUE(e.at("type").is_string());
  if (!param.empty()) {
    EXPECT_EQ(e.at("param"), param.c_str()) << r.raw.body();
  }
}

TEST(Server, ListsModelsAndHealth) {
  TestServer t;
  auto models = t.request(http::verb::get, "/v1/models");
  EXPECT_EQ(models.status, 200);
  EXPECT_EQ(models.body().at("data").at(0).at("id"), "fake");
  EXPECT_EQ(t.request(http::verb::get, "/health").status, 200);
  t.backend.set_health(engine::HealthState::loading);
  auto loading = t.request(http::verb::get, "/health");
  expect_error(loading, 503);
}

TEST(Server, ChatCompletionNonStreaming) {
  TestServer t;
  auto r = t.post("/v1/chat/completions", chat_body("hello there", R"("max_tokens":3)"));
  ASSERT_EQ(r.status, 200) << r.raw.body();
  auto v = r.body();
  EXPECT_EQ(v.at("object"), "chat.completion");
  EXPECT_EQ(v.at("model"), "fake");
  EXPECT_EQ(v.at("choices").at(0).at("message").at("content"), "t0 t1 t2 ");
  EXPECT_EQ(v.at("choices").at(0).at("finish_reason"), "length");
  EXPECT_EQ(v.at("usage").at("prompt_tokens"), 2);
  EXPECT_EQ(v.at("usage").at("completion_tokens"), 3);
  EXPECT_EQ(r.raw[http::field::content_type], "application/json");
}

TEST(Server, ChatCompletionStreamingWithUsage) {
  TestServer t;
  auto r = t.post(
      "/v1/chat/completions",
      chat_body("hi", R"("max_tokens":3,"stream":true,"stream_options":{"include_usage":true})"));
  ASSERT_EQ(r.status, 200);
  EXPECT_EQ(r.raw[http::field::content_type], "text/event-stream");
  auto ev = r.events();
  ASSERT_EQ(ev.size(), 7u) << r.raw.body();  // role, 3 deltas, finish, usage, [DONE]
  EXPECT_EQ(json::parse(ev[0]).at("choices").at(0).at("delta").at("role"), "assistant");
  EXPECT_EQ(json::parse(ev[1]).at("choices").at(0).at("delta").at("content"), "t0 ");
  EXPECT_EQ(json::parse(ev[4]).at("choices").at(0).at("finish_reason"), "length");
  auto usage = json::parse(ev[5]);
  EXPECT_TRUE(usage.at("choices").as_array().empty());
  EXPECT_EQ(usage.at("usage").at("completion_tokens"), 3);
  EXPECT_EQ(ev[6], "[DONE]");
}

TEST(Server, CompletionsStreamAndNot) {
  TestServer t;
  auto r = t.post("/v1/completions", R"({"prompt":"a b c","max_tokens":2,"logprobs":1})");
  ASSERT_EQ(r.status, 200) << r.raw.body();
  auto v = r.body();
  EXPECT_EQ(v.at("object"), "text_completion");
  EXPECT_EQ(v.at("choices").at(0).at("text"), "t0 t1 ");
  EXPECT_EQ(v.at("choices").at(0).at("logprobs").at("token_logprobs").as_array().size(), 2u);
  auto s = t.post("/completions", R"({"prompt":"a","max_tokens":2,"stream":true,"stop":"t1"})");
  auto ev = s.events();
  ASSERT_EQ(ev.size(), 3u) << s.raw.body();  // 1 delta (stopped at t1), finish, [DONE]
  EXPECT_EQ(json::parse(ev[0]).at("choices").at(0).at("text"), "t0 ");
  EXPECT_EQ(json::parse(ev[1]).at("choices").at(0).at("finish_reason"), "stop");
}

// llama-server's /infill: its request fields reach the engine as a fill-in-the-middle task
// (cut to llama-server's budget), and the answer comes in llama-server's own shapes.
TEST(Server, InfillAnswersInLlamaServersShapes) {
  TestServer t;
  auto r = t.post("/infill", R"({"input_prefix":"def f():\n","input_suffix":"\n","prompt":"  ",
    "input_extra":[{"filename":"a.py","text":"x = 1"},{"text":"y"}],"n_predict":2})");
  ASSERT_EQ(r.status, 200) << r.raw.body();
  auto v = r.body();
  EXPECT_EQ(v.at("content"), "t0 t1 ");
  EXPECT_EQ(v.at("stop"), true);
  EXPECT_EQ(v.at("stop_type"), "limit");
  EXPECT_EQ(v.at("tokens_predicted"), 2);
  EXPECT_EQ(v.at("model"), "fake");
  EXPECT_EQ(v.at("truncated"), false);
  EXPECT_EQ(v.at("has_new_line"), false);
  EXPECT_EQ(v.at("timings").at("predicted_n"), 2);
  EXPECT_FALSE(v.as_object().contains("choices"));
  const auto task = t.backend.tasks().back();
  ASSERT_TRUE(task.infill);
  EXPECT_EQ(task.infill->prefix, "def f():\n");
  EXPECT_EQ(task.infill->suffix, "\n");
  EXPECT_TRUE(task.infill->trim);
  EXPECT_EQ(task.infill->extra,
            (std::vector<std::pair<std::string, std::string>>{{"a.py", "x = 1"}, {"", "y"}}));
  EXPECT_EQ(std::get<std::string>(task.prompt), "  ");

  // Streamed: a piece per delta, then the whole answer's object without its text; no [DONE].
  auto s = t.post("/infill", R"({"input_prefix":"a","input_suffix":"b","n_predict":3,
    "stream":true,"stop":["t1"]})");
  ASSERT_EQ(s.status, 200) << s.raw.body();
  auto ev = s.events();
  ASSERT_EQ(ev.size(), 2u) << s.raw.body();
  EXPECT_EQ(json::parse(ev[0]).at("content"), "t0 ");
  EXPECT_EQ(json::parse(ev[0]).at("stop"), false);
  auto last = json::parse(ev[1]);
  EXPECT_EQ(last.at("stop"), true);
  EXPECT_EQ(last.at("content"), "");
  EXPECT_EQ(last.at("stop_type"), "word");
  EXPECT_EQ(last.at("stopping_word"), "t1");

  // llama-server's response_fields (llama.vscode asks for these): only those, by path.
  auto picked = t.post("/infill", R"({"input_prefix":"a","input_suffix":"b","n_predict":2,
    "response_fields":["content","timings/predicted_n","truncated"]})");
  ASSERT_EQ(picked.status, 200) << picked.raw.body();
  const auto picked_body = picked.body();
  const auto& fields = picked_body.as_object();
  EXPECT_EQ(fields.size(), 3u) << picked.raw.body();
  EXPECT_EQ(fields.at("content"), "t0 t1 ");
  EXPECT_EQ(fields.at("timings/predicted_n"), 2);
  // An OpenAI answer has no such fields to pick.
  expect_error(t.post("/v1/completions", R"({"prompt":"a","response_fields":["content"]})"), 400,
               "response_fields");
  expect_error(t.post("/infill", R"({"input_prefix":"a"})"), 400, "input_suffix");
  expect_error(t.post("/infill", R"({"input_suffix":"a"})"), 400, "input_prefix");
  expect_error(t.post("/infill", R"({"input_prefix":1,"input_suffix":"a"})"), 400, "input_prefix");
  expect_error(t.post("/infill", R"({"input_prefix":"a","input_suffix":"b","input_extra":{}})"),
               400, "input_extra");
  expect_error(
      t.post("/infill", R"({"input_prefix":"a","input_suffix":"b","input_extra":[{"x":1}]})"), 400,
      "input_extra[0].text");
  expect_error(t.post("/infill", R"({"input_prefix":"a","input_suffix":"b","n":2})"), 400, "n");
  expect_error(t.post("/infill", R"({"input_prefix":"a","input_suffix":"b","suffix":"c"})"), 400,
               "suffix");
  expect_error(t.post("/infill", R"({"input_prefix":"a","input_suffix":"b","prompt":[1]})"), 400,
               "prompt");
  // llama-server reads `logprobs` as n_probs on its own endpoints.
  auto probs = t.post("/infill", R"({"input_prefix":"a","input_suffix":"b","n_predict":1,
    "logprobs":1})");
  ASSERT_EQ(probs.status, 200) << probs.raw.body();
  EXPECT_EQ(probs.body().at("completion_probabilities").as_array().size(), 1u);
}

// llama-server's POST /completion: its own answer object, its pieces and its fields.
TEST(Server, NativeCompletionAnswersInLlamaServersShapes) {
  TestServer t;
  auto r = t.post("/completion", R"({"prompt":"a b","n_predict":2})");
  ASSERT_EQ(r.status, 200) << r.raw.body();
  auto v = r.body();
  EXPECT_EQ(v.at("index"), 0);
  EXPECT_EQ(v.at("content"), "t0 t1 ");
  EXPECT_EQ(v.at("tokens"), json::array());
  EXPECT_EQ(v.at("stop"), true);
  EXPECT_EQ(v.at("stop_type"), "limit");
  EXPECT_EQ(v.at("tokens_evaluated"), 2);
  EXPECT_FALSE(v.as_object().contains("completion_probabilities"));
  EXPECT_FALSE(t.backend.tasks().back().infill);

  // Token ids and probabilities when asked.
  auto asked = t.post("/completion", R"({"prompt":"a","n_predict":2,"n_probs":2,
    "return_tokens":true})");
  ASSERT_EQ(asked.status, 200) << asked.raw.body();
  const auto a = asked.body();
  EXPECT_EQ(a.at("tokens"), json::array({0, 1}));
  const auto& probs = a.at("completion_probabilities").as_array();
  ASSERT_EQ(probs.size(), 2u);
  EXPECT_EQ(probs[1].at("id"), 1);
  EXPECT_EQ(probs[1].at("token"), "t1 ");
  EXPECT_DOUBLE_EQ(probs[1].at("logprob").to_number<double>(), -0.5);
  ASSERT_EQ(probs[1].at("top_logprobs").as_array().size(), 2u);
  EXPECT_EQ(probs[1].at("top_logprobs").at(0).at("id"), 500);
  EXPECT_EQ(probs[1].at("top_logprobs").at(1).at("token"), "alt1");
  EXPECT_EQ(t.backend.tasks().back().sampling.top_logprobs, 2);

  // Streamed: a piece per token with its ids (return_tokens or not, as llama-server),
  // probabilities and timings; then the whole answer's object without text, tokens or
  // probabilities; no [DONE].
  auto s = t.post("/completion", R"({"prompt":"a","n_predict":2,"stream":true,"n_probs":1,
    "timings_per_token":true})");
  ASSERT_EQ(s.status, 200) << s.raw.body();
  auto ev = s.events();
  ASSERT_EQ(ev.size(), 3u) << s.raw.body();
  for (int i = 0; i < 2; ++i) {
    auto piece = json::parse(ev[i]);
    EXPECT_EQ(piece.at("stop"), false);
    EXPECT_EQ(piece.at("content"), i == 0 ? "t0 " : "t1 ");
    EXPECT_EQ(piece.at("tokens"), json::array({i}));
    EXPECT_EQ(piece.at("completion_probabilities").as_array().size(), 1u);
    EXPECT_EQ(piece.at("timings").at("predicted_n"), i + 1);
  }
  auto last = json::parse(ev[2]);
  EXPECT_EQ(last.at("stop"), true);
  EXPECT_EQ(last.at("content"), "");
  EXPECT_EQ(last.at("tokens"), json::array());
  EXPECT_FALSE(last.as_object().contains("completion_probabilities"));

  expect_error(t.post("/completion", R"({"prompt":"a","suffix":"b"})"), 400, "suffix");
  expect_error(t.post("/completion", R"({"prompt":"a","n_probs":21})"), 400, "n_probs");
  expect_error(t.post("/completion", R"({"prompt":[1,"a"]})"), 400, "prompt");
  expect_error(t.post("/completion", R"({"prompt":"a","post_sampling_probs":true})"), 400,
               "post_sampling_probs");
  expect_error(t.post("/completion", R"({"n_predict":1})"), 400, "prompt");
}

// Several prompts in one request: llama-server's /completion answers with an array of its
// objects, each with its index; streamed, their pieces carry it.
TEST(Server, NativeCompletionOfSeveralPromptsIsAnArray) {
  TestServer t;
  auto r = t.post("/completion", R"({"prompt":["a","b c",[5,6,7]],"n_predict":1,
    "response_fields":["index","content","tokens_evaluated"]})");
  ASSERT_EQ(r.status, 200) << r.raw.body();
  const auto v = r.body();
  const auto& answers = v.as_array();
  ASSERT_EQ(answers.size(), 3u) << r.raw.body();
  for (std::size_t i = 0; i < 3; ++i) {
    EXPECT_EQ(answers[i].at("index"), i);
    EXPECT_EQ(answers[i].at("content"), "t0 ");
    EXPECT_EQ(answers[i].as_object().size(), 3u);
  }
  EXPECT_EQ(answers[0].at("tokens_evaluated"), 1);
  EXPECT_EQ(answers[1].at("tokens_evaluated"), 2);
  const auto tasks = t.backend.tasks();
  ASSERT_EQ(tasks.size(), 3u);
  EXPECT_EQ(std::get<std::string>(tasks[1].prompt), "b c");
  EXPECT_EQ(std::get<std::vector<engine::Token>>(tasks[2].prompt),
            (std::vector<engine::Token>{5, 6, 7}));

  auto s = t.post("/completion", R"({"prompt":["a","b"],"n_predict":2,"stream":true})");
  ASSERT_EQ(s.status, 200) << s.raw.body();
  std::map<std::int64_t, std::string> text;
  std::map<std::int64_t, int> finals;
  for (const auto& e : s.events()) {
    ASSERT_NE(e, "[DONE]");
    auto piece = json::parse(e);
    const auto index = piece.at("index").as_int64();
    text[index] += piece.at("content").as_string();
    finals[index] += piece.at("stop").as_bool() ? 1 : 0;
  }
  EXPECT_EQ(text, (std::map<std::int64_t, std::string>{{0, "t0 t1 "}, {1, "t0 t1 "}}));
  EXPECT_EQ(finals, (std::map<std::int64_t, int>{{0, 1}, {1, 1}}));
}

// llama-server's GET /props: what the backend knows (the fake backend: its model and context).
TEST(Server, PropsAnswerInLlamaServersShape) {
  TestServer t;
  auto r = t.request(http::verb::get, "/props");
  ASSERT_EQ(r.status, 200) << r.raw.body();
  const auto v = r.body();
  EXPECT_EQ(v.at("model_alias"), "fake");
  EXPECT_EQ(v.at("default_generation_settings").at("n_ctx"), 128);
  EXPECT_EQ(v.at("default_generation_settings").at("params").at("n_predict"), -1);
  EXPECT_EQ(v.at("modalities").at("vision"), false);
  EXPECT_TRUE(v.as_object().contains("chat_template"));
  EXPECT_EQ(v.at("endpoint_slots"), true);  // GET /slots is served
  EXPECT_EQ(t.request(http::verb::get, "/props?model=fake").status, 200);
  expect_error(t.request(http::verb::get, "/props?model=nope"), 404, "model");
  EXPECT_EQ(t.post("/props", "{}").status, 405);
}

// OpenAI's list of prompts: n answers to each, indexed prompt by prompt; the usage counts
// every prompt once.
TEST(Server, ACompletionOfSeveralPromptsAnswersEach) {
  TestServer t;
  auto r = t.post("/v1/completions", R"({"prompt":["a","b c"],"n":2,"max_tokens":1,"seed":5})");
  ASSERT_EQ(r.status, 200) << r.raw.body();
  const auto v = r.body();
  const auto& choices = v.at("choices").as_array();
  ASSERT_EQ(choices.size(), 4u) << r.raw.body();
  for (std::size_t i = 0; i < 4; ++i)
    EXPECT_EQ(choices[i].at("index"), i);
  EXPECT_EQ(v.at("usage").at("prompt_tokens"), 3);  // 1 + 2
  EXPECT_EQ(v.at("usage").at("completion_tokens"), 4);
  const auto tasks = t.backend.tasks();
  ASSERT_EQ(tasks.size(), 4u);
  std::multiset<std::pair<std::string, std::uint32_t>> got;
  for (const auto& task : tasks)
    got.emplace(std::get<std::string>(task.prompt), *task.sampling.seed);
  EXPECT_EQ(got, (std::multiset<std::pair<std::string, std::uint32_t>>{
                     {"a", 5}, {"a", 6}, {"b c", 5}, {"b c", 6}}));

  // With a suffix, each prompt is the text before its own insertion.
  auto fim = t.post("/v1/completions", R"({"prompt":["x","y"],"suffix":"z","max_tokens":1})");
  ASSERT_EQ(fim.status, 200) << fim.raw.body();
  const auto fim_tasks = t.backend.tasks();
  std::multiset<std::string> prefixes;
  for (std::size_t i = fim_tasks.size() - 2; i < fim_tasks.size(); ++i) {
    ASSERT_TRUE(fim_tasks[i].infill);
    EXPECT_EQ(fim_tasks[i].infill->suffix, "z");
    prefixes.insert(fim_tasks[i].infill->prefix);
  }
  EXPECT_EQ(prefixes, (std::multiset<std::string>{"x", "y"}));

  auto s = t.post("/v1/completions", R"({"prompt":["a","b"],"max_tokens":2,"stream":true,
    "stream_options":{"include_usage":true}})");
  ASSERT_EQ(s.status, 200) << s.raw.body();
  auto ev = s.events();
  ASSERT_FALSE(ev.empty());
  EXPECT_EQ(ev.back(), "[DONE]");
  std::map<std::int64_t, std::string> text;
  for (std::size_t i = 0; i + 1 < ev.size(); ++i) {
    auto chunk = json::parse(ev[i]);
    for (const auto& c : chunk.at("choices").as_array())
      text[c.at("index").as_int64()] += c.at("text").as_string();
    if (chunk.at("choices").as_array().empty())
      EXPECT_EQ(chunk.at("usage").at("prompt_tokens"), 2);
  }
  EXPECT_EQ(text, (std::map<std::int64_t, std::string>{{0, "t0 t1 "}, {1, "t0 t1 "}}));

  expect_error(t.post("/v1/completions", R"({"prompt":["a",[1,"b"]]})"), 400, "prompt");
  expect_error(t.post("/v1/completions", R"({"prompt":["a",[1]],"suffix":"b"})"), 400, "suffix");
  expect_error(t.post("/v1/completions", R"({"prompt":["a",[100000]]})"), 400, "prompt");
}

// OpenAI's `suffix`: the prompt is the text before the insertion, kept whole.
TEST(Server, ACompletionsSuffixFillsInTheMiddle) {
  TestServer t;
  auto r =
      t.post("/v1/completions", R"({"prompt":"def f():\n","suffix":"\nf()\n","max_tokens":2})");
  ASSERT_EQ(r.status, 200) << r.raw.body();
  EXPECT_EQ(r.body().at("object"), "text_completion");
  const auto task = t.backend.tasks().back();
  ASSERT_TRUE(task.infill);
  EXPECT_EQ(task.infill->prefix, "def f():\n");
  EXPECT_EQ(task.infill->suffix, "\nf()\n");
  EXPECT_FALSE(task.infill->trim);
  EXPECT_EQ(std::get<std::string>(task.prompt), "");
  // An empty suffix is no suffix.
  ASSERT_EQ(t.post("/v1/completions", R"({"prompt":"a","suffix":"","max_tokens":1})").status, 200);
  EXPECT_FALSE(t.backend.tasks().back().infill);
  expect_error(t.post("/v1/completions", R"({"prompt":[1,2],"suffix":"x"})"), 400, "suffix");
  expect_error(t.post("/v1/completions", R"({"prompt":"a","suffix":3})"), 400, "suffix");
}

TEST(Server, KeepsConnectionsAlive) {
  TestServer t;
  net::io_context ioc;
  tcp::socket s(ioc);
  s.connect(tcp::endpoint(net::ip::make_address("127.0.0.1"), t.port()));
  boost::beast::flat_buffer buf;
  for (int i = 0; i < 3; ++i) {
    http::request<http::string_body> req{http::verb::post, "/v1/completions", 11};
    req.body() = R"({"prompt":"x","max_tokens":1,"stream":true})";
    req.prepare_payload();
    http::write(s, req);
    http::response<http::string_body> res;
    http::read(s, buf, res);
    EXPECT_EQ(res.result_int(), 200u) << res.body();
    EXPECT_TRUE(res.keep_alive());
  }
}

TEST(Server, ErrorMatrix) {
  ServerConfig cfg;
  cfg.max_body_bytes = 4096;
  TestServer t(cfg);
  expect_error(t.post("/v1/chat/completions", "{not json"), 400);
  expect_error(t.post("/v1/chat/completions", ""), 400);
  expect_error(t.post("/v1/chat/completions", chat_body("\xff\xfe")), 400);
  expect_error(t.post("/v1/chat/completions", chat_body("x", R"("temperature":7)")), 400,
               "temperature");
  expect_error(t.post("/v1/chat/completions", chat_body("x", R"("top_p":1.5)")), 400, "top_p");
  expect_error(t.post("/v1/chat/completions", chat_body("x", R"("max_tokens":0)")), 400,
               "max_tokens");
  expect_error(t.post("/v1/chat/completions", chat_body("x", R"("n":129)")), 400, "n");
  expect_error(t.post("/v1/chat/completions", chat_body("x", R"("dry_base":0.5)")), 400,
               "dry_base");
  expect_error(t.post("/v1/completions", R"({"prompt":"x","mirostat":3})"), 400, "mirostat");
  expect_error(t.post("/v1/completions", R"({"prompt":"x","logit_bias":[["a",true]]})"), 400,
               "logit_bias");
  expect_error(t.post("/v1/chat/completions", chat_body("x", R"("stop":["a","b","c","d","e"])")),
               400, "stop");
  expect_error(t.post("/v1/chat/completions", R"({"messages":[{"role":"wizard","content":"x"}]})"),
               400, "messages[0].role");
  expect_error(t.post("/v1/nope", "{}"), 404);
  auto model = t.post("/v1/chat/completions",
                      R"({"model":"gpt-4","messages":[{"role":"user","content":"x"}]})");
  expect_error(model, 404, "model");
  EXPECT_EQ(model.body().at("error").at("code"), "model_not_found");
  auto method = t.request(http::verb::get, "/v1/chat/completions");
  expect_error(method, 405);
  EXPECT_EQ(method.raw[http::field::allow], "POST");
  expect_error(t.post("/v1/chat/completions", chat_body(std::string(5000, 'a'))), 413);
  auto busy = t.post("/v1/chat/completions", chat_body("overloaded"));
  expect_error(busy, 503);
  EXPECT_EQ(busy.raw[http::field::retry_after], "1");
  auto long_prompt = t.post("/v1/chat/completions", chat_body("too long"));
  expect_error(long_prompt, 400);
  EXPECT_NE(long_prompt.body().at("error").at("message").as_string().find("999"),
            json::string::npos);
  // Refusals of streaming requests get their status too, not a 200 stream.
  expect_error(t.post("/v1/chat/completions", chat_body("overloaded", R"("stream":true)")), 503);
}

TEST(Server, RequiresTheApiKeyWhenSet) {
  ServerConfig cfg;
  cfg.api_key = "sk-test";
  TestServer t(cfg);
  expect_error(t.post("/v1/chat/completions", chat_body("x")), 401);
  expect_error(t.post("/v1/chat/completions", chat_body("x"), {{"Authorization", "Bearer nope"}}),
               401);
  EXPECT_EQ(t.post("/v1/chat/completions", chat_body("x", R"("max_tokens":1)"),
                   {{"Authorization", "Bearer sk-test"}})
                .status,
            200);
  EXPECT_EQ(t.request(http::verb::get, "/health").status, 200);
}

TEST(Server, TokenizeAndDetokenize) {
  TestServer t;
  auto tok = t.post("/tokenize", R"({"content":"ab cde"})");
  ASSERT_EQ(tok.status, 200) << tok.raw.body();
  EXPECT_EQ(tok.body().at("tokens"), json::parse("[2,3]"));
  auto pieces = t.post("/tokenize", R"({"content":"ab","with_pieces":true})");
  EXPECT_EQ(pieces.body().at("tokens").at(0).at("piece"), "w2");
  auto detok = t.post("/detokenize", R"({"tokens":[4,5]})");
  EXPECT_EQ(detok.body().at("content"), "w4w5");
  expect_error(t.post("/tokenize", R"({"content":"x","model":"other"})"), 404);
}

// OpenAI's n: one answer with n choices, each with its index, and the usage of them all.
TEST(Server, NChoicesAnswerEachWithItsIndex) {
  TestServer t;
  auto r = t.post("/v1/chat/completions", chat_body("x", R"("n":3,"max_tokens":4,"seed":5)"));
  ASSERT_EQ(r.status, 200) << r.raw.body();
  const auto body = r.body();
  const auto& choices = body.at("choices").as_array();
  ASSERT_EQ(choices.size(), 3u) << r.raw.body();
  for (std::size_t i = 0; i < choices.size(); ++i) {
    EXPECT_EQ(choices[i].at("index").to_number<std::size_t>(), i);
    EXPECT_EQ(choices[i].at("finish_reason"), "length");
    EXPECT_FALSE(choices[i].at("message").at("content").as_string().empty());
  }
  EXPECT_EQ(body.at("usage").at("completion_tokens").to_number<int>(), 12);

  auto text = t.post("/v1/completions", R"({"prompt":"x","n":2,"max_tokens":3})");
  ASSERT_EQ(text.status, 200) << text.raw.body();
  const auto text_body = text.body();
  const auto& texts = text_body.at("choices").as_array();
  ASSERT_EQ(texts.size(), 2u);
  EXPECT_EQ(texts[1].at("index").to_number<int>(), 1);
  EXPECT_FALSE(texts[1].at("text").as_string().empty());
  EXPECT_EQ(text_body.at("usage").at("completion_tokens").to_number<int>(), 6);
}

TEST(Server, NChoicesStreamTheirChunksWithTheirIndex) {
  TestServer t;
  auto r =
      t.post("/v1/chat/completions", chat_body("x", R"("n":3,"max_tokens":4,"stream":true,)"
                                                    R"("stream_options":{"include_usage":true})"));
  ASSERT_EQ(r.status, 200) << r.raw.body();
  const auto events = r.events();
  ASSERT_FALSE(events.empty());
  EXPECT_EQ(events.back(), "[DONE]");
  std::vector<int> roles(3), contents(3), finishes(3);
  int usage = -1;
  for (const auto& e : events) {
    if (e == "[DONE]")
      continue;
    const auto v = json::parse(e);
    const auto& choices = v.at("choices").as_array();
    if (choices.empty()) {  // the usage chunk, last
      usage = v.at("usage").at("completion_tokens").to_number<int>();
      continue;
    }
    const auto i = choices[0].at("index").to_number<std::size_t>();
    ASSERT_LT(i, 3u) << e;
    const auto& delta = choices[0].at("delta").as_object();
    roles[i] += delta.contains("role") ? 1 : 0;
    contents[i] += delta.contains("content") && !delta.at("content").as_string().empty() ? 1 : 0;
    finishes[i] += choices[0].at("finish_reason").is_string() ? 1 : 0;
  }
  for (std::size_t i = 0; i < 3; ++i) {
    EXPECT_EQ(roles[i], 1) << i;
    EXPECT_EQ(contents[i], 4) << i;  // the sim engine: one piece per token
    EXPECT_EQ(finishes[i], 1) << i;
  }
  EXPECT_EQ(usage, 12);
}

// OpenAI's bound, 128: more choices than one request keeps in the engine at once, so the
// later ones start as earlier ones finish; each is answered once, in index order.
TEST(Server, NChoicesBeyondThoseInTheEngineAtOnceAreAllAnswered) {
  TestServer t;
  auto r = t.post("/v1/chat/completions", chat_body("x", R"("n":128,"max_tokens":2)"));
  ASSERT_EQ(r.status, 200) << r.raw.body();
  const auto body = r.body();
  const auto& choices = body.at("choices").as_array();
  ASSERT_EQ(choices.size(), 128u);
  for (std::size_t i = 0; i < choices.size(); ++i)
    EXPECT_EQ(choices[i].at("index").to_number<std::size_t>(), i);
  EXPECT_EQ(body.at("usage").at("completion_tokens").to_number<int>(), 256);
  EXPECT_EQ(t.backend.tasks().size(), 128u);

  auto s = t.post("/v1/completions", R"({"prompt":"x","n":40,"max_tokens":2,"stream":true})");
  ASSERT_EQ(s.status, 200) << s.raw.body();
  std::vector<int> finishes(40);
  for (const auto& e : s.events()) {
    if (e == "[DONE]")
      continue;
    const auto v = json::parse(e);
    const auto& choice = v.at("choices").at(0);
    const auto i = choice.at("index").to_number<std::size_t>();
    ASSERT_LT(i, 40u) << e;
    finishes[i] += choice.at("finish_reason").is_string() ? 1 : 0;
  }
  for (std::size_t i = 0; i < finishes.size(); ++i)
    EXPECT_EQ(finishes[i], 1) << i;
}

TEST(Server, MetricsEndpoint) {
  TestServer t;
  t.post("/v1/chat/completions", chat_body("x", R"("max_tokens":2)"));
  auto m = t.request(http::verb::get, "/metrics");
  ASSERT_EQ(m.status, 200);
  const std::string& text = m.raw.body();
  EXPECT_NE(text.find(R"(troupe_requests_total{endpoint="chat_completions",code="200"} 1)"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("troupe_time_to_first_token_seconds_count 1"), std::string::npos);
  EXPECT_NE(text.find("troupe_kv_cache_usage_ratio 0.25"), std::string::npos);
  TROUPE_EXPECT_PROMTOOL_ACCEPTS(text);
}

TEST(Server, CorsPreflightAndHeaders) {
  ServerConfig cfg;
  cfg.cors_origin = "*";
  TestServer t(cfg);
  auto pre = t.request(http::verb::options, "/v1/chat/completions");
  EXPECT_EQ(pre.status, 204);
  EXPECT_EQ(pre.raw[http::field::access_control_allow_origin], "*");
  auto r = t.request(http::verb::get, "/v1/models");
  EXPECT_EQ(r.raw[http::field::access_control_allow_origin], "*");
}

// Sends a request on a raw socket and returns the socket (the response unread).
TEST(Server, DisconnectMidStreamCancelsTheGeneration) {
  TestServer t;
  net::io_context ioc;
  auto s = send_raw(ioc, t.port(), chat_body("hold", R"("stream":true)"));
  std::string got;
  net::read_until(s, net::dynamic_buffer(got), "held");  // the first token arrived
  ASSERT_TRUE(t.backend.wait_running(1));
  s.close();
  ASSERT_TRUE(t.backend.wait_running(0));
  EXPECT_EQ(t.backend.cancelled(), 1);
}

// Choice 1 cannot start while choice 0 holds the only slot: choice 0 streams regardless (a
// response that waited for every choice to start would send nothing here), and a client that
// leaves cancels both, the one still queued included.
TEST(Server, NChoicesStreamTheFirstWhileTheOthersWait) {
  TestServer t;
  net::io_context ioc;
  auto s = send_raw(ioc, t.port(), chat_body("one slot", R"("n":2,"stream":true)"));
  std::string got;
  ASSERT_NO_FATAL_FAILURE(read_until_or_fail(s, "held", got));
  EXPECT_NE(got.find(R"("index":1,"delta":{"role":"assistant")"), std::string::npos) << got;
  ASSERT_TRUE(t.backend.wait_running(2));  // choice 0 held, choice 1 queued
  s.close();
  ASSERT_TRUE(t.backend.wait_running(0));
  EXPECT_EQ(t.backend.cancelled(), 2);
}

// While none of its choices finishes, a request has api::choices_at_once of them in the
// engine (choice 0 holds the one slot, 15 wait in the queue) and submits no more.
TEST(Server, NChoicesKeepAtMostSixteenInTheEngine) {
  TestServer t;
  net::io_context ioc;
  auto s = send_raw(ioc, t.port(), chat_body("one slot", R"("n":100,"stream":true)"));
  std::string got;  // "held" is written after the choices were submitted
  ASSERT_NO_FATAL_FAILURE(read_until_or_fail(s, "held", got));
  EXPECT_EQ(t.backend.tasks().size(), static_cast<std::size_t>(api::choices_at_once));
  s.close();
  ASSERT_TRUE(t.backend.wait_running(0));
  EXPECT_EQ(t.backend.cancelled(), api::choices_at_once);
  EXPECT_EQ(t.backend.tasks().size(), static_cast<std::size_t>(api::choices_at_once));
}

TEST(Server, DisconnectWhileWaitingForANonStreamingAnswerCancels) {
  TestServer t;
  net::io_context ioc;
  auto s = send_raw(ioc, t.port(), chat_body("hold"));
  ASSERT_TRUE(t.backend.wait_running(1));
  s.close();
  ASSERT_TRUE(t.backend.wait_running(0));
  EXPECT_EQ(t.backend.cancelled(), 1);
}

// Thousands of events queued at once go out in order, in writes larger than the socket's
// buffers, and the stream completes.
TEST(Server, EventsQueuedTogetherArriveInOrderAndComplete) {
  TestServer t;
  constexpr int n = 20000;
  auto r = t.post("/v1/chat/completions",
                  chat_body("go", "\"max_tokens\":" + std::to_string(n) +
                                      R"(,"stream":true,"stream_options":{"include_usage":true})"));
  ASSERT_EQ(r.status, 200);
  auto ev = r.events();
  ASSERT_EQ(ev.size(), static_cast<std::size_t>(n) + 4);  // role, deltas, finish, usage, [DONE]
  for (int i = 0; i < n; ++i) {
    const auto delta = json::parse(ev[static_cast<std::size_t>(i) + 1]).at("choices").at(0);
    ASSERT_EQ(delta.at("delta").at("content"), ("t" + std::to_string(i) + " ").c_str());
  }
  EXPECT_EQ(json::parse(ev[ev.size() - 2]).at("usage").at("completion_tokens"), n);
  EXPECT_EQ(ev.back(), "[DONE]");
}

// A client that leaves while far more events are queued than the socket takes still cancels.
TEST(Server, DisconnectWithManyEventsQueuedCancels) {
  TestServer t;
  net::io_context ioc;
  auto s = send_raw(ioc, t.port(), chat_body("flood", R"("max_tokens":100000,"stream":true)"));
  ASSERT_TRUE(t.backend.wait_running(1));
  s.close();  // unread data: the server sees a reset
  ASSERT_TRUE(t.backend.wait_running(0));
  EXPECT_EQ(t.backend.cancelled(), 1);
}

// A request pipelined behind a stream is answered after it, on the same connection.
TEST(Server, AnswersARequestPipelinedBehindAStream) {
  TestServer t;
  net::io_context ioc;
  tcp::socket s(ioc);
  s.connect(tcp::endpoint(net::ip::make_address("127.0.0.1"), t.port()));
  const std::string body = chat_body("go", R"("max_tokens":3,"stream":true)");
  std::string both = "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Length: " +
                     std::to_string(body.size()) + "\r\n\r\n" + body +
                     "GET /v1/models HTTP/1.1\r\nHost: x\r\n\r\n";
  net::write(s, net::buffer(both));
  boost::beast::flat_buffer buf;
  http::response<http::string_body> first, second;
  http::read(s, buf, first);
  http::read(s, buf, second);
  EXPECT_NE(first.body().find("[DONE]"), std::string::npos) << first.body();
  EXPECT_EQ(second.result_int(), 200u);
  EXPECT_NE(second.body().find("\"fake\""), std::string::npos) << second.body();
}

TEST(Server, ThirtyTwoConcurrentStreamsGetTheirOwnUsage) {
  TestServer t;
  std::vector<std::future<std::pair<int, int>>> results;
  for (int i = 0; i < 32; ++i) {
    results.push_back(std::async(std::launch::async, [&t, i] {
      auto r =
          t.post("/v1/chat/completions",
                 chat_body("go", "\"max_tokens\":" + std::to_string(i + 1) +
                                     R"(,"stream":true,"stream_options":{"include_usage":true})"));
      auto ev = r.events();
      int deltas = 0;
      for (const auto& e : ev) {
        if (e.find("\"content\":\"t") != std::string::npos)
          ++deltas;
      }
      const auto usage = json::parse(ev.at(ev.size() - 2)).at("usage").at("completion_tokens");
      return std::pair<int, int>{deltas, static_cast<int>(usage.as_int64())};
    }));
  }
  for (int i = 0; i < 32; ++i) {
    auto [deltas, usage] = results[i].get();
    EXPECT_EQ(deltas, i + 1);
    EXPECT_EQ(usage, i + 1);
  }
}

TEST(Server, HalfOpenConnectionsDoNotBlockOthers) {
  TestServer t;
  net::io_context ioc;
  std::vector<tcp::socket> stalled;
  for (int i = 0; i < 50; ++i) {
    tcp::socket s(ioc);
    s.connect(tcp::endpoint(net::ip::make_address("127.0.0.1"), t.port()));
    net::write(s, net::buffer(std::string("POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n"
                                          "Content-Length: 100\r\n\r\n{\"mess")));
    stalled.push_back(std::move(s));
  }
  auto r = t.post("/v1/chat/completions", chat_body("x", R"("max_tokens":1)"));
  EXPECT_EQ(r.status, 200);
}

// llama-server's GET /slots: every slot, a busy one with its counts; ?fail_on_no_slot=1 is a
// 503 once none is idle (what load balancers in front of llama-server poll); --no-slots: 404.
TEST(Server, SlotsAnswerInLlamaServersShape) {
  TestServer t;
  auto idle = t.request(http::verb::get, "/slots");
  ASSERT_EQ(idle.status, 200) << idle.raw.body();
  const json::value all = idle.body();
  ASSERT_EQ(all.as_array().size(), 2u);
  EXPECT_EQ(all.at(1).at("id").as_int64(), 1);
  EXPECT_EQ(all.at(0).at("n_ctx").as_int64(), 128);
  EXPECT_EQ(all.at(0).at("is_processing").as_bool(), false);
  EXPECT_EQ(all.at(0).at("speculative").as_bool(), false);
  EXPECT_FALSE(all.at(0).as_object().contains("id_task"));
  EXPECT_EQ(t.request(http::verb::get, "/slots?fail_on_no_slot=1").status, 200);

  net::io_context ioc;
  auto a = send_raw(ioc, t.port(), chat_body("hold", R"("stream":true)"));
  ASSERT_TRUE(t.backend.wait_running(1));
  auto one = t.request(http::verb::get, "/slots?model=fake");
  ASSERT_EQ(one.status, 200) << one.raw.body();
  const json::value listed = one.body();
  const auto& busy = listed.at(0);
  EXPECT_EQ(busy.at("is_processing").as_bool(), true);
  EXPECT_EQ(busy.at("id_task").as_int64(), 1);
  EXPECT_EQ(busy.at("n_prompt_tokens").as_int64(), 3);
  EXPECT_EQ(busy.at("n_prompt_tokens_processed").as_int64(), 3);
  EXPECT_EQ(busy.at("n_prompt_tokens_cache").as_int64(), 0);
  const auto& next = busy.at("next_token").at(0);
  EXPECT_EQ(next.at("has_next_token").as_bool(), true);
  EXPECT_EQ(next.at("n_remain").as_int64(), 15);
  EXPECT_EQ(next.at("n_decoded").as_int64(), 1);
  EXPECT_EQ(listed.at(1).at("is_processing").as_bool(), false);
  EXPECT_EQ(t.request(http::verb::get, "/slots?fail_on_no_slot=1").status, 200);
  auto b = send_raw(ioc, t.port(), chat_body("hold", R"("stream":true)"));
  ASSERT_TRUE(t.backend.wait_running(2));
  auto none = t.request(http::verb::get, "/slots?fail_on_no_slot=1");
  EXPECT_EQ(none.status, 503) << none.raw.body();
  EXPECT_NE(none.raw.body().find("no slot available"), std::string::npos);
  EXPECT_EQ(t.request(http::verb::get, "/slots").status, 200);
  expect_error(t.request(http::verb::get, "/slots?model=nope"), 404, "model");
  EXPECT_EQ(t.post("/slots", "{}").status, 405);
  a.close();
  b.close();
  ASSERT_TRUE(t.backend.wait_running(0));

  ServerConfig off;
  off.slots = false;
  TestServer hidden(off);
  EXPECT_EQ(hidden.request(http::verb::get, "/slots").status, 404);
}

// llama-server's POST /slots/ID?action=...: 501 without --slot-save-path (its message and
// type); with it, a bad id, action or filename is a 400 before the backend is asked; GET is a
// 405 and --no-slots hides the path.
TEST(Server, SlotActionsAreCheckedBeforeTheBackend) {
  TestServer plain;
  auto off = plain.post("/slots/0?action=save", R"({"filename":"a.bin"})");
  expect_error(off, 501);
  EXPECT_EQ(off.body().at("error").at("type"), "not_supported_error");
  EXPECT_NE(off.raw.body().find("--slot-save-path"), std::string::npos);

  ServerConfig cfg;
  cfg.slot_save_path = (std::filesystem::temp_directory_path() / "troupe-slot-route-test").string();
  TestServer t(cfg);
  expect_error(t.post("/slots/abc?action=erase", "{}"), 400, "id_slot");
  expect_error(t.post("/slots/-1?action=erase", "{}"), 400, "id_slot");
  expect_error(t.post("/slots/0?action=bogus", "{}"), 400, "action");
  expect_error(t.post("/slots/0", "{}"), 400, "action");
  for (const char* name : {"../x.bin", "a/b.bin", ".hidden", "..", "x.bin.", " x", "a\\\\b", ""}) {
    expect_error(t.post("/slots/0?action=save", fmt::format(R"({{"filename":"{}"}})", name)), 400,
                 "filename");
  }
  expect_error(t.post("/slots/0?action=restore", R"({"file":"a.bin"})"), 400, "filename");
  expect_error(t.post("/slots/0?action=restore", R"({"filename":7})"), 400, "filename");
  expect_error(t.post("/slots/0?action=restore", "not json"), 400);
  // Valid: the fake backend has no slots of its own (as a gateway).
  expect_error(t.post("/slots/0?action=erase", ""), 400);
  EXPECT_EQ(t.request(http::verb::get, "/slots/0").status, 405);
  EXPECT_EQ(t.request(http::verb::get, "/slots/0/x").status, 404);

  cfg.slots = false;
  TestServer hidden(cfg);
  EXPECT_EQ(hidden.post("/slots/0?action=erase", "").status, 404);
  std::filesystem::remove_all(cfg.slot_save_path);
}

TEST(Server, GracefulShutdownEndsHeldStreamsWithAnErrorEvent) {
  ServerConfig cfg;
  cfg.shutdown_grace = std::chrono::milliseconds(200);
  TestServer t(cfg);
  net::io_context ioc;
  auto s = send_raw(ioc, t.port(), chat_body("hold", R"("stream":true)"));
  ASSERT_TRUE(t.backend.wait_running(1));
  t.shutdown();
  std::string rest;
  boost::system::error_code ec;
  net::read(s, net::dynamic_buffer(rest), ec);  // to EOF
  EXPECT_NE(rest.find("shutting down"), std::string::npos) << rest;
  EXPECT_TRUE(t.backend.wait_running(0));
  tcp::socket late(ioc);
  late.connect(tcp::endpoint(net::ip::make_address("127.0.0.1"), t.port()), ec);
  EXPECT_TRUE(ec) << "the listener must be closed";
}

TEST(Server, GracefulShutdownAnswersHeldRequestsWith503) {
  ServerConfig cfg;
  cfg.shutdown_grace = std::chrono::milliseconds(200);
  TestServer t(cfg);
  net::io_context ioc;
  auto s = send_raw(ioc, t.port(), chat_body("hold"));
  ASSERT_TRUE(t.backend.wait_running(1));
  t.shutdown();
  boost::beast::flat_buffer buf;
  http::response<http::string_body> res;
  http::read(s, buf, res);
  EXPECT_EQ(res.result_int(), 503u);
  EXPECT_NE(res.body().find("shutting down"), std::string::npos) << res.body();
  EXPECT_TRUE(t.backend.wait_running(0));
}

TEST(Server, GracefulShutdownLetsShortRequestsFinish) {
  TestServer t;
  auto r = t.post("/v1/chat/completions", chat_body("x", R"("max_tokens":1)"));
  EXPECT_EQ(r.status, 200);
  t.shutdown();  // idle keep-alive connections close at once: returns without the grace
}

// The simulated engine (real SequenceActor policy, synthetic tokens) behind the real server.
// ------------------------------------------------------------ tools and reasoning

TEST(Server, ToolCallsAndReasoningInTheAnswer) {
  TestServer t;
  auto r = t.post("/v1/chat/completions", chat_body("toolcall"));
  ASSERT_EQ(r.status, 200) << r.raw.body();
  const auto body = r.body();
  const auto& choice = body.at("choices").at(0);
  EXPECT_EQ(choice.at("finish_reason"), "tool_calls");
  const auto& msg = choice.at("message");
  EXPECT_EQ(msg.at("content"), "Checking.");
  EXPECT_EQ(msg.at("reasoning_content"), "hmm");
  const auto& call = msg.at("tool_calls").at(0);
  EXPECT_EQ(call.at("id"), "abc123XYZ");
  EXPECT_EQ(call.at("type"), "function");
  EXPECT_EQ(call.at("function").at("name"), "get_weather");
  EXPECT_EQ(call.at("function").at("arguments"), R"({"city":"Paris"})");
}

TEST(Server, ToolCallsStreamInOpenAIsShape) {
  TestServer t;
  auto r = t.post("/v1/chat/completions", chat_body("toolcall", R"("stream":true)"));
  ASSERT_EQ(r.status, 200) << r.raw.body();
  auto ev = r.events();
  ASSERT_EQ(ev.size(), 7u) << r.raw.body();  // role, reasoning, content, call, args, finish, DONE
  const auto delta = [&](std::size_t i) {
    return json::parse(ev[i]).at("choices").at(0).at("delta");
  };
  EXPECT_EQ(delta(1).at("reasoning_content"), "hmm");
  EXPECT_EQ(delta(2).at("content"), "Checking.");
  const auto head = delta(3).at("tool_calls").at(0);
  EXPECT_EQ(head.at("index"), 0);
  EXPECT_EQ(head.at("id"), "abc123XYZ");
  EXPECT_EQ(head.at("type"), "function");
  EXPECT_EQ(head.at("function").at("name"), "get_weather");
  const auto more = delta(4).at("tool_calls").at(0);
  EXPECT_EQ(more.at("index"), 0);
  EXPECT_FALSE(more.as_object().contains("id"));
  EXPECT_EQ(more.at("function").at("arguments"), ":\"Paris\"}");
  EXPECT_EQ(json::parse(ev[5]).at("choices").at(0).at("finish_reason"), "tool_calls");
}

TEST(Server, ToolsAndChatOptionsReachTheTask) {
  TestServer t;
  auto r = t.post("/v1/chat/completions",
                  R"({"messages":[{"role":"user","content":"hi"},
                       {"role":"assistant","tool_calls":[{"id":"abc123XYZ","type":"function",
                         "function":{"name":"get_weather","arguments":"{}"}}]},
                       {"role":"tool","tool_call_id":"abc123XYZ","content":"sunny"}],
                      "tools":[{"type":"function","function":{"name":"get_weather",
                        "parameters":{"type":"object","properties":{}}}}],
                      "tool_choice":"required","reasoning_format":"none",
                      "chat_template_kwargs":{"enable_thinking":false},"max_tokens":2})");
  ASSERT_EQ(r.status, 200) << r.raw.body();
  const auto tasks = t.backend.tasks();
  ASSERT_EQ(tasks.size(), 1u);
  const auto& task = tasks[0];
  const auto& msgs = std::get<std::vector<engine::ChatMessage>>(task.prompt);
  ASSERT_EQ(msgs.size(), 3u);
  EXPECT_EQ(msgs[1].tool_calls.at(0).name, "get_weather");
  EXPECT_EQ(msgs[2].tool_call_id, "abc123XYZ");
  ASSERT_EQ(task.chat.tools.size(), 1u);
  EXPECT_EQ(task.chat.tool_choice, chatfmt::ToolChoice::required);
  EXPECT_EQ(task.chat.reasoning_format, chatfmt::ReasoningFormat::none);
  ASSERT_EQ(task.chat.template_kwargs.size(), 1u);
}

TEST(Server, InvalidToolsAre400WithTheirParam) {
  TestServer t;
  const std::string user = R"("messages":[{"role":"user","content":"hi"}])";
  const std::string fn =
      R"({"type":"function","function":{"name":"f","parameters":{"type":"object"}}})";
  expect_error(t.post("/v1/chat/completions",
                      "{" + user + R"(,"tools":[{"type":"function","function":{"name":"f",
                        "parameters":{"type":"object","properties":{"a":{"$ref":"#/nowhere"}}}}}]})"),
               400, "tools[0].function.parameters");
  expect_error(t.post("/v1/chat/completions", "{" + user + ",\"tools\":[" + fn + "," + fn + "]}"),
               400, "tools[1].function.name");
  expect_error(t.post("/v1/chat/completions",
                      "{" + user + ",\"tools\":[" + fn +
                          R"(],"tool_choice":{"type":"function","function":{"name":"g"}}})"),
               400, "tool_choice");
  expect_error(
      t.post("/v1/chat/completions", R"({"messages":[{"role":"tool","content":"sunny"}]})"), 400,
      "messages[0].tool_call_id");
  EXPECT_TRUE(t.backend.tasks().empty()) << "nothing invalid reaches the backend";
}

// A keyword the grammar cannot enforce (format: email) is refused when the call is forced
// (the grammar is all that makes the arguments valid) and accepted under auto.
TEST(Server, ToolSchemasAreCheckedStrictlyOnlyForAForcedCall) {
  TestServer t;
  const std::string user = R"("messages":[{"role":"user","content":"hi"}])";
  const std::string tools = R"("tools":[{"type":"function","function":{"name":"ok",
      "parameters":{"type":"object"}}},{"type":"function","function":{"name":"mail",
      "parameters":{"type":"object","properties":{"to":{"type":"string","format":"email"}}}}}])";
  auto forced =
      t.post("/v1/chat/completions", "{" + user + "," + tools + R"(,"tool_choice":"required"})");
  expect_error(forced, 400, "tools[1].function.parameters");
  EXPECT_NE(forced.raw.body().find("mail"), std::string::npos) << forced.raw.body();
  EXPECT_NE(forced.raw.body().find("#/properties/to"), std::string::npos) << forced.raw.body();
  expect_error(t.post("/v1/chat/completions",
                      "{" + user + "," + tools +
                          R"(,"tool_choice":{"type":"function","function":{"name":"mail"}}})"),
               400, "tools[1].function.parameters");
  EXPECT_TRUE(t.backend.tasks().empty());
  // Forcing the other tool, or letting the model choose: accepted.
  EXPECT_EQ(
      t.post("/v1/chat/completions",
             "{" + user + "," + tools +
                 R"(,"max_tokens":2,"tool_choice":{"type":"function","function":{"name":"ok"}}})")
          .status,
      200);
  EXPECT_EQ(t.post("/v1/chat/completions", "{" + user + "," + tools + R"(,"max_tokens":2})").status,
            200);
}

TEST(Server, StructuredOutputReachesTheTaskAsASchemaOrAGrammar) {
  TestServer t;
  const std::string user = R"("messages":[{"role":"user","content":"hi"}])";
  const std::string schema = R"({"type":"object","properties":{"ok":{"type":"boolean"}}})";
  // A conversation's schema goes to the chat template (which builds the grammar)...
  ASSERT_EQ(t.post("/v1/chat/completions",
                   "{" + user + R"(,"max_tokens":2,"response_format":{"type":"json_schema",
                     "json_schema":{"name":"x","schema":)" +
                       schema + "}}}")
                .status,
            200);
  // ... a text prompt's becomes the grammar at once; a GBNF grammar is taken as it is.
  ASSERT_EQ(
      t.post("/v1/completions", R"({"prompt":"x","max_tokens":2,"json_schema":)" + schema + "}")
          .status,
      200);
  ASSERT_EQ(t.post("/v1/chat/completions",
                   "{" + user + R"(,"max_tokens":2,"grammar":"root ::= \"yes\" | \"no\""})")
                .status,
            200);
  const auto tasks = t.backend.tasks();
  ASSERT_EQ(tasks.size(), 3u);
  EXPECT_EQ(tasks[0].chat.json_schema, schema);
  EXPECT_FALSE(tasks[0].sampling.grammar);
  ASSERT_TRUE(tasks[1].sampling.grammar);
  EXPECT_NE(tasks[1].sampling.grammar->gbnf.find("root ::="), std::string::npos);
  EXPECT_NE(tasks[1].sampling.grammar->gbnf.find(R"(\"ok\")"), std::string::npos);
  EXPECT_TRUE(tasks[1].sampling.grammar->prefill.empty());
  ASSERT_TRUE(tasks[2].sampling.grammar);
  EXPECT_EQ(tasks[2].sampling.grammar->gbnf, R"(root ::= "yes" | "no")");
  EXPECT_FALSE(tasks[2].sampling.grammar->lazy);
}

TEST(Server, UnusableSchemasAndConflictingConstraintsAre400WithTheirParam) {
  TestServer t;
  const std::string user = R"("messages":[{"role":"user","content":"hi"}])";
  const std::string tools =
      R"("tools":[{"type":"function","function":{"name":"f","parameters":{"type":"object"}}}])";
  expect_error(t.post("/v1/chat/completions",
                      "{" + user + R"(,"response_format":{"type":"json_schema","json_schema":
                        {"schema":{"type":"object","properties":{"e":{"type":"string",
                        "format":"email"}}}}}})"),
               400, "response_format.json_schema.schema");
  expect_error(
      t.post("/v1/completions", R"({"prompt":"x","json_schema":{"type":"number","maximum":1}})"),
      400, "json_schema");
  expect_error(t.post("/v1/chat/completions",
                      "{" + user + "," + tools + R"(,"response_format":{"type":"json_object"}})"),
               400, "response_format");
  expect_error(
      t.post("/v1/chat/completions", "{" + user + "," + tools + R"(,"grammar":"root ::= \"a\""})"),
      400, "grammar");
  expect_error(t.post("/v1/chat/completions", "{" + user + R"(,"response_format":{"type":"xml"}})"),
               400, "response_format.type");
  EXPECT_TRUE(t.backend.tasks().empty()) << "nothing refused reaches the backend";
  // With tool_choice "none" the tools are only shown: the schema constrains the answer.
  EXPECT_EQ(t.post("/v1/chat/completions", "{" + user + "," + tools +
                                               R"(,"tool_choice":"none","max_tokens":1,
                                               "response_format":{"type":"json_object"}})")
                .status,
            200);
}

// The real engine behind the real server: a random-weight model with Qwen 2.5's template.
class ServerWithChatTemplate : public ::testing::Test {
 protected:
  static std::string qwen_template() {
    std::ifstream in(std::string(TROUPE_LLAMA_TESTDATA) +
                     "/templates/Qwen-Qwen2.5-7B-Instruct.jinja");
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
  }
  void SetUp() override {
    engine::EngineOptions o;
    o.model_path = troupe::test::generated_model("tiny");
    o.model_id = "tiny";
    o.engine.n_threads = 1;
    o.engine.n_parallel = 2;
    o.engine.n_ctx = 2048;
    o.chat_template = qwen_template();
    auto backend = std::make_unique<engine::Coordinator>(std::move(o));
    ASSERT_EQ(backend->wait_loaded().state, engine::HealthState::ready)
        << backend->health().message;
    server_ = std::make_unique<TestServer>(ServerConfig{}, std::move(backend));
  }
  std::unique_ptr<TestServer> server_;
};

const char* two_turns = R"({"messages":[{"role":"user","content":"Time in Paris?"},
    {"role":"assistant","content":null,"tool_calls":[{"id":"abc123XYZ","type":"function",
      "function":{"name":"get_time","arguments":"{\"city\":\"Paris\"}"}}]},
    {"role":"tool","tool_call_id":"abc123XYZ","content":"10:30"}],
  "tools":[{"type":"function","function":{"name":"get_time","description":"the time",
    "parameters":{"type":"object","properties":{"city":{"type":"string"}},"required":["city"]}}}],
  "max_tokens":8,"temperature":0)";

TEST_F(ServerWithChatTemplate, ApplyTemplateReturnsThePrompt) {
  auto r = server_->post("/apply-template", std::string(two_turns) + "}");
  ASSERT_EQ(r.status, 200) << r.raw.body();
  const std::string prompt(r.body().at("prompt").as_string());
  EXPECT_NE(prompt.find("<tools>"), std::string::npos) << prompt;
  EXPECT_NE(prompt.find("<tool_response>\n10:30\n</tool_response>"), std::string::npos) << prompt;
  EXPECT_TRUE(prompt.ends_with("<|im_start|>assistant\n")) << prompt;
  expect_error(server_->post("/apply-template", R"({"messages":[]})"), 400, "messages");
}

TEST_F(ServerWithChatTemplate, ASecondTurnWithAToolResultGenerates) {
  auto plain = server_->post("/v1/chat/completions", std::string(two_turns) + "}");
  ASSERT_EQ(plain.status, 200) << plain.raw.body();
  const auto body = plain.body();
  const auto& msg = body.at("choices").at(0).at("message");
  if (msg.at("content").is_string()) {
    EXPECT_EQ(std::string(msg.at("content").as_string()).find("<tool_call>"), std::string::npos);
  }
  auto streamed =
      server_->post("/v1/chat/completions", std::string(two_turns) + R"(,"stream":true})");
  ASSERT_EQ(streamed.status, 200) << streamed.raw.body();
  EXPECT_EQ(streamed.events().back(), "[DONE]");
}

// The choices after the first take the prompt's cells from the first choice's slot: the
// prompt is evaluated once, whatever n is.
TEST_F(ServerWithChatTemplate, NChoicesEvaluateThePromptOnce) {
  // Long enough to take several steps (256 prompt tokens a step): a choice submitted at once
  // would find only the part evaluated so far.
  std::string content;
  for (int i = 0; i < 20; ++i)
    content += "a small red fox found a strange blue stone under the snow near the river. ";
  auto r = server_->post("/v1/chat/completions",
                         R"({"messages":[{"role":"user","content":")" + content +
                             R"("}],"n":2,"max_tokens":3,"temperature":1,"seed":3})");
  ASSERT_EQ(r.status, 200) << r.raw.body();
  const auto body = r.body();
  ASSERT_EQ(body.at("choices").as_array().size(), 2u);
  const int prompt = body.at("usage").at("prompt_tokens").to_number<int>();
  ASSERT_GT(prompt, 600);
  auto m = server_->request(http::verb::get, "/metrics");
  const std::string& text = m.raw.body();
  const std::string name = "\ntroupe_prefix_cache_hits_total ";
  const auto at = text.find(name);
  ASSERT_NE(at, std::string::npos) << text;
  const double hits = std::stod(text.substr(at + name.size()));
  EXPECT_GE(hits, prompt - 1);  // choice 1: every prompt token but the last, from choice 0
}

TEST_F(ServerWithChatTemplate, ATemplateErrorIsA400) {
  // Qwen 2.5's template refuses nothing, but a kwarg of the wrong type is refused by troupe.
  auto r = server_->post("/v1/chat/completions",
                         R"({"messages":[{"role":"user","content":"hi"}],
                             "chat_template_kwargs":{"enable_thinking":"yes"}})");
  expect_error(r, 400, "chat_template_kwargs");
}

TEST(ServerWithSimEngine, ConcurrentStreamsGetTheirOwnUsage) {
  engine::SimOptions so;
  so.decode_tokens_per_s = 5000;
  auto sim = engine::make_sim_backend(so);
  TestServer t({}, std::move(sim));
  std::vector<std::future<std::pair<int, int>>> results;
  for (int i = 0; i < 16; ++i) {
    results.push_back(std::async(std::launch::async, [&t, i] {
      auto r =
          t.post("/v1/completions",
                 R"({"prompt":"a b c","ignore_eos":true,"max_tokens":)" + std::to_string(i + 1) +
                     R"(,"stream":true,"stream_options":{"include_usage":true}})");
      auto ev = r.events();
      int deltas = 0;
      for (const auto& e : ev)
        deltas += e.find("\"text\":\"w") != std::string::npos ? 1 : 0;
      const auto usage = json::parse(ev.at(ev.size() - 2)).at("usage").at("completion_tokens");
      return std::pair<int, int>{deltas, static_cast<int>(usage.as_int64())};
    }));
  }
  for (int i = 0; i < 16; ++i) {
    auto [deltas, usage] = results[i].get();
    EXPECT_EQ(deltas, i + 1);
    EXPECT_EQ(usage, i + 1);
  }
  auto models = t.request(http::verb::get, "/v1/models");
  EXPECT_EQ(models.body().at("data").at(0).at("id"), "sim");
  auto plain =
      t.post("/v1/chat/completions",
             R"({"messages":[{"role":"user","content":"hi"}],"max_tokens":3,"ignore_eos":true})");
  ASSERT_EQ(plain.status, 200) << plain.raw.body();
  EXPECT_EQ(plain.body().at("usage").at("completion_tokens"), 3);
}

// Anthropic's Messages API: the same generation behind Anthropic's shapes.

std::string messages_body(const std::string& content, const std::string& extra = {}) {
  return R"({"model":"fake","max_tokens":3,"messages":[{"role":"user","content":")" + content +
         "\"}]" + (extra.empty() ? "" : "," + extra) + "}";
}

// The (event, data) pairs of an Anthropic SSE body, in order.
std::vector<std::pair<std::string, json::value>> named_events(const Reply& r) {
  std::vector<std::pair<std::string, json::value>> out;
  const std::string& b = r.raw.body();
  for (std::size_t pos = 0; (pos = b.find("event: ", pos)) != std::string::npos;) {
    const auto nl = b.find('\n', pos);
    const auto data = b.find("data: ", nl);
    const auto end = b.find("\n\n", data);
    out.emplace_back(b.substr(pos + 7, nl - pos - 7),
                     json::parse(b.substr(data + 6, end - data - 6)));
    pos = end;
  }
  return out;
}

void expect_anthropic_error(const Reply& r, int status, const char* type) {
  EXPECT_EQ(r.status, status) << r.raw.body();
  auto v = r.body();
  EXPECT_EQ(v.at("type"), "error") << r.raw.body();
  EXPECT_EQ(v.at("error").at("type"), type) << r.raw.body();
  EXPECT_TRUE(v.at("error").at("message").is_string());
}

TEST(Messages, NonStreamingAnswer) {
  TestServer t;
  auto r = t.post("/v1/messages", messages_body("hello", R"("system":"Be brief.")"),
                  {{"anthropic-version", "2023-06-01"}});
  ASSERT_EQ(r.status, 200) << r.raw.body();
  auto v = r.body();
  EXPECT_EQ(v.at("type"), "message");
  EXPECT_TRUE(std::string(v.at("id").as_string()).starts_with("msg_"));
  EXPECT_EQ(v.at("model"), "fake");
  EXPECT_EQ(v.at("content").at(0).at("text"), "t0 t1 t2 ");
  EXPECT_EQ(v.at("stop_reason"), "max_tokens");
  EXPECT_EQ(v.at("usage").at("input_tokens"), 1);  // the fake counts the words of the last message
  EXPECT_EQ(v.at("usage").at("output_tokens"), 3);
  // The system prompt and the message reached the task as a conversation.
  const auto tasks = t.backend.tasks();
  ASSERT_EQ(tasks.size(), 1u);
  const auto& msgs = std::get<std::vector<engine::ChatMessage>>(tasks[0].prompt);
  ASSERT_EQ(msgs.size(), 2u);
  EXPECT_EQ(msgs[0].role, "system");
  EXPECT_EQ(tasks[0].stop.max_tokens, 3);
}

TEST(Messages, AStopSequenceIsReported) {
  TestServer t;
  auto r = t.post("/v1/messages", messages_body("hi", R"("stop_sequences":["t1"])"));
  ASSERT_EQ(r.status, 200) << r.raw.body();
  EXPECT_EQ(r.body().at("stop_reason"), "stop_sequence");
  EXPECT_EQ(r.body().at("stop_sequence"), "t1");
}

TEST(Messages, StreamsAnthropicsEvents) {
  TestServer t;
  auto r = t.post("/v1/messages", messages_body("hi", R"("stream":true)"));
  ASSERT_EQ(r.status, 200) << r.raw.body();
  EXPECT_EQ(r.raw[http::field::content_type], "text/event-stream");
  auto ev = named_events(r);
  std::vector<std::string> names;
  for (const auto& [name, data] : ev) {
    names.push_back(name);
    EXPECT_EQ(data.at("type"), name.c_str());
  }
  EXPECT_EQ(names, (std::vector<std::string>{"message_start", "ping", "content_block_start",
                                             "content_block_delta", "content_block_delta",
                                             "content_block_delta", "content_block_stop",
                                             "message_delta", "message_stop"}));
  EXPECT_EQ(ev[0].second.at("message").at("usage").at("input_tokens"), 1);
  EXPECT_EQ(ev[3].second.at("delta").at("text"), "t0 ");
  EXPECT_EQ(ev[7].second.at("delta").at("stop_reason"), "max_tokens");
  EXPECT_EQ(ev[7].second.at("usage").at("output_tokens"), 3);
  EXPECT_EQ(r.raw.body().find("[DONE]"), std::string::npos);
}

TEST(Messages, ToolUseAndThinkingStreamAsBlocks) {
  TestServer t;
  const std::string tools =
      R"("tools":[{"name":"get_weather","input_schema":{"type":"object"}}],)"
      R"("tool_choice":{"type":"any"},"thinking":{"type":"enabled","budget_tokens":1024})";
  auto plain = t.post("/v1/messages",
                      R"({"model":"fake","max_tokens":2048,"messages":[{"role":"user",
                         "content":"toolcall"}],)" +
                          tools + "}");
  ASSERT_EQ(plain.status, 200) << plain.raw.body();
  const auto v = plain.body();
  EXPECT_EQ(v.at("stop_reason"), "tool_use");
  EXPECT_EQ(v.at("content").at(0).at("type"), "thinking");
  EXPECT_EQ(v.at("content").at(1).at("text"), "Checking.");
  EXPECT_EQ(v.at("content").at(2).at("type"), "tool_use");
  EXPECT_EQ(v.at("content").at(2).at("input").at("city"), "Paris");
  const auto task = t.backend.tasks().back();
  EXPECT_EQ(task.chat.tool_choice, chatfmt::ToolChoice::required);
  EXPECT_FALSE(task.chat.reasoning_effort.has_value());
  EXPECT_EQ(task.reasoning_budget, 1024);  // the budget holds the model to it

  // llama-server's names on the chat endpoint reach the task too.
  auto chat = t.post("/v1/chat/completions",
                     R"({"model":"fake","messages":[{"role":"user","content":"hi"}],)"
                     R"("thinking_budget_tokens":16,"reasoning_budget_message":"Done."})");
  ASSERT_EQ(chat.status, 200) << chat.raw.body();
  EXPECT_EQ(t.backend.tasks().back().reasoning_budget, 16);
  EXPECT_EQ(t.backend.tasks().back().reasoning_budget_message, "Done.");

  auto s = t.post("/v1/messages",
                  R"({"model":"fake","max_tokens":2048,"stream":true,"messages":[{"role":"user",
                     "content":"toolcall"}],)" +
                      tools + "}");
  auto ev = named_events(s);
  ASSERT_EQ(ev.size(), 14u) << s.raw.body();
  EXPECT_EQ(ev[2].second.at("content_block").at("type"), "thinking");
  EXPECT_EQ(ev[3].second.at("delta").at("thinking"), "hmm");
  EXPECT_EQ(ev[5].second.at("content_block").at("type"), "text");
  EXPECT_EQ(ev[8].second.at("content_block").at("type"), "tool_use");
  EXPECT_EQ(ev[8].second.at("content_block").at("name"), "get_weather");
  EXPECT_EQ(ev[9].second.at("delta").at("partial_json"), "{\"city\"");
  EXPECT_EQ(ev[10].second.at("delta").at("partial_json"), ":\"Paris\"}");
  EXPECT_EQ(ev[11].first, "content_block_stop");
  EXPECT_EQ(ev[12].second.at("delta").at("stop_reason"), "tool_use");
  EXPECT_EQ(ev[13].first, "message_stop");
}

TEST(Messages, ErrorsHaveAnthropicsShape) {
  ServerConfig cfg;
  cfg.api_key = "sk-test";
  TestServer t(cfg);
  const std::vector<std::pair<std::string, std::string>> key = {{"x-api-key", "sk-test"}};
  expect_anthropic_error(t.post("/v1/messages", messages_body("x")), 401, "authentication_error");
  expect_anthropic_error(t.post("/v1/messages", messages_body("x"), {{"x-api-key", "nope"}}), 401,
                         "authentication_error");
  EXPECT_EQ(t.post("/v1/messages", messages_body("x"), key).status, 200);
  EXPECT_EQ(
      t.post("/v1/messages", messages_body("x"), {{"Authorization", "Bearer sk-test"}}).status,
      200);
  // x-api-key also opens the OpenAI routes, which keep their own error shape.
  EXPECT_EQ(t.post("/v1/chat/completions", chat_body("x", R"("max_tokens":1)"), key).status, 200);
  expect_error(t.post("/v1/chat/completions", chat_body("x")), 401);
  expect_anthropic_error(
      t.post("/v1/messages", R"({"model":"nope","max_tokens":3,"messages":[{"role":"user",
                                 "content":"x"}]})",
             key),
      404, "not_found_error");
  expect_anthropic_error(t.post("/v1/messages", R"({"model":"fake","messages":[]})", key), 400,
                         "invalid_request_error");
  expect_anthropic_error(t.post("/v1/messages", messages_body("too long"), key), 400,
                         "invalid_request_error");
  expect_anthropic_error(t.post("/v1/messages", messages_body("overloaded"), key), 529,
                         "overloaded_error");
  expect_anthropic_error(t.post("/v1/messages", "{", key), 400, "invalid_request_error");
  expect_anthropic_error(t.request(http::verb::get, "/v1/messages", {}, key), 405,
                         "invalid_request_error");
  // A refusal after the stream would have started is still a plain error answer.
  expect_anthropic_error(
      t.post("/v1/messages", messages_body("overloaded", R"("stream":true)"), key), 529,
      "overloaded_error");
}

TEST(Messages, MetricsCountTheEndpoint) {
  TestServer t;
  t.post("/v1/messages", messages_body("x"));
  t.post("/v1/messages", messages_body("x", R"("stream":true)"));
  auto m = t.request(http::verb::get, "/metrics");
  EXPECT_NE(m.raw.body().find(R"(troupe_requests_total{endpoint="messages",code="200"} 2)"),
            std::string::npos)
      << m.raw.body();
  TROUPE_EXPECT_PROMTOOL_ACCEPTS(m.raw.body());
}

TEST(Messages, DisconnectMidStreamCancelsTheGeneration) {
  TestServer t;
  net::io_context ioc;
  auto s = send_raw(ioc, t.port(), messages_body("hold", R"("stream":true)"), "/v1/messages");
  std::string got;
  net::read_until(s, net::dynamic_buffer(got), "held");
  ASSERT_TRUE(t.backend.wait_running(1));
  s.close();
  ASSERT_TRUE(t.backend.wait_running(0));
  EXPECT_EQ(t.backend.cancelled(), 1);
}

// While the generation produces nothing, pings keep coming (here every millisecond), and the
// client leaving between them still cancels the generation.
TEST(Messages, PingsWhileWaitingAndCancelsOnDisconnect) {
  ServerConfig cfg;
  cfg.ping_interval = std::chrono::milliseconds(1);
  TestServer t(cfg);
  net::io_context ioc;
  auto s = send_raw(ioc, t.port(), messages_body("hold", R"("stream":true)"), "/v1/messages");
  std::string got;
  net::read_until(s, net::dynamic_buffer(got), "held");
  const auto after_held = got.find("held");
  while (got.find("event: ping", after_held) == std::string::npos) {
    std::array<char, 512> buf{};
    got.append(buf.data(), s.read_some(net::buffer(buf)));
  }
  ASSERT_TRUE(t.backend.wait_running(1));
  s.close();
  ASSERT_TRUE(t.backend.wait_running(0));
  EXPECT_EQ(t.backend.cancelled(), 1);
}

// The other event streams keep a silent connection with an SSE comment (llama-server's
// --sse-ping-interval; here every millisecond), a request's sse_ping_interval (seconds)
// choosing its own; Ollama's lines get none.
TEST(Chat, StreamsSendAKeepAliveCommentWhileSilent) {
  ServerConfig cfg;
  cfg.sse_ping_interval = std::chrono::milliseconds(1);
  TestServer t(cfg);
  net::io_context ioc;
  const std::pair<const char*, std::string> streams[] = {
      {"/v1/chat/completions", chat_body("hold", R"("stream":true)")},
      {"/completion", R"({"model":"fake","prompt":"hold","stream":true})"}};
  for (const auto& [target, body] : streams) {
    SCOPED_TRACE(target);
    auto s = send_raw(ioc, t.port(), body, target);
    std::string got;
    test::read_until_or_fail(s, "held", got);
    test::read_until_or_fail(s, "\r\n:\n\n\r\n", got);  // a chunk holding the comment
    ASSERT_TRUE(t.backend.wait_running(1));
    s.close();
    ASSERT_TRUE(t.backend.wait_running(0));
  }
  {  // Several answers in one stream (n > 1) ping alike.
    auto s = send_raw(ioc, t.port(), chat_body("hold", R"("stream":true,"n":2)"));
    std::string got;
    test::read_until_or_fail(s, "held", got);
    ASSERT_TRUE(t.backend.wait_running(2));
    test::read_until_or_fail(s, "\r\n:\n\n\r\n", got);
    s.close();
    ASSERT_TRUE(t.backend.wait_running(0));
  }
  // Asked for by the request (seconds) where the server sends none.
  ServerConfig none;
  none.sse_ping_interval = std::chrono::milliseconds(0);
  TestServer quiet(none);
  auto s = send_raw(ioc, quiet.port(), chat_body("hold", R"("stream":true,"sse_ping_interval":1)"));
  std::string got;
  test::read_until_or_fail(s, "held", got);
  test::read_until_or_fail(s, ":\n\n", got);
  s.close();
  expect_error(quiet.post("/v1/chat/completions", chat_body("x", R"("sse_ping_interval":-2)")), 400,
               "sse_ping_interval");
}

TEST_F(ServerWithChatTemplate, MessagesCountTokensMatchesTheRenderedPrompt) {
  const std::string body =
      R"({"model":"tiny","system":"Be brief.","messages":[{"role":"user","content":"Hello"}]})";
  auto r = server_->post("/v1/messages/count_tokens", body);
  ASSERT_EQ(r.status, 200) << r.raw.body();
  const auto counted = r.body().at("input_tokens").as_int64();
  EXPECT_GT(counted, 5);
  // The same conversation generated: its input tokens are the count.
  auto g = server_->post("/v1/messages",
                         R"({"model":"tiny","max_tokens":1,"temperature":0,"system":"Be brief.",
                             "messages":[{"role":"user","content":"Hello"}]})");
  ASSERT_EQ(g.status, 200) << g.raw.body();
  const auto gb = g.body();
  const auto& u = gb.at("usage");
  EXPECT_EQ(u.at("input_tokens").as_int64() + u.at("cache_read_input_tokens").as_int64(), counted);
  expect_anthropic_error(server_->post("/v1/messages/count_tokens", R"({"model":"tiny"})"), 400,
                         "invalid_request_error");
  expect_anthropic_error(
      server_->post("/v1/messages/count_tokens",
                    R"({"model":"nope","messages":[{"role":"user","content":"x"}]})"),
      404, "not_found_error");
}

// llama-server's count for a chat completion, in the Responses count's shape.
TEST_F(ServerWithChatTemplate, ChatInputTokensMatchTheRenderedPrompt) {
  const std::string conversation =
      R"("model":"tiny","messages":[{"role":"system","content":"Be brief."},
         {"role":"user","content":"Hello"}])";
  auto r = server_->post("/v1/chat/completions/input_tokens", "{" + conversation + "}");
  ASSERT_EQ(r.status, 200) << r.raw.body();
  const auto body = r.body();
  EXPECT_EQ(body.at("object"), "response.input_tokens");
  const auto counted = body.at("input_tokens").as_int64();
  EXPECT_GT(counted, 5);
  auto g = server_->post("/v1/chat/completions",
                         "{" + conversation + R"(,"max_tokens":1,"temperature":0})");
  ASSERT_EQ(g.status, 200) << g.raw.body();
  EXPECT_EQ(g.body().at("usage").at("prompt_tokens").as_int64(), counted);
  EXPECT_EQ(server_->post("/chat/completions/input_tokens", "{" + conversation + "}").status, 200);
  expect_error(server_->post("/v1/chat/completions/input_tokens", R"({"model":"tiny"})"), 400,
               "messages");
  expect_error(
      server_->post("/v1/chat/completions/input_tokens", "{" + conversation + R"(,"stream":true})"),
      400, "stream");
}

TEST_F(ServerWithChatTemplate, ResponsesInputTokensMatchTheRenderedPrompt) {
  const std::string input = R"("model":"tiny","instructions":"Be brief.","input":"Hello")";
  auto r = server_->post("/v1/responses/input_tokens", "{" + input + "}");
  ASSERT_EQ(r.status, 200) << r.raw.body();
  const auto body = r.body();
  EXPECT_EQ(body.at("object"), "response.input_tokens");
  const auto counted = body.at("input_tokens").as_int64();
  EXPECT_GT(counted, 5);
  // The same request generated: its input tokens are the count.
  auto g = server_->post("/v1/responses", "{" + input +
                                              R"(,"max_output_tokens":1,"temperature":0,)"
                                              R"("store":true})");
  ASSERT_EQ(g.status, 200) << g.raw.body();
  const auto gb = g.body();
  EXPECT_EQ(gb.at("usage").at("input_tokens").as_int64(), counted);
  // With its history: a continuation counts the stored conversation too.
  const std::string id(gb.at("id").as_string());
  auto more =
      server_->post("/v1/responses/input_tokens",
                    R"({"model":"tiny","input":"And?","previous_response_id":")" + id + R"("})");
  ASSERT_EQ(more.status, 200) << more.raw.body();
  // ... as many as the same conversation sent whole (instructions are not carried over).
  auto output = json::serialize(gb.at("output"));
  auto whole = server_->post("/v1/responses/input_tokens",
                             R"({"model":"tiny","input":[{"role":"user","content":"Hello"},)" +
                                 output.substr(1, output.size() - 2) +
                                 R"(,{"role":"user","content":"And?"}]})");
  ASSERT_EQ(whole.status, 200) << whole.raw.body();
  EXPECT_EQ(more.body().at("input_tokens"), whole.body().at("input_tokens"));
  expect_error(server_->post("/v1/responses/input_tokens", R"({"model":"tiny"})"), 400, "input");
  expect_error(
      server_->post("/v1/responses/input_tokens", R"({"model":"tiny","input":"x","stream":true})"),
      400, "stream");
  expect_error(server_->post("/v1/responses/input_tokens",
                             R"({"model":"tiny","input":"x","previous_response_id":"resp_no"})"),
               404, "previous_response_id");
}

TEST_F(ServerWithChatTemplate, MessagesToolRoundTripGenerates) {
  auto r = server_->post("/v1/messages", R"({"model":"tiny","max_tokens":8,"temperature":0,
    "tools":[{"name":"get_time","description":"the time","input_schema":{"type":"object",
      "properties":{"city":{"type":"string"}},"required":["city"]}}],
    "messages":[{"role":"user","content":"Time in Paris?"},
      {"role":"assistant","content":[{"type":"tool_use","id":"toolu_1","name":"get_time",
        "input":{"city":"Paris"}}]},
      {"role":"user","content":[{"type":"tool_result","tool_use_id":"toolu_1","content":"10:30"}]}]})");
  ASSERT_EQ(r.status, 200) << r.raw.body();
  EXPECT_EQ(r.body().at("type"), "message");
}

}  // namespace
}  // namespace troupe::server

namespace troupe::server {
namespace {

// llama-server's LoRA endpoints and a request's `lora`, on the tiny model with a random
// adapter: answers as the engine computes them (tests/engine/lora_test.cpp checks those).
// GET /slots over the real engine: its slots and context per slot, idle before and after an
// answer (the busy view: BatchEngineTest.SnapshotShowsEachSlotsCounts).
TEST(ServerWithEngine, SlotsShowTheEnginesSlots) {
  auto backend = test::tiny_engine(3, 1536);
  ASSERT_NE(backend, nullptr);
  TestServer t(ServerConfig{}, std::move(backend));
  for (int round = 0; round < 2; ++round) {
    auto r = t.request(http::verb::get, "/slots");
    ASSERT_EQ(r.status, 200) << r.raw.body();
    const json::value slots = r.body();
    ASSERT_EQ(slots.as_array().size(), 3u);
    for (const auto& slot : slots.as_array()) {
      EXPECT_EQ(slot.at("n_ctx").as_int64(), 512);
      EXPECT_FALSE(slot.at("is_processing").as_bool());
    }
    EXPECT_EQ(t.post("/completion", R"({"prompt":"Once upon a time","n_predict":4})").status, 200);
  }
  expect_error(t.request(http::verb::get, "/slots?model=nope"), 404, "model");
}

// POST /slots/ID?action=save|restore|erase over the real engine: a prompt run in slot 1
// (id_slot) saved to the save directory (made on first use), erased, restored into slot 0; the
// same prompt then finds all but its last token cached.
TEST(ServerWithEngine, SlotFilesSaveEraseAndRestore) {
  auto backend = test::tiny_engine(2, 1024);
  ASSERT_NE(backend, nullptr);
  const auto dir =
      std::filesystem::temp_directory_path() / fmt::format("troupe-slot-files-{}", ::getpid());
  std::filesystem::remove_all(dir);
  ServerConfig cfg;
  cfg.slot_save_path = (dir / "saved").string();
  TestServer t(cfg, std::move(backend));
  const std::string body =
      R"({"prompt":"Once upon a time there was a little girl who lived in a village near the )"
      R"(forest. Whenever she went out, she wore a red riding cloak.","n_predict":4,)"
      R"("ignore_eos":true)";  // all 4 answered: an end of text sampled early would decode fewer
  auto first = t.post("/completion", body + R"(,"id_slot":1})");
  ASSERT_EQ(first.status, 200) << first.raw.body();
  const auto n_prompt = first.body().at("tokens_evaluated").as_int64();
  ASSERT_GT(n_prompt, 20);

  auto saved = t.post("/slots/1?action=save", R"({"filename":"story.bin"})");
  ASSERT_EQ(saved.status, 200) << saved.raw.body();
  const json::value s = saved.body();
  EXPECT_EQ(s.at("id_slot").as_int64(), 1);
  EXPECT_EQ(s.at("filename"), "story.bin");
  EXPECT_EQ(s.at("n_saved").as_int64(), n_prompt + 3);  // and 3 of the 4 answers decoded
  EXPECT_EQ(static_cast<std::uintmax_t>(s.at("n_written").as_int64()),
            std::filesystem::file_size(dir / "saved" / "story.bin"));
  EXPECT_TRUE(s.at("timings").at("save_ms").is_double());

  auto erased = t.post("/slots/1?action=erase", "");
  ASSERT_EQ(erased.status, 200) << erased.raw.body();
  EXPECT_EQ(erased.body().at("n_erased").as_int64(), n_prompt + 3);
  auto restored = t.post("/slots/0?action=restore", R"({"filename":"story.bin"})");
  ASSERT_EQ(restored.status, 200) << restored.raw.body();
  EXPECT_EQ(restored.body().at("n_restored").as_int64(), n_prompt + 3);
  EXPECT_EQ(restored.body().at("n_read"), s.at("n_written"));
  EXPECT_TRUE(restored.body().at("timings").at("restore_ms").is_double());

  auto again = t.post("/completion", body + "}");
  ASSERT_EQ(again.status, 200) << again.raw.body();
  EXPECT_EQ(again.body().at("tokens_cached").as_int64(), n_prompt - 1);
  expect_error(t.post("/completion", body + R"(,"id_slot":2})"), 400, "id_slot");
  expect_error(t.post("/v1/completions", R"({"prompt":"x","id_slot":-2})"), 400, "id_slot");

  expect_error(t.post("/slots/1?action=restore", R"({"filename":"none.bin"})"), 400);
  expect_error(t.post("/slots/2?action=erase", ""), 400, "id_slot");
  expect_error(t.post("/slots/0?action=save&model=nope", R"({"filename":"x.bin"})"), 404, "model");
  std::filesystem::remove_all(dir);
}

// llama-server's chunk reuse: the server's --cache-reuse is the default, a request's
// n_cache_reuse overrides it (0: the prefix alone); a bad value is a 400 naming it. (No host
// cache: it would hold the whole second prompt from the round before.)
TEST(ServerWithEngine, CacheReuseKeepsChunksAfterADroppedOne) {
  auto backend = test::tiny_engine(1, 1024, [](engine::EngineOptions& o) {
    o.engine.cache_reuse = 16;
    o.engine.host_cache_bytes = 0;
  });
  ASSERT_NE(backend, nullptr);
  TestServer t({}, std::move(backend));
  const auto ids = [](int first, int n) {
    std::string out;
    for (int i = 0; i < n; ++i)
      out += fmt::format("{}{}", i == 0 ? "" : ",", first + i);
    return out;
  };
  const std::string head = ids(100, 8), dropped = ids(200, 40), kept = ids(300, 40),
                    text = ids(400, 20), tail = ids(500, 10);
  const std::string first =
      fmt::format(R"({{"prompt":[{},{},{},{}],"n_predict":2)", head, dropped, kept, text);
  const std::string second =
      fmt::format(R"({{"prompt":[{},{},{},{}],"n_predict":2)", head, kept, text, tail);
  auto cached = [&](const std::string& extra) {
    EXPECT_EQ(t.post("/completion", first + "}").status, 200);
    auto r = t.post("/completion", second + extra + "}");
    EXPECT_EQ(r.status, 200) << r.raw.body();
    return r.status == 200 ? r.body().at("tokens_cached").as_int64() : -1;
  };
  EXPECT_EQ(cached(""), 8 + 60);
  EXPECT_EQ(cached(R"(,"n_cache_reuse":0)"), 8);
  EXPECT_EQ(cached(R"(,"n_cache_reuse":61)"), 8);
  EXPECT_EQ(cached(R"(,"n_cache_reuse":60)"), 8 + 60);
  auto m = t.request(http::verb::get, "/metrics");
  EXPECT_NE(m.raw.body().find("troupe_cache_reuse_tokens_total 120"), std::string::npos);
  expect_error(t.post("/completion", second + R"(,"n_cache_reuse":-1})"), 400, "n_cache_reuse");
  expect_error(t.post("/v1/completions", R"({"prompt":"x","n_cache_reuse":"all"})"), 400,
               "n_cache_reuse");
}

TEST(ServerWithLora, ListsSetsAndAppliesAdapters) {
  const std::string adapter =
      troupe::test::generated_lora(troupe::test::generated_model("tiny"), 7);
  auto backend = test::tiny_engine(2, 1024, [&](engine::EngineOptions& o) {
    o.lora = {{adapter, 1.0f}};
  });
  ASSERT_NE(backend, nullptr);
  TestServer t(ServerConfig{}, std::move(backend));

  auto list = t.request(http::verb::get, "/lora-adapters", "");
  ASSERT_EQ(list.status, 200) << list.raw.body();
  ASSERT_EQ(list.body().as_array().size(), 1u);
  EXPECT_EQ(list.body().at(0).at("id").as_int64(), 0);
  EXPECT_EQ(list.body().at(0).at("path").as_string(), adapter);
  EXPECT_EQ(list.body().at(0).at("scale").to_number<double>(), 1.0);

  const auto text = [&](const std::string& lora) {
    auto r = t.post("/completion", R"({"prompt":"Once upon a time","n_predict":12,"temperature":0,
        "ignore_eos":true)" + lora + "}");
    EXPECT_EQ(r.status, 200) << r.raw.body();
    return r.status == 200 ? std::string(r.body().at("content").as_string()) : std::string();
  };
  const std::string adapted = text("");
  const std::string base = text(R"(,"lora":[{"id":0,"scale":0}])");
  EXPECT_NE(adapted, base);
  EXPECT_EQ(text(R"(,"lora":[{"id":0,"scale":1}])"), adapted);
  EXPECT_EQ(text(R"(,"lora":[])"), adapted);  // as llama-server: [] is the server-wide scales
  // OpenAI's endpoints read it too.
  auto chat = t.post("/v1/completions", R"({"prompt":"Once upon a time","max_tokens":12,
      "temperature":0,"ignore_eos":true,"lora":[{"id":0,"scale":0}]})");
  ASSERT_EQ(chat.status, 200) << chat.raw.body();
  EXPECT_EQ(chat.body().at("choices").at(0).at("text").as_string(), base);

  auto set = t.post("/lora-adapters", R"([{"id":0,"scale":0}])");
  ASSERT_EQ(set.status, 200) << set.raw.body();
  EXPECT_EQ(set.body().at("success").as_bool(), true);
  EXPECT_EQ(
      t.request(http::verb::get, "/lora-adapters", "").body().at(0).at("scale").to_number<double>(),
      0.0);
  EXPECT_EQ(text(""), base);  // requests without `lora` take the new scale

  expect_error(t.post("/lora-adapters", R"([{"id":1,"scale":1}])"), 400, "lora");
  expect_error(t.post("/lora-adapters", R"({"id":0})"), 400, "lora");
  expect_error(t.post("/completion", R"({"prompt":"a","lora":[{"id":5,"scale":1}]})"), 400, "lora");
  expect_error(t.request(http::verb::get, "/lora-adapters?model=nope", ""), 404, "model");
}

}  // namespace
}  // namespace troupe::server
