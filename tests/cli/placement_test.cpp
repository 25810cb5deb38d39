// GPU offload and memory options as llama-server names them: each reaches llama.cpp (read
// back from llama.cpp's own account of what it did, logged at --log-level debug), and bad
// values are clear errors before anything loads. On this CPU-only machine no layer can be
// offloaded; the start-up line says where the layers are.

#include <gtest/gtest.h>

#include <optional>
#include <regex>
#include <string>
#include <vector>

#include "cli/run_troupe.hpp"
#include "cluster/child_process.hpp"
#include "engine/memory_use.hpp"
#include "support/test_models.hpp"

namespace troupe::cli {
namespace {

using cluster::test::ChildProcess;
using invoke::has;
using invoke::run_troupe;

std::vector<std::string> serve_args(std::vector<std::string> extra,
                                    const std::string& parallel = "1",
                                    const std::string& ctx = "256") {
  std::vector<std::string> args{"serve",  "-m",         test::generated_model("tiny"),
                                "--port", "0",          "--threads",
                                "1",      "--parallel", parallel,
                                "-c",     ctx,          "--log-level",
                                "debug"};
  args.insert(args.end(), extra.begin(), extra.end());
  return args;
}

std::string output(const ChildProcess& p) {
  std::string out;
  for (const auto& l : p.lines())
    out += l + "\n";
  return out;
}

// Waits for each pattern, then for the banner (after which SIGTERM drains the server).
void expect_lines(ChildProcess& p, std::vector<std::string> patterns) {
  patterns.push_back("troupe is serving on");
  for (const auto& pattern : patterns)
    EXPECT_TRUE(p.wait_for(std::regex(pattern), 0, std::chrono::seconds(120))) << pattern << "\n"
                                                                               << output(p);
}

TEST(Placement, LlamaServerSpellingsReachLlamaCpp) {
  ChildProcess p(
      serve_args({"-ngl", "0", "-ctk", "q8_0", "-ctv", "q8_0", "-fa", "on", "--no-mmap"}), "serve");
  expect_lines(p,
               {R"(load_mode = none)", R"(flash_attn += enabled)",
                R"(llama_kv_cache: .*K \(q8_0\).*V \(q8_0\))",
                R"(ready: .*all 5 layers on the CPU; flash attention on; KV cache K q8_0 V q8_0)"});
  p.terminate();
  EXPECT_EQ(p.wait(), 0) << output(p);
}

TEST(Placement, DefaultsAreLlamaCppsAndMlockIsPassed) {
  ChildProcess p(serve_args({"--mlock", "--flash-attn", "off", "--cache-type-k", "f32"}), "serve");
  expect_lines(p, {R"(load_mode = mmap\+mlock)", R"(flash_attn += disabled)",
                   R"(llama_kv_cache: .*K \(f32\).*V \(f16\))"});
  p.terminate();
  EXPECT_EQ(p.wait(), 0) << output(p);
}

// The start-up line's KV size: llama.cpp's own count of the context's memory (memory_use.hpp),
// which is what llama.cpp's KV caches and recurrent states say they took (each of its lines
// rounded to 0.01 MiB); a build without the count says "about" an estimate, or nothing for a
// hybrid.
void expect_the_kv_size_is_llamas(const ChildProcess& p) {
  if (!engine::memory_use_known())
    return;
  const std::regex part(R"((llama_kv_cache|llama_memory_recurrent): size = +([0-9.]+) MiB)");
  const std::regex ready(R"(ready: .*KV cache K \S+ V \S+: ([0-9.]+) MiB, compute buffers)");
  double parts = 0;
  int n_parts = 0;
  std::optional<double> said;
  for (const auto& l : p.lines()) {
    std::smatch m;
    if (std::regex_search(l, m, part)) {
      parts += std::stod(m[2].str());
      ++n_parts;
    } else if (std::regex_search(l, m, ready)) {
      said = std::stod(m[1].str());
    }
  }
  ASSERT_TRUE(said) << output(p);
  EXPECT_GT(n_parts, 0) << output(p);
  EXPECT_NEAR(*said, parts, 0.05 + 0.005 * n_parts) << output(p);
}

// A sliding-window model's windowed layers keep the window's cells (with a step's), as
// llama-server's do, unless --swa-full; llama-server's -ctxcp is taken. The start-up line's
// KV size is what llama.cpp made either way.
TEST(Placement, ASlidingWindowModelKeepsItsWindowUnlessSwaFull) {
  const auto args = [](std::vector<std::string> extra) {
    auto a = serve_args(std::move(extra), "1", "2048");
    a[2] = test::generated_swa_model(16);
    return a;
  };
  const std::string size = engine::memory_use_known() ? ": [0-9.]+ MiB, compute buffers [0-9.]+ MiB"
                                                      : ", about [0-9.]+ MiB at most";
  {
    ChildProcess p(args({"-ctxcp", "2"}), "serve");
    expect_lines(p, {R"(llama_kv_cache_iswa: creating +SWA KV cache, size = 768 cells)",
                     "ready: .*" + size + R"( \(a sliding window of 16 tokens)"});
    expect_the_kv_size_is_llamas(p);
    p.terminate();
    EXPECT_EQ(p.wait(), 0) << output(p);
  }
  ChildProcess p(args({"--swa-full"}), "serve");
  expect_lines(p, {R"(using full-size SWA cache)",
                   R"(llama_kv_cache_iswa: creating +SWA KV cache, size = 2048 cells)"});
  expect_the_kv_size_is_llamas(p);
  p.terminate();
  EXPECT_EQ(p.wait(), 0) << output(p);
}

// A hybrid model's layers differ (llama.cpp tells the first one's heads only): the start-up
// line gives llama.cpp's count of its attention layers' cells and recurrent state, or, in a
// build without the count, no size it cannot know.
TEST(Placement, AHybridModelsStartUpLineGivesLlamaCppsKvSize) {
  auto args = serve_args({});
  args[2] = test::generated_hybrid_model();
  ChildProcess p(args, "serve");
  expect_lines(p, {engine::memory_use_known()
                       ? R"(ready: .*KV cache K f16 V f16: [0-9.]+ MiB, compute buffers)"
                       : R"(ready: .*KV cache K f16 V f16 \(a recurrent state besides\))"});
  expect_the_kv_size_is_llamas(p);
  p.terminate();
  EXPECT_EQ(p.wait(), 0) << output(p);
}

// llama-server's -kvu: one pool shared by the sequences, which llama.cpp's context reports, and
// the start-up line says what a request may use. As llama-server decides, the pool is shared
// unless --parallel is given.
TEST(Placement, KvUnifiedReachesLlamaCppAndTheStartUpLine) {
  const auto starts = [](const std::vector<std::string>& args, std::vector<std::string> patterns) {
    ChildProcess p(args, "serve");
    expect_lines(p, std::move(patterns));
    p.terminate();
    EXPECT_EQ(p.wait(), 0) << output(p);
  };
  starts(serve_args({"-kvu"}, "2"),
         {R"(kv_unified += true)",
          R"(ready: 2 sequences sharing 256 KV cells \(--kv-unified\), up to 256 tokens each)"});
  starts(serve_args({"--no-kv-unified"}, "2", "512"),
         {R"(kv_unified += false)", R"(ready: 2 sequences x 256 tokens)"});
  starts(serve_args({}, "2", "512"), {R"(kv_unified += false)"});  // --parallel given
  starts({"serve", "-m", test::generated_model("tiny"), "--port", "0", "--threads", "1", "-c",
          "512", "--log-level", "debug"},
         {R"(kv_unified += true)", R"(ready: 4 sequences sharing 512 KV cells)"});
}

TEST(Placement, SamplingThreadsReachTheEngine) {
  ChildProcess p(serve_args({"--sampling-threads", "3"}, "4"), "serve");
  expect_lines(p, {R"(up to 3 threads sample a step that would take 300 us or more on one)"});
  p.terminate();
  EXPECT_EQ(p.wait(), 0) << output(p);
  auto r =
      run_troupe("serve --port 0 -m " + test::generated_model("tiny") + " --sampling-threads -1");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_TRUE(has(r.output, "--sampling-threads")) << r.output;
}

TEST(Placement, CpuShareReachesTheEngine) {
  for (const auto& [value, says] : std::vector<std::pair<std::string, std::string>>{
           {"auto", "splits the threads with the process's other busy models"},
           {"split", "splits the threads with the process's other busy models"},
           {"turns", "decodes in turn with the process's other models"},
           {"off", "decodes on all its threads beside the process's other models"}}) {
    ChildProcess p(serve_args({"--cpu-share", value}), "serve");
    expect_lines(p, {"engine: " + says});
    p.terminate();
    EXPECT_EQ(p.wait(), 0) << output(p);
  }
}

TEST(Placement, CacheRamReachesTheEngine) {
  for (const auto& [flags, says] : std::vector<std::pair<std::vector<std::string>, std::string>>{
           {{}, "displaced prompts' KV states kept in up to 8192 MiB of host memory"},
           {{"--cache-ram", "64"}, "displaced prompts' KV states kept in up to 64 MiB of host"},
           {{"--cache-ram", "-1"}, "displaced prompts' KV states kept in host memory without"},
           {{"--cache-ram", "0"}, "no host-memory prompt cache \\(--cache-ram 0\\)"}}) {
    ChildProcess p(serve_args(flags), "serve");
    expect_lines(p, {"engine: " + says});
    p.terminate();
    EXPECT_EQ(p.wait(), 0) << output(p);
  }
}

TEST(Placement, SpecTypeReachesTheEngine) {
  for (const auto& [flags, says] : std::vector<std::pair<std::vector<std::string>, std::string>>{
           {{"--spec-type", "ngram-simple"},
            "sequences draft up to 48 tokens where their last 12 occurred before, as many a step "
            "as measured costs say \\(--spec-type ngram-simple\\)"},
           {{"--spec-type", "ngram-simple", "--spec-ngram-simple-size-n", "3",
             "--spec-ngram-simple-size-m", "8", "--spec-draft-policy", "all"},
            "sequences draft up to 8 tokens where their last 3 occurred before, all of them every "
            "step"},
           {{"-md", test::generated_model("tiny", mkmodel::WeightType::f32, 2)},
            "a draft model guesses up to 3 tokens of a sequence a step, as many as measured costs "
            "say \\(--spec-draft-model\\)"},
           {{"--spec-type", "draft-simple", "--model-draft", test::generated_model("tiny"),
             "--spec-draft-n-max", "6", "--spec-draft-policy", "all"},
            "a draft model guesses up to 6 tokens of a sequence a step, all of them"}}) {
    ChildProcess p(serve_args(flags), "serve");
    expect_lines(p, {"engine: " + says});
    p.terminate();
    EXPECT_EQ(p.wait(), 0) << output(p);
  }
}

TEST(Placement, LoraFlagsReachTheModel) {
  const std::string model = test::generated_model("tiny");
  const std::string a = test::generated_lora(model, 7);
  const std::string b = test::generated_lora(model, 8);
  // Ids in command-line order, --lora and --lora-scaled mixed, lists comma-separated.
  for (const auto& [flags, lines] :
       std::vector<std::pair<std::vector<std::string>, std::vector<std::string>>>{
           {{"--lora", a, "--lora-scaled", b + ":0.5"},
            {"LoRA adapter 0: .*lora-7.gguf at scale 1",
             "LoRA adapter 1: .*lora-8.gguf at scale 0.5"}},
           {{"--lora-scaled", b + ":-2," + a + ":3"},
            {"LoRA adapter 0: .*lora-8.gguf at scale -2",
             "LoRA adapter 1: .*lora-7.gguf at scale 3"}},
           {{"--lora-scaled", b + ":-2", "--lora", a, "--lora-init-without-apply"},
            {"LoRA adapter 0: .*lora-8.gguf at scale 0",
             "LoRA adapter 1: .*lora-7.gguf at scale 0"}}}) {
    ChildProcess p(serve_args(flags), "serve");
    expect_lines(p, lines);
    p.terminate();
    EXPECT_EQ(p.wait(), 0) << output(p);
  }
  auto wrong = run_troupe("serve --port 0 -m " + model + " --lora " + model);
  EXPECT_NE(wrong.exit_code, 0);
  EXPECT_TRUE(has(wrong.output, "could not load the LoRA adapter")) << wrong.output;
}

TEST(Placement, BadValuesAreClearErrorsBeforeLoading) {
  const std::string model = test::generated_model("tiny");
  struct Case {
    std::string flags, says;
  };
  const std::vector<Case> cases = {
      {"-fa maybe", "--flash-attn: maybe not in {on,off,auto}"},
      {"-ctk q9", "--cache-type-k: q9 not in"},
      {"-ngl x", "--n-gpu-layers: 'x' is not auto, all or a layer count"},
      {"-ngl -3", "--n-gpu-layers: '-3' is not auto, all or a layer count"},
      {"--device nope", "--device: no device 'nope' (this build has: CPU"},
      {"--tensor-split a,1", "--tensor-split: 'a' is not a proportion"},
      {"-ctv q4_0 -fa off", "--cache-type-v: a quantized V cache (q4_0) needs flash attention"},
      {"--split-mode diagonal", "--split-mode: diagonal not in {none,layer,row}"},
      {"--cpu-share maybe", "--cpu-share: maybe not in {auto,split,turns,off}"},
      {"--cache-ram -2", "--cache-ram: Value -2 not in range"},
      {"--spec-type draft", "--spec-type: draft not in {none,ngram-simple,draft-simple}"},
      {"--spec-type ngram-simple,draft", "--spec-type: ngram-simple,draft not in"},
      {"--spec-type draft-simple",
       "--spec-type draft-simple needs a draft model: --spec-draft-model FILE"},
      {"-md " + model + " --spec-draft-p-min 2", "--spec-draft-p-min: Value 2 not in range"},
      {"-md " + model + " --spec-draft-n-max -1", "--spec-draft-n-max: Value -1 not in range"},
      {"--spec-draft-policy some", "--spec-draft-policy: some not in {measured,all}"},
      {"--spec-type ngram-simple --spec-ngram-simple-size-n 0",
       "--spec-ngram-simple-size-n: Value 0 not in range"},
      {"--lora-scaled a.gguf", "--lora-scaled takes FILE:SCALE"},
      {"--lora-scaled a.gguf:big", "--lora-scaled: 'big' is not a scale"},
  };
  for (const auto& c : cases) {
    auto r = run_troupe("serve --port 0 -m " + model + " " + c.flags);
    EXPECT_NE(r.exit_code, 0) << c.flags;
    EXPECT_TRUE(has(r.output, c.says)) << c.flags << ":\n" << r.output;
    EXPECT_FALSE(has(r.output, "ready")) << c.flags << ":\n" << r.output;
  }
}

// A draft model of another vocabulary: the model does not load, and the server says why.
TEST(Placement, ADraftModelOfAnotherVocabularyIsAClearError) {
  auto r = run_troupe("serve --port 0 -m " + test::generated_model("tiny") + " -md " +
                      test::generated_bert_model());
  EXPECT_NE(r.exit_code, 0);
  EXPECT_TRUE(has(r.output,
                  "the draft model cannot draft for this model: its tokenizer is of "
                  "another type"))
      << r.output;
  EXPECT_FALSE(has(r.output, "ready")) << r.output;
}

}  // namespace
}  // namespace troupe::cli
