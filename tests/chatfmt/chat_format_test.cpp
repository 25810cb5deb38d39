// ChatTemplate and OutputParser against expectations taken from llama.cpp's own tests of the
// same release: rendered prompts from tests/test-chat-template.cpp and generation prompts from
// tests/test-chat.cpp (test_template_generation_prompt); raw model outputs and the messages
// they parse into from tests/test-chat.cpp (the peg_tester cases).

#include "chatfmt/chat_format.hpp"

#include <gtest/gtest.h>

#include "test_support.hpp"

namespace troupe::chatfmt {
namespace {

using namespace testing;

// ------------------------------------------------------------------ rendered prompts

// tests/test-chat-template.cpp: the conversation every case renders.
std::vector<Message> six_messages() {
  return {{"system", "You are a helpful assistant"},
          {"user", "Hello"},
          {"assistant", "Hi there"},
          {"user", "Who are you"},
          {"assistant", "   I am an assistant   "},
          {"user", "Another question"}};
}

struct PromptCase {
  const char* name;
  const char* source;
  const char* expected;  // the release's expected_output_jinja (or expected_output)
  const char* bos = "";
  const char* eos = "";
};

const PromptCase prompt_cases[] = {
    {"teknium/OpenHermes-2.5-Mistral-7B",
     "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + "
     "message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}{% if add_generation_prompt %}{{ "
     "'<|im_start|>assistant\\n' }}{% endif %}",
     "<|im_start|>system\nYou are a helpful assistant<|im_end|>\n<|im_start|>user\nHello<|im_end|>"
     "\n<|im_start|>assistant\nHi there<|im_end|>\n<|im_start|>user\nWho are you<|im_end|>\n<|im_"
     "start|>assistant\n   I am an assistant   <|im_end|>\n<|im_start|>user\nAnother "
     "question<|im_end|>\n<|im_start|>assistant\n"},
    {"mlabonne/AlphaMonarch-7B",
     "{% for message in messages %}{{bos_token + message['role'] + '\\n' + message['content'] + "
     "eos_token + '\\n'}}{% endfor %}{% if add_generation_prompt %}{{ bos_token + 'assistant\\n' "
     "}}{% endif %}",
     "<s>system\nYou are a helpful assistant</s>\n<s>user\nHello</s>\n<s>assistant\nHi "
     "there</s>\n<s>user\nWho are you</s>\n<s>assistant\n   I am an assistant   "
     "</s>\n<s>user\nAnother question</s>\n<s>assistant\n",
     "<s>", "</s>"},
    {"google/gemma-7b-it (no system role: merged into the first user turn)",
     "{% if messages[0]['role'] == 'system' %}{{ raise_exception('System role not supported') "
     "}}{% endif %}{% for message in messages %}{% if (message['role'] == 'user') != "
     "(loop.index0 % 2 == 0) %}{{ raise_exception('Conversation roles must alternate "
     "user/assistant/user/assistant/...') }}{% endif %}{% if (message['role'] == 'assistant') "
     "%}{% set role = 'model' %}{% else %}{% set role = message['role'] %}{% endif %}{{ "
     "'<start_of_turn>' + role + '\\n' + message['content'] | trim + '<end_of_turn>\\n' }}{% "
     "endfor %}{% if add_generation_prompt %}{{'<start_of_turn>model\\n'}}{% endif %}",
     "<start_of_turn>user\nYou are a helpful assistant\nHello<end_of_turn>\n<start_of_turn>model\n"
     "Hi there<end_of_turn>\n<start_of_turn>user\nWho are you<end_of_turn>\n<start_of_turn>model"
     "\nI am an assistant<end_of_turn>\n<start_of_turn>user\nAnother question<end_of_turn>\n<start"
     "_of_turn>model\n"},
    {"Llama-3",
     "{% set loop_messages = messages %}{% for message in loop_messages %}{% set content = "
     "'<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n'+ message['content'] | "
     "trim + '<|eot_id|>' %}{% if loop.index0 == 0 %}{% set content = bos_token + content %}{% "
     "endif %}{{ content }}{% endfor %}{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}",
     "<|start_header_id|>system<|end_header_id|>\n\nYou are a helpful "
     "assistant<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nHello<|eot_id|><|start_"
     "header_id|>assistant<|end_header_id|>\n\nHi "
     "there<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nWho are "
     "you<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\nI am an "
     "assistant<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nAnother "
     "question<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n"},
    {"inclusionAI/Ling-lite",
     "{% for message in messages %}{% set role = message['role'] | lower %}{% if role == 'user' "
     "%}{% set role = 'HUMAN' %}{% endif %}{% set role = role | upper %}{{ '<role>' + role + "
     "'</role>' + message['content'] }}{% endfor %}{% if add_generation_prompt %}{{ "
     "'<role>ASSISTANT</role>' }}{% endif %}",
     "<role>SYSTEM</role>You are a helpful assistant<role>HUMAN</role>Hello<role>ASSISTANT</"
     "role>Hi there<role>HUMAN</role>Who are you<role>ASSISTANT</role>   I am an assistant   "
     "<role>HUMAN</role>Another question<role>ASSISTANT</role>"},
    {"ByteDance-Seed/Seed-OSS-36B-Instruct",
     "{# <seed:bos> #}{%- for message in messages %}{%- if message.role in [\"user\", "
     "\"system\"] %}{{ bos_token + message.role + \"\\n\" + message.content + eos_token }}{%- "
     "elif message.role == \"assistant\" %}{{ bos_token + message.role }}{%- if message.content "
     "is defined and message.content is string and message.content|trim|length > 0 %}{{ \"\\n\" "
     "+ message.content|trim + eos_token }}{%- endif %}{%- else %}{{ bos_token + message.role + "
     "\"\\n\" + message.content + eos_token }}{%- endif %}{%- endfor %}{%- if "
     "add_generation_prompt %}{{ bos_token + \"assistant\\n\" }}{%- endif %}",
     "<seed:bos>system\nYou are a helpful assistant<seed:eos><seed:bos>user\nHello<seed:eos><seed"
     ":bos>assistant\nHi there<seed:eos><seed:bos>user\nWho are "
     "you<seed:eos><seed:bos>assistant\nI am an assistant<seed:eos><seed:bos>user\nAnother "
     "question<seed:eos><seed:bos>assistant\n",
     "<seed:bos>", "<seed:eos>"},
};

TEST(ChatTemplate, RendersTheReleasesExpectedPrompts) {
  for (const auto& c : prompt_cases) {
    auto t = ChatTemplate::create(c.source, c.bos, c.eos);
    ASSERT_TRUE(t) << c.name << ": " << t.error().message;
    auto r = (*t)->render(six_messages(), {});
    ASSERT_TRUE(r) << c.name << ": " << r.error().message;
    EXPECT_EQ(r->prompt, c.expected) << c.name;
  }
}

// tests/test-chat.cpp, test_template_generation_prompt: what the prompt ends with for a new
// turn, for a continued answer and for continued reasoning.
struct GenerationPromptCase {
  const char* file;
  const char* basic;
  const char* continue_content;
  const char* continue_reasoning;
};

const GenerationPromptCase generation_prompt_cases[] = {
    {"Qwen3.5-4B.jinja", "<|im_start|>assistant\n<think>\n",
     "<|im_start|>assistant\n<think>\nI'm thinking\n</think>\n\nHello, ",
     "<|im_start|>assistant\n<think>\nI'm"},
    {"openai-gpt-oss-120b.jinja", "<|start|>assistant",
     "<|start|>assistant<|channel|>analysis<|message|>I'm "
     "thinking<|end|><|start|>assistant<|channel|>final<|message|>Hello, ",
     "<|start|>assistant<|channel|>analysis<|message|>I'm"},
    {"mistralai-Ministral-3-14B-Reasoning-2512.jinja", "", "[THINK]I'm thinking[/THINK]Hello, ",
     "[THINK]I'm"},
    {"google-gemma-4-31B-it.jinja", "<|turn>model\n",
     "<|turn>model\n<|channel>thought\nI'm thinking<channel|>Hello, ",
     "<|turn>model\n<|channel>thought\nI'm"},
    {"moonshotai-Kimi-K2.jinja", "<|im_assistant|>assistant<|im_middle|>",
     "<|im_assistant|>assistant<|im_middle|><think>I'm thinking</think>Hello, ",
     "<|im_assistant|>assistant<|im_middle|><think>I'm"},
    {"deepseek-ai-DeepSeek-V3.2.jinja", "<｜Assistant｜><think>",
     "<｜Assistant｜><think>I'm thinking</think>Hello, ", nullptr},
};

void expect_generation_prompt(const ChatTemplate& t, const std::vector<Message>& messages,
                              const std::string& expected, const std::string& what) {
  auto r = t.render(messages, {});
  ASSERT_TRUE(r) << what << ": " << r.error().message;
  EXPECT_EQ(r->parser.generation_prompt, expected) << what;
  EXPECT_TRUE(r->prompt.ends_with(expected)) << what << "\n" << r->prompt;
  EXPECT_NE(r->prompt.find("You are a helpful assistant."), std::string::npos) << what;
}

TEST(ChatTemplate, GenerationPromptsAndPrefillMatchTheRelease) {
  const Message system{"system", "You are a helpful assistant."};
  const Message user{"user", "Hey there!"};
  Message prefill_content{"assistant", "Hello, "};
  prefill_content.reasoning_content = "I'm thinking";
  Message prefill_reasoning{"assistant", ""};
  prefill_reasoning.reasoning_content = "I'm";
  for (const auto& c : generation_prompt_cases) {
    auto t = load(c.file);
    ASSERT_TRUE(t);
    expect_generation_prompt(*t, {system, user}, c.basic, std::string(c.file) + " basic");
    expect_generation_prompt(*t, {system, user, prefill_content}, c.continue_content,
                             std::string(c.file) + " continued content");
    if (c.continue_reasoning) {
      expect_generation_prompt(*t, {system, user, prefill_reasoning}, c.continue_reasoning,
                               std::string(c.file) + " continued reasoning");
    }
  }
}

// ------------------------------------------------------------------ tools and options

TEST(ChatTemplate, ToolsAndRequiredChoiceGiveAPromptAGrammarAndAParser) {
  auto t = load("Qwen-Qwen2.5-7B-Instruct.jinja");
  ASSERT_TRUE(t);
  ChatOptions o;
  o.tools = {special_function()};
  auto automatic = t->render({{"user", "Hey there!"}}, o);
  ASSERT_TRUE(automatic) << automatic.error().message;
  EXPECT_NE(automatic->prompt.find("<tools>"), std::string::npos);
  EXPECT_NE(automatic->prompt.find("\"special_function\""), std::string::npos);
  ASSERT_TRUE(automatic->grammar);
  EXPECT_TRUE(automatic->grammar->lazy) << "auto: free text until the model starts a call";
  EXPECT_FALSE(automatic->grammar->triggers.empty());
  EXPECT_FALSE(automatic->parser.parser.empty()) << "the serialized parser must be handed on";
  EXPECT_TRUE(automatic->parser.parse_tool_calls);

  o.tool_choice = ToolChoice::required;
  auto required = t->render({{"user", "Hey there!"}}, o);
  ASSERT_TRUE(required) << required.error().message;
  ASSERT_TRUE(required->grammar);
  EXPECT_FALSE(required->grammar->lazy) << "required: every token is constrained";
  EXPECT_NE(required->grammar->gbnf.find("special_function"), std::string::npos);

  o.tool_choice = ToolChoice::none;
  auto none = t->render({{"user", "Hey there!"}}, o);
  ASSERT_TRUE(none) << none.error().message;
  EXPECT_FALSE(none->grammar);
  EXPECT_FALSE(none->parser.parse_tool_calls);
}

TEST(ChatTemplate, NamedFunctionChoiceForcesThatFunctionOnly) {
  auto t = load("Qwen-Qwen2.5-7B-Instruct.jinja");
  ASSERT_TRUE(t);
  ChatOptions o;
  o.tools = {special_function(), get_time()};
  o.tool_choice = ToolChoice::function;
  o.tool_choice_function = "get_time";
  auto r = t->render({{"user", "What time is it?"}}, o);
  ASSERT_TRUE(r) << r.error().message;
  ASSERT_TRUE(r->grammar);
  EXPECT_FALSE(r->grammar->lazy);
  EXPECT_NE(r->grammar->gbnf.find("get_time"), std::string::npos);
  EXPECT_EQ(r->grammar->gbnf.find("special_function"), std::string::npos);

  o.tool_choice_function = "nope";
  auto bad = t->render({{"user", "What time is it?"}}, o);
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().param, "tool_choice");
}

// Three families' forced-call grammars (llama.cpp's) keep free text inside the call; chatfmt
// bounds it, and what the bounded grammar allows is still what the family's parser reads.
TEST(ChatTemplate, ForcedCallGrammarsHaveNoFreeTextSlotsAndStillParse) {
  const Tool weather{"get_weather", "The weather",
                     R"({"type":"object","properties":{"days":{"type":"integer","minimum":1,
                         "maximum":7},"unit":{"type":"string","enum":["C","F"]},
                         "where":{"type":"object","properties":{"city":{"type":"string"}}}},
                         "required":["days","unit"],"additionalProperties":false})"};
  struct Case {
    const char* file;
    const char* free_slot;  // in llama.cpp's grammar, gone from chatfmt's
    const char* bounded;    // what replaces it
    std::string output;     // a call the bounded grammar allows
  };
  const Case cases[] = {
      {"mistralai-Mistral-Nemo-Instruct-2407.jinja", R"(("\"id\"" space ":" space ()",
       R"("\"id\"" space ":" space "\"" [a-zA-Z0-9]{9} "\"")",
       R"([TOOL_CALLS][{"name": "get_weather", "arguments": {"days": 3, "unit": "C"}, "id": "a1B2c3D4e"}])"},
      {"openai-gpt-oss-120b.jinja", R"("<|constrain|>"? [A-Za-z0-9_-]+)",
       R"((" <|constrain|>json")?)",
       R"( to=functions.get_weather<|channel|>commentary <|constrain|>json<|message|>{"days": 3, "unit": "C"})"},
      {"google-gemma-4-31B-it.jinja", "gemma4-dict\n", R"("days:" tool-get-weather-args-space)",
       "<|tool_call>call:get_weather{days:3,unit:<|\"|>C<|\"|>,where:{city:<|\"|>Paris "
       "<|\"|>}}<tool_call|>"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.file);
    auto t = load(c.file);
    ASSERT_TRUE(t);
    ChatOptions o;
    o.tools = {weather, get_time()};
    o.template_kwargs = {{"enable_thinking", "false"}};
    for (auto choice : {ToolChoice::required, ToolChoice::function}) {
      o.tool_choice = choice;
      o.tool_choice_function = "get_weather";
      auto r = t->render({{"user", "The weather?"}}, o);
      ASSERT_TRUE(r) << r.error().message;
      ASSERT_TRUE(r->grammar);
      EXPECT_EQ(r->grammar->gbnf.find(c.free_slot), std::string::npos) << r->grammar->gbnf;
      EXPECT_NE(r->grammar->gbnf.find(c.bounded), std::string::npos) << r->grammar->gbnf;
      const auto acc = feed_bytewise(*r, c.output);
      EXPECT_EQ(acc.message.content, "");
      ASSERT_EQ(acc.message.tool_calls.size(), 1u);
      EXPECT_EQ(acc.message.tool_calls[0].name, "get_weather");
      const std::string where = std::string(c.file).find("gemma") != std::string::npos
                                    ? R"(,"where":{"city":"Paris "})"
                                    : "";
      EXPECT_EQ(canonical(acc.message.tool_calls[0].arguments),
                canonical(R"({"days":3,"unit":"C")" + where + "}"));
    }
    // Auto keeps llama.cpp's lazy grammar as it is.
    o.tool_choice = ToolChoice::automatic;
    auto r = t->render({{"user", "The weather?"}}, o);
    ASSERT_TRUE(r) << r.error().message;
    if (r->grammar) {
      EXPECT_EQ(r->grammar->gbnf.find(c.bounded), std::string::npos);
    }
  }
}

// DeepSeek R1's template (llama.cpp's) opens <think> itself whatever enable_thinking says:
// turned off, the block is closed in the prompt, and the answer parses as content.
TEST(ChatTemplate, ThinkingOffClosesABlockTheTemplateOpens) {
  auto t = load("llama-cpp-deepseek-r1.jinja");
  ASSERT_TRUE(t);
  auto on = t->render({{"user", "Hi"}}, {});
  ASSERT_TRUE(on) << on.error().message;
  EXPECT_TRUE(on->prompt.ends_with("<think>\n")) << on->prompt;
  ChatOptions off;
  off.template_kwargs = {{"enable_thinking", "false"}};
  auto r = t->render({{"user", "Hi"}}, off);
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_TRUE(r->prompt.ends_with("<think>\n</think>")) << r->prompt;
  EXPECT_TRUE(r->parser.generation_prompt.ends_with("</think>")) << r->parser.generation_prompt;
  const auto acc = feed_bytewise(*r, "Hello there.");
  EXPECT_EQ(acc.message.content, "Hello there.");
  EXPECT_EQ(acc.message.reasoning_content, "");
  // reasoning_effort "none" turns it off too.
  ChatOptions none;
  none.reasoning_effort = "none";
  auto r2 = t->render({{"user", "Hi"}}, none);
  ASSERT_TRUE(r2) << r2.error().message;
  EXPECT_TRUE(r2->prompt.ends_with("<think>\n</think>")) << r2->prompt;
  // A template that closes the block itself (Qwen3) is left as it renders.
  auto qwen3 = load("Qwen-Qwen3-0.6B.jinja");
  ASSERT_TRUE(qwen3);
  auto q = qwen3->render({{"user", "Hi"}}, off);
  ASSERT_TRUE(q) << q.error().message;
  EXPECT_TRUE(q->prompt.ends_with("<think>\n\n</think>\n\n")) << q->prompt;
}

TEST(ChatTemplate, TemplateKwargsReachTheTemplate) {
  auto t = load("Qwen-Qwen3-0.6B.jinja");
  ASSERT_TRUE(t);
  EXPECT_TRUE(t->supports_thinking());
  ChatOptions off;
  off.template_kwargs = {{"enable_thinking", "false"}};
  auto r = t->render({{"user", "Hi"}}, off);
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_TRUE(r->prompt.ends_with("<think>\n\n</think>\n\n")) << r->prompt;
  ChatOptions on;
  auto r2 = t->render({{"user", "Hi"}}, on);
  ASSERT_TRUE(r2);
  EXPECT_FALSE(r2->prompt.ends_with("</think>\n\n")) << r2->prompt;

  ChatOptions wrong;
  wrong.template_kwargs = {{"enable_thinking", "\"no\""}};
  auto r3 = t->render({{"user", "Hi"}}, wrong);
  ASSERT_FALSE(r3);
  EXPECT_EQ(r3.error().param, "chat_template_kwargs");
}

TEST(ChatTemplate, ABrokenTemplateIsAnErrorAtLoad) {
  auto t = ChatTemplate::create("{% for message in messages %}{{ message.content", "", "");
  ASSERT_FALSE(t);
  EXPECT_EQ(t.error().code, Errc::invalid_request);
  auto throws = ChatTemplate::create("{{ raise_exception('no way') }}", "", "");
  ASSERT_FALSE(throws);
  EXPECT_NE(throws.error().message.find("no way"), std::string::npos) << throws.error().message;
}

TEST(ChatTemplate, TemplateThatRaisesOnAConversationIsARequestError) {
  auto t = load("google-gemma-2-2b-it.jinja");
  ASSERT_TRUE(t);
  auto r = t->render({{"user", "a"}, {"user", "b"}}, {});
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, Errc::invalid_request);
  EXPECT_EQ(r.error().param, "messages");
}

TEST(ChatTemplate, ChatmlByName) {
  auto t = ChatTemplate::create("chatml", "", "");
  ASSERT_TRUE(t) << t.error().message;
  auto r = (*t)->render({{"user", "Hi"}}, {});
  ASSERT_TRUE(r);
  EXPECT_EQ(r->prompt, "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n");
}

TEST(ToolSchema, RefusesSchemasLlamaCppCannotTurnIntoAGrammar) {
  for (bool forced : {false, true}) {
    SCOPED_TRACE(forced ? "forced" : "auto");
    EXPECT_FALSE(check_tool_schema(special_function().parameters, forced));
    EXPECT_FALSE(check_tool_schema("", forced));
    EXPECT_TRUE(check_tool_schema("[1, 2]", forced));
    EXPECT_TRUE(check_tool_schema("{not json", forced));
    EXPECT_TRUE(check_tool_schema(
        R"({"type": "object", "properties": {"a": {"$ref": "#/nowhere"}}})", forced));
    // The limits hold either way: the grammar is built for an auto call too.
    auto big = check_tool_schema(
        R"({"type": "object", "properties": {"a": {"type": "array", "maxItems": 5000}}})", forced);
    ASSERT_TRUE(big);
    EXPECT_NE(big->find("maxItems"), std::string::npos) << *big;
    EXPECT_NE(big->find("#/properties/a"), std::string::npos) << *big;
  }
}

// What agents send (MCP servers, pydantic, zod): annotations, defaults, $schema, nullable
// anyOf, additionalProperties, bounds on integers.
TEST(ToolSchema, AcceptsWhatAgentsCommonlySend) {
  const std::string schema = R"({
    "$schema": "http://json-schema.org/draft-07/schema#", "title": "ReadFile",
    "description": "Reads a file", "type": "object",
    "properties": {
      "path": {"type": "string", "description": "Absolute path", "examples": ["/tmp/a"]},
      "offset": {"type": "integer", "minimum": 0, "default": 0, "title": "Offset"},
      "encoding": {"type": "string", "enum": ["utf-8", "latin1"], "default": "utf-8"},
      "mode": {"anyOf": [{"type": "string"}, {"type": "null"}], "default": null},
      "lines": {"type": "array", "items": {"type": "integer"}, "maxItems": 10},
      "when": {"type": "string", "format": "date-time"},
      "options": {"type": "object", "properties": {"recursive": {"type": "boolean"}},
                  "additionalProperties": false}
    },
    "required": ["path"], "additionalProperties": false})";
  EXPECT_EQ(check_tool_schema(schema, false), std::nullopt);
  EXPECT_EQ(check_tool_schema(schema, true), std::nullopt);
}

// Keywords llama.cpp's converter cannot enforce: accepted (left unconstrained) when the model
// may call the tool or not, refused when the call is forced, naming the keyword and where.
TEST(ToolSchema, UnenforceableKeywordsAreRefusedOnlyForAForcedCall) {
  struct Case {
    const char* schema;
    const char* keyword;
    const char* pointer;
  };
  const Case cases[] = {
      {R"({"type": "object", "properties": {"to": {"type": "string", "format": "email"}}})",
       "email", "#/properties/to"},
      {R"({"type": "object", "properties": {"url": {"type": "string", "format": "uri"}}})", "uri",
       "#/properties/url"},
      {R"({"type": "object", "properties": {"x": {"type": "number", "minimum": 0}}})", "minimum",
       "#/properties/x"},
      {R"({"type": "object", "properties": {"t": {"type": "array", "uniqueItems": true}}})",
       "uniqueItems", "#/properties/t"},
      {R"({"type": "object", "propertyNames": {"pattern": "^[a-z]+$"}})", "propertyNames", "#"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.schema);
    EXPECT_EQ(check_tool_schema(c.schema, false), std::nullopt);
    auto why = check_tool_schema(c.schema, true);
    ASSERT_TRUE(why);
    EXPECT_NE(why->find(c.keyword), std::string::npos) << *why;
    EXPECT_NE(why->find(std::string("(at ") + c.pointer + ")"), std::string::npos) << *why;
  }
}

TEST(GrammarTrigger, PatternsAreWhatLlamaCppsSamplerBuilds) {
  EXPECT_EQ(trigger_pattern({GrammarTrigger::Kind::word, "<tool_call>"}), "<tool_call>");
  EXPECT_EQ(trigger_pattern({GrammarTrigger::Kind::word, "[TOOL_CALLS]"}), "\\[TOOL_CALLS\\]");
  EXPECT_EQ(trigger_pattern({GrammarTrigger::Kind::pattern, "a.*b"}), "a.*b");
  EXPECT_EQ(trigger_pattern({GrammarTrigger::Kind::pattern_full, "a.*b"}), "^a.*b$");
  EXPECT_EQ(trigger_pattern({GrammarTrigger::Kind::pattern_full, "^a$"}), "^a$");
}

// ------------------------------------------------------------------ parsing model output

struct ParseCase {
  std::string file;
  std::string output;
  std::vector<Tool> tools;
  Message expected;  // role assistant
  ReasoningFormat reasoning = ReasoningFormat::automatic;
  std::vector<std::pair<std::string, std::string>> kwargs;
  std::vector<Message> messages = {{"user", "Hey there!"}};
  std::optional<bool> parallel;
};

Message assist(std::string content, std::string reasoning = "") {
  Message m{"assistant", std::move(content)};
  m.reasoning_content = std::move(reasoning);
  return m;
}
Message call(std::string name, std::string args, std::string content = "",
             std::string reasoning = "") {
  Message m = assist(std::move(content), std::move(reasoning));
  m.tool_calls.push_back({"", std::move(name), std::move(args)});
  return m;
}

const std::string hello = "Hello, world!\nWhat's up?";
const std::string thinking = "I'm\nthinking";
const std::vector<std::pair<std::string, std::string>> thinking_off = {
    {"enable_thinking", "false"}};

std::string strip(const std::string& s) {
  const auto b = s.find_first_not_of(" \t\n\r");
  if (b == std::string::npos)
    return {};
  return s.substr(b, s.find_last_not_of(" \t\n\r") - b + 1);
}

void run_parse_case(const ParseCase& c) {
  SCOPED_TRACE(c.file + ": " + c.output);
  auto t = load(c.file);
  ASSERT_TRUE(t);
  ChatOptions o;
  o.tools = c.tools;
  o.reasoning_format = c.reasoning;
  o.template_kwargs = c.kwargs;
  o.parallel_tool_calls = c.parallel;
  auto r = t->render(c.messages, o);
  ASSERT_TRUE(r) << r.error().message;
  const auto acc = feed_bytewise(*r, c.output);
  // Compared as the release compares them (assert_msg_equals with whitespace differences
  // ignored at both ends): the parsers keep the newlines around a reasoning block.
  EXPECT_EQ(strip(acc.message.content), strip(c.expected.content));
  EXPECT_EQ(strip(acc.message.reasoning_content), strip(c.expected.reasoning_content));
  ASSERT_EQ(acc.message.tool_calls.size(), c.expected.tool_calls.size());
  EXPECT_EQ(acc.deltas_with_name, static_cast<int>(c.expected.tool_calls.size()));
  for (std::size_t i = 0; i < c.expected.tool_calls.size(); ++i) {
    EXPECT_EQ(acc.message.tool_calls[i].name, c.expected.tool_calls[i].name);
    EXPECT_EQ(canonical(acc.message.tool_calls[i].arguments),
              canonical(c.expected.tool_calls[i].arguments));
    EXPECT_EQ(acc.message.tool_calls[i].id.size(), 9u) << acc.message.tool_calls[i].id;
  }
}

TEST(OutputParser, Qwen25AndHermesToolCalls) {
  for (const char* file :
       {"Qwen-Qwen2.5-7B-Instruct.jinja", "NousResearch-Hermes-3-Llama-3.1-8B-tool_use.jinja"}) {
    run_parse_case({file, hello, {}, assist(hello)});
    run_parse_case({file,
                    "<tool_call>\n{\"name\": \"special_function\", \"arguments\": {\"arg1\": "
                    "1}}\n</tool_call>",
                    {special_function()},
                    call("special_function", R"({"arg1": 1})")});
  }
  run_parse_case({"NousResearch-Hermes-2-Pro-Llama-3-8B-tool_use.jinja",
                  hello + "<tool_call>\n{\"name\": \"special_function\", \"arguments\": "
                          "{\"arg1\": 1}}</tool_call>",
                  {special_function()},
                  call("special_function", R"({"arg1": 1})", hello)});
}

TEST(OutputParser, Qwen3ReasoningAndXmlToolCalls) {
  const std::string f = "Qwen3.5-4B.jinja";
  const std::string xml_call =
      "<tool_call>\n<function=special_function>\n<parameter=arg1>\n1\n</parameter>\n</"
      "function>\n</tool_call>";
  run_parse_case({f, "I'm\nthinking\n</think>\n\n" + hello, {}, assist(hello, thinking)});
  run_parse_case({f,
                  "I'm\nthinking\n</think>\n\n" + hello,
                  {},
                  assist("<think>\nI'm\nthinking\n</think>\n\n" + hello),
                  ReasoningFormat::none});
  run_parse_case({f,
                  xml_call,
                  {special_function()},
                  call("special_function", R"({"arg1": 1})"),
                  ReasoningFormat::automatic,
                  thinking_off});
  run_parse_case({f,
                  "I'm\nthinking\n</think>\n\n" + xml_call,
                  {special_function()},
                  call("special_function", R"({"arg1": 1})", "", thinking)});
  Message two = call("special_function", R"({"arg1": 1})");
  two.tool_calls.push_back({"", "special_function_with_opt", R"({"arg1": 1, "arg2": 2})"});
  run_parse_case({f,
                  xml_call +
                      "\n<tool_call>\n<function=special_function_with_opt>\n<parameter=arg1>\n1\n<"
                      "/parameter>\n<parameter=arg2>\n2\n</parameter>\n</function>\n</tool_call>",
                  {special_function(), special_function_with_opt()},
                  two,
                  ReasoningFormat::automatic,
                  thinking_off,
                  {{"user", "Hey there!"}},
                  true});
  run_parse_case({"Qwen3-Coder.jinja",
                  xml_call,
                  {special_function()},
                  call("special_function", R"({"arg1": 1})")});
}

TEST(OutputParser, MistralAndDevstral) {
  const std::string f = "unsloth-mistral-Devstral-Small-2507.jinja";
  run_parse_case({f, hello, {}, assist(hello)});
  run_parse_case({f,
                  "[TOOL_CALLS]special_function[ARGS]{\"arg1\": 1}",
                  {special_function()},
                  call("special_function", R"({"arg1": 1})")});
  run_parse_case({f,
                  hello + "[TOOL_CALLS]special_function[ARGS]{\"arg1\": 1}",
                  {special_function()},
                  call("special_function", R"({"arg1": 1})", hello)});
}

TEST(OutputParser, Llama3) {
  for (const char* f :
       {"meta-llama-Llama-3.1-8B-Instruct.jinja", "meta-llama-Llama-3.2-3B-Instruct.jinja",
        "meta-llama-Llama-3.3-70B-Instruct.jinja"}) {
    run_parse_case({f, hello, {special_function()}, assist(hello)});
  }
  // A continued answer: the parse starts from the prefill, the deltas add only the new text.
  Message prefill{"assistant", "Hello, "};
  prefill.reasoning_content = "I'm thinking";
  run_parse_case({"meta-llama-Llama-3.1-8B-Instruct.jinja",
                  "world!\nWhat's up?",
                  {},
                  assist(hello),
                  ReasoningFormat::automatic,
                  {},
                  {{"user", "Hey there!"}, prefill}});
}

TEST(OutputParser, DeepSeekR1) {
  run_parse_case({"deepseek-ai-DeepSeek-R1-Distill-Llama-8B.jinja",
                  "</think>" + hello,
                  {},
                  assist(hello),
                  ReasoningFormat::deepseek});
  run_parse_case({"deepseek-ai-DeepSeek-R1-Distill-Llama-8B.jinja",
                  "I'm\nthinking</think>" + hello,
                  {},
                  assist(hello, thinking),
                  ReasoningFormat::deepseek});
  run_parse_case(
      {"llama-cpp-deepseek-r1.jinja",
       "</think><｜tool▁calls▁begin｜><｜tool▁call▁begin｜>function<｜tool▁sep｜>special_"
       "function\n```json\n{\"arg1\": 1}```<｜tool▁call▁end｜><｜tool▁calls▁end｜>",
       {special_function()},
       call("special_function", R"({"arg1": 1})"),
       ReasoningFormat::deepseek,
       {},
       {{"user", "Hey there!"}},
       true});
  run_parse_case({"deepseek-ai-DeepSeek-R1-Distill-Qwen-32B.jinja",
                  "<｜tool▁calls▁begin｜><｜tool▁call▁begin｜>function<｜tool▁sep｜>special_"
                  "function\n```json\n{\"arg1\": 1}```<｜tool▁call▁end｜><｜tool▁calls▁end｜>",
                  {special_function()},
                  call("special_function", R"({"arg1": 1})"),
                  ReasoningFormat::deepseek,
                  thinking_off});
}

TEST(OutputParser, GptOss) {
  const std::string f = "openai-gpt-oss-120b.jinja";
  run_parse_case({f, "<|channel|>final<|message|>" + hello, {}, assist(hello)});
  run_parse_case({f,
                  "<|channel|>analysis<|message|>I'm\nthinking<|end|><|start|>assistant<|channel|"
                  ">final<|message|>" +
                      hello,
                  {},
                  assist(hello, thinking)});
  run_parse_case({f,
                  "<|channel|>analysis<|message|>I'm\nthinking<|end|><|start|>assistant<|channel|"
                  ">final<|message|>" +
                      hello,
                  {},
                  assist("<|channel|>analysis<|message|>I'm\nthinking<|end|>" + hello),
                  ReasoningFormat::none});
  run_parse_case({f,
                  " to=functions.special_function<|channel|>analysis<|message|>{\"arg1\": 1}",
                  {special_function()},
                  call("special_function", R"({"arg1": 1})")});
}

TEST(OutputParser, Gemma4) {
  const std::string f = "google-gemma-4-31B-it.jinja";
  run_parse_case({f, "Hello, world!", {}, assist("Hello, world!")});
  run_parse_case(
      {f, "<|channel>thought\nI'm\nthinking<channel|>" + hello, {}, assist(hello, thinking)});
  run_parse_case({f,
                  "<|tool_call>call:get_time{city:<|\"|>London<|\"|>}<tool_call|>",
                  {get_time()},
                  call("get_time", R"({"city": "London"})")});
}

TEST(OutputParser, ToolCallDeltasComeInOpenAIsOrder) {
  auto t = load("Qwen-Qwen2.5-7B-Instruct.jinja");
  ASSERT_TRUE(t);
  ChatOptions o;
  o.tools = {special_function()};
  auto r = t->render({{"user", "Hey there!"}}, o);
  ASSERT_TRUE(r);
  auto p = OutputParser::create(r->parser);
  ASSERT_TRUE(p);
  std::vector<MessageDelta> deltas;
  for (const char* piece : {"<tool_call>\n", "{\"name\": \"special_", "function\", ",
                            "\"arguments\": {\"arg1\"", ": 12", "3}}\n", "</tool_call>"}) {
    auto d = (*p)->feed(piece, false);
    EXPECT_TRUE(d.content.empty()) << "markup leaked into content: " << d.content;
    if (!d.empty())
      deltas.push_back(d);
  }
  auto last = (*p)->feed("", true);
  if (!last.empty())
    deltas.push_back(last);
  ASSERT_GE(deltas.size(), 2u);
  ASSERT_EQ(deltas.front().tool_calls.size(), 1u);
  EXPECT_EQ(deltas.front().tool_calls[0].name, "special_function");
  EXPECT_EQ(deltas.front().tool_calls[0].index, 0u);
  std::string args = deltas.front().tool_calls[0].arguments;
  for (std::size_t i = 1; i < deltas.size(); ++i) {
    for (const auto& c : deltas[i].tool_calls) {
      EXPECT_TRUE(c.name.empty() && c.id.empty());
      args += c.arguments;
    }
  }
  EXPECT_EQ(canonical(args), canonical(R"({"arg1": 123})"));
  ASSERT_EQ((*p)->message().tool_calls.size(), 1u);
  EXPECT_EQ((*p)->message().tool_calls[0].id, deltas.front().tool_calls[0].id);
}

TEST(OutputParser, WithoutToolsTextIsContent) {
  auto t = load("Qwen-Qwen2.5-7B-Instruct.jinja");
  ASSERT_TRUE(t);
  auto r = t->render({{"user", "Hey there!"}}, {});
  ASSERT_TRUE(r);
  const auto acc = feed_bytewise(*r, "plain <b>text</b>");
  EXPECT_EQ(acc.message.content, "plain <b>text</b>");
  EXPECT_TRUE(acc.message.tool_calls.empty());
}

TEST(OutputParser, RefusesAParserThatDoesNotLoad) {
  ParserConfig c;
  c.parser = "this is not a serialized parser";
  EXPECT_FALSE(OutputParser::create(c));
  c.parser.clear();
  c.format = 99;
  EXPECT_FALSE(OutputParser::create(c));
}

}  // namespace
}  // namespace troupe::chatfmt
