// step_rows_bench: what a decode step of generating sequences costs by its rows and by which
// sequence ids it holds, llama.cpp alone (no troupe engine), to show what pad rows
// (src/engine/step_rows.hpp) are for.
//
//   step_rows_bench MODEL [--threads 2] [--slots 16] [--context 40] [--reps 9] [--kv-unified]
//
// A context of `slots` sequences (a KV stream each unless --kv-unified) first decodes
// `context` tokens into every sequence; then, for each shape, `reps` steps of one token per
// listed sequence, each removed again after its step (llama_memory_seq_rm), so every step sees
// the same cache. Shapes: sequences 0..r-1 for every r (one run), and `slots` - 1 and `slots`
// - 2 sequences with idle ids among them (llama.cpp's per-stream split cuts those into one
// ubatch per run of consecutive ids). Prints the median step time of each.

#include <llama.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "engine/llama_runtime.hpp"

namespace {

struct Args {
  std::string model;
  int threads = 2;
  int slots = 16;
  int context = 40;
  int reps = 9;
  bool kv_unified = false;
};

void usage(std::FILE* out) {
  std::fputs(
      "usage: step_rows_bench MODEL [--threads 2] [--slots 16] [--context 40] [--reps 9] "
      "[--kv-unified]\n",
      out);
}

bool parse(int argc, char** argv, Args& a) {
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    auto number = [&](int& out) {
      if (i + 1 >= argc)
        return false;
      out = std::atoi(argv[++i]);
      return out > 0;
    };
    bool ok = true;
    if (arg == "--threads")
      ok = number(a.threads);
    else if (arg == "--slots")
      ok = number(a.slots) && a.slots >= 2 && a.slots <= 64;
    else if (arg == "--context")
      ok = number(a.context);
    else if (arg == "--reps")
      ok = number(a.reps);
    else if (arg == "--kv-unified")
      a.kv_unified = true;
    else if (!arg.starts_with("-") && a.model.empty())
      a.model = arg;
    else
      ok = false;
    if (!ok) {
      std::fprintf(stderr, "step_rows_bench: bad argument '%s'\n", argv[i]);
      return false;
    }
  }
  return !a.model.empty();
}

class Steps {
 public:
  Steps(llama_context* ctx, int slots) : ctx_(ctx), batch_(llama_batch_init(slots, 0, 1)) {}
  ~Steps() { llama_batch_free(batch_); }
  Steps(const Steps&) = delete;
  Steps& operator=(const Steps&) = delete;

  // One token for each of `seqs` at position `pos`; kept in the cache or removed after.
  double step(const std::vector<int>& seqs, int pos, bool keep) {
    batch_.n_tokens = 0;
    for (int s : seqs) {
      const int i = batch_.n_tokens++;
      batch_.token[i] = 1;
      batch_.pos[i] = pos;
      batch_.n_seq_id[i] = 1;
      batch_.seq_id[i][0] = s;
      batch_.logits[i] = 1;
    }
    const auto t0 = std::chrono::steady_clock::now();
    const int rc = llama_decode(ctx_, batch_);
    const auto t1 = std::chrono::steady_clock::now();
    if (rc != 0) {
      std::fprintf(stderr, "step_rows_bench: llama_decode returned %d\n", rc);
      std::exit(1);
    }
    if (!keep) {
      for (int s : seqs)
        llama_memory_seq_rm(llama_get_memory(ctx_), s, pos, -1);
    }
    return std::chrono::duration<double, std::milli>(t1 - t0).count();
  }

 private:
  llama_context* ctx_;
  llama_batch batch_;
};

std::string ids(const std::vector<int>& seqs) {
  std::string out;
  for (std::size_t k = 0; k < seqs.size();) {
    std::size_t e = k;
    while (e + 1 < seqs.size() && seqs[e + 1] == seqs[e] + 1)
      ++e;
    out += (out.empty() ? "" : ",") + std::to_string(seqs[k]) +
           (e > k ? "-" + std::to_string(seqs[e]) : "");
    k = e + 1;
  }
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  Args a;
  if (argc > 1 && (std::string_view(argv[1]) == "--help" || std::string_view(argv[1]) == "-h")) {
    usage(stdout);
    return 0;
  }
  if (!parse(argc, argv, a)) {
    usage(stderr);
    return 2;
  }
  troupe::engine::init_llama_runtime();
  llama_model* model = llama_model_load_from_file(a.model.c_str(), llama_model_default_params());
  if (model == nullptr) {
    std::fprintf(stderr, "step_rows_bench: cannot load %s\n", a.model.c_str());
    return 1;
  }
  auto cp = llama_context_default_params();
  cp.n_ctx = static_cast<uint32_t>(a.slots * std::max(256, a.context + 8));
  cp.n_batch = cp.n_ubatch = static_cast<uint32_t>(a.slots);
  cp.n_seq_max = static_cast<uint32_t>(a.slots);
  cp.n_threads = cp.n_threads_batch = a.threads;
  cp.kv_unified = a.kv_unified;
  llama_context* ctx = llama_init_from_model(model, cp);
  if (ctx == nullptr) {
    std::fprintf(stderr, "step_rows_bench: cannot create the context\n");
    return 1;
  }
  {
    Steps steps(ctx, a.slots);
    std::vector<int> all(static_cast<std::size_t>(a.slots));
    for (int i = 0; i < a.slots; ++i)
      all[static_cast<std::size_t>(i)] = i;
    for (int pos = 0; pos < a.context; ++pos)
      steps.step(all, pos, true);
    auto median = [&](const std::vector<int>& seqs) {
      std::vector<double> t;
      for (int r = 0; r < a.reps; ++r)
        t.push_back(steps.step(seqs, a.context, false));
      std::sort(t.begin(), t.end());
      return t[t.size() / 2];
    };
    std::printf("%-24s %5s %10s\n", "sequence ids", "rows", "median ms");
    auto row = [&](const std::vector<int>& seqs) {
      std::printf("%-24s %5zu %10.1f\n", ids(seqs).c_str(), seqs.size(), median(seqs));
    };
    for (int r = 1; r <= a.slots; ++r)
      row(std::vector<int>(all.begin(), all.begin() + r));
    std::vector<int> gap = all;
    gap.erase(gap.begin() + a.slots / 2);  // one idle id in the middle
    row(gap);
    std::vector<int> gaps = gap;
    gaps.erase(gaps.begin() + a.slots / 4);  // and one in the first half
    row(gaps);
  }
  llama_free(ctx);
  llama_model_free(model);
  return 0;
}
