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
// vocabulary-only); and what it costs per token on the engine thread, when the grammar rejects
// the unconstrained draw (issue 18), at a point inside the name's pattern, inside the bio's, and
// inside the date (where only a few digits are allowed):
//
//   constrained_whole/V/M  one sample whose first draw is rejected, the grammar then applied to
//                          the whole vocabulary (SamplerPath::whole_vocabulary: the old path)
//   constrained_top_k/V/M  the same sample with the top-k search
//   constrained_by_byte/V/M  the same with the model's FirstByteIndex (the default path for a
//                          schema's grammar: only tokens whose first character passes)
//   grammar_apply/V/N      llama.cpp's grammar applied to N tokens in one call (per-call costs)
//   profile_walk/V/I/S     a whole profile, token by token (every sample and its accept, the
//                          first draws the grammar allows included), llama-server's defaults;
//                          I: 0 = the top-k search alone, 1 = by first byte, 2 = by first byte
//                          and by pair where a large group passed (the default); S: 0 = the
//                          engine's grammar, whose clones share the allowed sets they learn
//                          (grammar_state.hpp; the walks of one run share them, the first
//                          walks learning), 1 = llama.cpp's own grammar sampler (no sets: what
//                          troupe did before them); counters: the sets stored, their KiB
//   first_byte_index/V     building a vocabulary's FirstByteIndex (once per model, at load)
//
// V: 0 = Llama 2's 32k vocabulary (ggml-vocab-llama-spm.gguf, the size of the benchmarks'
// `small` model), 1 = Llama 3's 128k; M: 0 = greedy, 1 = llama-server's defaults (top_k 40,
// top_p 0.95, min_p 0.05, temperature 0.8); plus the position (name / bio) in the label.
// Random normal logits (sigma 3), a fresh vector from a ring of 16 per iteration: as with a
// random-weight model, the grammar rejects nearly every first draw.
//
//   grammar_bench [--benchmark_repetitions=N]
#include <benchmark/benchmark.h>
#include <fmt/format.h>
#include <llama.h>

#include <algorithm>
#include <array>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <limits>
#include <numeric>
#include <optional>
#include <random>
#include <sstream>
#include <string>
#include <vector>

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

const llama_vocab* load_vocab(const char* file) {
  llama_backend_init();
  auto p = llama_model_default_params();
  p.vocab_only = true;
  const auto path = std::filesystem::path(TROUPE_LLAMA_TESTDATA) / "vocab" / file;
  return llama_model_get_vocab(llama_model_load_from_file(path.c_str(), p));  // kept to the end
}

const llama_vocab* vocab(int which = 1) {
  static const llama_vocab* spm = load_vocab("ggml-vocab-llama-spm.gguf");
  static const llama_vocab* bpe = load_vocab("ggml-vocab-llama-bpe.gguf");
  return which == 0 ? spm : bpe;
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

// Where the grammar has read this much of a profile: inside the name's [a-z]{2,16} pattern,
// or inside the bio's [a-z ,.]{20,80}.
const char* const kPrefix = R"({"id": "0e8a1f2c-1b2c-4d5e-8f90-123456789abc", "name": "Alice Smi)";
const char* const kPrefixBio =
    R"({"id": "0e8a1f2c-1b2c-4d5e-8f90-123456789abc", "name": "Alice Smith", "email": )"
    R"("alice@mail.com", "age": 42, "city": "Paris", "joined": "2024-01-02", "active": true, )"
    R"("score": 1.5, "tags": ["admin"], "bio": "a quiet person who lik)";
const char* const kPrefixDate =
    R"({"id": "0e8a1f2c-1b2c-4d5e-8f90-123456789abc", "name": "Alice Smith", "email": )"
    R"("alice@mail.com", "age": 42, "city": "Paris", "joined": "2024-)";

// The profile's grammar after reading `prefix` one character at a time, each as a token whose
// text is that one character (a prefill would go through the tokenizer, whose leading space
// on SentencePiece vocabularies the grammar would refuse).
engine::SamplerPtr profile_at(const llama_vocab* v, const char* prefix) {
  auto g = engine::make_grammar_sampler(v, profile_grammar());
  std::array<llama_token, 256> by_char{};
  by_char.fill(-1);
  for (llama_token t = 0; t < llama_vocab_n_tokens(v); ++t) {
    char piece[8];
    if (llama_token_to_piece(v, t, piece, sizeof(piece), 0, false) == 1 &&
        by_char[static_cast<unsigned char>(piece[0])] < 0)
      by_char[static_cast<unsigned char>(piece[0])] = t;
  }
  for (const char* c = prefix; *c; ++c)
    llama_sampler_accept(g->get(), by_char[static_cast<unsigned char>(*c)]);
  return std::move(g.value());
}

std::vector<std::vector<float>> logit_ring(std::int32_t n) {
  std::mt19937 rng(42);
  std::normal_distribution<float> d(0.0f, 3.0f);
  std::vector<std::vector<float>> ring(16, std::vector<float>(static_cast<std::size_t>(n)));
  for (auto& v : ring) {
    for (auto& x : v)
      x = d(rng);
  }
  return ring;
}

engine::SamplingParams mode_params(int mode) {
  engine::SamplingParams p;
  p.temperature = mode == 0 ? 0.0f : 0.8f;
  p.top_k = 40;
  p.top_p = 0.95f;
  p.min_p = 0.05f;
  p.seed = 7;
  return p;
}

// One sample per iteration from the same grammar state: a fresh Sampler on a clone of the
// parsed grammar, built outside the timing.
void constrained(benchmark::State& state, engine::SamplerPath path, const char* prefix,
                 bool by_first_byte = false) {
  const auto* v = vocab(static_cast<int>(state.range(0)));
  static const engine::FirstByteIndex spm_bytes = engine::FirstByteIndex::of(vocab(0));
  static const engine::FirstByteIndex bpe_bytes = engine::FirstByteIndex::of(vocab(1));
  const engine::FirstByteIndex* index = nullptr;
  if (by_first_byte)
    index = state.range(0) == 0 ? &spm_bytes : &bpe_bytes;
  const std::int32_t n = llama_vocab_n_tokens(v);
  const auto parsed = profile_at(v, prefix);
  const auto ring = logit_ring(n);
  const auto params = mode_params(static_cast<int>(state.range(1)));
  engine::SamplerScratch scratch(n);
  engine::SampledToken out;
  std::size_t i = 0;
  for (auto _ : state) {
    state.PauseTiming();
    engine::Sampler s(params, n, {}, 4096, engine::SamplerPtr(llama_sampler_clone(parsed.get())),
                      {}, path, index, engine::FirstByteCheck::all_bytes);
    const auto& logits = ring[i++ % ring.size()];
    state.ResumeTiming();
    benchmark::DoNotOptimize(s.sample(logits.data(), nullptr, scratch, out));
  }
  state.SetLabel(prefix == kPrefix      ? "inside name"
                 : prefix == kPrefixBio ? "inside bio"
                                        : "in date");
}

void constrained_whole(benchmark::State& state) {
  constrained(state, engine::SamplerPath::whole_vocabulary, kPrefix);
}
void constrained_top_k(benchmark::State& state) {
  constrained(state, engine::SamplerPath::automatic, kPrefix);
}
void constrained_whole_bio(benchmark::State& state) {
  constrained(state, engine::SamplerPath::whole_vocabulary, kPrefixBio);
}
void constrained_top_k_bio(benchmark::State& state) {
  constrained(state, engine::SamplerPath::automatic, kPrefixBio);
}
void constrained_whole_date(benchmark::State& state) {
  constrained(state, engine::SamplerPath::whole_vocabulary, kPrefixDate);
}
void constrained_top_k_date(benchmark::State& state) {
  constrained(state, engine::SamplerPath::automatic, kPrefixDate);
}
void constrained_by_byte(benchmark::State& state) {
  constrained(state, engine::SamplerPath::automatic, kPrefix, true);
}
void constrained_by_byte_bio(benchmark::State& state) {
  constrained(state, engine::SamplerPath::automatic, kPrefixBio, true);
}
void constrained_by_byte_date(benchmark::State& state) {
  constrained(state, engine::SamplerPath::automatic, kPrefixDate, true);
}
BENCHMARK(constrained_whole)->ArgsProduct({{0, 1}, {0, 1}})->Unit(benchmark::kMicrosecond);
BENCHMARK(constrained_top_k)->ArgsProduct({{0, 1}, {0, 1}})->Unit(benchmark::kMicrosecond);
BENCHMARK(constrained_whole_bio)->ArgsProduct({{0, 1}, {0, 1}})->Unit(benchmark::kMicrosecond);
BENCHMARK(constrained_top_k_bio)->ArgsProduct({{0, 1}, {0, 1}})->Unit(benchmark::kMicrosecond);
BENCHMARK(constrained_whole_date)->ArgsProduct({{0, 1}, {0, 1}})->Unit(benchmark::kMicrosecond);
BENCHMARK(constrained_top_k_date)->ArgsProduct({{0, 1}, {0, 1}})->Unit(benchmark::kMicrosecond);
BENCHMARK(constrained_by_byte)->ArgsProduct({{0, 1}, {0, 1}})->Unit(benchmark::kMicrosecond);
BENCHMARK(constrained_by_byte_bio)->ArgsProduct({{0, 1}, {0, 1}})->Unit(benchmark::kMicrosecond);
BENCHMARK(constrained_by_byte_date)->ArgsProduct({{0, 1}, {0, 1}})->Unit(benchmark::kMicrosecond);

// llama.cpp's grammar on N random tokens in one call, inside the name's pattern: whether a
// few large calls cost less per token than many small ones.
void grammar_apply(benchmark::State& state) {
  const auto* v = vocab(static_cast<int>(state.range(0)));
  const std::int32_t n = llama_vocab_n_tokens(v);
  const auto size = static_cast<std::size_t>(std::min<std::int64_t>(state.range(1), n));
  const auto g = profile_at(v, kPrefix);
  std::vector<llama_token> ids(static_cast<std::size_t>(n));
  std::iota(ids.begin(), ids.end(), 0);
  std::shuffle(ids.begin(), ids.end(), std::mt19937(3));
  std::vector<llama_token_data> data(size);
  for (auto _ : state) {
    for (std::size_t j = 0; j < size; ++j)
      data[j] = {ids[j], 1.0f, 0.0f};
    llama_token_data_array arr{data.data(), size, -1, false};
    llama_sampler_apply(g.get(), &arr);
    benchmark::DoNotOptimize(data.data());
  }
  state.SetItemsProcessed(state.iterations() * static_cast<std::int64_t>(size));
}
BENCHMARK(grammar_apply)
    ->ArgsProduct({{0}, {64, 256, 1024, 4096, 32000}})
    ->Unit(benchmark::kMicrosecond);

// A whole generation of the profile from random logits: the cost per token of the grammar on
// the engine thread, as a random-weight model makes a server pay it.
void profile_walk(benchmark::State& state) {
  const auto* v = vocab(static_cast<int>(state.range(0)));
  const std::int32_t n = llama_vocab_n_tokens(v);
  const auto variant = state.range(1);
  const auto index = variant == 0 ? std::optional<engine::FirstByteIndex>()
                                  : engine::FirstByteIndex::of(
                                        v, variant == 1 ? std::numeric_limits<std::size_t>::max()
                                                        : engine::FirstByteIndex::kSplitAbove);
  const bool learn = state.range(2) == 0;
  const auto spec = profile_grammar();
  const auto parsed = learn ? engine::make_grammar_sampler(v, spec)
                            : Result<engine::SamplerPtr>(engine::SamplerPtr(
                                  llama_sampler_init_grammar(v, spec.gbnf.c_str(), "root")));
  const auto ring = logit_ring(n);
  engine::SamplerScratch scratch(n);
  engine::SampledToken out;
  std::int64_t tokens = 0;
  std::uint32_t seed = 1;
  for (auto _ : state) {
    state.PauseTiming();
    auto params = mode_params(1);
    params.seed = seed++;
    engine::Sampler s(params, n, {}, 4096, engine::SamplerPtr(llama_sampler_clone(parsed->get())),
                      {}, engine::SamplerPath::automatic, index ? &*index : nullptr,
                      engine::FirstByteCheck::all_bytes);
    state.ResumeTiming();
    for (std::size_t i = 0; i < 600; ++i) {
      const auto status = s.sample(ring[i % ring.size()].data(), nullptr, scratch, out);
      ++tokens;
      if (status != engine::SampleStatus::ok || llama_vocab_is_eog(v, out.token))
        break;
    }
  }
  state.SetItemsProcessed(tokens);
  state.counters["tokens"] =
      benchmark::Counter(static_cast<double>(tokens), benchmark::Counter::kAvgIterations);
  if (const auto* sets = engine::allowed_sets_of(parsed->get())) {
    state.counters["sets"] = static_cast<double>(sets->size());
    state.counters["set_KiB"] = static_cast<double>(sets->bytes()) / 1024.0;
  }
}
BENCHMARK(profile_walk)->ArgsProduct({{0, 1}, {0, 1, 2}, {0, 1}})->Unit(benchmark::kMillisecond);

void first_byte_index(benchmark::State& state) {
  const auto* v = vocab(static_cast<int>(state.range(0)));
  for (auto _ : state)
    benchmark::DoNotOptimize(engine::FirstByteIndex::of(v));
}
BENCHMARK(first_byte_index)->DenseRange(0, 1)->Unit(benchmark::kMillisecond);

}  // namespace

BENCHMARK_MAIN();
