// decode_speed MODEL [threads=2] [prompt=128] [gen=128] [runs=3]
// Raw llama.cpp speed of one sequence on a model: prefill tokens/s and decode tokens/s
// (greedy, one llama_decode per token), best of `runs`. No troupe code on the path: this is
// the figure every higher layer is compared against.

#include <fmt/format.h>
#include <llama.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <vector>

#include "engine/llama_runtime.hpp"

namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

struct Timing {
  double prefill_s = 0, decode_s = 0;
};

Timing run_once(llama_model* model, int threads, int n_prompt, int n_gen) {
  auto cp = llama_context_default_params();
  cp.n_ctx = static_cast<uint32_t>(n_prompt + n_gen + 16);
  cp.n_batch = cp.n_ubatch = static_cast<uint32_t>(n_prompt);
  cp.n_threads = cp.n_threads_batch = threads;
  llama_context* ctx = llama_init_from_model(model, cp);
  const int n_vocab = llama_vocab_n_tokens(llama_model_get_vocab(model));
  std::vector<llama_token> prompt(static_cast<size_t>(n_prompt));
  for (int i = 0; i < n_prompt; ++i)
    prompt[static_cast<size_t>(i)] = 300 + (i * 7919) % (n_vocab - 300);
  Timing t;
  auto start = Clock::now();
  if (llama_decode(ctx, llama_batch_get_one(prompt.data(), n_prompt)) != 0)
    std::abort();
  t.prefill_s = seconds_since(start);
  llama_sampler* greedy = llama_sampler_init_greedy();
  start = Clock::now();
  for (int i = 0; i < n_gen; ++i) {
    llama_token tok = llama_sampler_sample(greedy, ctx, -1);
    if (llama_decode(ctx, llama_batch_get_one(&tok, 1)) != 0)
      std::abort();
  }
  t.decode_s = seconds_since(start);
  llama_sampler_free(greedy);
  llama_free(ctx);
  return t;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    fmt::print(stderr, "usage: decode_speed MODEL [threads=2] [prompt=128] [gen=128] [runs=3]\n");
    return 2;
  }
  auto arg = [&](int i, int def) { return argc > i ? std::atoi(argv[i]) : def; };
  const int threads = arg(2, 2), n_prompt = arg(3, 128), n_gen = arg(4, 128), runs = arg(5, 3);
  troupe::engine::init_llama_runtime();
  llama_model* model = llama_model_load_from_file(argv[1], llama_model_default_params());
  if (!model)
    return 1;
  Timing best{1e9, 1e9};
  for (int r = 0; r < runs; ++r) {
    auto t = run_once(model, threads, n_prompt, n_gen);
    best.prefill_s = std::min(best.prefill_s, t.prefill_s);
    best.decode_s = std::min(best.decode_s, t.decode_s);
  }
  fmt::print(
      "{}: threads {} prefill {} tok: {:.1f} tok/s, decode {} tok: {:.1f} tok/s ({:.2f} "
      "ms/token)\n",
      argv[1], threads, n_prompt, n_prompt / best.prefill_s, n_gen, n_gen / best.decode_s,
      1000.0 * best.decode_s / n_gen);
  llama_model_free(model);
  return 0;
}
