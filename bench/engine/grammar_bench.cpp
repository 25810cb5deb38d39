// grammar_bench: what a structured-output request costs before its first token, off the
// decode thread (issue 18). For the 10-field profile schema of bench/peer/workloads:
//
//   schema_cold     chatfmt::schema_to_grammar on a schema text not seen before (troupe's
//                   keyword check + llama.cpp's converter); a fresh title each iteration
//   schema_cached   the same schema text again (the cache per schema text)
//   compile_cold    engine::make_grammar_sampler: llama.cpp parses the GBNF for a vocabulary
//   compile_cached  engine::GrammarCache::get on a grammar seen before: a clone of the parsed one
//
// on Llama 3's vocabulary (128k tokens, the release's ggml-vocab-llama-bpe.gguf, loaded
// vocabulary-only). Not part of the test run.
//
//   grammar_bench [--benchmark_repetitions=N]
#include <benchmark/benchmark.h>
#include <fmt/format.h>
#include <llama.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "chatfmt/chat_format.hpp"
#include "engine/sampler.hpp"

namespace {

using namespace troupe;

std::string profile_schema(const std::string& title) {
  std::ifstream in(std::filesystem::path(TROUPE_SOURCE_DIR) /
                   "bench/peer/workloads/profile-schema.json");
  std::stringstream s;
  s << in.rdbuf();
  const std::string text = s.str();
  // The schema object inside response_format.json_schema.schema, with a title in front.
  const auto at = text.find("\"schema\": {");
  const auto open = text.find('{', at + 9);
  std::size_t depth = 0, end = open;
  for (; end < text.size(); ++end) {
    if (text[end] == '{')
      ++depth;
    if (text[end] == '}' && --depth == 0)
      break;
  }
  return "{\"title\":\"" + title + "\"," + text.substr(open + 1, end - open);
}

const llama_vocab* vocab() {
  static llama_model* model = [] {
    llama_backend_init();
    auto p = llama_model_default_params();
    p.vocab_only = true;
    const auto path =
        std::filesystem::path(TROUPE_LLAMA_TESTDATA) / "vocab" / "ggml-vocab-llama-bpe.gguf";
    return llama_model_load_from_file(path.c_str(), p);
  }();
  return llama_model_get_vocab(model);
}

void schema_cold(benchmark::State& state) {
  std::size_t i = 0;
  for (auto _ : state) {
    auto g = chatfmt::schema_to_grammar(profile_schema(fmt::format("cold {}", i++)), "bench");
    benchmark::DoNotOptimize(g);
  }
}
BENCHMARK(schema_cold)->Unit(benchmark::kMicrosecond);

void schema_cached(benchmark::State& state) {
  const auto text = profile_schema("cached");
  (void)chatfmt::schema_to_grammar(text, "bench");
  for (auto _ : state) {
    auto g = chatfmt::schema_to_grammar(text, "bench");
    benchmark::DoNotOptimize(g);
  }
}
BENCHMARK(schema_cached)->Unit(benchmark::kMicrosecond);

engine::GrammarSpec profile_grammar() {
  engine::GrammarSpec g;
  g.gbnf = chatfmt::schema_to_grammar(profile_schema("g"), "bench").value();
  return g;
}

void compile_cold(benchmark::State& state) {
  const auto spec = profile_grammar();
  (void)vocab();  // loaded once, outside the timing
  for (auto _ : state) {
    auto s = engine::make_grammar_sampler(vocab(), spec);
    benchmark::DoNotOptimize(s);
  }
}
BENCHMARK(compile_cold)->Unit(benchmark::kMicrosecond);

void compile_cached(benchmark::State& state) {
  const auto spec = profile_grammar();
  engine::GrammarCache cache;
  Result<void> error;
  (void)cache.get(vocab(), spec, error);
  for (auto _ : state) {
    auto s = cache.get(vocab(), spec, error);
    benchmark::DoNotOptimize(s);
  }
}
BENCHMARK(compile_cached)->Unit(benchmark::kMicrosecond);

}  // namespace

BENCHMARK_MAIN();
