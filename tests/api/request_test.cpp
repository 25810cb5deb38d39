#include "api/request.hpp"

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <limits>

namespace troupe::api {
namespace {

// Expects a 400-class error naming `param`.
void expect_invalid(const Error& e, const std::string& param) {
  EXPECT_EQ(e.code, Errc::invalid_request) << e.message;
  EXPECT_EQ(e.param, param) << e.message;
}

TEST(ChatRequest, ParsesTheCommonFields) {
  auto r = parse_chat_request(R"({"model":"m","messages":[{"role":"system","content":"s"},
      {"role":"user","content":[{"type":"text","text":"a"},{"type":"text","text":"b"}]}],
      "max_tokens":5,"temperature":0,"top_p":0.5,"top_k":-1,"stop":"x","seed":7,
      "stream":true,"stream_options":{"include_usage":true},"ignore_eos":true,"min_tokens":3,
      "logit_bias":{"12":-100},"logprobs":true,"top_logprobs":2,"unknown":{"x":1}})");
  ASSERT_TRUE(r.ok()) << r.error().message;
  const auto& p = r->params;
  EXPECT_EQ(p.model, "m");
  ASSERT_EQ(r->messages.size(), 2u);
  EXPECT_EQ(r->messages[1].content, "a\nb");
  EXPECT_EQ(*p.max_tokens, 5);
  EXPECT_EQ(*p.temperature, 0.0);
  EXPECT_EQ(*p.top_k, 0);
  EXPECT_EQ(p.stop, std::vector<std::string>{"x"});
  EXPECT_TRUE(p.stream && p.include_usage && p.ignore_eos);
  EXPECT_EQ(p.min_tokens, 3);
  ASSERT_EQ(p.logit_bias.size(), 1u);
  EXPECT_EQ(p.logit_bias[0].first, 12);
  EXPECT_TRUE(r->logprobs);
  EXPECT_EQ(r->top_logprobs, 2);
}

// llama-server's reasoning budget of a conversation, under either name, and its message.
TEST(ChatRequest, ReadsTheReasoningBudget) {
  const std::string msgs = R"({"messages":[{"role":"user","content":"hi"}],)";
  auto r = parse_chat_request(msgs + R"("reasoning_budget_tokens":64,)" +
                              R"("reasoning_budget_message":"Time to answer."})");
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->params.reasoning_budget, 64);
  EXPECT_EQ(r->params.reasoning_budget_message, "Time to answer.");
  r = parse_chat_request(msgs + R"("thinking_budget_tokens":0})");
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->params.reasoning_budget, 0);
  EXPECT_FALSE(r->params.reasoning_budget_message);
  r = parse_chat_request(msgs + R"("reasoning_budget_tokens":-1,"thinking_budget_tokens":5})");
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->params.reasoning_budget, -1);
  r = parse_chat_request(msgs + R"("model":"m"})");
  ASSERT_TRUE(r.ok());
  EXPECT_FALSE(r->params.reasoning_budget);
  for (const auto& [field, bad] : {std::pair{"reasoning_budget_tokens", "-2"},
                                   {"thinking_budget_tokens", "\"many\""},
                                   {"reasoning_budget_message", "7"}}) {
    r = parse_chat_request(msgs + fmt::format(R"("{}":{}}})", field, bad));
    ASSERT_FALSE(r.ok()) << field;
    expect_invalid(r.error(), field);
  }
}

TEST(ChatRequest, MaxCompletionTokensWins) {
  auto r = parse_chat_request(
      R"({"messages":[{"role":"user","content":"hi"}],"max_tokens":5,"max_completion_tokens":9})");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(*r->params.max_tokens, 9);
}

TEST(ChatRequest, RejectsMalformedBodies) {
  for (const char* body : {"", "{", "[]", "null", "{\"messages\":[}", "\"x\""}) {
    auto r = parse_chat_request(body);
    ASSERT_FALSE(r.ok()) << body;
    EXPECT_EQ(r.error().code, Errc::invalid_request);
  }
}

TEST(ChatRequest, RejectsInvalidUtf8) {
  auto r = parse_chat_request("{\"messages\":[{\"role\":\"user\",\"content\":\"\xff\xfe\"}]}");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, Errc::invalid_request);
}

TEST(ChatRequest, RejectsOutOfRangeParameters) {
  const std::string msgs = R"("messages":[{"role":"user","content":"hi"}])";
  const std::vector<std::pair<std::string, std::string>> cases = {
      {R"("temperature":2.5)", "temperature"},
      {R"("temperature":-0.1)", "temperature"},
      {R"("temperature":"hot")", "temperature"},
      {R"("top_p":0)", "top_p"},
      {R"("top_p":1.5)", "top_p"},
      {R"("max_tokens":0)", "max_tokens"},
      {R"("max_tokens":1.5)", "max_tokens"},
      {R"("max_completion_tokens":-1)", "max_completion_tokens"},
      {R"("n":0)", "n"},
      {R"("n":129)", "n"},
      {R"("stop":["a","b","c","d","e"])", "stop"},
      {R"("stop":5)", "stop"},
      {R"("presence_penalty":3)", "presence_penalty"},
      {R"("min_p":2)", "min_p"},
      {R"("stream":"yes")", "stream"},
      {R"("stream_options":{"include_usage":true})", "stream_options"},
      {R"("logit_bias":{"1":101})", "logit_bias"},
      {R"("logit_bias":{"-1":1})", "logit_bias"},
      {R"("logit_bias":{"99999999999":1})", "logit_bias"},
      {R"("logit_bias":{"Hello":true})", "logit_bias"},
      {R"("logit_bias":{"Hello":"-1"})", "logit_bias"},
      {R"("logit_bias":[[1,2,3]])", "logit_bias"},
      {R"("logit_bias":[[1.5,2]])", "logit_bias"},
      {R"("logit_bias":[[null,2]])", "logit_bias"},
      {R"("logit_bias":[["Hello",-101]])", "logit_bias"},
      {R"("logit_bias":[5])", "logit_bias"},
      {R"("logit_bias":"Hello")", "logit_bias"},
      {R"("repeat_last_n":-2)", "repeat_last_n"},
      {R"("typical_p":0)", "typical_p"},
      {R"("typical_p":1.01)", "typical_p"},
      {R"("top_n_sigma":"wide")", "top_n_sigma"},
      {R"("dynatemp_range":-0.1)", "dynatemp_range"},
      {R"("dynatemp_exponent":-1)", "dynatemp_exponent"},
      {R"("dry_multiplier":-0.5)", "dry_multiplier"},
      {R"("dry_base":0.99)", "dry_base"},
      {R"("dry_allowed_length":-1)", "dry_allowed_length"},
      {R"("dry_allowed_length":1.5)", "dry_allowed_length"},
      {R"("dry_penalty_last_n":-2)", "dry_penalty_last_n"},
      {R"("dry_sequence_breakers":[])", "dry_sequence_breakers"},
      {R"("dry_sequence_breakers":"\n")", "dry_sequence_breakers"},
      {R"("dry_sequence_breakers":["a",""])", "dry_sequence_breakers"},
      {R"("dry_sequence_breakers":["a",1])", "dry_sequence_breakers"},
      {R"("xtc_probability":1.5)", "xtc_probability"},
      {R"("xtc_probability":-0.1)", "xtc_probability"},
      {R"("xtc_threshold":2)", "xtc_threshold"},
      {R"("mirostat":3)", "mirostat"},
      {R"("mirostat":-1)", "mirostat"},
      {R"("mirostat_tau":-1)", "mirostat_tau"},
      {R"("mirostat_eta":-0.1)", "mirostat_eta"},
      {R"("top_logprobs":3)", "top_logprobs"},
      {R"("logprobs":true,"top_logprobs":21)", "top_logprobs"},
      {R"("model":5)", "model"},
  };
  for (const auto& [field, param] : cases) {
    auto r = parse_chat_request("{" + msgs + "," + field + "}");
    ASSERT_FALSE(r.ok()) << field;
    expect_invalid(r.error(), param);
  }
}

TEST(ChatRequest, RejectsTooManyDrySequenceBreakers) {
  std::string breakers;
  for (int i = 0; i < 33; ++i)
    breakers += (i ? ",\"" : "\"") + std::to_string(i) + "\"";
  const std::string head = R"({"messages":[{"role":"user","content":"hi"}],)";
  auto r = parse_chat_request(head + R"("dry_sequence_breakers":[)" + breakers + "]}");
  ASSERT_FALSE(r.ok());
  expect_invalid(r.error(), "dry_sequence_breakers");
  breakers = breakers.substr(0, breakers.rfind(','));  // 32
  EXPECT_TRUE(parse_chat_request(head + R"("dry_sequence_breakers":[)" + breakers + "]}").ok());
}

TEST(ChatRequest, ParsesLlamaServersSamplers) {
  auto r = parse_chat_request(R"({"messages":[{"role":"user","content":"hi"}],
      "repeat_last_n":-1,"typical_p":0.5,"top_n_sigma":-1,"dynatemp_range":0.5,
      "dynatemp_exponent":0,"dry_multiplier":0.8,"dry_base":1,"dry_allowed_length":0,
      "dry_penalty_last_n":-1,"dry_sequence_breakers":["\n","::"],"xtc_probability":1,
      "xtc_threshold":0,"mirostat":1,"mirostat_tau":0,"mirostat_eta":0.3})");
  ASSERT_TRUE(r.ok()) << r.error().message;
  const auto& p = r->params;
  EXPECT_EQ(p.repeat_last_n, -1);
  EXPECT_EQ(p.typical_p, 0.5);
  EXPECT_EQ(p.top_n_sigma, -1.0);
  EXPECT_EQ(p.dynatemp_range, 0.5);
  EXPECT_EQ(p.dynatemp_exponent, 0.0);
  EXPECT_EQ(p.dry_multiplier, 0.8);
  EXPECT_EQ(p.dry_base, 1.0);
  EXPECT_EQ(p.dry_allowed_length, 0);
  EXPECT_EQ(p.dry_penalty_last_n, -1);
  EXPECT_EQ(p.dry_sequence_breakers, (std::vector<std::string>{"\n", "::"}));
  EXPECT_EQ(p.xtc_probability, 1.0);
  EXPECT_EQ(p.xtc_threshold, 0.0);
  EXPECT_EQ(p.mirostat, 1);
  EXPECT_EQ(p.mirostat_tau, 0.0);
  EXPECT_EQ(p.mirostat_eta, 0.3);
  // None given: all unset (the engine's "off" and llama-server's values apply).
  auto bare = parse_completion_request(R"({"prompt":"x"})");
  ASSERT_TRUE(bare.ok());
  EXPECT_FALSE(bare->params.typical_p || bare->params.dry_multiplier ||
               bare->params.dry_sequence_breakers || bare->params.mirostat ||
               bare->params.repeat_last_n || bare->params.xtc_probability);
}

TEST(CompletionRequest, ReadsLlamaServersLoraScales) {
  auto r = parse_completion_request(
      R"({"prompt":"x","lora":[{"id":0,"scale":0.5},{"id":2,"scale":-1},{"id":0,"scale":1}]})");
  ASSERT_TRUE(r.ok()) << r.error().message;
  ASSERT_TRUE(r->params.lora);
  EXPECT_EQ(*r->params.lora,
            (std::vector<std::pair<std::int32_t, float>>{{0, 0.5f}, {2, -1.0f}, {0, 1.0f}}));
  // [] is llama-server's "no choice": the server-wide scales.
  auto c = parse_chat_request(R"({"messages":[{"role":"user","content":"hi"}],"lora":[]})");
  ASSERT_TRUE(c.ok());
  EXPECT_FALSE(c->params.lora);
  auto unset = parse_completion_request(R"({"prompt":"x","lora":null})");
  ASSERT_TRUE(unset.ok());
  EXPECT_FALSE(unset->params.lora);
  for (const char* bad :
       {R"("lora":[{"id":0}])", R"("lora":[{"scale":1}])", R"("lora":[{"id":-1,"scale":1}])",
        R"("lora":[{"id":0.5,"scale":1}])", R"("lora":[{"id":0,"scale":"1"}])",
        R"("lora":[{"id":0,"scale":1e39}])", R"("lora":[0])", R"("lora":"a.gguf")"}) {
    auto e = parse_completion_request(std::string(R"({"prompt":"x",)") + bad + "}");
    ASSERT_FALSE(e.ok()) << bad;
    EXPECT_EQ(e.error().param, "lora") << bad;
  }
}

TEST(CompletionRequest, LogitBiasTakesIdsTextsArraysAndFalse) {
  constexpr float never = -std::numeric_limits<float>::infinity();
  auto r = parse_completion_request(
      R"({"prompt":"x","logit_bias":{"15043":-1.5,"Hello, World!":false,"12a":2}})");
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->params.logit_bias, (std::vector<std::pair<std::int32_t, float>>{{15043, -1.5f}}));
  EXPECT_EQ(r->params.logit_bias_text,
            (std::vector<std::pair<std::string, float>>{{"Hello, World!", never}, {"12a", 2.0f}}));
  // llama-server's array form: an integer is an id, a string always a text (even "42").
  r = parse_completion_request(
      R"({"prompt":"x","logit_bias":[[15043,1],["Hello",-0.5],["42",false],[7,false]]})");
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->params.logit_bias,
            (std::vector<std::pair<std::int32_t, float>>{{15043, 1.0f}, {7, never}}));
  EXPECT_EQ(r->params.logit_bias_text,
            (std::vector<std::pair<std::string, float>>{{"Hello", -0.5f}, {"42", never}}));
  auto c = parse_chat_request(R"({"messages":[{"role":"user","content":"hi"}],"logit_bias":[]})");
  ASSERT_TRUE(c.ok());
  EXPECT_TRUE(c->params.logit_bias.empty() && c->params.logit_bias_text.empty());
}

TEST(ChatRequest, RejectsBadMessages) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {R"({})", "messages"},
      {R"({"messages":[]})", "messages"},
      {R"({"messages":"hi"})", "messages"},
      {R"({"messages":[5]})", "messages[0]"},
      {R"({"messages":[{"role":"wizard","content":"x"}]})", "messages[0].role"},
      {R"({"messages":[{"content":"x"}]})", "messages[0].role"},
      {R"({"messages":[{"role":"user"}]})", "messages[0].content"},
      {R"({"messages":[{"role":"user","content":[{"type":"image_url"}]}]})", "messages[0].content"},
  };
  for (const auto& [body, param] : cases) {
    auto r = parse_chat_request(body);
    ASSERT_FALSE(r.ok()) << body;
    expect_invalid(r.error(), param);
  }
}

TEST(ChatRequest, AcceptsNullsAsDefaults) {
  auto r = parse_chat_request(
      R"({"messages":[{"role":"assistant","content":null},{"role":"developer","content":"d"}],
          "temperature":null,"stop":null,"n":1,"max_tokens":null})");
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_FALSE(r->params.temperature.has_value());
  EXPECT_EQ(r->messages[1].role, "system");
}

// ------------------------------------------------------------ tools

const char* weather_tool =
    R"({"type":"function","function":{"name":"get_weather","description":"d",
        "parameters":{"type":"object","properties":{"city":{"type":"string"}}}}})";

TEST(ChatRequest, ParsesToolsChoiceAndOptions) {
  auto r = parse_chat_request(
      std::string(R"({"messages":[{"role":"user","content":"hi"}],"tools":[)") + weather_tool +
      R"(],"tool_choice":{"type":"function","function":{"name":"get_weather"}},
          "parallel_tool_calls":false,"reasoning_format":"deepseek","reasoning_effort":"low",
          "chat_template_kwargs":{"enable_thinking":false,"x":{"a":1}},"stream":true})");
  ASSERT_TRUE(r.ok()) << r.error().message;
  ASSERT_EQ(r->chat.tools.size(), 1u);
  EXPECT_EQ(r->chat.tools[0].name, "get_weather");
  EXPECT_EQ(r->chat.tools[0].description, "d");
  EXPECT_NE(r->chat.tools[0].parameters.find("\"city\""), std::string::npos);
  EXPECT_EQ(r->chat.tool_choice, chatfmt::ToolChoice::function);
  EXPECT_EQ(r->chat.tool_choice_function, "get_weather");
  EXPECT_EQ(r->chat.parallel_tool_calls, std::optional<bool>(false));
  EXPECT_EQ(r->chat.reasoning_format, chatfmt::ReasoningFormat::deepseek);
  EXPECT_EQ(r->chat.reasoning_effort, std::optional<std::string>("low"));
  ASSERT_EQ(r->chat.template_kwargs.size(), 2u);
  EXPECT_EQ(r->chat.template_kwargs[0].first, "enable_thinking");
  EXPECT_EQ(r->chat.template_kwargs[0].second, "false");
  EXPECT_EQ(r->chat.template_kwargs[1].second, R"({"a":1})");
  EXPECT_TRUE(r->chat.stream);
}

TEST(ChatRequest, ParsesAToolCallingConversation) {
  auto r = parse_chat_request(R"({"messages":[
      {"role":"user","content":"weather?"},
      {"role":"assistant","content":null,"reasoning_content":"hmm","tool_calls":[
        {"id":"abc123XYZ","type":"function","function":{"name":"get_weather","arguments":"{\"city\":\"Paris\"}"}}]},
      {"role":"tool","tool_call_id":"abc123XYZ","name":"get_weather","content":"sunny"}]})");
  ASSERT_TRUE(r.ok()) << r.error().message;
  ASSERT_EQ(r->messages.size(), 3u);
  const auto& a = r->messages[1];
  EXPECT_EQ(a.reasoning_content, "hmm");
  ASSERT_EQ(a.tool_calls.size(), 1u);
  EXPECT_EQ(a.tool_calls[0].id, "abc123XYZ");
  EXPECT_EQ(a.tool_calls[0].name, "get_weather");
  EXPECT_EQ(a.tool_calls[0].arguments, R"({"city":"Paris"})");
  EXPECT_EQ(r->messages[2].role, "tool");
  EXPECT_EQ(r->messages[2].tool_call_id, "abc123XYZ");
  EXPECT_EQ(r->messages[2].name, "get_weather");
  EXPECT_EQ(r->messages[2].content, "sunny");
}

TEST(ChatRequest, RejectsBadToolsWithTheirParam) {
  const std::string user = R"("messages":[{"role":"user","content":"hi"}])";
  const std::string tool = weather_tool;
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"{" + user + R"(,"tools":{}})", "tools"},
      {"{" + user + R"(,"tools":[5]})", "tools[0]"},
      {"{" + user + R"(,"tools":[{"type":"retrieval"}]})", "tools[0].type"},
      {"{" + user + R"(,"tools":[{"type":"function"}]})", "tools[0].function"},
      {"{" + user + R"(,"tools":[{"type":"function","function":{"name":"a b"}}]})",
       "tools[0].function.name"},
      {"{" + user + R"(,"tools":[{"type":"function","function":{"name":"f","parameters":[]}}]})",
       "tools[0].function.parameters"},
      {"{" + user + ",\"tools\":[" + tool + "," + tool + "]}", "tools[1].function.name"},
      {"{" + user + ",\"tools\":[" + tool + R"(],"tool_choice":"sometimes"})", "tool_choice"},
      {"{" + user + ",\"tools\":[" + tool +
           R"(],"tool_choice":{"type":"function","function":{"name":"nope"}}})",
       "tool_choice"},
      {"{" + user + R"(,"tool_choice":"required"})", "tool_choice"},
      {"{" + user + R"(,"reasoning_format":"verbose"})", "reasoning_format"},
      {"{" + user + R"(,"chat_template_kwargs":[1]})", "chat_template_kwargs"},
      {"{" + user + R"(,"parallel_tool_calls":"yes"})", "parallel_tool_calls"},
      {R"({"messages":[{"role":"tool","content":"sunny"}]})", "messages[0].tool_call_id"},
      {R"({"messages":[{"role":"assistant","tool_calls":[{"function":{"arguments":"{}"}}]}]})",
       "messages[0].tool_calls[0].function.name"},
      {R"({"messages":[{"role":"assistant","tool_calls":[{"function":{"name":"f","arguments":"{no"}}]}]})",
       "messages[0].tool_calls[0].function.arguments"},
  };
  for (const auto& [body, param] : cases) {
    auto r = parse_chat_request(body);
    ASSERT_FALSE(r.ok()) << body;
    expect_invalid(r.error(), param);
  }
}

// ------------------------------------------------------------ structured output

TEST(StructuredOutput, ReadsResponseFormatJsonSchemaAndGrammar) {
  const std::string user = R"("messages":[{"role":"user","content":"hi"}])";
  auto schema = parse_chat_request("{" + user + R"(,"response_format":{"type":"json_schema",
      "json_schema":{"name":"p","strict":true,"schema":{"type":"object","properties":{"a":{"type":"integer"}}}}}})");
  ASSERT_TRUE(schema.ok()) << schema.error().message;
  ASSERT_TRUE(schema->params.json_schema);
  EXPECT_EQ(*schema->params.json_schema,
            R"({"type":"object","properties":{"a":{"type":"integer"}}})");
  EXPECT_EQ(schema->params.schema_param, "response_format.json_schema.schema");
  EXPECT_FALSE(schema->params.grammar);

  // JSON mode: any object (llama-server's "schema" extension narrows it).
  auto object = parse_chat_request("{" + user + R"(,"response_format":{"type":"json_object"}})");
  ASSERT_TRUE(object.ok());
  EXPECT_EQ(object->params.json_schema.value_or(""), R"({"type":"object"})");
  auto narrowed = parse_completion_request(
      R"({"prompt":"x","response_format":{"type":"json_object","schema":{"type":"array"}}})");
  ASSERT_TRUE(narrowed.ok());
  EXPECT_EQ(narrowed->params.json_schema.value_or(""), R"({"type":"array"})");

  auto text = parse_chat_request("{" + user + R"(,"response_format":{"type":"text"}})");
  ASSERT_TRUE(text.ok());
  EXPECT_FALSE(text->params.json_schema);

  auto llama = parse_completion_request(R"({"prompt":"x","json_schema":{}})");
  ASSERT_TRUE(llama.ok());
  EXPECT_EQ(llama->params.json_schema.value_or(""), R"({"type":"object"})");
  EXPECT_EQ(llama->params.schema_param, "json_schema");

  auto gbnf = parse_completion_request(R"({"prompt":"x","grammar":"root ::= \"a\""})");
  ASSERT_TRUE(gbnf.ok());
  EXPECT_EQ(gbnf->params.grammar.value_or(""), R"(root ::= "a")");
  auto empty = parse_completion_request(R"({"prompt":"x","grammar":""})");
  ASSERT_TRUE(empty.ok());
  EXPECT_FALSE(empty->params.grammar);
}

TEST(StructuredOutput, RefusesBadShapesWithTheirParam) {
  const std::string user = R"("messages":[{"role":"user","content":"hi"}])";
  const std::vector<std::pair<std::string, std::string>> cases = {
      {R"("response_format":{"type":"sound"})", "response_format.type"},
      {R"("response_format":"json")", "response_format"},
      {R"("response_format":{})", "response_format"},
      {R"("response_format":{"type":"json_schema"})", "response_format.json_schema"},
      {R"("response_format":{"type":"json_schema","json_schema":{"schema":[1]}})",
       "response_format.json_schema.schema"},
      {R"("response_format":{"type":"json_schema","json_schema":{"name":5}})",
       "response_format.json_schema.name"},
      {R"("response_format":{"type":"json_schema","json_schema":{"strict":"yes"}})",
       "response_format.json_schema.strict"},
      {R"("json_schema":"{}")", "json_schema"},
      {R"("grammar":7)", "grammar"},
      {R"("grammar":"root ::= x","json_schema":{})", "grammar"},
      {R"("json_schema":{},"response_format":{"type":"json_object"})", "response_format"},
  };
  for (const auto& [fields, param] : cases) {
    const std::string body = "{" + user + "," + fields + "}";
    auto r = parse_chat_request(body);
    ASSERT_FALSE(r.ok()) << body;
    expect_invalid(r.error(), param);
    auto c = parse_completion_request(R"({"prompt":"x",)" + fields + "}");
    ASSERT_FALSE(c.ok()) << fields;
    expect_invalid(c.error(), param);
  }
}

// OpenAI's Predicted Outputs: the text the answer is expected to repeat, drafted from.
TEST(ChatRequest, PredictionIsReadAsText) {
  const std::string user = R"("messages":[{"role":"user","content":"hi"}])";
  auto plain =
      parse_chat_request("{" + user + R"(,"prediction":{"type":"content","content":"x = 1"}})");
  ASSERT_TRUE(plain.ok()) << plain.error().message;
  EXPECT_EQ(plain->params.prediction, "x = 1");
  auto parts = parse_chat_request(
      "{" + user +
      R"(,"prediction":{"type":"content","content":[{"type":"text","text":"a"},{"type":"text","text":"b"}]}})");
  ASSERT_TRUE(parts.ok()) << parts.error().message;
  EXPECT_EQ(parts->params.prediction, "a\nb");
  EXPECT_TRUE(parse_chat_request("{" + user + R"(,"prediction":null})")->params.prediction.empty());
  for (const char* bad : {R"("prediction":{"type":"text","content":"x"})", R"("prediction":"x")",
                          R"("prediction":{"type":"content","content":7})"}) {
    auto r = parse_chat_request("{" + user + "," + bad + "}");
    ASSERT_FALSE(r.ok()) << bad;
    expect_invalid(r.error(), "prediction");
  }
}

TEST(FieldAudit, FieldsThatWouldChangeTheAnswerAreRefusedUnlessNeutral) {
  const std::string user = R"("messages":[{"role":"user","content":"hi"}])";
  const char* refused[][2] = {
      {R"("audio":{"voice":"alloy","format":"wav"})", "audio"},
      {R"("modalities":["text","audio"])", "modalities"},
      {R"("functions":[{"name":"f"}])", "functions"},
      {R"("function_call":"auto")", "function_call"},
      {R"("web_search_options":{"search_context_size":"low"})", "web_search_options"},
      {R"("store":true)", "store"},
      {R"("verbosity":"low")", "verbosity"},
      {R"("best_of":2)", "best_of"},
      {R"("n_probs":3)", "n_probs"},
      {R"("lora":{"id":0,"scale":1})", "lora"},  // malformed: per-request LoRA is honoured
      {R"("n_keep":16)", "n_keep"},
      {R"("post_sampling_probs":true)", "post_sampling_probs"},
      {R"("return_tokens":true)", "return_tokens"},
      {R"("n_predict":0)", "n_predict"},
      {R"("min_keep":5)", "min_keep"},
      {R"("adaptive_target":0.5)", "adaptive_target"},
      {R"("grammar_lazy":true)", "grammar_lazy"},
      {R"("n_discard":8)", "n_discard"},
      {R"("backend_sampling":true)", "backend_sampling"},
      {R"("reasoning_control":true)", "reasoning_control"},
      {R"("reasoning_budget_start_tag":"<think>")", "reasoning_budget_start_tag"},
      {R"("reasoning_budget_end_tags":["</think>"])", "reasoning_budget_end_tags"},
  };
  for (const auto& [field, param] : refused) {
    auto chat = parse_chat_request("{" + user + "," + field + "}");
    ASSERT_FALSE(chat.ok()) << field;
    expect_invalid(chat.error(), param);
    auto text = parse_completion_request(std::string(R"({"prompt":"x",)") + field + "}");
    ASSERT_FALSE(text.ok()) << field;
    expect_invalid(text.error(), param);
  }
  // Their neutral values ask for nothing; unknown fields stay accepted.
  auto neutral = parse_chat_request(
      "{" + user + R"(,"modalities":["text"],"store":false,"verbosity":"medium","best_of":1,
        "functions":[],"audio":null,"n_keep":0,"min_keep":0,"adaptive_target":-1,
        "grammar_lazy":false,"n_discard":0,"backend_sampling":false,"reasoning_control":false,
        "prediction":{"type":"content","content":"x"},
        "metadata":{"k":"v"},"service_tier":"auto","prompt_cache_key":"abc","x_vendor":1})");
  EXPECT_TRUE(neutral.ok()) << neutral.error().message;
}

TEST(FieldAudit, CodeCompletionLimitsAndSuffix) {
  auto text = parse_completion_request(
      R"({"prompt":"def f():","suffix":"\n","n_indent":4,"t_max_predict_ms":250})");
  ASSERT_TRUE(text.ok()) << text.error().message;
  EXPECT_EQ(text->suffix, "\n");
  EXPECT_EQ(text->params.n_indent, 4);
  EXPECT_EQ(text->params.max_predict_ms, 250);
  auto chat = parse_chat_request(R"({"messages":[{"role":"user","content":"hi"}],"n_indent":2})");
  ASSERT_TRUE(chat.ok());
  EXPECT_EQ(chat->params.n_indent, 2);
  for (const char* bad : {R"("n_indent":-1)", R"("t_max_predict_ms":-5)", R"("n_indent":"2")"}) {
    auto r = parse_completion_request(std::string(R"({"prompt":"x",)") + bad + "}");
    EXPECT_FALSE(r.ok()) << bad;
  }
  // A chat request has no suffix to fill around.
  auto suffix = parse_chat_request(R"({"messages":[{"role":"user","content":"hi"}],"suffix":"}"})");
  ASSERT_FALSE(suffix.ok());
  expect_invalid(suffix.error(), "suffix");
  EXPECT_TRUE(
      parse_chat_request(R"({"messages":[{"role":"user","content":"hi"}],"suffix":""})").ok());
}

// llama-server's `samplers`: names (any of its aliases, any case) or letters, canonical out.
TEST(FieldAudit, SamplerOrderByNameOrLetter) {
  const std::vector<std::string> want{"top_k", "top_p", "infill"};
  auto names = parse_completion_request(R"({"prompt":"x","samplers":["top_k","Top-P","infill"]})");
  ASSERT_TRUE(names.ok()) << names.error().message;
  EXPECT_EQ(names->params.samplers, want);
  auto letters = parse_completion_request(R"({"prompt":"x","samplers":"kpi"})");
  ASSERT_TRUE(letters.ok()) << letters.error().message;
  EXPECT_EQ(letters->params.samplers, want);
  auto all =
      parse_chat_request(R"({"messages":[{"role":"user","content":"hi"}],"samplers":"edskypmxt"})");
  ASSERT_TRUE(all.ok()) << all.error().message;
  EXPECT_EQ(all->params.samplers,
            (std::vector<std::string>{"penalties", "dry", "top_n_sigma", "top_k", "typ_p", "top_p",
                                      "min_p", "xtc", "temperature"}));
  for (const char* bad :
       {R"(["bogus"])", "[]", R"(["top_k","topk"])", R"("ka")", "3", R"([1])", R"("")"}) {
    auto r = parse_completion_request(std::string(R"({"prompt":"x","samplers":)") + bad + "}");
    ASSERT_FALSE(r.ok()) << bad;
    expect_invalid(r.error(), "samplers");
  }
}

TEST(FieldAudit, ContinueFinalMessageMustMatchWhatTroupeDoes) {
  const std::string user = R"({"role":"user","content":"hi"})";
  const std::string prefill = R"({"role":"assistant","content":"Once"})";
  EXPECT_TRUE(parse_chat_request("{\"messages\":[" + user + "," + prefill +
                                 R"(],"continue_final_message":true})")
                  .ok());
  EXPECT_TRUE(
      parse_chat_request("{\"messages\":[" + user + R"(],"continue_final_message":false})").ok());
  for (const std::string& body :
       {"{\"messages\":[" + user + "," + prefill + R"(],"continue_final_message":false})",
        "{\"messages\":[" + user + R"(],"continue_final_message":true})",
        "{\"messages\":[" + user + R"(],"continue_final_message":"yes"})"}) {
    auto r = parse_chat_request(body);
    ASSERT_FALSE(r.ok()) << body;
    expect_invalid(r.error(), "continue_final_message");
  }
}

TEST(FieldAudit, NPredictIsMaxTokensAndAddGenerationPromptIsRead) {
  auto text = parse_completion_request(R"({"prompt":"x","n_predict":12})");
  ASSERT_TRUE(text.ok());
  EXPECT_EQ(text->params.max_tokens.value_or(0), 12);
  auto unlimited = parse_completion_request(R"({"prompt":"x","n_predict":-1})");
  ASSERT_TRUE(unlimited.ok());
  EXPECT_FALSE(unlimited->params.max_tokens);
  auto both = parse_completion_request(R"({"prompt":"x","n_predict":12,"max_tokens":3})");
  ASSERT_TRUE(both.ok());
  EXPECT_EQ(both->params.max_tokens.value_or(0), 3);
  auto chat = parse_chat_request(
      R"({"messages":[{"role":"user","content":"hi"}],"add_generation_prompt":false})");
  ASSERT_TRUE(chat.ok());
  EXPECT_FALSE(chat->chat.add_generation_prompt);
}

TEST(CompletionRequest, ParsesPromptForms) {
  auto text = parse_completion_request(R"({"prompt":"hello","logprobs":2})");
  ASSERT_TRUE(text.ok());
  ASSERT_EQ(text->prompts.size(), 1u);
  EXPECT_EQ(std::get<std::string>(text->prompts[0]), "hello");
  EXPECT_EQ(*text->logprobs, 2);
  auto tokens = parse_completion_request(R"({"prompt":[1,2,3]})");
  ASSERT_TRUE(tokens.ok());
  EXPECT_EQ(std::get<std::vector<std::int32_t>>(tokens->prompts.at(0)).size(), 3u);
  auto one = parse_completion_request(R"({"prompt":["x"]})");
  ASSERT_TRUE(one.ok());
  EXPECT_EQ(std::get<std::string>(one->prompts.at(0)), "x");
  auto nested = parse_completion_request(R"({"prompt":[[4,5]]})");
  ASSERT_TRUE(nested.ok());
  EXPECT_EQ(nested->prompts.size(), 1u);
  // OpenAI's list of prompts: texts and token lists, each its own prompt.
  auto several = parse_completion_request(R"({"prompt":["a",[7,8],"c"],"n":2})");
  ASSERT_TRUE(several.ok()) << several.error().message;
  ASSERT_EQ(several->prompts.size(), 3u);
  EXPECT_EQ(std::get<std::string>(several->prompts[0]), "a");
  EXPECT_EQ(std::get<std::vector<std::int32_t>>(several->prompts[1]),
            (std::vector<std::int32_t>{7, 8}));
  EXPECT_EQ(std::get<std::string>(several->prompts[2]), "c");
  EXPECT_EQ(several->params.n, 2);
}

TEST(CompletionRequest, BoundsTheAnswersOfSeveralPrompts) {
  std::string list = "[";
  for (int i = 0; i < 64; ++i)
    list += std::string(i > 0 ? "," : "") + "\"p\"";
  list += "]";
  EXPECT_TRUE(parse_completion_request(R"({"prompt":)" + list + R"(,"n":2})").ok());
  auto over = parse_completion_request(R"({"prompt":)" + list + R"(,"n":3})");
  ASSERT_FALSE(over.ok());
  EXPECT_EQ(over.error().param, "n");
  EXPECT_NE(over.error().message.find("192 answers"), std::string::npos) << over.error().message;
}

TEST(NativeCompletionRequest, ReadsLlamaServersFields) {
  auto r = parse_native_completion_request(
      R"({"prompt":["a","b"],"n_predict":3,"n_probs":2,"return_tokens":true,
          "timings_per_token":true,"response_fields":["content"],"cache_prompt":true})");
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->completion.prompts.size(), 2u);
  EXPECT_EQ(*r->completion.params.max_tokens, 3);
  EXPECT_EQ(r->native.n_probs, 2);
  EXPECT_TRUE(r->native.return_tokens);
  EXPECT_TRUE(r->native.timings_per_token);
  EXPECT_EQ(r->native.response_fields, std::vector<std::string>{"content"});
  // llama-server's aliases: logprobs for n_probs, n_cmpl for n.
  auto alias = parse_native_completion_request(R"({"prompt":"a","logprobs":3,"n_cmpl":2})");
  ASSERT_TRUE(alias.ok());
  EXPECT_EQ(alias->native.n_probs, 3);
  EXPECT_FALSE(alias->completion.logprobs);
  EXPECT_EQ(alias->completion.params.n, 2);
  // The OpenAI endpoint has no such fields to honour: refused there, not ignored.
  for (const char* field :
       {R"("n_probs":1)", R"("return_tokens":true)", R"("timings_per_token":true)"}) {
    auto openai = parse_completion_request(std::string(R"({"prompt":"a",)") + field + "}");
    EXPECT_FALSE(openai.ok()) << field;
  }
  for (const char* body :
       {R"({"prompt":"a","n_probs":21})", R"({"prompt":"a","suffix":"b"})",
        R"({"prompt":"a","post_sampling_probs":true})", R"({"prompt":"a","return_progress":true})",
        R"({"prompt":[1,"a"]})", R"({"prompt":["a",[1,"b"]]})", R"({"prompt":["a",5]})"}) {
    auto bad = parse_native_completion_request(body);
    ASSERT_FALSE(bad.ok()) << body;
    EXPECT_EQ(bad.error().code, Errc::invalid_request);
  }
}

TEST(CompletionRequest, RejectsBadPrompts) {
  for (const char* body :
       {R"({})", R"({"prompt":5})", R"({"prompt":["a",1]})", R"({"prompt":[1,"a"]})",
        R"({"prompt":[[]]})", R"({"prompt":[-1]})", R"({"prompt":[]})", R"({"prompt":[1.5]})",
        R"({"prompt":"x","logprobs":6})", R"({"prompt":"x","echo":true})"}) {
    auto r = parse_completion_request(body);
    ASSERT_FALSE(r.ok()) << body;
    EXPECT_EQ(r.error().code, Errc::invalid_request);
  }
}

TEST(TokenizeRequest, ParsesLlamaServerShape) {
  auto r = parse_tokenize_request(R"({"content":"a b","add_special":true,"with_pieces":true})");
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->add_special && r->with_pieces && r->parse_special);
  EXPECT_FALSE(parse_tokenize_request(R"({})").ok());
  auto d = parse_detokenize_request(R"({"tokens":[1,2]})");
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(d->tokens.size(), 2u);
  EXPECT_FALSE(parse_detokenize_request(R"({"tokens":["a"]})").ok());
}

}  // namespace
}  // namespace troupe::api
