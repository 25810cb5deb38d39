// The template census: every one of llama.cpp's reference templates (the release's
// models/templates/*.jinja) loads and renders a plain conversation and a conversation with
// tools, a tool call and its result. The templates that cannot are listed with the reason.

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <set>

#include "test_support.hpp"

namespace troupe::chatfmt {
namespace {

using namespace testing;

std::vector<Message> plain_conversation() {
  return {{"system", "You are a helpful assistant"},
          {"user", "Hello"},
          {"assistant", "Hi there"},
          {"user", "Who are you"}};
}

std::vector<Message> tools_conversation() {
  Message call{"assistant", ""};
  // Mistral's templates require ids of 9 alphanumeric characters (troupe generates such).
  call.tool_calls.push_back({"a1b2c3d4e", "get_time", R"({"city": "Paris"})"});
  Message result{"tool", "10:30"};
  result.tool_call_id = "a1b2c3d4e";
  result.name = "get_time";
  return {{"system", "You are a helpful assistant"},
          {"user", "What time is it in Paris?"},
          call,
          result};
}

// Templates that are known not to render one of the conversations, and why. These are
// properties of the templates themselves (what their models were trained on), not of troupe.
const std::map<std::string, std::string> known_failures = {
    {"google-gemma-2-2b-it.jinja",
     "Gemma 2 has no tool role: the template raises 'Conversation roles must alternate' on a "
     "tool message (it renders the plain conversation)"},
    {"llama-cpp-rwkv-world.jinja",
     "the template renders only user and assistant turns: a tool result is dropped"},
    {"microsoft-Phi-3.5-mini-instruct.jinja",
     "the template renders only system, user and assistant turns: a tool result is dropped"},
};

// Templates whose models call tools but whose text never describes the tools (llama.cpp's
// library does not add a description either): the model must know its tools from training.
const std::set<std::string> tools_not_described = {
    "deepseek-ai-DeepSeek-R1-Distill-Qwen-32B.jinja",
    "deepseek-ai-DeepSeek-V3.1.jinja",
    "fireworks-ai-llama-3-firefunction-v2.jinja",
};

std::vector<std::string> template_names() {
  std::vector<std::string> names;
  for (const auto& e : std::filesystem::directory_iterator(templates_dir())) {
    if (e.path().extension() == ".jinja")
      names.push_back(e.path().filename().string());
  }
  std::sort(names.begin(), names.end());
  return names;
}

// Why `name` cannot render, or "" when it renders both conversations.
std::string census_one(const std::string& name) {
  auto t = ChatTemplate::create(read_template(name), "<s>", "</s>");
  if (!t)
    return "load: " + t.error().message;
  auto plain = (*t)->render(plain_conversation(), {});
  if (!plain)
    return "plain conversation: " + plain.error().message;
  if (plain->prompt.find("Who are you") == std::string::npos)
    return "plain conversation: the last user message is not in the prompt";
  ChatOptions opts;
  opts.tools = {get_time()};
  auto tools = (*t)->render(tools_conversation(), opts);
  if (!tools)
    return "tools conversation: " + tools.error().message;
  if (tools->prompt.find("10:30") == std::string::npos)
    return "tools conversation: the tool result is not in the prompt";
  if (tools->prompt.find("What time is it in Paris?") == std::string::npos)
    return "tools conversation: the user message is not in the prompt";
  return {};
}

TEST(TemplateCensus, EveryReferenceTemplateRendersPlainAndToolConversations) {
  const auto names = template_names();
  ASSERT_EQ(names.size(), 70u) << "the release ships 70 reference templates";
  std::map<std::string, std::string> failures;
  for (const auto& name : names) {
    if (auto why = census_one(name); !why.empty())
      failures[name] = why;
  }
  std::string report;
  for (const auto& [name, why] : failures)
    report += fmt::format("  {}: {}\n", name, why);
  std::printf("template census: %zu of %zu render both conversations\n%s",
              names.size() - failures.size(), names.size(), report.c_str());
  for (const auto& [name, why] : failures) {
    EXPECT_TRUE(known_failures.count(name)) << "unexpected failure: " << name << ": " << why;
  }
  for (const auto& [name, why] : known_failures) {
    EXPECT_TRUE(failures.count(name)) << name << " is listed as failing but renders now";
  }
}

TEST(TemplateCensus, ToolsReachThePromptOfEveryTemplateThatSupportsTools) {
  std::set<std::string> missing;
  for (const auto& name : template_names()) {
    auto t = ChatTemplate::create(read_template(name), "<s>", "</s>");
    if (!t || !(*t)->supports_tool_calls())
      continue;
    ChatOptions opts;
    opts.tools = {get_time()};
    auto r = (*t)->render({{"user", "What time is it?"}}, opts);
    ASSERT_TRUE(r) << name << ": " << r.error().message;
    if (r->prompt.find("get_time") == std::string::npos)
      missing.insert(name);
  }
  EXPECT_EQ(missing, tools_not_described);
}

}  // namespace
}  // namespace troupe::chatfmt
