// Real model families offline: random weights with a real tokenizer (llama.cpp's test
// vocabularies) and that family's real chat template (the release's reference templates).
// Each family renders a two-turn tool conversation whose markup becomes the tokenizer's
// special tokens, and generates from it through the whole engine.

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <boost/json.hpp>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "engine/coordinator.hpp"
#include "engine_test_util.hpp"
#include "gguf.h"
#include "mkmodel/model_spec.hpp"

namespace troupe::engine {
namespace {

using testing::collect;
using testing::run_sync;

struct Family {
  const char* name;
  const char* vocab;   // third_party/llama/testdata/vocab/ggml-vocab-<vocab>.gguf
  const char* tmpl;    // third_party/llama/testdata/templates/<tmpl>
  const char* marker;  // a piece of the template's markup that is one special token
};

const Family families[] = {
    {"llama3", "llama-bpe", "meta-llama-Llama-3.1-8B-Instruct.jinja", "<|start_header_id|>"},
    {"qwen25", "qwen2", "Qwen-Qwen2.5-7B-Instruct.jinja", "<|im_start|>"},
    {"qwen3", "qwen2", "Qwen-Qwen3-0.6B.jinja", "<|im_start|>"},
    {"qwen35", "qwen35", "Qwen3.5-4B.jinja", "<|im_start|>"},
    {"deepseek-r1", "llama-bpe", "deepseek-ai-DeepSeek-R1-Distill-Llama-8B.jinja",
     "<|begin_of_text|>"},
    {"gemma4", "gemma-4", "google-gemma-4-31B-it.jinja", "<|turn>"},
    // DeepSeek R1 with the tool-call markup its Distill templates lack (llama.cpp's own
    // template for it; its <｜tool▁...｜> markup is plain text in this vocabulary).
    {"deepseek-r1-tools", "llama-bpe", "llama-cpp-deepseek-r1.jinja", "<|begin_of_text|>"},
};

std::string read(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// The family's model, written once into the build tree (to a temporary name, then renamed):
// llama's layout, or another (`arch`).
std::string family_model(const Family& f, mkmodel::Arch arch = mkmodel::Arch::llama) {
  const auto dir = std::filesystem::path(TROUPE_BINARY_DIR) / "test-models";
  std::filesystem::create_directories(dir);
  const auto path =
      dir / (arch == mkmodel::Arch::llama
                 ? fmt::format("family-{}.gguf", f.name)
                 : fmt::format("family-{}-arch{}.gguf", f.name, static_cast<int>(arch)));
  if (std::filesystem::exists(path))
    return path.string();
  const std::filesystem::path data(TROUPE_LLAMA_TESTDATA);
  mkmodel::ModelSpec spec;
  spec.shape = mkmodel::shape_by_name("tiny").value();
  spec.seed = 1;
  spec.arch = arch;
  spec.vocab_file = (data / "vocab" / fmt::format("ggml-vocab-{}.gguf", f.vocab)).string();
  spec.chat_template = read(data / "templates" / f.tmpl);
  const auto tmp = path.string() + fmt::format(".{}.tmp", ::getpid());
  auto ok = mkmodel::write_model(spec, tmp);
  EXPECT_TRUE(ok) << (ok ? "" : ok.error().message);
  std::filesystem::rename(tmp, path);
  return path.string();
}

// One thread, `parallel` sequences of `n_ctx / parallel` cells, the family's model.
EngineOptions family_options(const Family& f, std::int32_t parallel, std::int32_t n_ctx) {
  EngineOptions o;
  o.model_path = family_model(f);
  o.model_id = f.name;
  o.engine.n_threads = 1;
  o.engine.n_parallel = parallel;
  o.engine.n_ctx = n_ctx;
  return o;
}

Task two_turns() {
  Task t;
  ChatMessage call{"assistant", ""};
  call.tool_calls.push_back({"a1b2c3d4e", "get_time", R"({"city":"Paris"})"});
  ChatMessage result{"tool", "10:30"};
  result.tool_call_id = "a1b2c3d4e";
  result.name = "get_time";
  t.prompt = std::vector<ChatMessage>{{"user", "What time is it in Paris?"}, call, result};
  t.chat.tools = {
      {"get_time", "The time in a city",
       R"({"type":"object","properties":{"city":{"type":"string"}},"required":["city"]})"}};
  t.sampling.temperature = 0.0f;
  t.stop.max_tokens = 6;
  t.stop.ignore_eos = true;
  return t;
}

class ChatFamily : public ::testing::TestWithParam<Family> {};

TEST_P(ChatFamily, ATwoTurnToolConversationRendersIntoSpecialTokensAndGenerates) {
  const Family& f = GetParam();
  Coordinator c(family_options(f, 1, 2048));
  ASSERT_EQ(c.wait_loaded().state, HealthState::ready) << c.health().message;

  auto prompt = run_sync(c.apply_template(two_turns()));
  ASSERT_TRUE(prompt) << prompt.error().message;
  EXPECT_NE(prompt->find("10:30"), std::string::npos) << *prompt;
  EXPECT_NE(prompt->find(f.marker), std::string::npos) << *prompt;
  auto marker = run_sync(c.tokenize({}, f.marker, false, true));
  ASSERT_TRUE(marker);
  EXPECT_EQ(marker->size(), 1u) << f.marker << " is one special token of the " << f.vocab
                                << " vocabulary";

  auto s = run_sync(c.generate(two_turns()));
  auto r = collect(s);
  ASSERT_TRUE(r.finished) << (r.error ? r.error->message : "");
  EXPECT_EQ(r.finished->usage.completion_tokens, 6);
  EXPECT_GT(r.finished->usage.prompt_tokens, 20);
}

INSTANTIATE_TEST_SUITE_P(Families, ChatFamily, ::testing::ValuesIn(families), [](const auto& info) {
  std::string n = info.param.name;
  std::replace(n.begin(), n.end(), '-', '_');
  return n;
});

// Qwen3.5 is a hybrid: its recurrent state cannot be cut back to an earlier token. The next
// turn of its thinking conversation renders the answer without its reasoning, and without the
// "<think>\n" its generation prompt ended with: it shares all the first turn's prompt but its
// last two tokens. The checkpoint taken 4 tokens before that prompt's end serves it (as
// llama-server's); without checkpoints the whole conversation is computed again. Random weights
// in LFM2's hybrid layout, Qwen3.5's real tokenizer and template.
TEST(ChatFamilyHybrid, Qwen35sNextTurnIsServedFromTheCheckpointBeforeTheGenerationPrompt) {
  const Family& qwen35 = families[3];
  ASSERT_STREQ(qwen35.name, "qwen35");
  const auto turn = [](std::vector<ChatMessage> messages) {
    Task t;
    t.prompt = std::move(messages);
    t.sampling.temperature = 0.0f;
    t.stop.max_tokens = 4;
    t.stop.ignore_eos = true;
    return t;
  };
  const ChatMessage system{"system", "Be brief."};
  const ChatMessage question{"user", "What is two and two? Answer with one word, please."};
  ChatMessage answer{"assistant", "Four."};
  answer.reasoning_content = "Two and two make four.";
  for (const std::int32_t checkpoints : {8, 0}) {
    SCOPED_TRACE(checkpoints);
    EngineOptions o = family_options(qwen35, 1, 2048);
    o.model_path = family_model(qwen35, mkmodel::Arch::lfm2);
    o.engine.ctx_checkpoints = checkpoints;
    Coordinator c(o);
    ASSERT_EQ(c.wait_loaded().state, HealthState::ready) << c.health().message;
    const auto first = run_sync(c.apply_template(turn({system, question})));
    ASSERT_TRUE(first);
    ASSERT_TRUE(first->ends_with("<|im_start|>assistant\n<think>\n")) << *first;
    auto s1 = run_sync(c.generate(turn({system, question})));
    auto r1 = collect(s1);
    ASSERT_TRUE(r1.finished) << (r1.error ? r1.error->message : "");
    const std::int32_t n_first = r1.finished->usage.prompt_tokens;
    auto s2 =
        run_sync(c.generate(turn({system, question, answer, {"user", "And three and three?"}})));
    auto r2 = collect(s2);
    ASSERT_TRUE(r2.finished) << (r2.error ? r2.error->message : "");
    EXPECT_GT(r2.finished->usage.prompt_tokens, n_first);
    EXPECT_EQ(r2.finished->usage.cached_tokens, checkpoints > 0 ? n_first - 4 : 0);
  }
}

// ------------------------------------------------------------ forced tool calls

// The families above and Devstral, Mistral Nemo and gpt-oss, whose markup is plain text in
// the vocabulary at hand (no test vocabulary has their special tokens): the grammar works on
// text either way. Nemo, gpt-oss and Gemma 4 are the families whose call grammars chatfmt
// bounds (llama.cpp's keep free-text slots inside the call: Nemo's "id", gpt-oss's channel
// header, Gemma 4's argument keys and values).
const Family forced_families[] = {
    families[0],
    families[1],
    families[2],
    families[3],
    families[4],
    families[5],
    {"devstral", "llama-spm", "unsloth-mistral-Devstral-Small-2507.jinja", nullptr},
    {"mistral-nemo", "llama-spm", "mistralai-Mistral-Nemo-Instruct-2407.jinja", nullptr},
    {"gpt-oss", "llama-bpe", "openai-gpt-oss-120b.jinja", nullptr},
    // Its template opens the thinking block itself: enable_thinking=false closes it (chatfmt),
    // else a random model could think until max_tokens before the forced call.
    families[6],
};

// Functions whose arguments a random-weight model can finish: bounded integers and booleans
// (several families write string arguments as raw text up to a closing tag, which a random
// model may never reach).
chatfmt::Tool weather_tool() {
  return {"get_weather", "The weather for the next days",
          R"({"type":"object","properties":{"days":{"type":"integer","minimum":1,"maximum":7},
              "metric":{"type":"boolean"}},
              "required":["days","metric"],"additionalProperties":false})"};
}

Task forced_call(chatfmt::ToolChoice choice, std::uint32_t seed) {
  Task t;
  t.prompt = std::vector<ChatMessage>{{"user", "What is the weather in Paris this week?"}};
  t.chat.tools = {{"get_time", "The time at a UTC offset",
                   R"({"type":"object","properties":{"offset":{"type":"integer","minimum":-12,
                       "maximum":14}},"required":["offset"]})"},
                  weather_tool()};
  t.chat.tool_choice = choice;
  if (choice == chatfmt::ToolChoice::function)
    t.chat.tool_choice_function = "get_weather";
  t.chat.parallel_tool_calls = false;
  // Thinking would let a random model wander inside <think> until it runs out of tokens.
  t.chat.template_kwargs = {{"enable_thinking", "false"}};
  t.sampling.temperature = 1.0f;  // flat distributions: the grammar does all the work
  t.sampling.seed = seed;
  t.stop.max_tokens = 400;
  return t;
}

// The calls of a stream, put together from their deltas the way a client does.
std::vector<chatfmt::ToolCall> calls_of(const testing::Collected& r) {
  std::vector<chatfmt::ToolCall> calls;
  for (const auto& d : r.deltas) {
    for (const auto& c : d.tool_calls) {
      if (calls.size() <= c.index)
        calls.resize(c.index + 1);
      auto& call = calls[c.index];
      if (!c.id.empty()) {
        EXPECT_TRUE(call.id.empty()) << "a call is announced once";
        call.id = c.id;
        call.name = c.name;
      }
      call.arguments += c.arguments;
    }
  }
  return calls;
}

class ForcedToolCall : public ::testing::TestWithParam<Family> {};

TEST_P(ForcedToolCall, RequiredAndNamedChoicesGiveAValidCallEvenFromRandomWeights) {
  const Family& f = GetParam();
  Coordinator c(family_options(f, 2, 4096));
  ASSERT_EQ(c.wait_loaded().state, HealthState::ready) << c.health().message;

  for (auto choice : {chatfmt::ToolChoice::required, chatfmt::ToolChoice::function}) {
    for (std::uint32_t seed : {1u, 2u}) {
      SCOPED_TRACE(fmt::format("{} choice {} seed {}", f.name, static_cast<int>(choice), seed));
      auto s = run_sync(c.generate(forced_call(choice, seed)));
      auto r = collect(s);
      if (std::string_view(f.name) == "deepseek-r1") {
        // llama.cpp reads no tool-call format from this template: a forced call is refused,
        // not quietly answered with free text.
        ASSERT_TRUE(r.error) << r.text;
        EXPECT_EQ(r.error->param, "tool_choice");
        EXPECT_NE(r.error->message.find("cannot force a tool call"), std::string::npos);
        continue;
      }
      ASSERT_TRUE(r.finished) << (r.error ? r.error->message : "");
      const auto calls = calls_of(r);
      std::string reasoning;
      for (const auto& d : r.deltas)
        reasoning += d.reasoning;
      EXPECT_EQ(r.finished->reason, FinishReason::tool_calls)
          << "content: " << r.text << "\nreasoning: " << reasoning << "\ncalls: " << calls.size()
          << (calls.empty() ? "" : " " + calls[0].name + " " + calls[0].arguments)
          << "\nraw: " << run_sync(c.detokenize({}, r.tokens)).value();
      EXPECT_EQ(r.text, "") << "no free text before a forced call";
      ASSERT_EQ(calls.size(), 1u) << r.text;
      EXPECT_FALSE(calls[0].id.empty());
      boost::system::error_code ec;
      const auto args = boost::json::parse(calls[0].arguments, ec);
      ASSERT_FALSE(ec) << calls[0].arguments;
      ASSERT_TRUE(args.is_object()) << calls[0].arguments;
      const auto& obj = args.as_object();
      if (choice == chatfmt::ToolChoice::function || calls[0].name == "get_weather") {
        EXPECT_EQ(calls[0].name, "get_weather");
        ASSERT_TRUE(obj.contains("days") && obj.contains("metric")) << calls[0].arguments;
        ASSERT_TRUE(obj.at("days").is_int64()) << calls[0].arguments;
        EXPECT_GE(obj.at("days").as_int64(), 1);
        EXPECT_LE(obj.at("days").as_int64(), 7);
        EXPECT_TRUE(obj.at("metric").is_bool()) << calls[0].arguments;
        EXPECT_EQ(obj.size(), 2u) << calls[0].arguments;
      } else {
        EXPECT_EQ(calls[0].name, "get_time");
        ASSERT_TRUE(obj.contains("offset") && obj.at("offset").is_int64()) << calls[0].arguments;
        EXPECT_GE(obj.at("offset").as_int64(), -12);
        EXPECT_LE(obj.at("offset").as_int64(), 14);
      }
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Families, ForcedToolCall, ::testing::ValuesIn(forced_families),
                         [](const auto& info) {
                           std::string n = info.param.name;
                           std::replace(n.begin(), n.end(), '-', '_');
                           return n;
                         });

// A thinking family's reasoning is split from its answer: a grammar forces the output
// "<think>...</think>" then an answer, and the parser reads it as reasoning plus content.
TEST(ThinkingFamily, AGrammarForcedThinkBlockBecomesReasoningContent) {
  const Family& f = families[2];  // qwen3
  Coordinator c(family_options(f, 1, 2048));
  ASSERT_EQ(c.wait_loaded().state, HealthState::ready) << c.health().message;
  Task t;
  t.prompt = std::vector<ChatMessage>{{"user", "Think, then answer."}};
  t.sampling.temperature = 1.0f;
  t.sampling.seed = 7;
  t.sampling.grammar = GrammarSpec{
      R"(root ::= "<think>
the sky " ("is blue" | "scatters light") "
</think>

It is " ("blue" | "azure") ".")",
      false,
      {},
      {},
      {}};
  t.stop.max_tokens = 60;
  auto s = run_sync(c.generate(std::move(t)));
  auto r = collect(s);
  ASSERT_TRUE(r.finished) << (r.error ? r.error->message : "");
  std::string reasoning;
  for (const auto& d : r.deltas)
    reasoning += d.reasoning;
  // The library keeps the newline before </think>, as llama-server returns it.
  while (!reasoning.empty() && reasoning.back() == '\n')
    reasoning.pop_back();
  EXPECT_TRUE(reasoning == "the sky is blue" || reasoning == "the sky scatters light")
      << "reasoning: '" << reasoning << "', content: '" << r.text << "'";
  EXPECT_TRUE(r.text == "It is blue." || r.text == "It is azure.") << r.text;
  // Usage counts the reasoning's tokens (its words at least; a tag goes with the text it
  // precedes), and not the answer's.
  const auto& u = r.finished->usage;
  auto words = run_sync(c.tokenize({}, reasoning, false, false));
  ASSERT_TRUE(words);
  EXPECT_GE(u.reasoning_tokens, static_cast<std::int32_t>(words->size())) << reasoning;
  auto answer = run_sync(c.tokenize({}, r.text, false, false));
  ASSERT_TRUE(answer);
  EXPECT_LE(u.reasoning_tokens, u.completion_tokens - static_cast<std::int32_t>(answer->size()))
      << u.completion_tokens;
}

// A reasoning budget (llama-server's reasoning_budget_tokens): DeepSeek R1's template opens
// the block in the prompt, so the answer's first tokens count; once 8 are spent the message
// and the closing tag are written for the model and the answer goes on as content. Without a
// budget random weights never close it.
TEST(ThinkingFamily, AReasoningBudgetClosesTheBlockAfterItsTokens) {
  const Family& f = families[4];  // deepseek-r1
  Coordinator c(family_options(f, 1, 2048));
  ASSERT_EQ(c.wait_loaded().state, HealthState::ready) << c.health().message;
  // The message and the tag, each tokenized alone.
  auto forced = run_sync(c.tokenize({}, " Enough.", false, true));
  auto tag = run_sync(c.tokenize({}, "</think>", false, true));
  ASSERT_TRUE(forced && tag);
  forced->insert(forced->end(), tag->begin(), tag->end());
  // The same 40 sampled tokens of `on`, with the request's budget (unset: the server's).
  const auto answer = [](Coordinator& on, std::optional<std::int32_t> budget,
                         std::optional<std::string> message) {
    Task t;
    t.prompt = std::vector<ChatMessage>{{"user", "Think, then answer."}};
    t.sampling.temperature = 1.0f;
    t.sampling.seed = 7;
    t.stop.max_tokens = 40;
    t.stop.ignore_eos = true;
    t.reasoning_budget = budget;
    t.reasoning_budget_message = std::move(message);
    auto s = run_sync(on.generate(std::move(t)));
    return collect(s);
  };
  const auto r = answer(c, 8, " Enough.");
  ASSERT_TRUE(r.finished) << (r.error ? r.error->message : "");
  const auto at = std::search(r.tokens.begin(), r.tokens.end(), forced->begin(), forced->end());
  ASSERT_NE(at, r.tokens.end()) << "the closing tag was not forced";
  // At the budget, or a few tokens later where the budget's last token left a UTF-8
  // character unfinished.
  EXPECT_GE(at - r.tokens.begin(), 8);
  EXPECT_LE(at - r.tokens.begin(), 12);
  std::string reasoning;
  for (const auto& d : r.deltas)
    reasoning += d.reasoning;
  EXPECT_TRUE(reasoning.ends_with(" Enough.")) << reasoning;
  EXPECT_FALSE(r.text.empty());
  EXPECT_EQ(r.finished->usage.completion_tokens, 40);

  const auto unbounded = answer(c, std::nullopt, " Enough.");
  ASSERT_TRUE(unbounded.finished);
  EXPECT_EQ(
      std::search(unbounded.tokens.begin(), unbounded.tokens.end(), forced->begin(), forced->end()),
      unbounded.tokens.end());
  EXPECT_TRUE(unbounded.text.empty()) << "an unclosed block is all reasoning";

  // The server's --reasoning-budget for a request that sets none; -1 in the request wins.
  EngineOptions o = family_options(f, 1, 2048);
  o.reasoning_budget = 8;
  o.reasoning_budget_message = " Enough.";
  Coordinator server_wide(std::move(o));
  ASSERT_EQ(server_wide.wait_loaded().state, HealthState::ready);
  EXPECT_EQ(answer(server_wide, std::nullopt, std::nullopt).tokens, r.tokens);
  EXPECT_EQ(answer(server_wide, -1, std::nullopt).tokens, unbounded.tokens);
}

// The budget sees the block closed however the model tokenized the tag: here `>\n\n` is one
// token of the vocabulary (the Llama 3 tokenizer's, as in context), which the tag tokenized
// alone (`</` `think` `>`) does not match. A grammar writes a short block and an answer; the
// budget of 9 tokens is spent only if the close was missed, and then its forced message would
// break the grammar.
TEST(ThinkingFamily, ABudgetSeesTheBlockClosedInAnyTokenization) {
  const Family& f = families[4];  // deepseek-r1: its template opens the block
  Coordinator c(family_options(f, 1, 2048));
  ASSERT_EQ(c.wait_loaded().state, HealthState::ready) << c.health().message;
  auto merged = run_sync(c.tokenize({}, ">\n\n", false, true));
  ASSERT_TRUE(merged);
  ASSERT_EQ(merged->size(), 1u);
  Task t;
  t.prompt = std::vector<ChatMessage>{{"user", "Think, then answer."}};
  t.sampling.temperature = 1.0f;
  t.sampling.seed = 7;
  t.sampling.logit_bias.emplace_back(merged->front(), 20.0f);
  t.sampling.grammar =
      GrammarSpec{R"g(root ::= "Some thought.\n</think>\n\nIt is blue.")g", false, {}, {}, {}};
  t.stop.max_tokens = 40;
  t.reasoning_budget = 9;
  t.reasoning_budget_message = " Enough.";
  auto s = run_sync(c.generate(std::move(t)));
  auto r = collect(s);
  ASSERT_TRUE(r.finished) << (r.error ? r.error->message : "");
  EXPECT_NE(std::find(r.tokens.begin(), r.tokens.end(), merged->front()), r.tokens.end())
      << "the tag was written with the merged token";
  EXPECT_GT(r.tokens.size(), 9u);
  EXPECT_EQ(r.text, "\n\nIt is blue.");
}

// Mistral Nemo's template with llama-spm's vocabulary in which one token is `[TOOL_CALLS]`, a
// control token, as in Mistral's own vocabularies (the test vocabulary has no such token).
std::string control_marker_model() {
  const auto dir = std::filesystem::path(TROUPE_BINARY_DIR) / "test-models";
  std::filesystem::create_directories(dir);
  const auto path = dir / "family-mistral-control-marker.gguf";
  if (std::filesystem::exists(path))
    return path.string();
  const std::filesystem::path data(TROUPE_LLAMA_TESTDATA);
  gguf_init_params params{/*no_alloc=*/true, /*ctx=*/nullptr};
  gguf_context* g =
      gguf_init_from_file((data / "vocab" / "ggml-vocab-llama-spm.gguf").string().c_str(), params);
  EXPECT_NE(g, nullptr);
  const std::int64_t tokens_key = gguf_find_key(g, "tokenizer.ggml.tokens");
  const std::int64_t types_key = gguf_find_key(g, "tokenizer.ggml.token_type");
  const auto n = gguf_get_arr_n(g, tokens_key);
  std::vector<std::string> texts;
  for (std::size_t i = 0; i < n; ++i)
    texts.emplace_back(gguf_get_arr_str(g, tokens_key, i));
  const auto* t = static_cast<const std::int32_t*>(gguf_get_arr_data(g, types_key));
  std::vector<std::int32_t> types(t, t + n);
  texts.back() = "[TOOL_CALLS]";
  types.back() = 3;  // LLAMA_TOKEN_TYPE_CONTROL
  std::vector<const char*> ptrs;
  for (const auto& s : texts)
    ptrs.push_back(s.c_str());
  gguf_set_arr_str(g, "tokenizer.ggml.tokens", ptrs.data(), ptrs.size());
  gguf_set_arr_data(g, "tokenizer.ggml.token_type", GGUF_TYPE_INT32, types.data(), types.size());
  const auto vocab = dir / fmt::format("vocab-control-marker.{}.gguf", ::getpid());
  EXPECT_TRUE(gguf_write_to_file(g, vocab.string().c_str(), /*only_meta=*/true));
  gguf_free(g);
  mkmodel::ModelSpec spec;
  spec.shape = mkmodel::shape_by_name("tiny").value();
  spec.seed = 1;
  spec.vocab_file = vocab.string();
  spec.chat_template = read(data / "templates" / "mistralai-Mistral-Nemo-Instruct-2407.jinja");
  const auto tmp = path.string() + fmt::format(".{}.tmp", ::getpid());
  auto ok = mkmodel::write_model(spec, tmp);
  EXPECT_TRUE(ok) << (ok ? "" : ok.error().message);
  std::filesystem::remove(vocab);
  std::filesystem::rename(tmp, path);
  return path.string();
}

// A tool-call marker that is a control token reaches the output parser as its text (control
// tokens are otherwise written as nothing): the call is read as a call, not as content.
TEST(ChatFamilyMarkup, AControlTokenMarkerIsShownToTheParser) {
  EngineOptions o;
  o.model_path = control_marker_model();
  o.model_id = "mistral-control";
  o.engine.n_threads = 1;
  o.engine.n_parallel = 1;
  o.engine.n_ctx = 4096;
  Coordinator c(std::move(o));
  ASSERT_EQ(c.wait_loaded().state, HealthState::ready) << c.health().message;
  auto marker = run_sync(c.tokenize({}, "[TOOL_CALLS]", false, true));
  ASSERT_TRUE(marker);
  ASSERT_EQ(marker->size(), 1u);
  auto shown = run_sync(c.detokenize({}, *marker));
  ASSERT_TRUE(shown);

  Task t = forced_call(chatfmt::ToolChoice::function, 1);
  // The marker as its one control token rather than spelled out in pieces.
  t.sampling.logit_bias.emplace_back(marker->front(), 30.0f);
  auto s = run_sync(c.generate(std::move(t)));
  auto r = collect(s);
  ASSERT_TRUE(r.finished) << (r.error ? r.error->message : "");
  ASSERT_FALSE(r.tokens.empty());
  EXPECT_EQ(r.tokens.front(), marker->front());
  const auto calls = calls_of(r);
  EXPECT_EQ(r.finished->reason, FinishReason::tool_calls) << r.text;
  ASSERT_EQ(calls.size(), 1u) << r.text;
  EXPECT_EQ(calls[0].name, "get_weather");
  EXPECT_EQ(r.text, "");
}

// A lazy grammar (a tool call's, waiting for its trigger) sees nothing inside the reasoning
// block: a trigger the model writes while it reasons starts no call (llama-server's rule). The
// budget writes " use TOOL" inside DeepSeek R1's block; a grammar triggered by "TOOL" that
// saw it would then refuse the closing tag. Once the block closes the grammar reads the
// closing tag, so a trigger on that tag constrains the answer.
TEST(ThinkingFamily, ALazyGrammarWaitsForTheReasoningBlockToClose) {
  const Family& f = families[4];  // deepseek-r1: its template opens the block
  Coordinator c(family_options(f, 1, 2048));
  ASSERT_EQ(c.wait_loaded().state, HealthState::ready) << c.health().message;
  const auto answer = [&](const char* trigger, const char* gbnf) {
    Task t;
    t.prompt = std::vector<ChatMessage>{{"user", "Think, then answer."}};
    t.sampling.temperature = 1.0f;
    t.sampling.seed = 7;
    t.sampling.grammar = GrammarSpec{gbnf, true, {trigger}, {}, {}};
    t.stop.max_tokens = 40;
    t.stop.ignore_eos = true;
    t.reasoning_budget = 4;
    t.reasoning_budget_message = " use TOOL";
    auto s = run_sync(c.generate(std::move(t)));
    return collect(s);
  };
  const auto reasoning_of = [](const testing::Collected& r) {
    std::string reasoning;
    for (const auto& d : r.deltas)
      reasoning += d.reasoning;
    return reasoning;
  };

  const auto r = answer("TOOL", R"g(root ::= "TOOL(" [0-9] ")")g");
  ASSERT_TRUE(r.finished) << (r.error ? r.error->message : "");
  EXPECT_TRUE(reasoning_of(r).ends_with(" use TOOL")) << reasoning_of(r);
  EXPECT_EQ(r.finished->usage.completion_tokens, 40) << "the answer went on unconstrained";
  EXPECT_FALSE(r.text.empty());

  const auto closed =
      answer("</think>", R"(root ::= "</think>" "\n\nIt is " ("blue" | "azure") ".")");
  ASSERT_TRUE(closed.finished) << (closed.error ? closed.error->message : "");
  EXPECT_TRUE(reasoning_of(closed).ends_with(" use TOOL")) << reasoning_of(closed);
  EXPECT_TRUE(closed.text == "\n\nIt is blue." || closed.text == "\n\nIt is azure.") << closed.text;
}

}  // namespace
}  // namespace troupe::engine
