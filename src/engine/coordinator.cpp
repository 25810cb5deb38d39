#include "engine/coordinator.hpp"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <limits>
#include <stdexcept>

#include "engine/vocab_tokenizer.hpp"
#include "util/thread_name.hpp"

namespace troupe::engine {

namespace asio = boost::asio;

namespace {

std::string default_model_id(const std::string& path) {
  return std::filesystem::path(path).stem().string();
}

// The bytes of a task's text that its prompt holds whole (an infill's parts unless trimmed).
std::size_t infill_bytes(const std::optional<InfillParams>& infill) {
  if (!infill || infill->trim)
    return 0;
  std::size_t n = infill->prefix.size() + infill->suffix.size();
  for (const auto& [file, text] : infill->extra)
    n += file.size() + text.size();
  return n;
}

std::size_t prompt_bytes(const Prompt& prompt) {
  if (const auto* s = std::get_if<std::string>(&prompt))
    return s->size();
  if (const auto* msgs = std::get_if<std::vector<ChatMessage>>(&prompt)) {
    std::size_t n = 0;
    for (const auto& m : *msgs)
      n += m.content.size();
    return n;
  }
  return 0;
}

// Says what the operator can change, too: the context is -c cells, split among --parallel
// sequences or (--kv-unified) shared by them up to the model's trained context.
Error too_long(std::int64_t tokens, const BatchEngine& engine, bool at_least) {
  std::string fix;
  if (!engine.kv_unified()) {
    fix = fmt::format(
        "serve with a larger -c/--ctx-size (now {} for {} parallel sequences), "
        "a smaller --parallel, or --kv-unified (one request may then use the "
        "whole context)",
        engine.n_cells(), engine.n_parallel());
  } else if (engine.n_ctx_seq() < engine.n_cells()) {
    fix = fmt::format("use a model trained for a longer context (this one: {} tokens)",
                      engine.n_ctx_seq());
  } else {
    fix = fmt::format(
        "serve with a larger -c/--ctx-size (now {}, shared by {} parallel "
        "sequences)",
        engine.n_cells(), engine.n_parallel());
  }
  return Error{Errc::prompt_too_long,
               fmt::format("the prompt has {}{} tokens, but the context holds {} tokens per "
                           "request (prompt plus at least one generated token): shorten the "
                           "conversation, or {}",
                           at_least ? "at least " : "", tokens, engine.n_ctx_seq(), fix),
               "prompt"};
}

// Runs `f` on `ex` and resumes the caller on its own executor with f's result.
template <class F>
asio::awaitable<std::invoke_result_t<F&>> run_on(asio::thread_pool::executor_type ex, F f) {
  using R = std::invoke_result_t<F&>;
  auto r = co_await asio::co_spawn(
      ex, [&f]() -> asio::awaitable<std::optional<R>> { co_return f(); }, asio::use_awaitable);
  co_return std::move(*r);
}

}  // namespace

namespace {

Error bad_parameter(std::string message, std::string param) {
  return Error{Errc::invalid_request, std::move(message), std::move(param)};
}

bool finite_at_least(float x, float lo) {
  return std::isfinite(x) && x >= lo;
}

// temperature, top_k, top_p, min_p and the penalties.
std::optional<Error> check_basic_sampling(const SamplingParams& s) {
  if (s.temperature && !(*s.temperature >= 0.0f && *s.temperature <= 100.0f))
    return bad_parameter("temperature must be in [0, 100]", "temperature");
  if (s.top_p && !(*s.top_p > 0.0f && *s.top_p <= 1.0f))
    return bad_parameter("top_p must be in (0, 1]", "top_p");
  if (s.min_p && !(*s.min_p >= 0.0f && *s.min_p <= 1.0f))
    return bad_parameter("min_p must be in [0, 1]", "min_p");
  if (s.top_k && *s.top_k < 0)
    return bad_parameter("top_k must be >= 0", "top_k");
  if (s.repeat_penalty && !(std::isfinite(*s.repeat_penalty) && *s.repeat_penalty > 0.0f))
    return bad_parameter("repeat_penalty must be > 0", "repeat_penalty");
  if (s.repeat_last_n < -1)
    return bad_parameter("repeat_last_n must be >= -1 (-1: the context)", "repeat_last_n");
  if (!std::isfinite(s.presence_penalty))
    return bad_parameter("presence_penalty must be finite", "presence_penalty");
  if (!std::isfinite(s.frequency_penalty))
    return bad_parameter("frequency_penalty must be finite", "frequency_penalty");
  const auto bad_bias = [](const auto& entry) {
    return std::isnan(entry.second) || entry.second == std::numeric_limits<float>::infinity();
  };
  if (std::any_of(s.logit_bias.begin(), s.logit_bias.end(), bad_bias) ||
      std::any_of(s.logit_bias_text.begin(), s.logit_bias_text.end(), bad_bias))
    return bad_parameter("a logit bias must be a number or -inf (never)", "logit_bias");
  return std::nullopt;
}

// llama-server's samplers beyond OpenAI's.
std::optional<Error> check_llama_samplers(const SamplingParams& s) {
  if (!(s.typical_p > 0.0f && s.typical_p <= 1.0f))
    return bad_parameter("typical_p must be in (0, 1]", "typical_p");
  if (!std::isfinite(s.top_n_sigma))
    return bad_parameter("top_n_sigma must be a finite number", "top_n_sigma");
  if (!finite_at_least(s.dynatemp_range, 0.0f))
    return bad_parameter("dynatemp_range must be >= 0", "dynatemp_range");
  if (!finite_at_least(s.dynatemp_exponent, 0.0f))
    return bad_parameter("dynatemp_exponent must be >= 0", "dynatemp_exponent");
  if (!finite_at_least(s.dry_multiplier, 0.0f))
    return bad_parameter("dry_multiplier must be >= 0", "dry_multiplier");
  if (!finite_at_least(s.dry_base, 1.0f))
    return bad_parameter("dry_base must be >= 1", "dry_base");
  if (s.dry_allowed_length < 0)
    return bad_parameter("dry_allowed_length must be >= 0", "dry_allowed_length");
  if (s.dry_penalty_last_n < -1)
    return bad_parameter("dry_penalty_last_n must be >= -1 (-1: the context)",
                         "dry_penalty_last_n");
  const auto& breakers = s.dry_sequence_breakers;
  if (breakers.empty() || breakers.size() > max_dry_sequence_breakers ||
      std::any_of(breakers.begin(), breakers.end(), [](const auto& b) { return b.empty(); })) {
    return bad_parameter(fmt::format("dry_sequence_breakers must be 1 to {} non-empty strings",
                                     max_dry_sequence_breakers),
                         "dry_sequence_breakers");
  }
  if (!(s.xtc_probability >= 0.0f && s.xtc_probability <= 1.0f))
    return bad_parameter("xtc_probability must be in [0, 1]", "xtc_probability");
  if (!(s.xtc_threshold >= 0.0f && s.xtc_threshold <= 1.0f))
    return bad_parameter("xtc_threshold must be in [0, 1]", "xtc_threshold");
  if (s.mirostat < 0 || s.mirostat > 2)
    return bad_parameter("mirostat must be 0, 1 or 2", "mirostat");
  if (!finite_at_least(s.mirostat_tau, 0.0f))
    return bad_parameter("mirostat_tau must be >= 0", "mirostat_tau");
  if (!finite_at_least(s.mirostat_eta, 0.0f))
    return bad_parameter("mirostat_eta must be >= 0", "mirostat_eta");
  return std::nullopt;
}

}  // namespace

std::optional<Error> validate_parameters(const SamplingParams& s, const StopParams& stop) {
  if (auto e = check_basic_sampling(s))
    return e;
  if (auto e = check_llama_samplers(s))
    return e;
  if (s.top_logprobs < 0 || s.top_logprobs > 20)
    return bad_parameter("top_logprobs must be in [0, 20]", "top_logprobs");
  if (stop.max_tokens && *stop.max_tokens < 1)
    return bad_parameter("max_tokens must be >= 1", "max_tokens");
  if (stop.min_tokens < 0)
    return bad_parameter("min_tokens must be >= 0", "min_tokens");
  if (stop.n_indent < 0)
    return bad_parameter("n_indent must be >= 0", "n_indent");
  if (stop.max_predict_ms < 0)
    return bad_parameter("t_max_predict_ms must be >= 0", "t_max_predict_ms");
  return std::nullopt;
}

Coordinator::Coordinator(EngineOptions options)
    : options_(std::move(options)),
      model_id_(options_.model_id.empty() ? default_model_id(options_.model_path)
                                          : options_.model_id),
      actors_work_(asio::make_work_guard(actors_)),
      limits_{options_.engine.n_parallel, options_.max_queue} {
  actor_thread_ = util::named_thread("sequences", [this] { actors_.run(); });
  admission_ = spawn_admission(system_, limits_, gauges_);
  loader_ = util::named_thread("model-load", [this] { load(); });
  asio::post(tokenizer_, [] { util::set_thread_name("tokenizer"); });  // its one thread
}

Coordinator::~Coordinator() {
  if (loader_.joinable())
    loader_.join();
  // Every actor stops (the light ones need the actors thread running), the engine's thread
  // is joined and its context freed, then the actors thread ends.
  system_.shutdown(actor::StopMode::drop);
  actors_work_.reset();
  actors_.stop();
  if (actor_thread_.joinable())
    actor_thread_.join();
  engine_.reset();
  tokenizer_.join();
}

void Coordinator::load() {
  auto model = LlamaModel::load(
      {options_.model_path, options_.engine.placement, options_.lora, options_.on_load_progress});
  if (!model)
    return set_health(HealthState::failed, model.error().message);
  model_ = std::move(model.value());
  lora_.assign(model_->lora_adapters());
  auto chat_template = load_chat_template();
  if (!chat_template)
    return set_health(HealthState::failed, chat_template.error().message);
  chat_template_ = std::move(chat_template.value());
  if (options_.engine.n_ctx == 0) {  // -c 0: the context the model was trained with
    options_.engine.n_ctx = model_->n_ctx_train();
    spdlog::info("model {}: -c 0: the trained context, {} tokens, shared by {} sequences",
                 model_id_, options_.engine.n_ctx, options_.engine.n_parallel);
  }
  if (!options_.draft_model_path.empty()) {
    auto draft = LlamaModel::load({options_.draft_model_path, options_.engine.placement, {}, {}});
    if (!draft) {
      return set_health(HealthState::failed,
                        "the draft model (--spec-draft-model): " + draft.error().message);
    }
    draft_model_ = std::move(draft.value());
  }
  auto engine =
      BatchEngine::start(system_, *model_, options_.engine, admission_, {}, draft_model_.get());
  if (!engine)
    return set_health(HealthState::failed, engine.error().message);
  engine_ = std::move(engine.value());
  admission_.tell(EngineReady{engine_->ref()});
  n_ctx_seq_ = engine_->n_ctx_seq();
  created_ = std::chrono::duration_cast<std::chrono::seconds>(
                 std::chrono::system_clock::now().time_since_epoch())
                 .count();
  if (auto d = read_model_details(options_.model_path))
    details_ = std::move(d).value();
  ready_.store(true, std::memory_order_release);
  const std::string kv =
      engine_->kv_unified()
          ? fmt::format("{} sequences sharing {} KV cells (--kv-unified), up to {} tokens each",
                        options_.engine.n_parallel, engine_->n_cells(), n_ctx_seq_)
          : fmt::format("{} sequences x {} tokens", options_.engine.n_parallel, n_ctx_seq_);
  PlacementReport where =
      model_->placement_report(options_.engine.placement, options_.engine.n_ctx);
  if (const auto& use = engine_->memory_use()) {
    constexpr double kMiB = 1024.0 * 1024.0;
    where.measure(static_cast<double>(use->context) / kMiB,
                  static_cast<double>(use->compute) / kMiB);
  }
  // An estimate counts every layer's cells; a sliding-window model's windowed layers keep the
  // window's only (BatchEngineConfig::swa_full).
  const std::int32_t n_swa = llama_model_n_swa(model_->get());
  const std::string window =
      n_swa > 0 && !options_.engine.swa_full && !llama_model_is_hybrid(model_->get())
          ? fmt::format(
                "{} (a sliding window of {} tokens: those layers keep its cells only; "
                "--swa-full keeps them all)",
                where.measured ? "" : " at most", n_swa)
          : std::string();
  spdlog::info("model {} ready: {}; {}{}", model_id_, kv, where.summary(), window);
  if (draft_model_) {
    spdlog::info(
        "model {}: speculative decoding with the draft model {} (up to {} tokens a "
        "sequence a step)",
        model_id_, options_.draft_model_path, options_.engine.spec_draft_max);
  }
  for (std::size_t i = 0; i < model_->lora_adapters().size(); ++i) {
    const LoraAdapter& a = model_->lora_adapters()[i];
    spdlog::info("model {}: LoRA adapter {}: {} at scale {}", model_id_, i, a.path, a.scale);
  }
  if (engine_->embeddings()) {
    spdlog::info("embeddings: {} floats, pooling {}, up to {} tokens per input{}",
                 engine_->n_embd(), pooling_name(engine_->pooling()), engine_->embed_limit(),
                 model_->embedding_only() ? " (an embedding-only model: no generation)" : "");
  }
  set_health(HealthState::ready, {});
}

void Coordinator::set_health(HealthState state, std::string message) {
  {
    std::lock_guard lock(health_mu_);
    if (health_.state == HealthState::failed)
      return;  // sticky
    health_ = {state, std::move(message)};
  }
  health_cv_.notify_all();
}

Health Coordinator::health() const {
  if (auto e = gauges_->failure())
    return {HealthState::failed, e->message};  // the engine failed after loading: sticky
  std::lock_guard lock(health_mu_);
  return health_;
}

Health Coordinator::wait_loaded() const {
  std::unique_lock lock(health_mu_);
  health_cv_.wait(lock, [&] { return health_.state != HealthState::loading; });
  return health_;
}

std::optional<Error> Coordinator::check_model(const std::string& name) const {
  if (!name.empty() && name != model_id_ &&
      std::find(options_.aliases.begin(), options_.aliases.end(), name) == options_.aliases.end()) {
    return Error{Errc::not_found, fmt::format("model '{}' does not exist", name), "model"};
  }
  const Health h = health();
  if (h.state == HealthState::loading)
    return Error{Errc::unavailable, "the model is loading"};
  if (h.state == HealthState::failed)
    return Error{Errc::engine_failed, h.message};
  return std::nullopt;
}

std::optional<Error> Coordinator::precheck(Task& task) const {
  if (auto e = check_model(task.model))
    return e;
  if (task.lora) {  // the server-wide scales need no check
    if (auto lora = lora_.scales_for(task.lora); !lora)
      return lora.error();
  }
  apply_defaults(task, options_.defaults, n_ctx_seq_);  // loaded: check_model said so
  if (auto e = validate_parameters(task.sampling, task.stop))
    return e;
  if (task.id_slot && (*task.id_slot < 0 || *task.id_slot >= options_.engine.n_parallel)) {
    return Error{Errc::invalid_request,
                 fmt::format("Invalid slot ID: {} (the slots are 0 to {})", *task.id_slot,
                             options_.engine.n_parallel - 1),
                 "id_slot"};
  }
  if (limits_.full(gauges_->running.load(std::memory_order_relaxed),
                   gauges_->queued.load(std::memory_order_relaxed)))
    return overloaded_error();
  if (const auto* toks = std::get_if<std::vector<Token>>(&task.prompt)) {
    if (static_cast<std::int64_t>(toks->size()) >= n_ctx_seq_) {
      return too_long(static_cast<std::int64_t>(toks->size()), *engine_, false);
    }
  }
  // Every token covers at most max_piece_bytes bytes: a longer text cannot fit, whatever
  // its tokens are. A 16 MiB prompt is refused here, in microseconds, untokenized.
  const auto min_tokens = static_cast<std::int64_t>(
      (prompt_bytes(task.prompt) + infill_bytes(task.infill)) / model_->max_piece_bytes());
  if (min_tokens >= n_ctx_seq_)
    return too_long(min_tokens, *engine_, true);
  const auto prediction_tokens =
      static_cast<std::int64_t>(task.prediction.size() / model_->max_piece_bytes());
  if (prediction_tokens >= n_ctx_seq_) {
    return Error{Errc::invalid_request,
                 fmt::format("the prediction is at least {} tokens: longer than any answer in a "
                             "context of {}",
                             prediction_tokens, n_ctx_seq_),
                 "prediction"};
  }
  return std::nullopt;
}

Result<std::vector<Token>> Coordinator::prepare_prompt(
    Task& task, std::unique_ptr<chatfmt::OutputParser>& parser,
    std::unique_ptr<ReasoningBlock>& reasoning, std::vector<Token>& shown, bool& truncated) const {
  Result<std::vector<Token>> tokens = std::vector<Token>{};
  if (task.infill) {
    tokens = infill_tokens(task, truncated);
  } else if (const auto* s = std::get_if<std::string>(&task.prompt)) {
    tokens = model_->tokenize(*s, true, true);
  } else if (std::holds_alternative<std::vector<ChatMessage>>(task.prompt)) {
    auto rendered = render_chat(task);
    if (!rendered)
      return rendered.error();
    auto p = apply_render(*rendered, task);
    if (!p)
      return p.error();
    parser = std::move(p.value());
    if (rendered->thinking)
      reasoning = reasoning_block(task, *rendered->thinking);
    shown = single_tokens(rendered->preserved_tokens);
    tokens = model_->tokenize(rendered->prompt, true, true);
    const Token bos = llama_vocab_bos(model_->vocab());
    if (tokens && tokens->size() >= 2 && (*tokens)[0] == bos && (*tokens)[1] == bos) {
      tokens->erase(tokens->begin());  // the template wrote a BOS and the tokenizer added one
    }
  } else {
    tokens = std::get<std::vector<Token>>(task.prompt);
    for (Token t : *tokens) {
      if (t < 0 || t >= model_->n_vocab()) {
        return Error{Errc::invalid_request, fmt::format("token id {} is out of range", t),
                     "prompt"};
      }
    }
  }
  if (!tokens)
    return tokens;
  if (tokens->empty())
    return Error{Errc::invalid_request, "the prompt is empty", "prompt"};
  if (static_cast<std::int64_t>(tokens->size()) >= n_ctx_seq_) {
    return too_long(static_cast<std::int64_t>(tokens->size()), *engine_, false);
  }
  return tokens;
}

std::unique_ptr<ReasoningBlock> Coordinator::reasoning_block(
    const Task& task, const chatfmt::Thinking& thinking) const {
  const std::int32_t budget = task.reasoning_budget.value_or(options_.reasoning_budget);
  // A lazy grammar (a tool call's) waits outside the block, so it needs to know where the
  // block is even without a budget.
  if (budget < 0 && !gates_grammar(task))
    return {};
  const auto tokens = [&](std::string_view text) {
    auto t = model_->tokenize(text, /*add_special=*/false, /*parse_special=*/true);
    return t ? std::move(t.value()) : std::vector<Token>{};
  };
  ReasoningBlock::Spec spec;
  spec.start = thinking.start;
  spec.ends = thinking.ends;
  spec.budget = budget;
  spec.opened = thinking.opened;
  if (budget >= 0) {
    spec.forced = tokens(task.reasoning_budget_message.value_or(options_.reasoning_budget_message));
    const auto close = tokens(thinking.ends.front());
    spec.forced.insert(spec.forced.end(), close.begin(), close.end());
  }
  return std::make_unique<ReasoningBlock>(std::move(spec), *model_);
}

std::vector<Token> Coordinator::single_tokens(const std::vector<std::string>& preserved) const {
  std::vector<Token> out;
  for (const auto& text : preserved) {
    auto ids = model_->tokenize(text, /*add_special=*/false, /*parse_special=*/true);
    if (ids && ids->size() == 1)
      out.push_back(ids->front());
  }
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

bool Coordinator::gates_grammar(const Task& task) {
  return task.sampling.grammar && task.sampling.grammar->lazy;
}

Result<std::vector<Token>> Coordinator::infill_tokens(const Task& task, bool& truncated) const {
  const auto* text = std::get_if<std::string>(&task.prompt);
  if (text == nullptr) {
    return Error{Errc::invalid_request, "filling in the middle needs a text prompt, not tokens",
                 "prompt"};
  }
  auto middle = model_->tokenize(*text, /*add_special=*/false, /*parse_special=*/true);
  if (!middle)
    return middle.error();
  // llama-server's budget at its default batch (2048), or troupe's --batch when larger: a
  // prompt longer than a step's batch is chunked here, so a smaller --batch need not cut more.
  constexpr std::int32_t kLlamaServerBatch = 2048;
  const InfillSettings settings{
      std::min(std::max(options_.engine.n_batch, kLlamaServerBatch), n_ctx_seq_),
      options_.defaults.n_predict.value_or(-1), n_ctx_seq_, options_.spm_infill};
  auto built = infill_prompt(
      model_->fim_tokens(), *task.infill, *middle,
      [&](std::string_view t) { return model_->tokenize(t, false, false); }, settings);
  if (!built)
    return built.error();
  truncated = built->truncated;
  return std::move(built->tokens);
}

asio::awaitable<TokenStream> Coordinator::generate(Task task) {
  if (task.embedding)
    co_return co_await generate_embedding(std::move(task));
  if (auto e = precheck(task))
    co_return failed_stream(std::move(*e));
  if (model_->embedding_only()) {  // loaded: precheck said so
    co_return failed_stream(Error{Errc::invalid_request,
                                  fmt::format("model '{}' is an embedding model: it serves "
                                              "/v1/embeddings (or /v1/rerank), not generation",
                                              model_id_),
                                  "model"});
  }
  std::unique_ptr<chatfmt::OutputParser> parser;  // a conversation's, from its render
  bool truncated = false;                         // an infill's parts were cut to fit
  std::unique_ptr<ReasoningBlock> reasoning;      // its template's reasoning block
  std::vector<Token> shown;                       // the special tokens its answer shows
  auto prompt = co_await run_on(tokenizer_.get_executor(), [&] {
    return prepare_prompt(task, parser, reasoning, shown, truncated);
  });
  if (!prompt)
    co_return failed_stream(prompt.error());
  SamplerPtr grammar;  // parsed here, off the engine thread; a bad one never reaches it
  FirstByteCheck first_bytes = FirstByteCheck::off;
  if (task.sampling.grammar) {
    auto g = co_await run_on(tokenizer_.get_executor(), [&]() -> Result<SamplerPtr> {
      Result<void> error;
      auto s = grammars_.get(model_->vocab(), *task.sampling.grammar, error);
      if (!s)
        return error.error();
      first_bytes = first_byte_check(*task.sampling.grammar);
      return s;
    });
    if (!g)
      co_return failed_stream(g.error());
    grammar = std::move(g.value());
  }
  SamplerPtr dry;
  if (!task.sampling.logit_bias_text.empty() || uses_dry(task.sampling)) {
    auto d =
        co_await run_on(tokenizer_.get_executor(), [&] { return prepare_sampling(task.sampling); });
    if (!d)
      co_return failed_stream(d.error());
    dry = std::move(d.value());
  }
  std::vector<Token> prediction;
  if (!task.prediction.empty()) {
    auto p = co_await run_on(tokenizer_.get_executor(),
                             [&] { return model_->tokenize(task.prediction, false, false); });
    if (!p)
      co_return failed_stream(p.error());
    prediction = std::move(p.value());
  }
  auto [writer, stream] = make_stream();
  SubmitSequence s = make_submission(task, std::move(prompt.value()), std::move(writer),
                                     std::move(parser), truncated, std::move(shown));
  s.admit.prediction = std::move(prediction);
  s.admit.grammar = std::move(grammar);
  s.admit.grammar_first_bytes = first_bytes;
  s.admit.dry = std::move(dry);
  s.admit.reasoning = std::move(reasoning);
  s.admit.reasoning_gates_grammar = gates_grammar(task);
  admission_.tell(std::move(s));
  co_return std::move(stream);
}

SubmitSequence Coordinator::make_submission(Task& task, std::vector<Token> prompt,
                                            StreamWriter writer,
                                            std::unique_ptr<chatfmt::OutputParser> parser,
                                            bool truncated, std::vector<Token> shown) {
  const std::uint64_t ticket = next_ticket_.fetch_add(1, std::memory_order_relaxed);
  SequenceConfig cfg{task.stop,
                     task.sampling.logprobs || task.sampling.top_logprobs > 0,
                     task.sampling.top_logprobs,
                     static_cast<std::int32_t>(prompt.size()),
                     std::move(parser),
                     truncated,
                     std::move(shown)};
  auto ref = spawn_sequence(system_, *model_, std::move(cfg), std::move(writer), ticket,
                            engine_->ref(), admission_);
  AdmitSequence a;
  a.ticket = ticket;
  a.prompt = std::move(prompt);
  a.sampling = std::move(task.sampling);
  a.stop = std::move(task.stop);
  a.sink = actor_sink(ref);
  a.embed = task.embedding.has_value();
  if (task.embedding)
    a.norm = task.embedding->norm;
  // Checked by precheck (ids cannot go away); the server-wide scales are read here, once.
  if (auto lora = lora_.scales_for(task.lora))
    a.lora = std::move(*lora);
  a.slot = task.id_slot.value_or(-1);
  a.cache_reuse = task.n_cache_reuse.value_or(options_.engine.cache_reuse);
  return SubmitSequence{std::move(a), std::move(ref)};
}

std::optional<Error> Coordinator::precheck_embedding(Task& task) const {
  if (auto e = check_model(task.model))
    return e;
  if (task.lora) {  // the server-wide scales need no check
    if (auto lora = lora_.scales_for(task.lora); !lora)
      return lora.error();
  }
  const bool rerank = task.embedding->rerank.has_value();
  const std::string_view param = rerank ? "documents" : "input";
  if (!engine_->embeddings()) {
    return Error{Errc::invalid_request,
                 fmt::format("this server does not serve {}: start it with --embeddings",
                             rerank ? "rerank" : "embeddings"),
                 std::string(param)};
  }
  const Pooling pooling = engine_->pooling();
  if (rerank && pooling != Pooling::rank) {
    return Error{Errc::invalid_request,
                 fmt::format("rerank needs a reranker model (pooling rank); this one pools by {}",
                             pooling_name(pooling)),
                 std::string(param)};
  }
  if (!rerank && pooling == Pooling::rank) {
    return Error{Errc::invalid_request,
                 "this model is a reranker (pooling rank): it serves /v1/rerank, not embeddings",
                 std::string(param)};
  }
  if (pooling == Pooling::none && !task.embedding->per_token) {
    return Error{Errc::invalid_request,
                 "the server pools nothing (--pooling none): it answers a vector per token, "
                 "on llama-server's POST /embedding; start it with --pooling mean, cls or last "
                 "for one vector per input",
                 std::string(param)};
  }
  if (std::holds_alternative<std::vector<ChatMessage>>(task.prompt) && !rerank)
    return Error{Errc::invalid_request, "an embedding input is text or tokens", "input"};
  const auto min_tokens =
      static_cast<std::int64_t>(prompt_bytes(task.prompt) / model_->max_piece_bytes());
  if (!task.embedding->truncate && min_tokens > engine_->embed_limit()) {
    return Error{Errc::prompt_too_long,
                 fmt::format("the input has at least {} tokens, but an embedding input may have "
                             "at most {}",
                             min_tokens, engine_->embed_limit()),
                 std::string(param)};
  }
  if (limits_.full(gauges_->running.load(std::memory_order_relaxed),
                   gauges_->queued.load(std::memory_order_relaxed)))
    return overloaded_error();
  return std::nullopt;
}

Result<std::vector<Token>> Coordinator::prepare_embedding(const Task& task) const {
  const EmbeddingParams& e = *task.embedding;
  Result<std::vector<Token>> tokens = std::vector<Token>{};
  if (e.rerank) {
    tokens = model_->rerank_tokens(e.rerank->first, e.rerank->second);
  } else if (const auto* s = std::get_if<std::string>(&task.prompt)) {
    tokens = model_->tokenize(*s, true, true);
  } else {
    tokens = std::get<std::vector<Token>>(task.prompt);
    for (Token t : *tokens) {
      if (t < 0 || t >= model_->n_vocab())
        return Error{Errc::invalid_request, fmt::format("token id {} is out of range", t), "input"};
    }
  }
  if (!tokens)
    return tokens;
  const std::string param = e.rerank ? "documents" : "input";
  if (tokens->empty())
    return Error{Errc::invalid_request, "the input is empty", param};
  const auto limit = static_cast<std::size_t>(engine_->embed_limit());
  if (tokens->size() > limit) {
    if (!e.truncate) {
      return Error{Errc::prompt_too_long,
                   fmt::format("the input has {} tokens, but an embedding input may have at most "
                               "{} (or ask for \"truncate\": true)",
                               tokens->size(), limit),
                   param};
    }
    tokens->resize(limit);
  }
  return tokens;
}

asio::awaitable<TokenStream> Coordinator::generate_embedding(Task task) {
  if (auto e = precheck_embedding(task))
    co_return failed_stream(std::move(*e));
  auto prompt = co_await run_on(tokenizer_.get_executor(), [&] { return prepare_embedding(task); });
  if (!prompt)
    co_return failed_stream(prompt.error());
  auto [writer, stream] = make_stream();
  task.stop.max_tokens = 1;
  admission_.tell(make_submission(task, std::move(prompt.value()), std::move(writer), nullptr));
  co_return std::move(stream);
}

asio::awaitable<Result<std::vector<Token>>> Coordinator::tokenize(std::string model,
                                                                  std::string text,
                                                                  bool add_special,
                                                                  bool parse_special) {
  if (auto e = check_model(model))
    co_return *e;
  co_return co_await run_on(tokenizer_.get_executor(),
                            [&] { return model_->tokenize(text, add_special, parse_special); });
}

asio::awaitable<Result<std::string>> Coordinator::detokenize(std::string model,
                                                             std::vector<Token> tokens) {
  if (auto e = check_model(model))
    co_return *e;
  co_return co_await run_on(tokenizer_.get_executor(), [&] { return model_->detokenize(tokens); });
}

asio::awaitable<Result<std::vector<std::string>>> Coordinator::token_pieces(
    std::string model, std::vector<Token> tokens) {
  if (auto e = check_model(model))
    co_return *e;
  co_return co_await run_on(tokenizer_.get_executor(),
                            [&] { return vocab_token_pieces(model_->vocab(), tokens); });
}

// ---------------------------------------------------------------- chat templates

Result<std::unique_ptr<chatfmt::ChatTemplate>> Coordinator::load_chat_template() const {
  const std::string& choice = options_.chat_template;
  std::string source = choice;
  std::string what = "the template given";
  if (choice.empty()) {
    source = model_->chat_template();
    what = "the model's template";
    if (source.empty()) {
      spdlog::warn(
          "model {} has no chat template: chat requests use ChatML (--chat-template "
          "or --chat-template-file to choose another)",
          model_id_);
      source = "chatml";
      what = "ChatML (the model has none)";
    }
  } else if (choice == "chatml") {
    what = "ChatML";
  } else if (choice.find("{{") == std::string::npos && choice.find("{%") == std::string::npos) {
    source = model_->chat_template(choice.c_str());
    if (source.empty()) {
      return Error{Errc::invalid_request,
                   fmt::format("--chat-template {}: the model has no template of that name (use "
                               "chatml, a name of one of the model's templates, or "
                               "--chat-template-file)",
                               choice),
                   "chat_template"};
    }
    what = fmt::format("the model's template '{}'", choice);
  }
  auto t = chatfmt::ChatTemplate::create(source, model_->bos_text(), model_->eos_text());
  if (!t) {
    return Error{Errc::invalid_request,
                 fmt::format("chat template ({}): {}", what, t.error().message), "chat_template"};
  }
  spdlog::info("model {} chat template: {} ({} bytes{}{})", model_id_, what, (*t)->source().size(),
               (*t)->supports_tool_calls() ? ", tool calls" : "",
               (*t)->supports_thinking() ? ", thinking" : "");
  return t;
}

Result<SamplerPtr> Coordinator::prepare_sampling(SamplingParams& s) const {
  for (const auto& [text, bias] : s.logit_bias_text) {
    auto ids = model_->tokenize(text, /*add_special=*/false, /*parse_special=*/false);
    if (!ids)
      return Error{Errc::invalid_request, ids.error().message, "logit_bias"};
    for (Token t : *ids)
      s.logit_bias.emplace_back(t, bias);
  }
  s.logit_bias_text.clear();
  return make_dry_sampler(model_->vocab(), s, n_ctx_seq_);
}

Result<chatfmt::Rendered> Coordinator::render_chat(const Task& task) const {
  return chat_template_->render(std::get<std::vector<ChatMessage>>(task.prompt), task.chat);
}

GrammarSpec Coordinator::to_grammar_spec(const chatfmt::Grammar& g) const {
  GrammarSpec spec;
  spec.gbnf = g.gbnf;
  spec.lazy = g.lazy;
  for (const auto& t : g.triggers) {
    // A word that is one preserved special token triggers on that token (llama-server's rule);
    // anything else on the text.
    if (t.kind == chatfmt::GrammarTrigger::Kind::word &&
        std::find(g.preserved_tokens.begin(), g.preserved_tokens.end(), t.value) !=
            g.preserved_tokens.end()) {
      auto ids = model_->tokenize(t.value, false, true);
      if (ids && ids->size() == 1) {
        spec.trigger_tokens.push_back(ids->front());
        continue;
      }
    }
    spec.trigger_patterns.push_back(chatfmt::trigger_pattern(t));
  }
  return spec;
}

Result<std::unique_ptr<chatfmt::OutputParser>> Coordinator::apply_render(const chatfmt::Rendered& r,
                                                                         Task& task) const {
  if (r.grammar) {
    if (task.sampling.grammar) {
      return Error{Errc::invalid_request, "a grammar cannot be combined with tools", "tools"};
    }
    task.sampling.grammar = to_grammar_spec(*r.grammar);
    // The template's grammars start with its generation prompt, which the prompt already
    // ends with: the grammar reads it before the first generated token (llama-server's rule).
    if (!r.grammar->lazy && r.grammar_reads_prompt)
      task.sampling.grammar->prefill = r.parser.generation_prompt;
  }
  for (const auto& s : r.additional_stops) {
    if (std::find(task.stop.stop.begin(), task.stop.stop.end(), s) == task.stop.stop.end())
      task.stop.stop.push_back(s);
  }
  return chatfmt::OutputParser::create(r.parser);
}

asio::awaitable<Result<std::string>> Coordinator::apply_template(Task task) {
  if (auto e = check_model(task.model))
    co_return *e;
  if (!std::holds_alternative<std::vector<ChatMessage>>(task.prompt))
    co_return Error{Errc::invalid_request, "apply-template needs messages", "messages"};
  co_return co_await run_on(tokenizer_.get_executor(), [&]() -> Result<std::string> {
    auto r = render_chat(task);
    if (!r)
      return r.error();
    return std::move(r->prompt);
  });
}

asio::awaitable<Result<ModelProps>> Coordinator::props(std::string model) {
  if (auto e = check_model(model))
    co_return *e;
  ModelProps p;  // loaded (check_model said so): what the loader wrote is read-only now
  p.id = model_id_;
  p.n_ctx = n_ctx_seq_;
  p.total_slots = options_.engine.n_parallel;
  p.model_path = options_.model_path;
  p.chat_template = chat_template_->source();
  p.bos_token = model_->bos_text();
  p.eos_token = model_->eos_text();
  p.defaults = options_.defaults;
  p.embeddings = engine_->embeddings();
  p.generates = !model_->embedding_only();
  p.tools = chat_template_->supports_tool_calls();
  p.thinking = chat_template_->supports_thinking();
  p.infill = model_->fim_tokens().usable();
  co_return p;
}

asio::awaitable<Result<SlotsInfo>> Coordinator::slots(std::string model) {
  if (auto e = check_model(model))
    co_return *e;
  InspectEngine inspect;  // a named local: GCC 12 mishandles a braced temporary in co_await
  auto snap = co_await engine_->ref().ask(std::move(inspect));
  if (!snap)
    co_return snap.error();
  SlotsInfo out;
  out.n_ctx = n_ctx_seq_;
  out.speculative = options_.engine.spec != SpecType::none || !options_.draft_model_path.empty();
  for (std::size_t i = 0; i < snap->slots.size(); ++i) {
    const EngineSnapshot::SlotView& v = snap->slots[i];
    SlotStatus s;
    s.id = static_cast<std::int32_t>(i);
    s.busy = v.busy;
    if (v.busy) {
      s.generating = v.generating;
      s.embedding = v.embed;
      s.task = v.ticket;
      s.n_prompt = v.n_prompt;
      s.n_processed = v.generating ? v.n_prompt : v.n_past;
      s.n_cached = v.cached;
      s.n_decoded = v.generated;
      s.max_tokens = v.max_tokens;
    }
    out.slots.push_back(s);
  }
  co_return out;
}

asio::awaitable<Result<SlotActionDone>> Coordinator::slot_action(std::string model,
                                                                 SlotActionRequest request) {
  if (auto e = check_model(model))
    co_return *e;
  SlotAction m;
  m.kind = request.kind;
  m.slot = request.slot;
  m.path = std::move(request.path);
  // A state file does not say which adapters computed it: a restored one counts as computed
  // with the server-wide scales, those of a request that names none (llama-server's view too).
  if (auto lora = lora_.scales_for(std::nullopt))
    m.lora = std::move(*lora);
  co_return co_await engine_->ref().ask(std::move(m));
}

asio::awaitable<Result<std::vector<LoraAdapterInfo>>> Coordinator::lora_adapters(
    std::string model) {
  if (auto e = check_model(model))
    co_return *e;
  co_return lora_.list();
}

asio::awaitable<Result<void>> Coordinator::set_lora_adapters(std::string model,
                                                             LoraRequest request) {
  if (auto e = check_model(model))
    co_return *e;
  co_return lora_.set_scales(request);
}

std::vector<ModelInfo> Coordinator::models() const {
  ModelInfo info;
  info.id = model_id_;
  if (ready_.load(std::memory_order_acquire)) {
    info.n_ctx = n_ctx_seq_;
    info.n_vocab = model_->n_vocab();
    info.created = created_;
    info.details = details_;
  }
  return {info};
}

BackendStats Coordinator::stats() const {
  BackendStats s;
  s.requests_running = gauges_->running.load(std::memory_order_relaxed);
  s.requests_queued = gauges_->queued.load(std::memory_order_relaxed);
  s.cancelled_total = gauges_->cancelled_total.load(std::memory_order_relaxed);
  if (!ready_.load(std::memory_order_acquire))
    return s;
  const auto& c = engine_->counters();
  const auto rd = [](const std::atomic<std::int64_t>& a) {
    return a.load(std::memory_order_relaxed);
  };
  s.prompt_tokens_total = rd(c.prompt_tokens);
  s.generation_tokens_total = rd(c.generated_tokens);
  s.prefix_cache_hits_total = rd(c.prefix_hits);
  s.prefix_cache_queries_total = rd(c.prefix_queries);
  s.decode_steps_total = rd(c.decode_steps);
  s.decode_us_total = rd(c.decode_us);
  s.sample_us_total = rd(c.sample_us);
  s.kv_cache_usage_ratio =
      static_cast<double>(rd(c.cells_live)) / static_cast<double>(engine_->n_cells());
  s.kv_preemptions_total = rd(c.preemptions);
  s.pad_rows_total = rd(c.pad_rows);
  s.host_cache_stores_total = rd(c.host_cache_stores);
  s.host_cache_restores_total = rd(c.host_cache_restores);
  s.host_cache_hits_total = rd(c.host_cache_hits);
  s.host_cache_bytes = rd(c.host_cache_bytes);
  s.host_cache_entries = rd(c.host_cache_entries);
  s.checkpoint_restores_total = rd(c.checkpoint_restores);
  s.checkpoint_bytes = rd(c.checkpoint_bytes);
  s.cache_reuse_tokens_total = rd(c.cache_reuse_tokens);
  s.spec_draft_tokens_total = rd(c.spec_drafted);
  s.spec_accepted_tokens_total = rd(c.spec_accepted);
  for (const auto& h : c.sequences_per_step)
    s.sequences_per_step.push_back(rd(h));
  return s;
}

std::future<EngineSnapshot> Coordinator::inspect_engine() {
  return std::async(std::launch::deferred, [engine = engine_->ref()] {
    auto snap = engine.ask_blocking(InspectEngine{}, actor::kNoTimeout);
    if (!snap)
      throw std::runtime_error("inspect_engine: " + snap.error().message);
    return std::move(snap.value());
  });
}

void Coordinator::inject_failure(Error error) {
  engine_->tell(FailEngine{std::move(error)});
}

std::unique_ptr<Backend> make_local_backend(EngineOptions options) {
  return std::make_unique<Coordinator>(std::move(options));
}

}  // namespace troupe::engine
