// troupe mkmodel: writes a random-weight llama GGUF of a chosen shape, with a generated
// vocabulary or a real tokenizer (--vocab FILE.gguf) and chat template (--chat-template).

#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <iterator>
#include <memory>
#include <optional>

#include "cli/command.hpp"
#include "mkmodel/model_spec.hpp"

namespace troupe::cli {
namespace {

struct MkmodelOptions {
  std::string shape = "tiny";
  std::string type = "f16";
  std::uint64_t seed = 42;
  std::string output;
  std::string vocab;          // a GGUF file to take the tokenizer from (digits: --n-vocab)
  std::string chat_template;  // a Jinja file for tokenizer.chat_template
  std::optional<std::int32_t> n_vocab, ctx, embd, layers, heads, kv_heads, ff;
  bool quiet = false;
  std::string arch = "llama";
  std::string pooling = "cls";         // bert only
  std::int32_t sliding_window = 4096;  // cohere2 only
  // --lora-for BASE: a random LoRA adapter for BASE instead of a model.
  std::string lora_for;
  std::int32_t rank = 8;
  std::optional<float> alpha;  // default: the rank (scale 1)
  std::string task_name;
};

bool all_digits(const std::string& s) {
  return !s.empty() &&
         std::all_of(s.begin(), s.end(), [](unsigned char c) { return std::isdigit(c); });
}

Result<std::string> read_text_file(const std::string& path, const char* param) {
  std::ifstream in(path, std::ios::binary);
  if (!in)
    return Error{Errc::invalid_request, fmt::format("cannot read {} file {}", param, path), param};
  return std::string(std::istreambuf_iterator<char>(in), {});
}

// --vocab takes a file; a number there is the vocabulary size (--n-vocab), its older meaning.
Result<void> apply_vocab(const MkmodelOptions& o, mkmodel::ModelSpec& spec) {
  std::optional<std::int32_t> n_vocab = o.n_vocab;
  if (all_digits(o.vocab)) {
    if (o.vocab.size() > 9)
      return Error{Errc::invalid_request, fmt::format("vocab size {} is too large", o.vocab)};
    n_vocab = std::stoi(o.vocab);
  } else if (!o.vocab.empty()) {
    if (n_vocab)
      return Error{Errc::invalid_request, "--n-vocab and --vocab FILE exclude each other"};
    spec.vocab_file = o.vocab;
  }
  if (n_vocab)
    spec.shape.n_vocab = *n_vocab;
  if (!o.chat_template.empty()) {
    auto text = read_text_file(o.chat_template, "chat-template");
    if (!text)
      return text.error();
    spec.chat_template = std::move(text).value();
  }
  return {};
}

Result<mkmodel::ModelSpec> make_spec(const MkmodelOptions& o) {
  auto shape = mkmodel::shape_by_name(o.shape);
  if (!shape)
    return shape.error();
  auto type = mkmodel::parse_weight_type(o.type);
  if (!type)
    return type.error();
  mkmodel::ModelSpec spec{*shape, *type, o.seed};
  auto arch = mkmodel::parse_arch(o.arch);
  if (!arch)
    return arch.error();
  spec.arch = *arch;
  if (spec.arch == mkmodel::Arch::bert) {
    auto pooling = mkmodel::parse_bert_pooling(o.pooling);
    if (!pooling)
      return pooling.error();
    spec.pooling = *pooling;
    spec.shape.n_head_kv = spec.shape.n_head;  // no grouped-query attention
    spec.shape.n_ctx = 512;                    // BERT's learned positions
  }
  spec.sliding_window = o.sliding_window;
  auto override_field = [](std::int32_t& field, const std::optional<std::int32_t>& v) {
    if (v)
      field = *v;
  };
  override_field(spec.shape.n_ctx, o.ctx);
  override_field(spec.shape.n_embd, o.embd);
  override_field(spec.shape.n_layer, o.layers);
  override_field(spec.shape.n_head, o.heads);
  override_field(spec.shape.n_head_kv, o.kv_heads);
  override_field(spec.shape.n_ff, o.ff);
  if (auto ok = apply_vocab(o, spec); !ok)
    return ok.error();
  if (auto ok = mkmodel::validate(spec); !ok)
    return ok.error();
  return spec;
}

// A progress line on a terminal (rewritten in place), nothing otherwise.
mkmodel::Progress progress_printer(bool enabled) {
  if (!enabled || !isatty(STDERR_FILENO))
    return {};
  auto last = std::make_shared<int>(-1);
  return [last](double fraction) {
    const int pct = static_cast<int>(fraction * 100.0);
    if (pct == *last)
      return;
    *last = pct;
    fmt::print(stderr, "\rwriting weights: {:3d}%", pct);
    if (pct == 100)
      fmt::print(stderr, "\n");
  };
}

int run_lora(const MkmodelOptions& o) {
  mkmodel::LoraAdapterSpec spec{o.lora_for, o.rank, o.alpha.value_or(static_cast<float>(o.rank)),
                                o.seed, o.task_name};
  if (auto ok = mkmodel::write_lora_adapter(spec, o.output); !ok) {
    fmt::print(stderr, "troupe mkmodel: {}\n", ok.error().message);
    return 1;
  }
  if (!o.quiet)
    fmt::print("wrote {} (a LoRA adapter of rank {} for {}, seed {})\n", o.output, spec.rank,
               spec.base, spec.seed);
  return 0;
}

int run_mkmodel(const MkmodelOptions& o) {
  if (!o.lora_for.empty())
    return run_lora(o);
  auto spec = make_spec(o);
  if (!spec) {
    fmt::print(stderr, "troupe mkmodel: {}\n", spec.error().message);
    return 2;
  }
  const auto start = std::chrono::steady_clock::now();
  auto ok = mkmodel::write_model(*spec, o.output, progress_printer(!o.quiet));
  if (!ok) {
    fmt::print(stderr, "troupe mkmodel: {}\n", ok.error().message);
    return 1;
  }
  const double secs =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  if (!o.quiet) {
    // parameter_count() counts a llama model's weights.
    std::string what =
        !spec->vocab_file.empty() ? "tokenizer of " + spec->vocab_file
        : spec->arch == mkmodel::Arch::llama
            ? fmt::format("{:.1f} M parameters",
                          static_cast<double>(mkmodel::parameter_count(spec->shape)) / 1e6)
            : "generated vocabulary";
    if (spec->arch == mkmodel::Arch::cohere2)
      what += fmt::format(", cohere2, sliding window {}", spec->sliding_window);
    else if (spec->arch == mkmodel::Arch::lfm2)
      what += ", lfm2 (hybrid)";
    fmt::print("wrote {} ({} shape, {}, {}, seed {}) in {:.1f} s\n", o.output, spec->shape.name,
               mkmodel::weight_type_name(spec->type), what, spec->seed, secs);
  }
  return 0;
}

const CommandRegistration registration{
    "mkmodel", "Write a random-weight llama GGUF model (for tests and benchmarks)", 90,
    [](CLI::App& app) -> std::function<int()> {
      auto o = std::make_shared<MkmodelOptions>();
      app.add_option("--shape", o->shape,
                     "tiny (~1.3 M params) | small (~134 M) | 1b (TinyLlama-1.1B)")
          ->capture_default_str();
      app.add_option("--type", o->type, "weight type: f32 | f16 | q8_0 | q4_0")
          ->capture_default_str();
      app.add_option("--seed", o->seed, "random seed (same seed, same bytes)")
          ->capture_default_str();
      app.add_option("-o,--output", o->output, "output file")->required();
      app.add_option("--vocab", o->vocab,
                     "a GGUF (e.g. llama.cpp's ggml-vocab-*.gguf, or a model) whose tokenizer the "
                     "model takes: tokens, merges, special tokens, chat template");
      app.add_option("--chat-template,--chat-template-file", o->chat_template,
                     "a Jinja file written as tokenizer.chat_template");
      app.add_option("--n-vocab", o->n_vocab, "override: size of the generated vocabulary");
      app.add_option("--ctx", o->ctx, "override: training context length");
      app.add_option("--embd", o->embd, "override: embedding size");
      app.add_option("--layers", o->layers, "override: number of layers");
      app.add_option("--heads", o->heads, "override: attention heads");
      app.add_option("--kv-heads", o->kv_heads, "override: key/value heads (GQA)");
      app.add_option("--ff", o->ff, "override: feed-forward size");
      app.add_option("--arch", o->arch,
                     "llama (generation) | bert (embeddings; needs --vocab "
                     "ggml-vocab-bert-bge.gguf) | cohere2 (generation with sliding-window "
                     "attention on three layers of four, Command R7B's) | lfm2 (a hybrid: "
                     "short convolutions, attention on every third layer, Liquid's LFM2)")
          ->capture_default_str();
      app.add_option("--pooling", o->pooling,
                     "bert: mean | cls | rank (a reranker: adds the classifier head)")
          ->capture_default_str();
      app.add_option("--sliding-window", o->sliding_window,
                     "cohere2: the tokens a windowed layer looks back over")
          ->capture_default_str();
      app.add_option("--lora-for", o->lora_for,
                     "write a random LoRA adapter for this base GGUF instead of a model "
                     "(--rank, --alpha, --seed; for troupe serve --lora)");
      app.add_option("--rank", o->rank, "--lora-for: the adapter's rank")->capture_default_str();
      app.add_option("--alpha", o->alpha, "--lora-for: its alpha (default: the rank, scale 1)");
      app.add_option("--task-name", o->task_name, "--lora-for: its adapter.lora.task_name");
      app.add_flag("-q,--quiet", o->quiet, "print nothing on success");
      return [o] { return run_mkmodel(*o); };
    }};

}  // namespace
}  // namespace troupe::cli
