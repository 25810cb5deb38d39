// schema_to_grammar: what llama.cpp's converter honours becomes a grammar; what it would drop
// silently is refused with the keyword and where it is. And the grammar of a forced tool call
// that troupe tightens (no free text before the call).

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <regex>
#include <string>

#include "chatfmt/chat_format.hpp"
#include "test_support.hpp"

namespace troupe::chatfmt {
namespace {

using namespace testing;

std::string refusal(const std::string& schema) {
  auto g = schema_to_grammar(schema, "response_format");
  if (g) {
    ADD_FAILURE() << "accepted: " << schema;
    return {};
  }
  EXPECT_EQ(g.error().param, "response_format");
  EXPECT_EQ(g.error().code, Errc::invalid_request);
  return g.error().message;
}

TEST(SchemaToGrammar, SupportedSchemasBecomeGrammarsWithARootRule) {
  const char* schemas[] = {
      R"({"type":"object","properties":{"name":{"type":"string","maxLength":8},
          "age":{"type":"integer","minimum":0,"maximum":120}},"required":["name"],
          "additionalProperties":false})",
      R"({"type":"array","items":{"enum":["a","b",3,null]},"minItems":1,"maxItems":3})",
      R"({"anyOf":[{"type":"string","format":"date"},{"type":"string","format":"uuid"},
          {"const":{"k":[1,2]}}]})",
      R"({"$defs":{"p":{"type":"object","properties":{"x":{"type":"number"}}}},
          "type":"object","properties":{"a":{"$ref":"#/$defs/p"},"b":{"$ref":"#/$defs/p"}},
          "title":"annotations are fine","description":"so is this"})",
      R"({"type":"string","pattern":"^[a-z]{2,4}-[0-9]+$"})",
      R"({"type":["string","null"]})",
      R"({"type":"object","allOf":[{"properties":{"a":{"type":"boolean"}}}]})",
      R"({"type":"array","prefixItems":[{"type":"integer"},{"type":"string"}]})",
      R"({})"};
  for (const char* s : schemas) {
    auto g = schema_to_grammar(s, "json_schema");
    ASSERT_TRUE(g) << s << ": " << g.error().message;
    EXPECT_NE(g->find("root ::="), std::string::npos) << *g;
  }
}

TEST(SchemaToGrammar, WhatTheConverterWouldDropIsRefusedNamingItAndWhere) {
  struct Case {
    const char* schema;
    const char* expect;  // a piece of the message
  };
  const Case cases[] = {
      {R"({"type":"object","not":{"required":["a"]}})", "'not' is not supported"},
      {R"({"type":"object","properties":{"n":{"type":"number","minimum":3}}})",
       "'minimum' on a 'number'"},
      {R"({"type":"object","properties":{"n":{"type":"number","minimum":3}}})", "#/properties/n"},
      {R"({"type":"array","uniqueItems":true})", "'uniqueItems'"},
      {R"({"type":"integer","multipleOf":5})", "'multipleOf'"},
      {R"({"type":"object","patternProperties":{"^x":{}}})", "'patternProperties'"},
      {R"({"type":"string","format":"email"})", "format 'email'"},
      {R"({"type":"string","pattern":"[a-z]+"})", "cannot be turned into a grammar"},
      {R"({"type":"string","pattern":"^(?<n>a)$"})", "cannot be turned into a grammar"},
      {R"({"type":"string","pattern":"^a+$","maxLength":3})", "'pattern' together"},
      {R"({"type":"string","format":"date","minLength":3})", "'format' together"},
      {R"({"$defs":{"a":{"type":"string"}},"properties":{"x":{"$ref":"#/$defs/a","maxLength":2}}})",
       "'maxLength' beside '$ref'"},
      {R"({"anyOf":[{"type":"string"}],"minLength":2})", "beside 'anyOf'"},
      {R"({"type":"object","allOf":[{"type":"object"}],"properties":{"a":{}}})", "beside 'allOf'"},
      {R"({"type":"object","properties":{"a":true}})", "boolean schemas"},
      {R"({"type":"array","maxItems":100000})", "'maxItems' above 1000"},
      {R"({"type":"string","maxLength":5000})", "'maxLength' above 1000"},
      {R"({"type":"object","properties":{"x":{"$ref":"https://example.com/s.json"}}})",
       "only references into the same document"},
      {R"({"$ref":"#/$defs/missing"})", "missing"},
      {R"({"type":"sound"})", "unrecognized type sound"},
      {R"([1,2])", "must be a JSON object"},
      {R"({"type":)", "not valid JSON"},
  };
  for (const auto& c : cases) {
    const auto message = refusal(c.schema);
    EXPECT_NE(message.find(c.expect), std::string::npos) << c.schema << " -> " << message;
  }
}

TEST(SchemaToGrammar, DeepNestingHugeEnumsAndHugeSchemasAreRefusedFast) {
  std::string deep = R"({"type":"string"})";
  for (int i = 0; i < 40; ++i)
    deep = R"({"type":"array","items":)" + deep + "}";
  const auto deep_refusal = refusal(deep);
  EXPECT_NE(deep_refusal.find("deeper than 32"), std::string::npos) << deep_refusal;

  std::string values;
  for (int i = 0; i < 5000; ++i)
    values += fmt::format("{}{}", i ? "," : "", i);
  EXPECT_NE(refusal(R"({"enum":[)" + values + "]}").find("more than 4096 values"),
            std::string::npos);

  const std::string huge = R"({"description":")" + std::string(70 * 1024, 'x') + R"("})";
  EXPECT_NE(refusal(huge).find("larger than 65536 bytes"), std::string::npos);
}

TEST(SchemaToGrammar, TheSameSchemaGivesTheSameGrammarFromTheCache) {
  const std::string s = R"({"type":"object","properties":{"cached":{"type":"boolean"}}})";
  auto a = schema_to_grammar(s, "json_schema");
  auto b = schema_to_grammar(s, "json_schema");
  ASSERT_TRUE(a && b);
  EXPECT_EQ(*a, *b);
  // A refusal is cached too, and still names the caller's param.
  auto bad1 = schema_to_grammar(R"({"not":{}})", "json_schema");
  auto bad2 = schema_to_grammar(R"({"not":{}})", "response_format.json_schema.schema");
  ASSERT_FALSE(bad1);
  ASSERT_FALSE(bad2);
  EXPECT_EQ(bad2.error().param, "response_format.json_schema.schema");
  EXPECT_EQ(bad1.error().message, bad2.error().message);
}

// ------------------------------------------------------------------ forced tool calls

std::string root_rule(const std::string& gbnf) {
  std::smatch m;
  static const std::regex root(R"((^|\n)root ::= [^\n]*)");
  return std::regex_search(gbnf, m, root) ? m.str(0) : std::string();
}

TEST(ForcedToolCall, ARequiredCallLeavesNoRoomForFreeTextBeforeIt) {
  auto t = load("Qwen-Qwen2.5-7B-Instruct.jinja");
  ASSERT_NE(t, nullptr);
  ChatOptions o;
  o.tools = {get_time()};
  o.tool_choice = ToolChoice::automatic;
  auto automatic = t->render({{"user", "time in Paris?"}}, o);
  ASSERT_TRUE(automatic) << automatic.error().message;
  ASSERT_TRUE(automatic->grammar);
  EXPECT_TRUE(automatic->grammar->lazy);  // auto: free text until the call's marker

  o.tool_choice = ToolChoice::required;
  auto required = t->render({{"user", "time in Paris?"}}, o);
  ASSERT_TRUE(required) << required.error().message;
  ASSERT_TRUE(required->grammar);
  EXPECT_FALSE(required->grammar->lazy);
  const auto root = root_rule(required->grammar->gbnf);
  ASSERT_FALSE(root.empty()) << required->grammar->gbnf;
  EXPECT_EQ(root.find("until-"), std::string::npos) << root;
  EXPECT_NE(root.find("tool-call"), std::string::npos) << root;
  // The grammar starts with the generation prompt the prompt ends with.
  EXPECT_EQ(required->parser.generation_prompt, "<|im_start|>assistant\n");
  EXPECT_TRUE(required->grammar_reads_prompt);

  // Qwen 2.5's grammar allows several calls whatever parallel_tool_calls says; off, it is one.
  EXPECT_NE(required->grammar->gbnf.find("tool-calls ::= (tool-call space)+"), std::string::npos)
      << required->grammar->gbnf;
  o.parallel_tool_calls = false;
  for (auto choice : {ToolChoice::required, ToolChoice::automatic}) {
    o.tool_choice = choice;
    auto one = t->render({{"user", "time in Paris?"}}, o);
    ASSERT_TRUE(one && one->grammar);
    std::smatch m;
    const std::regex rule(R"((^|\n)tool-calls ::= ([^\n]*))");
    ASSERT_TRUE(std::regex_search(one->grammar->gbnf, m, rule)) << one->grammar->gbnf;
    EXPECT_FALSE(m.str(2).ends_with("+")) << m.str(2);
    EXPECT_NE(m.str(2).find("tool-call"), std::string::npos) << m.str(2);
  }
}

TEST(ResponseFormat, AConversationsSchemaBecomesTheTemplatesGrammar) {
  auto t = load("Qwen-Qwen3-0.6B.jinja");
  ASSERT_NE(t, nullptr);
  ChatOptions o;
  o.json_schema = R"({"type":"object","properties":{"ok":{"type":"boolean"}},"required":["ok"]})";
  auto r = t->render({{"user", "ok?"}}, o);
  ASSERT_TRUE(r) << r.error().message;
  ASSERT_TRUE(r->grammar);
  EXPECT_FALSE(r->grammar->lazy);
  EXPECT_NE(r->grammar->gbnf.find("\\\"ok\\\""), std::string::npos) << r->grammar->gbnf;

  o.tools = {get_time()};
  auto with_tools = t->render({{"user", "ok?"}}, o);
  ASSERT_FALSE(with_tools);
  EXPECT_EQ(with_tools.error().param, "response_format");
  o.tool_choice = ToolChoice::none;  // tools shown, never called: the schema rules
  EXPECT_TRUE(t->render({{"user", "ok?"}}, o));
}

}  // namespace
}  // namespace troupe::chatfmt
