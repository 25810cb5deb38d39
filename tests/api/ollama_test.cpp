// Ollama's request bodies read into troupe's requests, and the objects its clients parse.

#include "api/ollama.hpp"

#include <gtest/gtest.h>

#include <boost/json/parse.hpp>

namespace troupe::api {
namespace {
namespace json = boost::json;

OllamaGenerationRequest chat_ok(const std::string& body) {
  auto r = parse_ollama_chat_request(body);
  EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.error().message);
  return r.ok() ? std::move(r).value() : OllamaGenerationRequest{};
}

OllamaGenerationRequest generate_ok(const std::string& body) {
  auto r = parse_ollama_generate_request(body);
  EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.error().message);
  return r.ok() ? std::move(r).value() : OllamaGenerationRequest{};
}

void expect_refused(const Result<OllamaGenerationRequest>& r, const std::string& param) {
  ASSERT_FALSE(r.ok()) << param;
  EXPECT_EQ(r.error().code, Errc::invalid_request);
  EXPECT_EQ(r.error().param, param) << r.error().message;
}

TEST(OllamaRequest, ChatReadsMessagesOptionsAndTools) {
  auto r = chat_ok(R"({"model":"tiny:latest","messages":[
      {"role":"System","content":"Be brief."},
      {"role":"user","content":"weather in Paris?"},
      {"role":"assistant","content":"","thinking":"call it",
       "tool_calls":[{"function":{"name":"get_weather","arguments":{"city":"Paris"}}}]},
      {"role":"tool","tool_name":"get_weather","content":"sunny"}],
    "tools":[{"type":"function","function":{"name":"get_weather","description":"d",
      "parameters":{"type":"object","properties":{"city":{"type":"string"}}}}}],
    "options":{"temperature":0.2,"top_k":20,"top_p":0.9,"min_p":0.05,"num_predict":64,
      "seed":7,"stop":["END"],"repeat_penalty":1.1,"num_ctx":8192,"num_gpu":99},
    "think":false,"keep_alive":"5m","logprobs":true,"top_logprobs":3})");
  EXPECT_EQ(r.model, "tiny:latest");
  EXPECT_FALSE(r.load_only);
  const auto& chat = std::get<ChatRequest>(r.request);
  const auto& p = chat.params;
  EXPECT_TRUE(p.stream);  // Ollama streams unless told not to
  EXPECT_EQ(p.temperature, 0.2);
  EXPECT_EQ(p.top_k, 20);
  EXPECT_EQ(p.top_p, 0.9);
  EXPECT_EQ(p.min_p, 0.05);
  EXPECT_EQ(p.max_tokens, 64);
  EXPECT_EQ(p.seed, 7);
  EXPECT_EQ(p.stop, std::vector<std::string>{"END"});
  EXPECT_EQ(p.repeat_penalty, 1.1);
  EXPECT_EQ(p.keep_alive, std::chrono::minutes(5));
  EXPECT_TRUE(chat.logprobs);
  EXPECT_EQ(chat.top_logprobs, 3);
  EXPECT_EQ(chat.chat.reasoning_effort, "none");  // think: false
  ASSERT_EQ(chat.chat.tools.size(), 1u);
  EXPECT_EQ(chat.chat.tools[0].name, "get_weather");
  ASSERT_EQ(chat.messages.size(), 4u);
  EXPECT_EQ(chat.messages[0].role, "system");
  const auto& call = chat.messages[2];
  EXPECT_EQ(call.reasoning_content, "call it");
  ASSERT_EQ(call.tool_calls.size(), 1u);
  EXPECT_EQ(call.tool_calls[0].name, "get_weather");
  EXPECT_EQ(json::parse(call.tool_calls[0].arguments), json::parse(R"({"city":"Paris"})"));
  EXPECT_FALSE(call.tool_calls[0].id.empty());
  // The result names the tool only: it answers that call.
  EXPECT_EQ(chat.messages[3].tool_call_id, call.tool_calls[0].id);
  EXPECT_EQ(chat.messages[3].name, "get_weather");
}

TEST(OllamaRequest, ChatFormatsThinkLevelsAndLoads) {
  auto json_mode = chat_ok(R"({"model":"m","messages":[{"role":"user","content":"x"}],
      "format":"json","stream":false,"think":"high"})");
  const auto& c = std::get<ChatRequest>(json_mode.request);
  EXPECT_FALSE(c.params.stream);
  EXPECT_EQ(c.params.json_schema, R"({"type":"object"})");
  EXPECT_EQ(c.chat.reasoning_effort, "high");
  auto schema = chat_ok(R"({"model":"m","messages":[{"role":"user","content":"x"}],
      "format":{"type":"object","properties":{"a":{"type":"integer"}}}})");
  EXPECT_EQ(json::parse(*std::get<ChatRequest>(schema.request).params.json_schema),
            json::parse(R"({"type":"object","properties":{"a":{"type":"integer"}}})"));
  EXPECT_TRUE(chat_ok(R"({"model":"m"})").load_only);
  EXPECT_TRUE(chat_ok(R"({"model":"m","messages":[],"keep_alive":0})").load_only);
  auto unlimited = chat_ok(R"({"model":"m","messages":[{"role":"user","content":"x"}],
      "options":{"num_predict":-1,"seed":-1,"top_k":-1}})");
  const auto& u = std::get<ChatRequest>(unlimited.request).params;
  EXPECT_FALSE(u.max_tokens);
  EXPECT_FALSE(u.seed);
  EXPECT_EQ(u.top_k, 0);
}

TEST(OllamaRequest, RefusesWhatItCannotHonour) {
  const std::string user = R"("messages":[{"role":"user","content":"x"}])";
  expect_refused(parse_ollama_chat_request(R"({"messages":[]})"), "model");
  expect_refused(parse_ollama_chat_request(R"({"model":"m","messages":[{"role":"user",
      "content":"x","images":["aGk="]}]})"),
                 "messages[0].images");
  expect_refused(parse_ollama_chat_request(R"({"model":"m",)" + user + R"(,"truncate":true})"),
                 "truncate");
  expect_refused(parse_ollama_chat_request(R"({"model":"m",)" + user + R"(,"shift":true})"),
                 "shift");
  expect_refused(parse_ollama_chat_request(R"({"model":"m",)" + user + R"(,"think":"some"})"),
                 "think");
  expect_refused(parse_ollama_chat_request(R"({"model":"m",)" + user + R"(,"format":"xml"})"),
                 "format");
  expect_refused(
      parse_ollama_chat_request(R"({"model":"m",)" + user + R"(,"options":{"num_predict":0}})"),
      "options.num_predict");
  expect_refused(
      parse_ollama_chat_request(R"({"model":"m",)" + user + R"(,"options":{"tfs_z":0.5}})"),
      "options.tfs_z");
  expect_refused(
      parse_ollama_chat_request(R"({"model":"m",)" + user + R"(,"options":{"temperature":"hot"}})"),
      "options.temperature");
  expect_refused(parse_ollama_chat_request(R"({"model":"m","messages":[{"role":"narrator",
      "content":"x"}]})"),
                 "messages[0].role");
  expect_refused(
      parse_ollama_generate_request(R"({"model":"m","prompt":"x","template":"{{ .Prompt }}"})"),
      "template");
  expect_refused(parse_ollama_generate_request(R"({"model":"m","prompt":"x","context":[1,2]})"),
                 "context");
  expect_refused(parse_ollama_generate_request(R"({"model":"m","prompt":"x","raw":true,
      "system":"s"})"),
                 "system");
  expect_refused(parse_ollama_generate_request(R"({"model":"m","prompt":"x","images":["aGk="]})"),
                 "images");
  expect_refused(
      parse_ollama_generate_request(R"({"model":"m","prompt":"x","raw":true,"think":false})"),
      "think");
  EXPECT_FALSE(parse_ollama_chat_request("").ok());
  EXPECT_FALSE(parse_ollama_chat_request("[1]").ok());
}

TEST(OllamaRequest, GenerateIsAChatTurnARawTextOrAFill) {
  auto turn = generate_ok(R"({"model":"m","prompt":"Why?","system":"Be brief."})");
  const auto& chat = std::get<ChatRequest>(turn.request);
  ASSERT_EQ(chat.messages.size(), 2u);
  EXPECT_EQ(chat.messages[0].role, "system");
  EXPECT_EQ(chat.messages[1].content, "Why?");
  auto raw = generate_ok(R"({"model":"m","prompt":"[INST] hi [/INST]","raw":true,
      "stream":false,"options":{"num_predict":5}})");
  const auto& text = std::get<CompletionRequest>(raw.request);
  EXPECT_EQ(std::get<std::string>(text.prompts.at(0)), "[INST] hi [/INST]");
  EXPECT_EQ(text.params.max_tokens, 5);
  EXPECT_FALSE(text.params.stream);
  auto fill = generate_ok(R"({"model":"m","prompt":"def f(a, b):","suffix":"    return r"})");
  EXPECT_EQ(std::get<CompletionRequest>(fill.request).suffix, "    return r");
  EXPECT_TRUE(generate_ok(R"({"model":"m"})").load_only);
  EXPECT_TRUE(generate_ok(R"({"model":"m","prompt":""})").load_only);
}

TEST(OllamaRequest, EmbedAndLegacyEmbeddings) {
  auto one = parse_ollama_embed_request(R"({"model":"e","input":"hello"})");
  ASSERT_TRUE(one.ok());
  EXPECT_EQ(one->inputs, std::vector<std::string>{"hello"});
  EXPECT_TRUE(one->truncate);  // Ollama's default
  EXPECT_FALSE(one->legacy);
  auto many = parse_ollama_embed_request(
      R"({"model":"e","input":["a","b"],"truncate":false,"dimensions":64})");
  ASSERT_TRUE(many.ok());
  EXPECT_EQ(many->inputs.size(), 2u);
  EXPECT_FALSE(many->truncate);
  EXPECT_EQ(many->dimensions, 64);
  EXPECT_TRUE(parse_ollama_embed_request(R"({"model":"e"})")->inputs.empty());
  EXPECT_FALSE(parse_ollama_embed_request(R"({"model":"e","input":[1,2]})").ok());
  EXPECT_FALSE(parse_ollama_embed_request(R"({"model":"e","input":["a",""]})").ok());
  EXPECT_FALSE(parse_ollama_embed_request(R"({"input":"a"})").ok());
  auto legacy = parse_ollama_embeddings_request(R"({"model":"e","prompt":"hi"})");
  ASSERT_TRUE(legacy.ok());
  EXPECT_TRUE(legacy->legacy);
  EXPECT_EQ(legacy->inputs, std::vector<std::string>{"hi"});
  EXPECT_EQ(*parse_ollama_show_request(R"({"model":"tiny"})"), "tiny");
  EXPECT_EQ(*parse_ollama_show_request(R"({"name":"tiny"})"), "tiny");
  EXPECT_FALSE(parse_ollama_show_request("{}").ok());
}

TEST(OllamaAnswer, WritesChatGenerateAndTheLastObject) {
  const std::vector<chatfmt::ToolCall> calls{{"call_0", "get_weather", R"({"city":"Paris"})"},
                                             {"call_1", "broken", "{not json"}};
  const std::vector<TokenLogprob> lps{{"Hi", -0.5f, {{"Hi", -0.5f}, {"Yo", -1.5f}}}};
  OllamaAnswer a;
  a.model = "tiny";
  a.created_at = "2026-12-07T08:00:00.000000001Z";
  a.content = "Hi";
  a.thinking = "hmm";
  a.tool_calls = calls;
  a.logprobs = &lps;
  const auto piece = json::parse(ollama_answer_json(a));
  EXPECT_EQ(piece.at("model"), "tiny");
  EXPECT_EQ(piece.at("done"), false);
  EXPECT_FALSE(piece.as_object().contains("done_reason"));
  const auto& m = piece.at("message");
  EXPECT_EQ(m.at("role"), "assistant");
  EXPECT_EQ(m.at("content"), "Hi");
  EXPECT_EQ(m.at("thinking"), "hmm");
  EXPECT_EQ(m.at("tool_calls").at(0).at("function").at("arguments").at("city"), "Paris");
  EXPECT_EQ(m.at("tool_calls").at(1).at("function").at("arguments"), "{not json");
  EXPECT_EQ(m.at("tool_calls").at(1).at("function").at("index"), 1);
  EXPECT_EQ(piece.at("logprobs").at(0).at("top_logprobs").at(1).at("token"), "Yo");

  OllamaMetrics metrics{5000, 0, 12, 1000, 4, 4000};
  OllamaAnswer last;
  last.chat = false;
  last.model = "tiny";
  last.created_at = a.created_at;
  last.done = true;
  last.done_reason = "length";
  last.metrics = &metrics;
  const auto end = json::parse(ollama_answer_json(last));
  EXPECT_EQ(end.at("response"), "");
  EXPECT_FALSE(end.as_object().contains("message"));
  EXPECT_EQ(end.at("done"), true);
  EXPECT_EQ(end.at("done_reason"), "length");
  EXPECT_EQ(end.at("total_duration"), 5000);
  EXPECT_EQ(end.at("prompt_eval_count"), 12);
  EXPECT_EQ(end.at("eval_count"), 4);
  EXPECT_EQ(end.at("eval_duration"), 4000);
  EXPECT_EQ(json::parse(ollama_error_json("model \"x\" not found")).at("error"),
            "model \"x\" not found");
}

TEST(OllamaAnswer, ListsShowsAndEmbeds) {
  const std::vector<OllamaModel> models{{"tiny", 1700000000, 1234, "llama", "4.2M", "F16"}};
  const auto tags = json::parse(ollama_tags_json(models));
  const auto& t = tags.at("models").at(0);
  EXPECT_EQ(t.at("name"), "tiny");
  EXPECT_EQ(t.at("model"), "tiny");
  EXPECT_EQ(t.at("size"), 1234);
  EXPECT_EQ(t.at("modified_at"), "2023-11-14T22:13:20.000000000Z");
  EXPECT_EQ(t.at("details").at("family"), "llama");
  EXPECT_EQ(t.at("details").at("families").at(0), "llama");
  EXPECT_EQ(t.at("details").at("parameter_size"), "4.2M");
  EXPECT_EQ(t.at("details").at("quantization_level"), "F16");
  EXPECT_EQ(t.at("details").at("format"), "gguf");
  const auto ps = json::parse(ollama_ps_json(models));
  EXPECT_EQ(ps.at("models").at(0).at("size_vram"), 0);
  EXPECT_TRUE(ps.at("models").at(0).as_object().contains("expires_at"));
  EXPECT_EQ(json::parse(ollama_tags_json({})).at("models").as_array().size(), 0u);

  OllamaShow s;
  s.model = models[0];
  s.path = "/m/tiny.gguf";
  s.chat_template = "{{ messages }}";
  s.n_ctx = 512;
  s.parameters = 4200000;
  s.capabilities = {"completion", "tools"};
  const auto show = json::parse(ollama_show_json(s));
  EXPECT_EQ(show.at("template"), "{{ messages }}");
  EXPECT_EQ(show.at("model_info").at("llama.context_length"), 512);
  EXPECT_EQ(show.at("model_info").at("general.parameter_count"), 4200000);
  EXPECT_EQ(show.at("capabilities").at(1), "tools");
  EXPECT_EQ(show.at("details").at("quantization_level"), "F16");

  const std::vector<std::vector<float>> vectors{{0.5f, -0.25f}, {1.0f, 0.0f}};
  const auto embed = json::parse(ollama_embed_json("e", vectors, 99, 7));
  EXPECT_EQ(embed.at("model"), "e");
  EXPECT_EQ(embed.at("embeddings").at(1).at(0).to_number<double>(), 1.0);
  EXPECT_EQ(embed.at("prompt_eval_count"), 7);
  const std::vector<float> one{0.5f};
  EXPECT_EQ(json::parse(ollama_embedding_json(one)).at("embedding").at(0).to_number<double>(), 0.5);
  EXPECT_EQ(ollama_embedding_json({}), R"({"embedding":[]})");
  EXPECT_EQ(json::parse(ollama_version_json("1.2.3")).at("version"), "1.2.3");
}

TEST(OllamaAnswer, TimesAreRfc3339WithNanoseconds) {
  const auto t = std::chrono::system_clock::time_point(std::chrono::seconds(1700000000)) +
                 std::chrono::nanoseconds(123456789);
  EXPECT_EQ(ollama_time(std::chrono::time_point_cast<std::chrono::system_clock::duration>(t)),
            "2023-11-14T22:13:20.123456789Z");
}

}  // namespace
}  // namespace troupe::api
