// sampler_bench: the engine thread's sampling cost per sequence per step, on one logit vector
// (n_vocab floats, normal with sigma 2.5, seed 1: a spread like a model's, fixed so runs
// compare), at 32k and 150k vocabularies, for three policies:
//
//   greedy      temperature 0
//   full_vocab  temperature 1, no filter (a request that sets no sampling field)
//   server      top_k 40, top_p 0.95, min_p 0.05, temperature 0.8 (llama-server's defaults)
//
// each through troupe's own path ("new": SIMD argmax, the block-sum draw, the partial
// filters) and through llama.cpp's sampler chain over a candidate array of n_vocab entries
// ("chain": what the engine did before). One iteration is one Sampler::sample() call, as the
// engine makes once per sequence per step. Not part of the test run.
//
//   sampler_bench [--benchmark_filter=...] [--benchmark_repetitions=N]
#include <benchmark/benchmark.h>

#include <random>
#include <string>
#include <vector>

#include "engine/sampler.hpp"

namespace {

using troupe::engine::SampledToken;
using troupe::engine::Sampler;
using troupe::engine::SamplerPath;
using troupe::engine::SamplerScratch;
using troupe::engine::SamplingParams;

std::vector<float> make_logits(int n) {
  std::mt19937 rng(1);
  std::normal_distribution<float> d(0.0f, 2.5f);
  std::vector<float> v(static_cast<std::size_t>(n));
  for (auto& x : v)
    x = d(rng);
  return v;
}

SamplingParams policy(const std::string& name) {
  SamplingParams p;
  p.seed = 1;
  if (name == "greedy")
    p.temperature = 0.0f;
  if (name == "full_vocab") {  // temperature 1, no filter
    p.temperature = 1.0f;
    p.top_k = 0;
    p.top_p = 1.0f;
    p.min_p = 0.0f;
  }
  if (name == "server") {
    p.top_k = 40;
    p.top_p = 0.95f;
    p.min_p = 0.05f;
    p.temperature = 0.8f;
  }
  return p;
}

void sample(benchmark::State& state, int n_vocab, const std::string& name, SamplerPath path) {
  const auto logits = make_logits(n_vocab);
  Sampler sampler(policy(name), n_vocab, {}, 4096, {}, {}, path);
  SamplerScratch scratch(n_vocab);
  SampledToken out;
  for (auto _ : state) {
    sampler.sample(logits.data(), nullptr, scratch, out);
    benchmark::DoNotOptimize(out.token);
  }
  state.SetItemsProcessed(state.iterations());
}

}  // namespace

int main(int argc, char** argv) {
  for (int n_vocab : {32000, 150000}) {
    for (const char* name : {"greedy", "full_vocab", "server"}) {
      for (auto [path, label] :
           {std::pair{SamplerPath::chain, "chain"}, std::pair{SamplerPath::automatic, "new"}}) {
        const std::string bench_name =
            std::string("sample/") + name + "/" + label + "/vocab:" + std::to_string(n_vocab);
        benchmark::RegisterBenchmark(bench_name.c_str(), sample, n_vocab, std::string(name), path)
            ->Unit(benchmark::kMicrosecond);
      }
    }
  }
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv))
    return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
