// The incremental OutputParser (which skips the re-parse while plain text extends plain
// content or reasoning) must give byte for byte the deltas of the parser that re-parses the
// whole output on every feed: checked on many generated outputs per family, cut into pieces
// at random places (markers split across pieces included) and at word boundaries (the way
// tokens come, where the skip happens most).

#include <random>

#include "test_support.hpp"

namespace troupe::chatfmt {
namespace {

using testing::get_time;
using testing::load;
using testing::special_function;

struct Family {
  const char* file;
  std::vector<std::string> markup;  // the family's markers and call pieces
};

const std::vector<std::string> shared_pieces = {"Hello",
                                                " world",
                                                ",",
                                                ".",
                                                " the",
                                                " sky",
                                                " is",
                                                " blue",
                                                "!",
                                                " I'm",
                                                "?",
                                                " ",
                                                "\n",
                                                "\n\n",
                                                "  ",
                                                "42",
                                                " caf\xc3\xa9",
                                                " \xe4\xbd\xa0\xe5\xa5\xbd",
                                                "<",
                                                "</",
                                                "[",
                                                "{",
                                                "}",
                                                "|",
                                                ":",
                                                "=",
                                                "\"",
                                                " to",
                                                "call",
                                                "think",
                                                "tool",
                                                "function",
                                                "_",
                                                "analysis",
                                                "final"};

const Family families[] = {
    {"Qwen-Qwen2.5-7B-Instruct.jinja",
     {"<tool_call>", "</tool_call>",
      "<tool_call>\n{\"name\": \"get_time\", \"arguments\": "
      "{\"city\": \"Paris\"}}\n</tool_call>",
      "{\"name\": \"special_function\", \"arguments\": "
      "{\"arg1\": 1}}",
      "<tool_", "<tool_call"}},
    {"Qwen-Qwen3-0.6B.jinja",
     {"<think>", "</think>", "<think>\nI'm\nthinking\n</think>\n\n", "<tool_call>", "</tool_call>",
      "<function=get_time>", "<parameter=city>", "</parameter>", "</function>", "<thi", "</thin",
      "{\"name\": \"get_time\", \"arguments\": {\"city\": \"Paris\"}}"}},
    {"meta-llama-Llama-3.1-8B-Instruct.jinja",
     {"{\"name\": \"get_time\", \"parameters\": {\"city\": \"Paris\"}}",
      "{\"type\": \"function\", \"name\": \"special_function\", \"parameters\": {\"arg1\": 1}}",
      "<|python_tag|>", "{\"name\"", "<|eom_id|>"}},
    {"mistralai-Mistral-Nemo-Instruct-2407.jinja",
     {"[TOOL_CALLS]",
      "[TOOL_CALLS][{\"name\": \"get_time\", \"arguments\": {\"city\": "
      "\"Paris\"}, \"id\": \"a1b2c3d4e\"}]",
      "[TOOL", "[{\"name\""}},
    {"unsloth-mistral-Devstral-Small-2507.jinja",
     {"[TOOL_CALLS]", "[TOOL_CALLS]get_time[ARGS]{\"city\": \"Paris\"}", "[ARGS]", "[TOOL_"}},
    {"openai-gpt-oss-120b.jinja",
     {"<|channel|>", "<|message|>", "<|end|>", "<|start|>assistant", "<|channel|>analysis",
      "<|channel|>final<|message|>", "<|channel|>analysis<|message|>I'm\nthinking<|end|>",
      " to=functions.get_time<|channel|>commentary <|constrain|>json<|message|>{\"city\": "
      "\"Paris\"}",
      "<|call|>", "<|chan"}},
    {"google-gemma-4-31B-it.jinja",
     {"<|channel>thought\n", "<channel|>",
      "<|tool_call>call:get_time{city:<|\"|>Paris<|\"|>}"
      "<tool_call|>",
      "<|tool_call>", "<tool_call|>", "<|\"|>", "<|chan", "<|tool"}},
    {"deepseek-ai-DeepSeek-R1-Distill-Llama-8B.jinja",
     {"<think>", "</think>", "<think>I'm thinking</think>",
      "<\xef\xbd\x9ctool\xe2\x96\x81"
      "calls\xe2\x96\x81"
      "begin\xef\xbd\x9c>",
      "</thi"}},
};

// A message with the ids left out: each parser draws its own.
Message without_ids(Message m) {
  for (auto& c : m.tool_calls)
    c.id = c.id.empty() ? "" : "id";
  return m;
}
MessageDelta without_ids(MessageDelta d) {
  for (auto& c : d.tool_calls)
    c.id = c.id.empty() ? "" : "id";
  return d;
}

// Cuts `output` into pieces: at random places (any byte boundary of whole UTF-8 characters)
// or before each space and punctuation (word-sized pieces, like tokens).
std::vector<std::string> cut(const std::string& output, std::mt19937& rng) {
  std::vector<std::string> pieces;
  const bool words = rng() % 2 == 0;
  std::string cur;
  for (std::size_t i = 0; i < output.size();) {
    const std::size_t n = testing::utf8_length(static_cast<unsigned char>(output[i]));
    const char c = output[i];
    const bool boundary =
        words ? !std::isalnum(static_cast<unsigned char>(c)) || c == ' ' : rng() % 3 == 0;
    if (boundary && !cur.empty()) {
      pieces.push_back(std::move(cur));
      cur.clear();
    }
    cur += output.substr(i, n);
    i += n;
  }
  if (!cur.empty())
    pieces.push_back(std::move(cur));
  return pieces;
}

TEST(IncrementalParse, GivesTheDeltasOfTheWholeReparseOnGeneratedOutputs) {
  std::mt19937 rng(17);
  int skipped_any = 0;
  for (const auto& f : families) {
    SCOPED_TRACE(f.file);
    auto t = load(f.file);
    ASSERT_TRUE(t);
    std::vector<std::string> pieces = shared_pieces;
    pieces.insert(pieces.end(), f.markup.begin(), f.markup.end());
    // With tools (auto) and without, thinking on and off, each reasoning format.
    for (int variant = 0; variant < 6; ++variant) {
      ChatOptions o;
      if (variant % 2 == 0)
        o.tools = {special_function(), get_time()};
      if (variant >= 2)
        o.template_kwargs = {{"enable_thinking", variant >= 4 ? "false" : "true"}};
      o.reasoning_format = variant == 3   ? ReasoningFormat::none
                           : variant == 5 ? ReasoningFormat::deepseek
                                          : ReasoningFormat::automatic;
      auto r = t->render({{"user", "Hey"}}, o);
      ASSERT_TRUE(r) << r.error().message;
      for (int n = 0; n < 60; ++n) {
        std::string output;
        const std::size_t count = 1 + rng() % 40;
        for (std::size_t k = 0; k < count; ++k) {
          // Mostly prose, sometimes markup.
          output += rng() % 4 == 0 ? pieces[rng() % pieces.size()] : shared_pieces[rng() % 12];
        }
        SCOPED_TRACE(::testing::Message() << "variant " << variant << " output: " << output);
        auto inc = OutputParser::create(r->parser, true);
        auto full = OutputParser::create(r->parser, false);
        ASSERT_TRUE(inc && full);
        const auto cuts = cut(output, rng);
        for (std::size_t i = 0; i <= cuts.size(); ++i) {
          const bool final = i == cuts.size();
          const std::string piece = final ? "" : cuts[i];
          const auto a = (*inc)->feed(piece, final);
          const auto b = (*full)->feed(piece, final);
          ASSERT_EQ(without_ids(a), without_ids(b))
              << "piece " << i << " '" << piece << "': '" << a.content << "' / '" << a.reasoning
              << "' vs '" << b.content << "' / '" << b.reasoning << "'";
          ASSERT_EQ(without_ids((*inc)->message()), without_ids((*full)->message()))
              << "piece " << i << " '" << piece << "'";
        }
        skipped_any += (*inc)->reparses() < (*full)->reparses() ? 1 : 0;
      }
    }
  }
  // The property holds only if the skip happens at all.
  EXPECT_GT(skipped_any, 100);
}

// Prose after a call's marker prefix split across pieces: each piece re-parses, and a plain
// piece right after the marker's completion is not taken for content.
TEST(IncrementalParse, AMarkerSplitAcrossPiecesStillStartsACall) {
  auto t = load("Qwen-Qwen2.5-7B-Instruct.jinja");
  ASSERT_TRUE(t);
  ChatOptions o;
  o.tools = {get_time()};
  auto r = t->render({{"user", "Hey"}}, o);
  ASSERT_TRUE(r);
  auto p = OutputParser::create(r->parser);
  ASSERT_TRUE(p);
  testing::Accumulated acc;
  for (const char* piece :
       {"Let", " me", " check", ".", " <", "tool", "_", "call", ">", "\n", "{\"name\": \"get",
        "_time\", \"arguments\": {\"city\": \"", "Paris", "\"}}", "\n</tool_call>"})
    testing::apply((*p)->feed(piece, false), acc);
  testing::apply((*p)->feed("", true), acc);
  EXPECT_EQ(acc.message.content, "Let me check. ");
  ASSERT_EQ(acc.message.tool_calls.size(), 1u);
  EXPECT_EQ(acc.message.tool_calls[0].name, "get_time");
  EXPECT_EQ(testing::canonical(acc.message.tool_calls[0].arguments),
            testing::canonical(R"({"city":"Paris"})"));
  EXPECT_LT((*p)->reparses(), 16) << "the prose pieces were not re-parsed";
}

}  // namespace
}  // namespace troupe::chatfmt
