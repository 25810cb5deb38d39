#include "server/job.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <random>
#include <string_view>
#include <utility>

#include "chatfmt/chat_format.hpp"

namespace troupe::server {
namespace {

bool fits_vocab(engine::Token t, const engine::ModelInfo& m) {
  return m.n_vocab <= 0 || (t >= 0 && t < m.n_vocab);
}

template <class T, class U>
void set_if(const std::optional<U>& from, T& to) {
  if (from)
    to = static_cast<T>(*from);
}

// llama-server's samplers; what the request leaves unset stays off or at its default.
void fill_llama_samplers(const api::GenerationParams& p, engine::SamplingParams& s) {
  set_if(p.repeat_last_n, s.repeat_last_n);
  set_if(p.typical_p, s.typical_p);
  set_if(p.top_n_sigma, s.top_n_sigma);
  set_if(p.dynatemp_range, s.dynatemp_range);
  set_if(p.dynatemp_exponent, s.dynatemp_exponent);
  set_if(p.dry_multiplier, s.dry_multiplier);
  set_if(p.dry_base, s.dry_base);
  set_if(p.dry_allowed_length, s.dry_allowed_length);
  set_if(p.dry_penalty_last_n, s.dry_penalty_last_n);
  if (p.dry_sequence_breakers)
    s.dry_sequence_breakers = *p.dry_sequence_breakers;
  set_if(p.xtc_probability, s.xtc_probability);
  set_if(p.xtc_threshold, s.xtc_threshold);
  set_if(p.mirostat, s.mirostat);
  set_if(p.mirostat_tau, s.mirostat_tau);
  set_if(p.mirostat_eta, s.mirostat_eta);
  s.logit_bias_text = p.logit_bias_text;
  static constexpr std::pair<std::string_view, engine::SamplerStage> stages[] = {
      {"penalties", engine::SamplerStage::penalties},
      {"dry", engine::SamplerStage::dry},
      {"top_n_sigma", engine::SamplerStage::top_n_sigma},
      {"top_k", engine::SamplerStage::top_k},
      {"typ_p", engine::SamplerStage::typical_p},
      {"top_p", engine::SamplerStage::top_p},
      {"min_p", engine::SamplerStage::min_p},
      {"xtc", engine::SamplerStage::xtc},
      {"temperature", engine::SamplerStage::temperature},
      {"infill", engine::SamplerStage::infill}};
  for (const auto& name : p.samplers) {
    for (const auto& [n, stage] : stages) {
      if (n == name)
        s.samplers.push_back(stage);
    }
  }
}

// Fills sampling and stop parameters shared by both endpoints; what the request leaves unset
// stays unset for the serving engine's defaults (its max_tokens: --n-predict, else up to the
// context). Errors: token ids of logit_bias outside the vocabulary.
Result<void> fill_common(const api::GenerationParams& p, const engine::ModelInfo& model,
                         GenerationJob& job) {
  auto& s = job.task.sampling;
  if (p.temperature)
    s.temperature = static_cast<float>(*p.temperature);
  if (p.top_p)
    s.top_p = static_cast<float>(*p.top_p);
  if (p.top_k)
    s.top_k = *p.top_k;
  if (p.min_p)
    s.min_p = static_cast<float>(*p.min_p);
  if (p.presence_penalty)
    s.presence_penalty = static_cast<float>(*p.presence_penalty);
  if (p.frequency_penalty)
    s.frequency_penalty = static_cast<float>(*p.frequency_penalty);
  if (p.repeat_penalty)
    s.repeat_penalty = static_cast<float>(*p.repeat_penalty);
  if (p.seed)
    s.seed = static_cast<std::uint32_t>(*p.seed);
  for (const auto& [token, bias] : p.logit_bias) {
    if (!fits_vocab(token, model)) {
      return Error{Errc::invalid_request,
                   fmt::format("logit_bias token {} is outside the vocabulary ({} tokens)", token,
                               model.n_vocab),
                   "logit_bias"};
    }
  }
  s.logit_bias = p.logit_bias;
  fill_llama_samplers(p, s);
  auto& stop = job.task.stop;
  stop.max_tokens = p.max_tokens;
  stop.stop = p.stop;
  stop.ignore_eos = p.ignore_eos;
  stop.min_tokens = p.min_tokens;
  stop.n_indent = p.n_indent;
  stop.max_predict_ms = p.max_predict_ms;
  job.model = model.id;
  job.task.model = model.id;
  job.task.keep_alive = p.keep_alive;
  job.task.prediction = p.prediction;
  job.task.lora = p.lora;
  job.task.id_slot = p.id_slot;
  job.task.n_cache_reuse = p.n_cache_reuse;
  job.task.reasoning_budget = p.reasoning_budget;
  job.task.reasoning_budget_message = p.reasoning_budget_message;
  job.sse_ping_interval = p.sse_ping_interval;
  job.stream = p.stream;
  job.include_usage = p.include_usage;
  job.choices = p.n;
  return {};
}

// response_format / json_schema / grammar. A conversation's schema goes to its chat template,
// which builds the grammar (so that a thinking family still thinks first); a text prompt's
// becomes a grammar here. The schema is checked here either way (cached), so that a schema
// the converter cannot honour is a 400 before anything is queued.
Result<void> fill_structured(const api::GenerationParams& p, bool chat, GenerationJob& job) {
  if (p.grammar) {
    job.task.sampling.grammar = engine::GrammarSpec{*p.grammar, false, {}, {}, {}};
    return {};
  }
  if (!p.json_schema)
    return {};
  auto gbnf = chatfmt::schema_to_grammar(*p.json_schema, p.schema_param);
  if (!gbnf)
    return gbnf.error();
  if (chat)
    job.task.chat.json_schema = *p.json_schema;
  else
    job.task.sampling.grammar = engine::GrammarSpec{std::move(gbnf).value(), false, {}, {}, {}};
  return {};
}

// Tools the model may call leave no room for a constrained answer, and the reverse.
Result<void> check_tools_and_constraints(const api::ChatRequest& r) {
  if (r.chat.tools.empty() || r.chat.tool_choice == chatfmt::ToolChoice::none)
    return {};
  if (r.params.grammar) {
    return Error{Errc::invalid_request, "A grammar cannot be combined with tools", "grammar"};
  }
  if (r.params.json_schema) {
    return Error{
        Errc::invalid_request,
        "A response format cannot be combined with tools the model may call (use "
        "tool_choice 'none', or no tools)",
        r.params.schema_param.starts_with("response_format") ? "response_format" : "json_schema"};
  }
  return {};
}

}  // namespace

Result<engine::ModelInfo> find_model(const std::string& name,
                                     const std::vector<engine::ModelInfo>& models) {
  if (models.empty())
    return Error{Errc::unavailable, "No model is loaded yet"};
  if (name.empty())
    return models.front();
  for (const auto& m : models) {
    if (m.id == name || std::find(m.aliases.begin(), m.aliases.end(), name) != m.aliases.end())
      return m;
  }
  return Error{Errc::not_found, fmt::format("The model '{}' does not exist", name), "model"};
}

Result<GenerationJob> make_chat_job(api::ChatRequest request,
                                    const std::vector<engine::ModelInfo>& models) {
  auto model = find_model(request.params.model, models);
  if (!model)
    return model.error();
  GenerationJob job;
  job.kind = api::CompletionKind::chat;
  if (auto ok = fill_common(request.params, *model, job); !ok)
    return ok.error();
  for (std::size_t i = 0; i < request.chat.tools.size(); ++i) {
    const auto& tool = request.chat.tools[i];
    // A forced call's arguments are only as valid as the grammar: its schema is checked
    // strictly (docs/API.md, tools).
    const bool forced = request.chat.tool_choice == chatfmt::ToolChoice::required ||
                        (request.chat.tool_choice == chatfmt::ToolChoice::function &&
                         request.chat.tool_choice_function == tool.name);
    if (auto why = chatfmt::check_tool_schema(tool.parameters, forced)) {
      return Error{Errc::invalid_request,
                   fmt::format("The parameters of tool '{}' are not a usable JSON schema{}: {}",
                               tool.name, forced ? " for a forced call" : "", *why),
                   fmt::format("tools[{}].function.parameters", i)};
    }
  }
  if (auto ok = check_tools_and_constraints(request); !ok)
    return ok.error();
  job.task.prompt = std::move(request.messages);
  job.task.chat = std::move(request.chat);
  if (auto ok = fill_structured(request.params, /*chat=*/true, job); !ok)
    return ok.error();
  job.logprobs = request.logprobs;
  job.task.sampling.logprobs = request.logprobs;
  job.task.sampling.top_logprobs = request.top_logprobs;
  return job;
}

namespace {

// One prompt of a text completion as the task takes it: token ids (checked against the
// vocabulary), a text, or with `suffix` the text before an insertion.
Result<JobPrompt> job_prompt(api::CompletionPrompt prompt, const std::string& suffix,
                             const engine::ModelInfo& model) {
  if (auto* tokens = std::get_if<std::vector<std::int32_t>>(&prompt)) {
    for (auto t : *tokens) {
      if (!fits_vocab(t, model)) {
        return Error{
            Errc::invalid_request,
            fmt::format("Prompt token {} is outside the vocabulary ({} tokens)", t, model.n_vocab),
            "prompt"};
      }
    }
    return JobPrompt{std::move(*tokens), std::nullopt};
  }
  auto& text = std::get<std::string>(prompt);
  if (suffix.empty())
    return JobPrompt{std::move(text), std::nullopt};
  // The prompt is the text before the insertion.
  return JobPrompt{std::string(),
                   engine::InfillParams{std::move(text), suffix, {}, /*trim=*/false}};
}

}  // namespace

void JobPrompt::apply(engine::Task& task) const {
  task.prompt = prompt;
  task.infill = infill;
}

engine::Task GenerationJob::task_for(std::size_t answer) const {
  engine::Task t = task;
  if (!prompts.empty())
    prompts[answer / static_cast<std::size_t>(choices)].apply(t);
  auto& seed = t.sampling.seed;
  if (const auto j = answer % static_cast<std::size_t>(choices); j > 0)
    seed = seed ? *seed + static_cast<std::uint32_t>(j) : std::random_device{}();
  return t;
}

Result<GenerationJob> make_completion_job(api::CompletionRequest request,
                                          const std::vector<engine::ModelInfo>& models) {
  auto model = find_model(request.params.model, models);
  if (!model)
    return model.error();
  GenerationJob job;
  job.kind = api::CompletionKind::text;
  if (auto ok = fill_common(request.params, *model, job); !ok)
    return ok.error();
  std::vector<JobPrompt> prompts;
  prompts.reserve(request.prompts.size());
  for (auto& p : request.prompts) {
    auto one = job_prompt(std::move(p), request.suffix, *model);
    if (!one)
      return one.error();
    prompts.push_back(std::move(one).value());
  }
  if (prompts.empty())
    return Error{Errc::invalid_request, "'prompt' is required", "prompt"};
  prompts.front().apply(job.task);
  if (prompts.size() > 1)
    job.prompts = std::move(prompts);
  if (auto ok = fill_structured(request.params, /*chat=*/false, job); !ok)
    return ok.error();
  job.logprobs = request.logprobs.has_value();
  job.task.sampling.logprobs = job.logprobs;
  job.task.sampling.top_logprobs = request.logprobs.value_or(0);
  return job;
}

namespace {

// A text completion answered in llama-server's shape: its n_probs are the task's logprobs.
Result<GenerationJob> native_job(api::CompletionRequest request, api::NativeOptions native,
                                 const std::vector<engine::ModelInfo>& models) {
  auto job = make_completion_job(std::move(request), models);
  if (!job)
    return job;
  job->dialect = Dialect::llama;
  job->task.sampling.logprobs = native.n_probs > 0;
  job->task.sampling.top_logprobs = native.n_probs;
  job->native = std::move(native);
  return job;
}

}  // namespace

Result<GenerationJob> make_native_completion_job(api::NativeCompletionRequest request,
                                                 const std::vector<engine::ModelInfo>& models) {
  return native_job(std::move(request.completion), std::move(request.native), models);
}

Result<GenerationJob> make_infill_job(api::InfillRequest request,
                                      const std::vector<engine::ModelInfo>& models) {
  if (request.completion.params.n != 1)
    return Error{Errc::invalid_request, "/infill gives one answer: 'n' must be 1", "n"};
  auto job = native_job(std::move(request.completion), std::move(request.native), models);
  if (!job)
    return job;
  job->task.infill =
      engine::InfillParams{std::move(request.input_prefix), std::move(request.input_suffix),
                           std::move(request.input_extra), /*trim=*/true};
  return job;
}

}  // namespace troupe::server
