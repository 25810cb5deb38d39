#include "cli/engine_flags.hpp"

#include <fmt/format.h>

#include <cmath>
#include <cstdlib>
#include <exception>
#include <fstream>
#include <limits>
#include <sstream>
#include <string_view>
#include <utility>

#include "engine/local_backend.hpp"
#include "engine/sim_backend.hpp"
#include "hub/hub.hpp"

namespace troupe::cli {

namespace {

// --spec-type's kinds: none, or ngram-simple and draft-simple, alone or comma-separated.
struct SpecTypes {
  bool ngram = false;
  bool draft = false;
};

std::optional<SpecTypes> spec_types(const std::string& value) {
  SpecTypes t;
  std::stringstream in(value);
  for (std::string item; std::getline(in, item, ',');) {
    if (item == "ngram-simple")
      t.ngram = true;
    else if (item == "draft-simple")
      t.draft = true;
    else if (item != "none")
      return std::nullopt;
  }
  return t;
}

// llama-server's sampling flags: defaults for what a request leaves unset.
void add_sampling_flags(CLI::App& app, EngineFlags& f) {
  auto& d = f.defaults;
  const auto* group = "Sampling defaults (a request's own fields win)";
  app.add_option("--temp,--temperature", d.temperature, "temperature (0: greedy)")
      ->capture_default_str()
      ->group(group);
  app.add_option("--top-k", d.top_k, "top-k sampling (0: off)")
      ->capture_default_str()
      ->group(group);
  app.add_option("--top-p", d.top_p, "top-p sampling (1: off)")
      ->capture_default_str()
      ->group(group);
  app.add_option("--min-p", d.min_p, "min-p sampling (0: off)")
      ->capture_default_str()
      ->group(group);
  app.add_option("--repeat-penalty", d.repeat_penalty, "repetition penalty (1: off)")
      ->capture_default_str()
      ->group(group);
  // No -s/-n short forms: CLI11 would read llama-server's -sm, -np and -ngl as -s m, -n p and
  // -n gl instead of answering them with what troupe calls them.
  app.add_option("--seed", f.seed, "random seed (-1: a random one per request)")
      ->capture_default_str()
      ->group(group);
  app.add_option("--n-predict,--predict", f.n_predict,
                 "tokens to generate when a request sets no max_tokens (-1: up to the context)")
      ->capture_default_str()
      ->group(group);
}

void add_placement_flags(CLI::App& app, EngineFlags& f) {
  auto& p = f.placement;
  const auto* group = "GPU offload and memory (llama-server's names)";
  app.add_option("--n-gpu-layers,--gpu-layers", f.gpu_layers,
                 "layers to offload to the GPU: auto (all when a GPU device is present), all, "
                 "or a count (-ngl)")
      ->capture_default_str()
      ->group(group);
  app.add_option("--device", f.devices,
                 "devices to offload to, comma-separated (see troupe version), or none (-dev)")
      ->group(group);
  app.add_option("--split-mode", p.split_mode, "none|layer|row: how to use several GPUs (-sm)")
      ->check(CLI::IsMember({"none", "layer", "row"}))
      ->capture_default_str()
      ->group(group);
  app.add_option("--tensor-split", f.tensor_split,
                 "proportion of the model per GPU, e.g. 3,1 (-ts)")
      ->group(group);
  app.add_option("--main-gpu", p.main_gpu, "the GPU of --split-mode none (-mg)")
      ->capture_default_str()
      ->group(group);
  app.add_option("--flash-attn", p.flash_attn, "on|off|auto (-fa)")
      ->check(CLI::IsMember({"on", "off", "auto"}))
      ->capture_default_str()
      ->group(group);
  app.add_option("--cache-type-k", p.cache_type_k, "KV cache type of K (-ctk)")
      ->check(CLI::IsMember(engine::kv_cache_types()))
      ->capture_default_str()
      ->group(group);
  app.add_option("--cache-type-v", p.cache_type_v,
                 "KV cache type of V (-ctv; quantized types need flash attention)")
      ->check(CLI::IsMember(engine::kv_cache_types()))
      ->capture_default_str()
      ->group(group);
  app.add_flag("!--no-mmap", p.mmap, "read the model into memory instead of mapping it")
      ->group(group);
  app.add_flag("--mlock", p.mlock, "keep the model in RAM (no swapping)")->group(group);
}

}  // namespace

Result<engine::PlacementOptions> placement_options(const EngineFlags& f) {
  engine::PlacementOptions p = f.placement;
  auto layers = engine::parse_gpu_layers(f.gpu_layers);
  if (!layers)
    return layers.error();
  p.n_gpu_layers = layers.value();
  auto split = [](const std::string& list) {
    std::vector<std::string> out;
    std::stringstream in(list);
    for (std::string item; std::getline(in, item, ',');)
      out.push_back(item);
    return out;
  };
  p.devices = split(f.devices);
  p.tensor_split.clear();
  for (const auto& item : split(f.tensor_split)) {
    char* end = nullptr;
    const float v = std::strtof(item.c_str(), &end);
    if (item.empty() || end != item.c_str() + item.size() || !(v >= 0)) {
      return Error{Errc::invalid_request,
                   "--tensor-split: '" + item + "' is not a proportion (e.g. 3,1)"};
    }
    p.tensor_split.push_back(v);
  }
  if (auto r = engine::check_placement(p); !r)
    return r.error();
  return p;
}

void add_engine_flags(CLI::App& app, EngineFlags& f, const std::string& model_help) {
  auto* model = app.add_option("-m,--model", f.models, model_help)
                    ->expected(1)
                    ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);
  const auto* hf = "Models from Hugging Face (HF_ENDPOINT, HF_TOKEN; see troupe pull --help)";
  app.add_option("--hf-repo", f.hf_repo,
                 "OWNER/NAME[:QUANT]: the cached model, else downloaded first (-hf; QUANT as "
                 "troupe pull takes it)")
      ->excludes(model)
      ->group(hf);
  app.add_option("--hf-file", f.hf_file, "an exact file of the --hf-repo repository (-hff)")
      ->excludes(model)
      ->group(hf);
  app.add_option("-a,--alias", f.alias, "model name clients use (default: the file name)");
  app.add_option("--engine", f.engine, "llama|sim")
      ->check(CLI::IsMember({"llama", "sim"}))
      ->capture_default_str();
  auto& o = f.options.engine;
  app.add_option("--parallel", o.n_parallel, "sequences decoded together")
      ->each([&f](const std::string&) { f.parallel_given = true; })
      ->capture_default_str();
  app.add_option("-c,--ctx-size", o.n_ctx,
                 "KV cells in all, shared by the --parallel sequences (0: the model's trained "
                 "context)")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  // Unset unless given: the default depends on --parallel (engine_options). "=false" works
  // too, as a preset writes it (kv-unified = false).
  app.add_flag_function(
      "--kv-unified,!--no-kv-unified", [&f](std::int64_t n) { f.kv_unified = n > 0; },
      "one pool of -c cells shared by all sequences: one request may use the whole context, "
      "up to the model's trained one (-kvu; the default unless --parallel is given, as "
      "llama-server). --no-kv-unified: a KV stream of -c / --parallel cells per sequence, "
      "faster with many streams (-no-kvu)");
  app.add_flag("--swa-full", o.swa_full,
               "keep every KV cell of a sliding-window model's windowed layers (Gemma, gpt-oss, "
               "...), not just their window: more memory, and a cached prompt serves any later "
               "prompt that begins with part of it (default: the window, as llama-server; a "
               "prefix cut further back than the window is computed again)");
  app.add_option("--ctx-checkpoints", o.ctx_checkpoints,
                 "models whose memory cannot be cut back to any token (sliding-window without "
                 "--swa-full, recurrent, hybrid): checkpoints of that memory a slot keeps, "
                 "taken when a prompt has been computed, so that a later prompt reuses that "
                 "prompt whatever the slot computed after it (the answer rendered otherwise, "
                 "its reasoning dropped); 0: none (-ctxcp)")
      ->check(CLI::Range(0, 1024))
      ->capture_default_str();
  app.add_flag_function(
      "--no-pad-rows", [&o](std::int64_t) { o.pad_rows = engine::PadRows::off; },
      "never give idle slots a discarded token to make a step one pass over the "
      "weights (with a KV stream per sequence, padding is chosen by each step's "
      "measured cost)");
  app.add_option("-t,--threads", o.n_threads, "llama.cpp threads (0: all cores)")
      ->capture_default_str();
  app.add_option("--poll", o.thread_poll,
                 "threadpool workers' polling between decodes, 0 (sleep at once) to 100")
      ->check(CLI::Range(0, 100))
      ->capture_default_str();
  app.add_flag("!--no-threadpool", o.persistent_threads,
               "let llama.cpp start its worker threads on every decode instead of keeping a pool");
  app.add_option_function<std::string>(
         "--cpu-share",
         [&o](const std::string& v) {
           o.cpu_share = v == "split"   ? engine::CpuShare::split
                         : v == "turns" ? engine::CpuShare::turns
                         : v == "off"   ? engine::CpuShare::off
                                        : engine::CpuShare::automatic;
         },
         "auto|split|turns|off: how this process's models share the cores while several "
         "are busy: split --threads among them, decode one at a time, or each on all its "
         "threads at once (auto: split for models on the CPU; for a model wholly on a GPU, "
         "turns where ggml has no OpenMP)")
      ->check(CLI::IsMember({"auto", "split", "turns", "off"}))
      ->default_str("auto");
  app.add_option("-b,--batch", o.n_batch,
                 "token budget of one decode step (short prompts waiting while nothing "
                 "generates may go in whole past it)")
      ->capture_default_str();
  app.add_option("--sampling-threads", o.sampling_threads,
                 "threads that share a step's sampling when it is costly (grammars, large "
                 "vocabularies, many sequences); 0: --threads, at most 8; 1: the engine thread "
                 "alone")
      ->check(CLI::Range(0, 64))
      ->capture_default_str();
  app.add_option("--prefill-stretch", o.prefill_stretch,
                 "while sequences generate, a step that takes in a prompt longer than one chunk "
                 "may last about this many times a generation-only step (the prompt is spread "
                 "over more steps; with a KV stream per sequence a stretch that leaves no room "
                 "for a second pass over the weights, about 2 or less, gives it one token a "
                 "step); 0: off, only the token budgets limit it")
      ->check(CLI::Validator(
          [](const std::string& v) {
            double x = -1.0;
            try {
              x = std::stod(v);
            } catch (const std::exception&) {
            }
            return x == 0.0 || x >= 1.0 ? std::string{} : std::string{"0 (off) or at least 1"};
          },
          "0 or >= 1"))
      ->capture_default_str();
  app.add_option("--max-queue", f.options.max_queue, "waiting requests before refusing (503)")
      ->capture_default_str();
  app.add_option("--cache-ram", f.cache_ram_mib,
                 "MiB of host memory for the KV states of cached prompts a new prompt displaces "
                 "from their slot, restored when a later prompt begins with them; -1: no "
                 "limit, 0: off")
      ->check(CLI::Range(std::int64_t{-1}, std::int64_t{1} << 40))
      ->capture_default_str();
  app.add_option("--cache-reuse", f.options.engine.cache_reuse,
                 "shortest run of a slot's cached tokens, after the prefix it shares with a new "
                 "prompt, that is reused by moving its cells into place instead of computed "
                 "again (an editor's context chunks coming and going); a request's "
                 "n_cache_reuse overrides it; 0: off")
      ->check(CLI::Range(0, std::numeric_limits<std::int32_t>::max()))
      ->capture_default_str();
  app.add_option("--spec-type", f.spec_type,
                 "speculative decoding: none; ngram-simple (a sequence whose last tokens "
                 "occurred before in it drafts what followed them there); draft-simple (a draft "
                 "model guesses the next tokens: --spec-draft-model); or "
                 "ngram-simple,draft-simple (the lookup first). A sequence keeps the drafted "
                 "tokens its sampler draws: the same output, several tokens a step")
      ->check(CLI::Validator(
          [](const std::string& v) {
            return spec_types(v) ? std::string{}
                                 : v + " not in {none,ngram-simple,draft-simple} (or a "
                                       "comma-separated list of them)";
          },
          "TYPE[,TYPE]"))
      ->capture_default_str();
  app.add_option(
         "--spec-ngram-simple-size-n", o.spec_ngram_n,
         "ngram-simple: the tokens matched, the end of the sequence looked up earlier in it")
      ->check(CLI::Range(1, 1024))
      ->capture_default_str();
  app.add_option("--spec-ngram-simple-size-m", o.spec_ngram_m,
                 "ngram-simple: the tokens drafted at most, those that followed the match")
      ->check(CLI::Range(1, 1024))
      ->capture_default_str();
  app.add_option("--spec-draft-policy", f.spec_draft_policy,
                 "how many of a draft's tokens a step decodes: measured (as the steps' measured "
                 "costs by rows and the sequence's recent acceptance say) or all")
      ->check(CLI::IsMember({"measured", "all"}))
      ->capture_default_str();
  app.add_option("--spec-draft-model,--model-draft", f.spec_draft_model,
                 "a draft model for speculative decoding: a smaller GGUF of the same vocabulary "
                 "that guesses each sequence's next tokens (implies --spec-type draft-simple); "
                 "-md is the same");
  app.add_option("--spec-draft-n-max", o.spec_draft_max,
                 "draft-simple: the tokens the draft model guesses at most a step")
      ->check(CLI::Range(0, 1024))
      ->capture_default_str();
  app.add_option("--spec-draft-n-min", o.spec_draft_min,
                 "draft-simple: a draft of fewer tokens is not decoded")
      ->check(CLI::Range(0, 1024))
      ->capture_default_str();
  app.add_option("--spec-draft-p-min", o.spec_draft_p_min,
                 "draft-simple: the draft model's probability below which it stops guessing")
      ->check(CLI::Range(0.0f, 1.0f))
      ->capture_default_str();
  // Each occurrence as it is parsed, so that --lora and --lora-scaled keep the command line's
  // order (an adapter's id), as llama-server's; comma-separated lists as llama-server's too.
  const auto lora_flag = [&f](bool scaled) {
    return [&f, scaled](const std::string& value) {
      std::string_view rest = value;
      for (;;) {
        const auto comma = rest.find(',');
        f.lora.push_back({std::string(rest.substr(0, comma)), scaled});
        if (comma == std::string_view::npos)
          break;
        rest.remove_prefix(comma + 1);
      }
    };
  };
  app.add_option_function<std::string>("--lora", lora_flag(false),
                                       "a LoRA adapter (GGUF) applied at scale 1 (FILE[,FILE...]; "
                                       "repeatable). Requests choose scales with 'lora': "
                                       "[{\"id\": 0, \"scale\": 0.5}], ids in flag order")
      ->trigger_on_parse();
  app.add_option_function<std::string>("--lora-scaled", lora_flag(true),
                                       "a LoRA adapter at a scale: FILE:SCALE[,FILE:SCALE...]; "
                                       "repeatable")
      ->trigger_on_parse();
  app.add_flag("--lora-init-without-apply", f.lora_init_without_apply,
               "load the adapters at scale 0: requests without 'lora' run on the base model "
               "until POST /lora-adapters sets scales");
  app.add_option("--sim-decode-tps", f.sim.decode_tokens_per_s,
                 "--engine sim: tokens/s per sequence")
      ->capture_default_str();
  app.add_option("--sim-prefill-tps", f.sim.prefill_tokens_per_s, "--engine sim: prompt tokens/s")
      ->capture_default_str();
  app.add_flag("--sim-steps", f.sim.step_aligned,
               "--engine sim: every sequence's tokens on one step clock, as a batching engine "
               "emits them (default: each stream on its own phase)");
  auto* name = app.add_option("--chat-template", f.chat_template,
                              "chat template instead of the model's: chatml, or the name of "
                              "another template in the GGUF (e.g. tool_use)");
  app.add_option("--chat-template-file", f.chat_template_file,
                 "chat template instead of the model's: a Jinja file")
      ->excludes(name);
  app.add_option("--reasoning-budget", f.options.reasoning_budget,
                 "tokens a conversation may think (inside its template's reasoning block) before "
                 "the block is closed for it and the answer goes on; a request's "
                 "reasoning_budget_tokens (Anthropic's thinking.budget_tokens) overrides it; -1: "
                 "no limit, 0: close it at once")
      ->check(CLI::Range(-1, std::numeric_limits<std::int32_t>::max()))
      ->capture_default_str();
  app.add_option("--reasoning-budget-message", f.options.reasoning_budget_message,
                 "text written before the closing tag when a reasoning budget is spent "
                 "(default: none)");
  app.add_flag("--spm-infill", f.options.spm_infill,
               "fill in the middle in suffix-prefix-middle order (for models trained that way; "
               "default: prefix-suffix-middle)");
  app.add_flag("--embeddings,--embedding", o.embeddings,
               "serve /v1/embeddings and /v1/rerank (an embedding-only model implies it)");
  app.add_option("--embed-pack", o.embed_pack,
                 "an embedding step packs whole inputs up to this many tokens (a longer input "
                 "goes alone, up to --batch); 0: up to --batch")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  app.add_option("--pooling", f.pooling,
                 "embedding pooling instead of the model's: none|mean|cls|last|rank")
      ->check(CLI::IsMember({"none", "mean", "cls", "last", "rank"}));
  add_placement_flags(app, f);
  add_sampling_flags(app, f);
}

namespace {

// -m/--model, or the --hf-repo/--hf-file model's path in the cache.
Result<std::string> model_path(const EngineFlags& f) {
  if (!f.hf_repo.empty() || !f.hf_file.empty())
    return hub::resolve_model(f.hf_repo, f.hf_file);
  if (f.models.empty())
    return Error{Errc::invalid_request, "--model (or --hf-repo) is required with --engine llama"};
  return f.models.front();
}

// The chat template EngineOptions takes: the file's text, the name, or empty (the model's).
Result<std::string> chat_template_choice(const EngineFlags& f) {
  if (f.chat_template_file.empty())
    return f.chat_template;
  std::ifstream in(f.chat_template_file, std::ios::binary);
  std::ostringstream text;
  if (in)
    text << in.rdbuf();
  if (!in || text.str().empty()) {
    return Error{Errc::invalid_request,
                 fmt::format("--chat-template-file {}: cannot read it, or it is empty",
                             f.chat_template_file)};
  }
  return text.str();
}

}  // namespace

Result<engine::SamplingDefaults> sampling_defaults(const EngineFlags& f) {
  engine::SamplingDefaults d = f.defaults;
  if (f.seed < -1 || f.seed > std::numeric_limits<std::uint32_t>::max())
    return Error{Errc::invalid_request, "--seed must be -1 (random) or in [0, 2^32)"};
  if (f.seed >= 0)
    d.seed = static_cast<std::uint32_t>(f.seed);
  if (f.n_predict == 0 || f.n_predict < -1)
    return Error{Errc::invalid_request, "--n-predict must be -1 (up to the context) or >= 1"};
  if (f.n_predict > 0)
    d.n_predict = f.n_predict;
  const auto bad = [](std::string_view flag, std::string_view range) {
    return Error{Errc::invalid_request, fmt::format("{} must be in {}", flag, range)};
  };
  if (!(d.temperature >= 0.0f && d.temperature <= 100.0f))
    return bad("--temp", "[0, 100]");
  if (d.top_k < 0)
    return bad("--top-k", "[0, 2^31)");
  if (!(d.top_p > 0.0f && d.top_p <= 1.0f))
    return bad("--top-p", "(0, 1]");
  if (!(d.min_p >= 0.0f && d.min_p <= 1.0f))
    return bad("--min-p", "[0, 1]");
  if (!(d.repeat_penalty > 0.0f && std::isfinite(d.repeat_penalty)))
    return bad("--repeat-penalty", "(0, inf)");
  return d;
}

Result<engine::EngineOptions> engine_options(const EngineFlags& f, const std::string& path) {
  auto defaults = sampling_defaults(f);
  if (!defaults)
    return defaults.error();
  auto chat_template = chat_template_choice(f);
  if (!chat_template)
    return chat_template.error();
  engine::EngineOptions eo = f.options;
  eo.chat_template = std::move(chat_template).value();
  eo.model_path = path;
  eo.model_id = f.alias;
  eo.defaults = *defaults;
  auto placement = placement_options(f);
  if (!placement)
    return placement.error();
  eo.engine.placement = std::move(placement).value();
  eo.engine.kv_unified = f.kv_unified.value_or(!f.parallel_given);
  eo.engine.host_cache_bytes = f.cache_ram_mib < 0 ? -1 : f.cache_ram_mib << 20;
  const auto types = spec_types(f.spec_type);
  if (!types)
    return Error{Errc::invalid_request, "--spec-type: " + f.spec_type + " is not a known type"};
  if (types->draft && f.spec_draft_model.empty()) {
    return Error{Errc::invalid_request,
                 "--spec-type draft-simple needs a draft model: --spec-draft-model FILE"};
  }
  eo.engine.spec = types->ngram ? engine::SpecType::ngram_simple : engine::SpecType::none;
  eo.engine.spec_measured = f.spec_draft_policy != "all";
  eo.draft_model_path = f.spec_draft_model;
  for (const EngineFlags::LoraArg& arg : f.lora) {
    if (!arg.scaled) {
      eo.lora.push_back({arg.text, 1.0f});
      continue;
    }
    auto spec = engine::parse_lora_scaled(arg.text);
    if (!spec)
      return spec.error();
    eo.lora.push_back(std::move(spec).value());
  }
  if (f.lora_init_without_apply) {
    for (engine::LoraSpec& l : eo.lora)
      l.scale = 0.0f;
  }
  eo.engine.embeddings = eo.engine.embeddings || !f.pooling.empty();
  if (!f.pooling.empty())
    eo.engine.pooling = *engine::parse_pooling(f.pooling);
  return eo;
}

Result<std::unique_ptr<engine::Backend>> make_backend(const EngineFlags& f) {
  if (f.engine == "sim") {
    auto defaults = sampling_defaults(f);
    if (!defaults)
      return defaults.error();
    if (!f.hf_repo.empty() || !f.hf_file.empty())
      return Error{Errc::invalid_request, "--hf-repo and --hf-file need --engine llama"};
    if (!f.spec_draft_model.empty())
      return Error{Errc::invalid_request, "--spec-draft-model needs --engine llama"};
    if (!f.lora.empty())
      return Error{Errc::invalid_request, "--lora and --lora-scaled need --engine llama"};
    if (f.options.engine.embeddings || !f.pooling.empty()) {
      return Error{Errc::invalid_request,
                   "--embeddings and --pooling need --engine llama (the simulated engine "
                   "computes no embeddings)"};
    }
    if (!f.chat_template.empty() || !f.chat_template_file.empty()) {
      return Error{Errc::invalid_request,
                   "--chat-template and --chat-template-file need --engine llama (the simulated "
                   "engine renders no templates)"};
    }
    engine::SimOptions so = f.sim;
    if (!f.alias.empty())
      so.model_id = f.alias;
    // The queue's shape; the context is per sequence here, and the sim has no trained one.
    so.n_ctx = f.options.engine.n_ctx > 0 ? f.options.engine.n_ctx : 4096;
    so.n_parallel = f.options.engine.n_parallel;
    so.max_queue = f.options.max_queue;
    so.defaults = *defaults;
    return engine::make_sim_backend(so);
  }
  if (f.models.size() > 1) {
    return Error{Errc::invalid_request,
                 "several --model: only troupe serve serves several models (one -m here)"};
  }
  auto model = model_path(f);
  if (!model)
    return model.error();
  auto eo = engine_options(f, model.value());
  if (!eo)
    return eo.error();
  return engine::make_local_backend(std::move(eo).value());
}

}  // namespace troupe::cli
