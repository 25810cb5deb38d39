// chatfmt_bench: what chat templates and output parsing cost per request and per token
// (issue 17), on real templates of the llama.cpp release (testdata/templates):
//
//   render/<template>/tools:N   ChatTemplate::render of a six-message conversation (system
//                               prompt, three user turns, two answers; about 700 tokens),
//                               without tools and with the first 5 built-in functions of
//                               `troupe bench --tools` (the server does this once per request,
//                               on its tokenizer thread)
//   parser_create/<template>    OutputParser::create from that render (once per request)
//   parse/<template>/<output>   OutputParser::feed of one ~300-token answer in token-sized
//                               pieces, as a SequenceActor feeds it: `plain` (request without
//                               tools), `tools,no_call` (5 tools, the answer is prose),
//                               `tools,call` (5 tools, the answer is a send_email call whose
//                               body is the prose). Qwen3 answers start with a short
//                               <think> block. One iteration is one whole answer (the
//                               parser's creation not included); `per_token` is its CPU time
//                               divided by its pieces.
//   parse_length/<template>/tokens:N   `tools,no_call` at 100, 300 and 1000 pieces: a feed
//                               that re-parses re-parses the whole output (as llama-server
//                               does), so its cost grows with the output's length.
//   parse_full/..., parse_length_full/...   the same with the incremental path off (every
//                               feed re-parses the whole output): the reference. `reparses`
//                               counts the feeds of one answer that re-parsed.
//
// Pieces: words with their leading space, runs of at most 6 letters or digits, single other
// characters, and special tokens (<tool_call>, <think>, ...) whole: roughly a BPE tokenizer's
// pieces. Not part of the test run.
//
//   chatfmt_bench [--benchmark_filter=...] [--benchmark_repetitions=N]

#include <benchmark/benchmark.h>
#include <fmt/format.h>

#include <boost/json/serialize.hpp>
#include <cctype>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "bench/tool_sets.hpp"
#include "chatfmt/chat_format.hpp"

namespace {

namespace chatfmt = troupe::chatfmt;

struct TemplateCase {
  const char* label;
  const char* file;
  const char* bos;
  const char* eos;
  bool thinks;     // answers start with <think>...</think>
  bool bare_call;  // a tool call is the bare JSON {"name", "parameters"} (Llama 3.x)
};

const TemplateCase kTemplates[] = {
    {"qwen2.5", "Qwen-Qwen2.5-7B-Instruct.jinja", "", "<|im_end|>", false, false},
    {"llama3.1", "meta-llama-Llama-3.1-8B-Instruct.jinja", "<|begin_of_text|>", "<|eot_id|>", false,
     true},
    {"qwen3", "Qwen-Qwen3-0.6B.jinja", "", "<|im_end|>", true, false},
};

std::string read_file(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

std::unique_ptr<chatfmt::ChatTemplate> load(const TemplateCase& t) {
  auto source = read_file(std::filesystem::path(TROUPE_LLAMA_TESTDATA) / "templates" / t.file);
  auto r = chatfmt::ChatTemplate::create(source, t.bos, t.eos);
  if (!r) {
    fmt::print(stderr, "{}: {}\n", t.file, r.error().message);
    std::exit(1);
  }
  return std::move(r.value());
}

// The built-in functions of `troupe bench --tools`, as the server passes them to chatfmt.
std::vector<chatfmt::Tool> tools(std::size_t n) {
  std::vector<chatfmt::Tool> out;
  for (const auto& t : troupe::bench::builtin_tools(n)) {
    const auto& fn = t.at("function").as_object();
    out.push_back({std::string(fn.at("name").as_string()),
                   std::string(fn.at("description").as_string()),
                   boost::json::serialize(fn.at("parameters"))});
  }
  return out;
}

// Deterministic English-like prose of `words` words.
std::string prose(std::size_t words) {
  static const char* kWords[] = {
      "the",     "river", "ran",    "past",    "old",     "mill",    "where",  "children",
      "played",  "every", "summer", "while",   "their",   "parents", "worked", "in",
      "fields",  "of",    "wheat",  "and",     "barley",  "a",       "quiet",  "wind",
      "carried", "songs", "from",   "distant", "hills",   "across",  "valley", "towards",
      "sea",     "that",  "shone",  "under",   "morning", "sun",     "people", "said"};
  std::string out;
  for (std::size_t i = 0; i < words; ++i) {
    std::string w = kWords[(i * 7 + i / 13) % std::size(kWords)];
    if (i % 12 == 0)
      w[0] = static_cast<char>(std::toupper(w[0]));
    if (i > 0)
      out += i % 60 == 0 ? "\n\n" : " ";
    out += w;
    if (i % 12 == 11)
      out += '.';
  }
  return out;
}

std::vector<chatfmt::Message> conversation() {
  return {{"system",
           "You are a helpful assistant for a travel agency. Answer briefly and precisely, use "
           "the tools when they help, and ask before booking anything."},
          {"user", "I am planning a trip to Lisbon in May with two friends. " + prose(40)},
          {"assistant", prose(150)},
          {"user", "That sounds good. What about the weather then, and the restaurants?"},
          {"assistant", prose(200)},
          {"user", "Please write an e-mail to Ana with the plan so far. " + prose(30)}};
}

// Splits text into token-sized pieces (see the header comment).
std::vector<std::string> pieces(const std::string& text) {
  static const char* kSpecial[] = {"<tool_call>", "</tool_call>", "<think>", "</think>"};
  std::vector<std::string> out;
  std::size_t i = 0;
  auto alnum = [&](std::size_t k) {
    return k < text.size() && std::isalnum(static_cast<unsigned char>(text[k]));
  };
  while (i < text.size()) {
    bool special = false;
    for (const char* s : kSpecial) {
      if (text.compare(i, std::strlen(s), s) == 0) {
        out.emplace_back(s);
        i += std::strlen(s);
        special = true;
        break;
      }
    }
    if (special)
      continue;
    std::size_t start = i;
    if (text[i] == ' ' && alnum(i + 1))
      ++i;
    if (alnum(i)) {
      while (alnum(i) && i - start < 6)
        ++i;
    } else {
      ++i;
    }
    out.push_back(text.substr(start, i - start));
  }
  return out;
}

enum class Output { plain, tools_no_call, tools_call };

// The model's answer: prose, or a send_email call whose body is the prose, in the template's
// format; words are added until it has at least `target` pieces.
std::string answer_text(const TemplateCase& t, Output kind, std::size_t words) {
  std::string out = t.thinks ? "<think>\n" + prose(30) + "\n</think>\n\n" : "";
  if (kind != Output::tools_call)
    return out + prose(words);
  const std::string args = R"({"to": ["ana@example.com"], "subject": "Lisbon in May", "body": ")" +
                           prose(words) + R"("})";
  if (t.bare_call)
    return out + R"({"name": "send_email", "parameters": )" + args + "}";
  return out +
         "I will send it now.\n<tool_call>\n{\"name\": \"send_email\", \"arguments\": " + args +
         "}\n</tool_call>";
}

std::vector<std::string> answer(const TemplateCase& t, Output kind, std::size_t target) {
  for (std::size_t words = 10;; words += 2) {
    auto p = pieces(answer_text(t, kind, words));
    if (p.size() >= target)
      return p;
  }
}

chatfmt::ParserConfig parser_config(const TemplateCase& t, std::size_t n_tools) {
  chatfmt::ChatOptions options;
  options.tools = tools(n_tools);
  options.stream = true;
  auto r = load(t)->render(conversation(), options);
  if (!r) {
    fmt::print(stderr, "{}: {}\n", t.file, r.error().message);
    std::exit(1);
  }
  return r->parser;
}

void render(benchmark::State& state, const TemplateCase& t, std::size_t n_tools) {
  auto tmpl = load(t);
  const auto messages = conversation();
  chatfmt::ChatOptions options;
  options.tools = tools(n_tools);
  std::size_t prompt = 0;
  for (auto _ : state) {
    auto r = tmpl->render(messages, options);
    if (!r) {
      state.SkipWithError(r.error().message.c_str());
      return;
    }
    prompt = r->prompt.size();
    benchmark::DoNotOptimize(r->prompt.data());
  }
  state.counters["prompt_bytes"] = static_cast<double>(prompt);
}

void parser_create(benchmark::State& state, const TemplateCase& t) {
  const auto config = parser_config(t, 5);
  for (auto _ : state) {
    auto p = chatfmt::OutputParser::create(config);
    benchmark::DoNotOptimize(p);
  }
}

// What the parse of the whole answer must give; an error message when it does not.
std::string check(const chatfmt::Message& m, const TemplateCase& t, Output kind) {
  if (t.thinks && m.reasoning_content.empty())
    return "no reasoning parsed";
  if (kind == Output::tools_call) {
    if (m.tool_calls.size() != 1 || m.tool_calls[0].name != "send_email")
      return "the send_email call was not parsed";
  } else if (!m.tool_calls.empty() || m.content.empty()) {
    return "the prose was not parsed as content";
  }
  return {};
}

void parse(benchmark::State& state, const TemplateCase& t, Output kind, std::size_t target,
           bool incremental) {
  const auto config = parser_config(t, kind == Output::plain ? 0 : 5);
  const auto tokens = answer(t, kind, target);
  std::string problem;
  std::size_t reparses = 0;
  for (auto _ : state) {
    state.PauseTiming();  // parser_create measures this
    auto p = chatfmt::OutputParser::create(config, incremental);
    state.ResumeTiming();
    if (!p) {
      state.SkipWithError(p.error().message.c_str());
      return;
    }
    for (const auto& piece : tokens)
      benchmark::DoNotOptimize((*p)->feed(piece, false));
    benchmark::DoNotOptimize((*p)->feed("", true));
    problem = check((*p)->message(), t, kind);
    reparses = (*p)->reparses();
  }
  if (!problem.empty()) {
    state.SkipWithError(problem.c_str());
    return;
  }
  const auto n = static_cast<double>(tokens.size());
  state.counters["tokens"] = n;
  state.counters["reparses"] = static_cast<double>(reparses);
  state.counters["per_token"] = benchmark::Counter(
      n, benchmark::Counter::kIsIterationInvariantRate | benchmark::Counter::kInvert);
}

}  // namespace

int main(int argc, char** argv) {
  for (const auto& t : kTemplates) {
    for (std::size_t n : {0, 5}) {
      benchmark::RegisterBenchmark(fmt::format("render/{}/tools:{}", t.label, n).c_str(), render, t,
                                   n)
          ->Unit(benchmark::kMicrosecond);
    }
    benchmark::RegisterBenchmark(fmt::format("parser_create/{}", t.label).c_str(), parser_create, t)
        ->Unit(benchmark::kMicrosecond);
    for (bool incremental : {true, false}) {
      for (auto [kind, name] :
           {std::pair{Output::plain, "plain"}, std::pair{Output::tools_no_call, "tools,no_call"},
            std::pair{Output::tools_call, "tools,call"}}) {
        benchmark::RegisterBenchmark(
            fmt::format("{}/{}/{}", incremental ? "parse" : "parse_full", t.label, name).c_str(),
            parse, t, kind, std::size_t{300}, incremental)
            ->Unit(benchmark::kMillisecond);
      }
    }
  }
  for (bool incremental : {true, false}) {
    for (std::size_t n : {100, 300, 1000}) {
      benchmark::RegisterBenchmark(
          fmt::format("{}/qwen2.5/tokens:{}", incremental ? "parse_length" : "parse_length_full", n)
              .c_str(),
          parse, kTemplates[0], Output::tools_no_call, n, incremental)
          ->Unit(benchmark::kMillisecond);
    }
  }
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv))
    return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
