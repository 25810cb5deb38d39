#include "engine/batch_engine.hpp"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <limits>
#include <span>

#include "engine/cache_reuse.hpp"
#include "engine/core_share.hpp"
#include "engine/decode_turns.hpp"
#include "engine/draft_model.hpp"
#include "engine/host_cache.hpp"
#include "engine/llama_runtime.hpp"
#include "engine/ngram_draft.hpp"
#include "engine/placement_llama.hpp"
#include "engine/slot_tokens.hpp"
#include "engine/step_pacer.hpp"
#include "engine/step_rows.hpp"
#include "util/work_crew.hpp"

namespace troupe::engine {

enum class SlotState : std::uint8_t { free, prefill, generate };

// A sequence's draft acceptance before any of its drafts was decoded (Slot::draft_hits /
// draft_tries): a half for a lookup in its own tokens, three quarters for its request's
// prediction; each step a draft was offered but not taken moves it a twentieth of the way back.
constexpr double kDraftHits = 1.0;
constexpr double kPredictionHits = 1.5;
constexpr double kDraftTries = 2.0;
constexpr double kDrift = 0.05;
// How many tokens before its prompt's end a recurrent state's checkpoint is taken (llama-server's
// 4): the next turn of a thinking model's conversation shares the prompt but its generation
// prompt's last tokens (Qwen3.5's "<think>\n", or "<think>\n\n</think>\n\n" without
// thinking: 2 and 4 tokens), and the same prompt sent again all but its last token.
constexpr std::int32_t kCheckpointBeforeEnd = 4;

struct Slot {
  SlotState state = SlotState::free;
  std::uint64_t ticket = 0;
  // The tokens whose KV cells are cached (the first n_past), then, while generating, the
  // sampled token that the next step decodes. Reserved to n_ctx_seq + 1: never reallocates.
  std::vector<Token> tokens;
  std::int32_t n_past = 0;
  std::int32_t n_prompt = 0;
  std::int32_t cached = 0;  // of its prompt, the tokens found cached at admission
  std::int32_t generated = 0;
  StopParams stop;  // its limits (sequence_end)
  std::optional<Sampler> sampler;
  SequenceSink sink;
  bool embed = false;  // an embedding sequence: one decode, then SequenceEmbedded
  std::int32_t norm = embd_norm_euclidean;  // how its vector is scaled: normalize_embedding
  bool paced = false;        // its prompt needs more than one chunk: the pacer spreads it
  std::int32_t chunk = 0;    // tokens of this slot in the current batch
  std::int32_t n_draft = 0;  // of them, drafted tokens (tokens[n_past + 1...]): spec
  // The request's prediction (AdmitSequence::prediction) and where the answer was last found
  // in it (prediction_draft).
  std::vector<Token> prediction;
  std::size_t prediction_at = 0;
  bool drafted_prediction = false;  // this step's drafts came from the prediction
  // Its drafts' recent acceptance, decaying sums: the sampler drew hits of tries drafted tokens.
  double draft_hits = kDraftHits;
  double draft_tries = kDraftTries;
  std::int32_t batch_row = -1;  // index of its logits in the current batch, -1: none
  std::uint64_t admitted = 0;   // the engine's clock when it was admitted: its age
  std::uint64_t released = 0;   // and when it was last freed: its cache's age
  // The slot its cached prefix was copied from (llama_memory_seq_cp shares the cells: they
  // count once in the pool) and how many of those cells both still hold; -1 / 0: none.
  std::int32_t copied_from = -1;
  std::int32_t shared = 0;
  // Preempted and not yet prefilled again: its stored state (host cache) may spare the recompute.
  bool preempted = false;
  // The LoRA scales its cells are computed with (EngineLoop::lora_sets_): its request's while
  // it runs, and its cache's once free.
  std::int32_t lora = 0;
  // Memory that cannot be cut back (sliding window, recurrent): checkpoints of its cached
  // tokens, oldest first (BatchEngineConfig::ctx_checkpoints).
  std::vector<ContextCheckpoint> checkpoints;
};

// The prior of a slot's draft hits: its request's prediction, else a lookup in its own tokens.
static double prior_hits(const Slot& s) {
  return s.prediction.empty() ? kDraftHits : kPredictionHits;
}

// The engine's behavior: all the state of the loop, touched only on the engine thread.
class EngineLoop final : public actor::Actor<EngineMessage> {
 public:
  EngineLoop(const LlamaModel& model, const BatchEngineConfig& config,
             actor::ActorRef<AdmissionMessage> admission, DecodeHook on_decode,
             std::unique_ptr<CpuThreadpool> pool, ContextPtr ctx,
             std::unique_ptr<DraftModel> drafter, std::shared_ptr<EngineCounters> counters);

  void on_message(EngineMessage& msg) override {
    counters_.loop_iterations.fetch_add(1, std::memory_order_relaxed);
    handle(msg);
  }
  bool has_work() override { return active_ > 0 && !failed_; }
  // The loop blocks on its mailbox next: the threadpool's workers go to sleep too, and the
  // process's other busy engines may take this one's share of the cores.
  void on_idle() override {
    if (seat_)
      seat_->idle();
    if (attached_)
      attached_->pause();
  }
  void do_work() override {
    counters_.loop_iterations.fetch_add(1, std::memory_order_relaxed);
    step();
  }

 private:
  void handle(EngineMessage& msg);
  void step();
  void admit(AdmitSequence& a);
  std::int32_t reuse_prefix(std::int32_t dest, const std::vector<Token>& prompt, std::int32_t lora,
                            std::int32_t min_chunk);
  // Chunk reuse (cache_reuse.hpp, AdmitSequence::cache_reuse): the prompt tokens free slot
  // `id`'s own cells would serve, its prefix and the chunks after it, planned into moves_; 0
  // when no chunk would move (or it may not: min_chunk 0, a memory that cannot shift, other
  // scales, cells shared in the pool). shift_chunks carries out the plan chunk_reuse just
  // made for `id`, which serves `n` prompt tokens, and drops the other cells.
  std::int32_t chunk_reuse(std::int32_t id, const std::vector<Token>& prompt, std::int32_t lora,
                           std::int32_t min_chunk);
  std::int32_t shift_chunks(std::int32_t id, std::int32_t n, std::int32_t min_chunk);
  std::int32_t slot_with_chunks(const std::vector<Token>& prompt, std::int32_t lora,
                                std::int32_t min_chunk);
  void stash(std::int32_t id, std::int32_t keep);
  std::int32_t restore(std::int32_t dest, std::span<const Token> prompt, std::int32_t beat,
                       std::int32_t lora);
  void resume(std::int32_t id);
  void count_host_cache();
  void release(const ReleaseSequence& r);
  void inspect(InspectEngine& m) const;
  // POST /slots/ID?action=... (SlotAction): now when the slot is free, else once it is
  // (finish); run_slot_action answers it, the others do it.
  void slot_action(SlotAction& m);
  void run_slot_action(SlotAction& m);
  Result<SlotActionDone> save_slot(std::int32_t id, const std::string& path);
  Result<SlotActionDone> restore_slot(std::int32_t id, const std::string& path,
                                      std::vector<float> lora);
  SlotActionDone erase_slot(std::int32_t id);
  void fail(const Error& error);
  void build_batch();
  void plan_prompt_chunks(std::int32_t generating);
  void plan_pad_rows();
  std::int32_t plan_drafts(std::int32_t generating);
  void settle_drafts(std::int32_t id, std::int32_t emitted, std::size_t first);
  void drop_pads();
  void after_decode();
  bool embed_step() const;
  void build_embed_batch();
  void after_embed_decode();
  std::optional<std::vector<float>> read_embedding(const Slot& s, std::int32_t id, Pooling pooling);
  void set_embeddings(bool on);
  void take_core_share();
  void enter_decode();
  void draft_by_model(std::size_t n_offers);
  Error admit_error(const AdmitSequence& a, std::int32_t id) const;
  void sample_step(std::size_t n);
  bool sample_rows(std::size_t k, SamplerScratch& scratch);
  SampleStatus sample(Slot& s, const float* logits, std::int32_t pos, SamplerScratch& scratch,
                      SampledToken& out);
  void finish(std::int32_t id, bool drop_cache);
  std::int32_t lowest_free_slot() const;
  // LoRA: the index of a set of scales in lora_sets_; the set this step decodes; whether a
  // slot waits for its set's step; the step's adapters on the context.
  std::int32_t intern_lora(std::vector<float> scales);
  void choose_step_lora(bool embed);
  bool waits(const Slot& s) const { return s.lora != step_lora_; }
  void apply_lora();
  // kv_unified: the shared pool's accounting (BatchEngineConfig::kv_unified).
  std::int32_t free_slot_for(const std::vector<Token>& prompt, std::int32_t lora) const;
  // The prefix of a prompt a slot serves, and the checkpoint (an index into its checkpoints,
  // -1: none) that serving it needs.
  struct CachedPrefix {
    std::int32_t n = 0;
    std::int32_t checkpoint = -1;
  };
  CachedPrefix cached_prefix(std::int32_t id, std::span<const Token> prompt) const;
  std::int32_t keep_from(llama_pos oldest, std::int32_t end) const;
  std::int32_t checkpoint_at(const Slot& s) const;
  std::int32_t min_keep(std::int32_t id) const;
  void checkpoint(std::int32_t id);
  bool restore_checkpoint(std::int32_t dest, const ContextCheckpoint& c);
  void drop_checkpoints(Slot& s, std::int32_t keep);
  ContextCheckpoint take_checkpoint(Slot& s, std::int32_t k);
  void recycle(std::vector<std::uint8_t> state);
  void keep_checkpoint(Slot& s, ContextCheckpoint c);
  ContextCheckpoint copy_checkpoint(const ContextCheckpoint& c);
  std::int64_t free_cells() const;
  bool trim_cells(std::int32_t id, std::int32_t keep);
  bool evict_idle_cache(std::int32_t spare = -1);
  std::int32_t youngest_holder(std::uint64_t admitted_after) const;
  void preempt(std::int32_t id);
  void make_room_for_generation();
  std::size_t prompts_that_fit(std::int32_t generating);
  bool embed_fits(std::int32_t id, std::int64_t taken);
  bool recover_from_full_cache();

  const LlamaModel& model_;
  BatchEngineConfig config_;
  actor::ActorRef<AdmissionMessage> admission_;
  DecodeHook on_decode_;
  // The threadpools, declared before ctx_: they outlive the context. pool_ has n_threads;
  // share_pools_[k], made when first needed, k < n_threads of them (split): a smaller share
  // runs on a pool of its size, so that no spare worker polls beside another engine's graph.
  std::unique_ptr<CpuThreadpool> pool_;
  std::vector<std::unique_ptr<CpuThreadpool>> share_pools_;
  CpuThreadpool* attached_ = nullptr;    // the one the context decodes on
  CpuShare cpu_share_;                   // resolved: split, turns or off
  std::optional<CoreShare::Seat> seat_;  // split: this engine's place in the share
  ContextPtr ctx_;
  // The draft model's context (BatchEngine::start's `draft`), on the same threadpool.
  std::unique_ptr<DraftModel> drafter_;
  llama_memory_t mem_ = nullptr;
  std::int32_t n_ctx_seq_ = 0;
  // kv_unified with a KV cache: all sequences draw on one pool of n_cells_ cells, which the
  // engine accounts as the slots' cached tokens less the prefixes they share (free_cells).
  bool shared_pool_ = false;
  std::int64_t n_cells_ = 0;
  // Cells may move to other positions (llama_memory_can_shift): chunk reuse.
  bool can_shift_ = false;
  // The model's sliding window (llama_model_n_swa; 0: none, or a recurrent or hybrid model):
  // its windowed layers' cache forgets a sequence's positions that fell out of their view, and
  // a state written back holds the last n_swa only (cached_prefix). recurrent_: a recurrent or
  // hybrid model, whose state cannot be cut back at all. checkpoints_: slots keep checkpoints of
  // what cannot be cut (ContextCheckpoint).
  std::int32_t n_swa_ = 0;
  bool recurrent_ = false;
  bool checkpoints_ = false;
  // Dropped checkpoints' buffers, for the next ones: one a slot at most (recycle).
  std::vector<std::vector<std::uint8_t>> spare_states_;
  std::int64_t checkpoint_bytes_ = 0;
  std::vector<std::int32_t> to_checkpoint_;  // this step's slots to checkpoint (checkpoint)
  std::vector<ChunkMove> moves_;             // chunk_reuse's plan
  std::uint64_t clock_ = 0;                  // counts admissions and releases: slots' ages
  Batch batch_;
  std::vector<Slot> slots_;
  std::vector<std::int32_t> prefill_order_;  // slots still prefilling, oldest admission first
  std::vector<std::int32_t> step_prefill_;   // those of them whose LoRA scales this step has
  std::vector<PendingPrompt> pending_;       // their prompts, as the step planner sees them
  std::vector<std::int32_t> take_;           // and the tokens it gives each, n_parallel
  std::vector<std::int32_t> slot_take_;      // the step's prompt tokens by slot
  // Pad rows (step_rows.hpp): whether the engine adds them, the costs they are chosen by, the
  // slots that take one this step, and the rows of its first ubatch (0: not one run).
  bool pad_rows_ = false;
  RowCosts row_costs_;
  std::vector<RowRole> row_roles_;
  std::vector<std::uint8_t> pad_;
  std::int32_t step_rows_ = 0;
  // Speculative decoding: whether tokens may be drafted at all (the model's memory can drop
  // them again), whether sequences draft by n-gram lookup (BatchEngineConfig::spec; a request's
  // prediction is drafted from either way), and this step's drafted tokens.
  bool draft_ok_ = false;
  bool spec_ = false;
  std::int32_t step_drafts_ = 0;
  RowCosts draft_costs_{256};              // generation-only steps by rows, drafts included
  std::vector<DraftOffer> offers_;         // the generating sequences' drafts, n_parallel
  std::vector<std::int32_t> offer_slot_;   // their slots
  std::vector<std::int32_t> draft_take_;   // the tokens of each the step decodes
  std::vector<std::uint8_t> by_model_;     // which offers the draft model is to draft
  std::vector<DraftWant> wants_;           // and what it is asked, n_parallel
  std::vector<std::int32_t> embed_order_;  // embedding slots waiting, oldest first
  bool ctx_embeddings_ = false;            // the context's llama_set_embeddings state
  bool last_step_embed_ = false;
  bool embedding_only_ = false;
  std::int32_t embed_limit_ = 0;
  std::int32_t n_embd_out_ = 0;  // floats per pooled vector (n_cls_out for rank)
  // Sampling: buffers sized to n_vocab once, one per sampling thread (index 0: the engine
  // thread's), and the helpers that share a costly step's sampling (none with one thread).
  std::vector<SamplerScratch> scratch_;
  std::unique_ptr<util::WorkCrew> crew_;
  double sample_us_per_seq_ = 0.0;  // moving average, for the share-out decision
  // The step's sampled sequences (k < n), each with rows out_rows_[k] from out_first_[k] of
  // the step's logits rows and tokens (its next token's, then its drafts'), of which the
  // first out_emitted_[k] were sampled. All sized once.
  std::vector<SampledToken> out_;         // by row
  std::vector<const float*> out_logits_;  // by row
  std::vector<std::int32_t> out_slot_;    // by sequence: its slot
  std::vector<std::int32_t> out_first_;
  std::vector<std::int32_t> out_rows_;
  std::vector<std::int32_t> out_emitted_;
  std::vector<std::uint8_t> out_ok_;  // 0: the grammar admits no further token
  StepPacer pacer_;                   // prompt tokens per step while others generate
  bool paced_first_ = false;          // PromptRoom::paced_first for the next step
  std::int32_t step_generating_ = 0;  // this step's generation tokens
  std::int32_t step_prompt_ = 0;      // and prompt tokens
  std::int64_t step_prompt_pos_ = 0;  // the sum of those prompt tokens' positions
  std::int32_t step_pads_ = 0;        // and pad tokens
  // This step's place among the process's engines, taken before its first decode (the draft
  // model's or its own): enter_decode.
  bool entered_ = false;
  std::optional<DecodeTurns::Turn> turn_;
  // Displaced slots' KV states (off for a model whose memory cannot be cut at any token:
  // recurrent, hybrid, a sliding window; and for a model without a KV cache).
  HostCache host_cache_;
  // LoRA adapters (LlamaModel::lora_adapters): llama.cpp applies them to the whole context, so
  // a step decodes the sequences of one set of scales (step_lora_, an index into lora_sets_,
  // the distinct sets the slots hold, at most one more than the slots); sets with work take
  // turns. lora_applied_: the set on the context now (-1: not known).
  std::vector<llama_adapter_lora*> lora_handles_;
  std::vector<std::vector<float>> lora_sets_{1};
  std::int32_t step_lora_ = 0;
  std::int32_t lora_applied_ = -1;
  std::chrono::steady_clock::time_point lora_turn_start_{};  // when step_lora_'s turn began
  std::int32_t active_ = 0;
  std::vector<SlotAction> slot_actions_;  // waiting for their busy slots, in arrival order
  std::vector<AdmitSequence> pinned_;     // admissions waiting for their busy slot (id_slot)
  std::optional<Error> failed_;
  std::shared_ptr<EngineCounters> counters_owner_;
  EngineCounters& counters_;
};

namespace {

struct ContextAndPool {
  std::unique_ptr<CpuThreadpool> pool;
  ContextPtr ctx;
};

Result<ContextAndPool> make_context(const LlamaModel& model, BatchEngineConfig& config) {
  auto made_params = resolve_engine_context(model.embedding_only(), config, /*log=*/true);
  if (!made_params)
    return made_params.error();
  const llama_context_params params = *made_params;
  ContextAndPool out;
  // A single thread needs no pool: llama.cpp computes on the calling thread then.
  if (config.persistent_threads && config.n_threads > 1) {
    out.pool = CpuThreadpool::create(config.n_threads, config.thread_poll);
    if (!out.pool)
      spdlog::warn("no persistent ggml threadpool: llama.cpp starts its threads per decode");
  }
  out.ctx.reset(llama_init_from_model(model.get(), params));
  if (!out.ctx)
    return Error{Errc::engine_failed, "llama.cpp could not create a context"};
  if (out.pool)
    llama_attach_threadpool(out.ctx.get(), out.pool->get(), out.pool->get());
  return out;
}

// The context per sequence: with kv_unified the whole pool, but no more than the model was
// trained for (as llama-server caps a slot); with a stream per sequence llama.cpp's share, and
// with a cache unified only for embeddings the same share of it.
std::int32_t context_per_sequence(llama_context* ctx, const LlamaModel& model,
                                  const BatchEngineConfig& config) {
  const auto n_ctx = static_cast<std::int32_t>(llama_n_ctx(ctx));
  if (config.kv_unified)
    return model.n_ctx_train() > 0 ? std::min(n_ctx, model.n_ctx_train()) : n_ctx;
  if (config.embeddings)
    return n_ctx / config.n_parallel;
  return static_cast<std::int32_t>(llama_n_ctx_seq(ctx));
}

std::int32_t pooled_size(const LlamaModel& model, Pooling pooling) {
  if (pooling == Pooling::rank)
    return static_cast<std::int32_t>(llama_model_n_cls_out(model.get()));
  return llama_model_n_embd_out(model.get());
}

std::int32_t embed_prompt_limit(const LlamaModel& model, const BatchEngineConfig& config,
                                std::int32_t n_ctx_seq) {
  std::int32_t limit = std::min(n_ctx_seq, config.n_batch);
  if (model.n_ctx_train() > 0)
    limit = std::min(limit, model.n_ctx_train());
  return limit;
}

// BatchEngineConfig::cpu_share, automatic resolved: a model computed on the CPU (some or all of
// its layers) splits the cores; one wholly on a GPU needs few CPU threads, and its decodes
// contend for the GPU instead, so there it takes turns where ggml's threads would spin.
CpuShare resolve_cpu_share(const LlamaModel& model, const BatchEngineConfig& config) {
  if (config.cpu_share != CpuShare::automatic)
    return config.cpu_share;
  const PlacementReport where = model.placement_report(config.placement, config.n_ctx);
  if (where.layers_offloaded < where.layers_total)
    return CpuShare::split;
  return init_llama_runtime().openmp ? CpuShare::off : CpuShare::turns;
}

}  // namespace

Result<std::unique_ptr<BatchEngine>> BatchEngine::start(
    actor::ActorSystem& system, const LlamaModel& model, BatchEngineConfig config,
    actor::ActorRef<AdmissionMessage> admission, DecodeHook on_decode, const LlamaModel* draft) {
  auto made = make_context(model, config);
  if (!made)
    return made.error();
  std::unique_ptr<DraftModel> drafter;
  if (draft != nullptr) {
    auto d = DraftModel::create(model, *draft, config);  // config as make_context resolved it
    if (!d)
      return d.error();
    drafter = std::move(d).value();
  }
  const std::int32_t n_ctx_seq = context_per_sequence(made->ctx.get(), model, config);
  EmbedInfo embed;
  if (config.embeddings) {
    embed.enabled = true;
    embed.pooling = static_cast<Pooling>(llama_pooling_type(made->ctx.get()));
    embed.n_embd = pooled_size(model, embed.pooling);
    embed.limit = embed_prompt_limit(model, config, n_ctx_seq);
  }
  const auto n_cells = static_cast<std::int32_t>(llama_n_ctx(made->ctx.get()));
  std::unique_ptr<BatchEngine> engine(
      new BatchEngine(n_ctx_seq, n_cells, config.kv_unified, config.n_parallel, embed));
  engine->memory_use_ = memory_use_of(made->ctx.get());
  actor::SpawnOptions opts;
  opts.name = "batch-engine";
  opts.execution = actor::Execution::dedicated_thread;
  engine->ref_ = system.spawn<EngineLoop>(
      std::move(opts), std::cref(model), config, std::move(admission), std::move(on_decode),
      std::move(made->pool), std::move(made->ctx), std::move(drafter), engine->counters_);
  return engine;
}

BatchEngine::BatchEngine(std::int32_t n_ctx_seq, std::int32_t n_cells, bool kv_unified,
                         std::int32_t n_parallel, EmbedInfo embed)
    : n_ctx_seq_(n_ctx_seq),
      n_cells_(n_cells),
      kv_unified_(kv_unified),
      n_parallel_(n_parallel),
      embed_(embed) {}

BatchEngine::~BatchEngine() {
  ref_.request_stop(actor::StopMode::drop);
}

EngineLoop::EngineLoop(const LlamaModel& model, const BatchEngineConfig& config,
                       actor::ActorRef<AdmissionMessage> admission, DecodeHook on_decode,
                       std::unique_ptr<CpuThreadpool> pool, ContextPtr ctx,
                       std::unique_ptr<DraftModel> drafter,
                       std::shared_ptr<EngineCounters> counters)
    : model_(model),
      config_(config),
      admission_(std::move(admission)),
      on_decode_(std::move(on_decode)),
      pool_(std::move(pool)),
      attached_(pool_.get()),
      cpu_share_(resolve_cpu_share(model, config)),
      seat_(cpu_share_ == CpuShare::split ? CoreShare::process().take_seat() : std::nullopt),
      ctx_(std::move(ctx)),
      drafter_(std::move(drafter)),
      mem_(llama_get_memory(ctx_.get())),
      n_ctx_seq_(context_per_sequence(ctx_.get(), model, config)),
      batch_(step_capacity(config)),
      slots_(static_cast<std::size_t>(config.n_parallel)),
      row_costs_(config.n_parallel),
      pacer_(config.prefill_stretch, StepPacer::kMinTokens,
             /*own_pass=*/!config.kv_unified && !config.embeddings && config.n_parallel > 1),
      counters_owner_(std::move(counters)),
      counters_(*counters_owner_) {
  for (auto& s : slots_)
    s.tokens.reserve(static_cast<std::size_t>(n_ctx_seq_) + 1);
  prefill_order_.reserve(slots_.size());
  step_prefill_.reserve(slots_.size());
  pending_.reserve(slots_.size());
  for (const LoraAdapter& a : model_.lora_adapters())
    lora_handles_.push_back(a.handle);
  lora_sets_.reserve(slots_.size() + 1);
  lora_sets_[0].assign(lora_handles_.size(), 0.0f);
  take_.resize(slots_.size());
  slot_take_.resize(slots_.size());
  row_roles_.resize(slots_.size());
  pad_.resize(slots_.size());
  embed_order_.reserve(slots_.size());
  if (config_.embeddings) {
    ctx_embeddings_ = true;
    embedding_only_ = model_.embedding_only();
    const auto pooling = static_cast<Pooling>(llama_pooling_type(ctx_.get()));
    n_embd_out_ = pooled_size(model_, pooling);
    embed_limit_ = embed_prompt_limit(model_, config_, n_ctx_seq_);
  }
  shared_pool_ = config_.kv_unified && mem_ != nullptr && !embedding_only_;
  // A KV cache whose sequences can be cut at any token (not recurrent, hybrid or a sliding
  // window): what pad rows and the host cache both need.
  const bool cut_anywhere = mem_ != nullptr && !embedding_only_ && model_.memory_cuts_anywhere();
  {
    const llama_model* m = model_.get();
    const bool cached = mem_ != nullptr && !embedding_only_;
    recurrent_ = cached && (llama_model_is_recurrent(m) || llama_model_is_hybrid(m));
    // With swa_full too: a state llama.cpp writes back (a slot file) holds the window only.
    n_swa_ = cached && !recurrent_ ? llama_model_n_swa(m) : 0;
    // A hybrid's checkpoint holds its recurrent state alone: with a window on its attention
    // layers too, that would not be all a checkpoint has to bring back. With swa_full a slot
    // keeps every cell it computes: nothing to checkpoint.
    const bool hybrid_window = recurrent_ && !config_.swa_full && llama_model_n_swa(m) > 0;
    checkpoints_ = config_.ctx_checkpoints > 0 &&
                   ((n_swa_ > 0 && !config_.swa_full) || (recurrent_ && !hybrid_window));
  }
  // The host cache holds every kind of memory: a state that cannot be cut back (a recurrent
  // one, a window's) serves all its tokens only (min_keep), and the slot's checkpoints, stored
  // with it, the prompts of its earlier turns.
  if (config_.host_cache_bytes != 0 && mem_ != nullptr && !embedding_only_) {
    host_cache_ = HostCache(config_.host_cache_bytes < 0
                                ? std::numeric_limits<std::size_t>::max()
                                : static_cast<std::size_t>(config_.host_cache_bytes));
  }
  pad_rows_ =
      config_.pad_rows != PadRows::off && !config_.kv_unified && slots_.size() > 1 && cut_anywhere;
  can_shift_ = cut_anywhere && llama_memory_can_shift(mem_);
  to_checkpoint_.reserve(slots_.size());
  spare_states_.reserve(slots_.size());
  if (config_.cache_reuse > 0 && !can_shift_) {
    spdlog::warn(
        "engine: --cache-reuse {} has no effect: this model's cache cannot move cells to other "
        "positions, so only a cached prefix is reused",
        config_.cache_reuse);
  }
  draft_ok_ = cut_anywhere;
  spec_ = config_.spec != SpecType::none && cut_anywhere;
  offers_.resize(slots_.size());
  offer_slot_.resize(slots_.size());
  draft_take_.resize(slots_.size());
  by_model_.resize(slots_.size());
  wants_.resize(slots_.size());
  if (drafter_ && !draft_ok_) {
    spdlog::warn(
        "engine: the draft model is not used: this model's memory cannot drop a drafted "
        "token again");
    drafter_.reset();
  }
  if (drafter_) {
    drafter_->attach(attached_, config_.n_threads);
    spdlog::debug(
        "engine: a draft model guesses up to {} tokens of a sequence a step, {} "
        "(--spec-draft-model)",
        config_.spec_draft_max,
        config_.spec_measured ? "as many as measured costs say" : "all of them");
  }
  if (config_.spec != SpecType::none) {
    spdlog::debug("engine: {}",
                  spec_ ? fmt::format("sequences draft up to {} tokens where their last {} "
                                      "occurred before, {} (--spec-type ngram-simple)",
                                      config_.spec_ngram_m, config_.spec_ngram_n,
                                      config_.spec_measured ? "as many a step as measured costs say"
                                                            : "all of them every step")
                        : std::string("no speculative decoding: this model's memory cannot "
                                      "drop a drafted token again"));
  }
  n_cells_ = llama_n_ctx(ctx_.get());
  const auto rows = static_cast<std::size_t>(step_capacity(config_));
  out_.resize(rows);
  out_logits_.resize(rows);
  out_slot_.resize(slots_.size());
  out_first_.resize(slots_.size());
  out_rows_.resize(slots_.size());
  out_emitted_.resize(slots_.size());
  out_ok_.resize(slots_.size());
  counters_.decode_threads.store(config_.n_threads, std::memory_order_relaxed);
  spdlog::debug("engine: {} (--cpu-share)",
                cpu_share_ == CpuShare::turns ? "decodes in turn with the process's other models"
                : seat_ ? "splits the threads with the process's other busy models"
                        : "decodes on all its threads beside the process's other models");
  if (host_cache_.enabled()) {
    spdlog::debug("engine: displaced prompts' KV states kept in {} (--cache-ram)",
                  config_.host_cache_bytes < 0
                      ? std::string("host memory without a limit")
                      : fmt::format("up to {} MiB of host memory", config_.host_cache_bytes >> 20));
  } else {
    spdlog::debug("engine: no host-memory prompt cache (--cache-ram {}{})",
                  config_.host_cache_bytes >> 20,
                  config_.host_cache_bytes != 0 ? "; an embedding model keeps no prompts" : "");
  }
  // make_context has resolved n_threads (0: every core) by now.
  const std::int32_t samplers = std::clamp(
      config_.sampling_threads > 0 ? config_.sampling_threads : std::min(config_.n_threads, 8), 1,
      static_cast<std::int32_t>(slots_.size()));
  scratch_.reserve(static_cast<std::size_t>(samplers));
  for (std::int32_t i = 0; i < samplers; ++i)
    scratch_.emplace_back(model_.n_vocab());
  if (samplers > 1) {
    crew_ = std::make_unique<util::WorkCrew>(samplers - 1);
    spdlog::debug("engine: up to {} threads sample a step that would take {} us or more on one",
                  samplers, config_.share_sampling_us);
  }
}

void EngineLoop::handle(EngineMessage& msg) {
  std::visit(actor::Overloaded{
                 [this](AdmitSequence& m) { admit(m); }, [this](ReleaseSequence& m) { release(m); },
                 [this](InspectEngine& m) { inspect(m); }, [this](FailEngine& m) { fail(m.error); },
                 [this](SlotAction& m) { slot_action(m); }},
             msg);
}

std::int32_t EngineLoop::lowest_free_slot() const {
  for (std::size_t i = 0; i < slots_.size(); ++i) {
    if (slots_[i].state == SlotState::free)
      return static_cast<std::int32_t>(i);
  }
  return -1;
}

// The index of `scales` in lora_sets_ (missing adapters at scale 0): an equal set's, else one
// that no slot's cells use any more, else a new one. The slots use at most n_parallel sets,
// so the table stays within n_parallel + 1.
std::int32_t EngineLoop::intern_lora(std::vector<float> scales) {
  scales.resize(lora_handles_.size(), 0.0f);
  const auto n = static_cast<std::int32_t>(lora_sets_.size());
  for (std::int32_t i = 0; i < n; ++i) {
    if (lora_sets_[static_cast<std::size_t>(i)] == scales)
      return i;
  }
  for (std::int32_t i = 0; i < n; ++i) {
    const bool used = std::any_of(slots_.begin(), slots_.end(), [&](const Slot& s) {
      return s.lora == i && (s.state != SlotState::free || s.n_past > 0);
    });
    if (!used) {
      lora_sets_[static_cast<std::size_t>(i)] = std::move(scales);
      if (lora_applied_ == i)
        lora_applied_ = -1;
      return i;
    }
  }
  lora_sets_.push_back(std::move(scales));
  return n;
}

// The set of LoRA scales this step decodes. Sets with work take turns: the set of the last
// step goes on while it has a sequence of the step's kind waiting and its turn is younger than
// kLoraTurn, then the next set (in table order, cyclically) with one. A change of adapters
// makes llama.cpp plan its graph again (milliseconds: a switch every step cost a small model
// over half its speed), so a turn spans steps. Without adapters there is one set and every
// sequence has it.
void EngineLoop::choose_step_lora(bool embed) {
  constexpr auto kLoraTurn = std::chrono::milliseconds(50);
  const auto n = static_cast<std::int32_t>(lora_sets_.size());
  if (n == 1)
    return;
  const auto has_work = [&](std::int32_t set) {
    return std::any_of(slots_.begin(), slots_.end(), [&](const Slot& s) {
      return s.state != SlotState::free && s.embed == embed && s.lora == set;
    });
  };
  const auto now = std::chrono::steady_clock::now();
  if (now - lora_turn_start_ < kLoraTurn && has_work(step_lora_))
    return;
  for (std::int32_t k = 1; k <= n; ++k) {
    const std::int32_t set = (step_lora_ + k) % n;
    if (has_work(set)) {
      if (set != step_lora_)
        lora_turn_start_ = now;
      step_lora_ = set;
      return;
    }
  }
}

// The step's adapters on the context (llama.cpp re-plans its graph when they change).
void EngineLoop::apply_lora() {
  if (lora_handles_.empty() || lora_applied_ == step_lora_)
    return;
  llama_set_adapters_lora(ctx_.get(), lora_handles_.data(), lora_handles_.size(),
                          lora_sets_[static_cast<std::size_t>(step_lora_)].data());
  lora_applied_ = step_lora_;
}

// Why `a` cannot start on slot `id`; code internal with an empty message when it can.
Error EngineLoop::admit_error(const AdmitSequence& a, std::int32_t id) const {
  const auto n_prompt = static_cast<std::int32_t>(a.prompt.size());
  if (failed_)
    return *failed_;
  if (id < 0)
    return Error{Errc::internal, "no free sequence slot"};
  if (a.embed && !config_.embeddings)
    return Error{Errc::invalid_request, "this context computes no embeddings"};
  if (!a.embed && embedding_only_)
    return Error{Errc::invalid_request, "this model computes embeddings only"};
  const std::int32_t limit = a.embed ? embed_limit_ + 1 : n_ctx_seq_;
  if (n_prompt == 0 || n_prompt >= limit) {
    return Error{Errc::prompt_too_long,
                 fmt::format("prompt of {} tokens does not fit a context of {}", n_prompt,
                             limit - (a.embed ? 1 : 0))};
  }
  return Error{Errc::internal, {}};
}

void EngineLoop::admit(AdmitSequence& a) {
  const auto n_slots = static_cast<std::int32_t>(slots_.size());
  if (a.slot >= n_slots) {
    a.sink(SequenceFailed{Error{Errc::invalid_request, "Invalid slot ID", "id_slot"}});
    admission_.tell(SequenceReleased{a.ticket});
    return;
  }
  if (a.slot >= 0 && !failed_ &&
      slots_[static_cast<std::size_t>(a.slot)].state != SlotState::free) {
    admission_.tell(SequenceParked{a.ticket});  // it holds no place while it waits
    pinned_.push_back(std::move(a));            // finish() starts it
    return;
  }
  const auto n_prompt = static_cast<std::int32_t>(a.prompt.size());
  const std::int32_t lora = intern_lora(std::move(a.lora));
  std::int32_t id = a.slot >= 0    ? a.slot
                    : shared_pool_ ? free_slot_for(a.prompt, lora)
                                   : lowest_free_slot();
  if (a.slot < 0 && id >= 0 && !a.embed) {
    if (const std::int32_t c = slot_with_chunks(a.prompt, lora, a.cache_reuse); c >= 0)
      id = c;
  }
  if (Error e = admit_error(a, id); !e.message.empty()) {
    a.sink(SequenceFailed{std::move(e)});
    admission_.tell(SequenceReleased{a.ticket});
    return;
  }
  Slot& s = slots_[static_cast<std::size_t>(id)];
  s.embed = a.embed;
  s.norm = a.norm;
  s.admitted = ++clock_;
  s.preempted = false;
  if (a.embed) {
    stash(id, 0);
    trim_cells(id, 0);  // a pooled vector needs every token in the batch
    s.lora = lora;
    s.state = SlotState::prefill;
    s.ticket = a.ticket;
    s.tokens.assign(a.prompt.begin(), a.prompt.end());
    s.n_past = 0;
    s.n_prompt = n_prompt;
    s.generated = 0;
    s.sampler.reset();
    s.sink = std::move(a.sink);
    embed_order_.push_back(id);
    ++active_;
    counters_.prompt_tokens.fetch_add(n_prompt, std::memory_order_relaxed);
    s.sink(SequenceStarted{n_prompt, 0});
    return;
  }
  const std::int32_t cached = reuse_prefix(id, a.prompt, lora, a.cache_reuse);
  s.lora = lora;
  s.state = SlotState::prefill;
  s.ticket = a.ticket;
  s.tokens.assign(a.prompt.begin(), a.prompt.end());
  s.n_past = cached;
  s.n_prompt = n_prompt;
  s.cached = cached;
  if (cached == checkpoint_at(s))
    checkpoint(id);  // its prompt's last tokens alone are left: see checkpoint
  s.paced = n_prompt - cached > config_.n_seq_chunk;
  s.generated = 0;
  s.stop = std::move(a.stop);
  s.prediction = std::move(a.prediction);
  // A prediction is the client's word that the answer repeats it: a likelier draft than a
  // lookup in the sequence's own tokens.
  s.draft_hits = prior_hits(s);
  s.draft_tries = kDraftTries;
  s.prediction_at = 0;
  s.sampler.emplace(a.sampling, model_.n_vocab(), a.prompt, n_ctx_seq_, std::move(a.grammar),
                    std::move(a.dry), SamplerPath::automatic, model_.first_bytes(),
                    a.grammar_first_bytes, model_.vocab());
  if (a.reasoning)
    s.sampler->set_reasoning(std::move(a.reasoning), a.reasoning_gates_grammar);
  s.sink = std::move(a.sink);
  prefill_order_.push_back(id);
  ++active_;
  counters_.prompt_tokens.fetch_add(n_prompt, std::memory_order_relaxed);
  counters_.prefix_hits.fetch_add(cached, std::memory_order_relaxed);
  counters_.prefix_queries.fetch_add(n_prompt, std::memory_order_relaxed);
  counters_.cells_live.fetch_add(cached, std::memory_order_relaxed);
  s.sink(SequenceStarted{n_prompt, cached});
}

// Length of the common prefix of a slot's cached tokens and `prompt`.
static std::int32_t common_prefix(const std::vector<Token>& cached, std::int32_t n_cached,
                                  std::span<const Token> prompt) {
  const auto n = std::min<std::size_t>(static_cast<std::size_t>(n_cached), prompt.size());
  std::size_t i = 0;
  while (i < n && cached[i] == prompt[i])
    ++i;
  return static_cast<std::int32_t>(i);
}

// The prefix of `prompt` that slot `id`'s cells serve: the tokens it shares with the slot's
// cached ones, or none where the memory cannot be cut there. A windowed layer keeps only the
// cells its window still sees from the sequence's last position (llama.cpp overwrites the
// others when it needs room), and the token at position n looks back to n - n_swa + 1: a
// prefix cut further back than the window (another conversation with the same system prompt,
// an earlier turn edited) must be computed again, as llama-server does. A recurrent state is
// that of all the slot's tokens: it serves only a prompt that begins with every one of them.
//
// Where the slot's own memory cannot serve the prefix, one of its checkpoints may: what could
// not be cut, as it was when a prompt of the slot had been computed (the previous turn of a
// conversation whose answer comes back rendered otherwise, its reasoning dropped).
EngineLoop::CachedPrefix EngineLoop::cached_prefix(std::int32_t id,
                                                   std::span<const Token> prompt) const {
  const Slot& s = slots_[static_cast<std::size_t>(id)];
  const std::int32_t n = common_prefix(s.tokens, s.n_past, prompt);
  if (n == 0 || n >= keep_from(llama_memory_seq_pos_min(mem_, id), s.n_past))
    return {n, -1};
  const CheckpointServing c = serving_checkpoint(s.checkpoints, n);
  return {c.keep, c.index};
}

// The shortest prefix of its `end` tokens that memory holding positions from `oldest` on
// serves: the token at position p looks back to p - n_swa + 1 in a windowed layer; a
// recurrent state serves all its tokens only; a KV cache any prefix.
std::int32_t EngineLoop::keep_from(llama_pos oldest, std::int32_t end) const {
  if (recurrent_)
    return end;
  return n_swa_ <= 0 || oldest <= 0 ? 0 : oldest + n_swa_ - 1;
}

// Where slot `s`'s prompt is checkpointed (checkpoint): kCheckpointBeforeEnd tokens before its
// end for a recurrent state, at its end for a window's; -1: not (no checkpoints, or a prompt
// too short to be worth one).
std::int32_t EngineLoop::checkpoint_at(const Slot& s) const {
  const std::int32_t at = recurrent_ ? s.n_prompt - kCheckpointBeforeEnd : s.n_prompt;
  return checkpoints_ && at >= std::max(config_.min_copy_prefix, 1) ? at : -1;
}

// The shortest prefix of slot `id`'s cached tokens that a state llama.cpp writes of it serves
// (HostCache::Entry::min_keep, ContextCheckpoint::min_keep): it holds a windowed layer's last
// n_swa positions only (llama.cpp writes no cell the window no longer sees from the last one),
// whichever cells the slot kept; so all its tokens but the last.
std::int32_t EngineLoop::min_keep(std::int32_t id) const {
  const Slot& s = slots_[static_cast<std::size_t>(id)];
  return keep_from(std::max(llama_memory_seq_pos_min(mem_, id), n_swa_ > 0 ? s.n_past - n_swa_ : 0),
                   s.n_past);
}

// After slot `id`'s prompt has been computed: a checkpoint of what cannot be cut (llama.cpp's
// partial state: the windowed layers alone, or the recurrent state alone), the slot's oldest
// dropped when it holds ctx_checkpoints; where: checkpoint_at. A recurrent state's is taken
// kCheckpointBeforeEnd tokens before the prompt's end, which the next step decodes
// (plan_prompt_chunks stops a step there), as
// llama-server does: the state of all the prompt's tokens would serve only prompts that go on
// past them, not the next turn whose generation prompt's last tokens the history renders
// otherwise, nor the same prompt again (an answer regenerated; a prompt needs a token decoded
// for its logits). A window's, taken at the end, serves from all its tokens but the last (and
// the families with a window render their generation prompt as their history begins).
void EngineLoop::checkpoint(std::int32_t id) {
  Slot& s = slots_[static_cast<std::size_t>(id)];
  if (!checkpoints_ || s.n_past < std::max(config_.min_copy_prefix, 1) ||
      std::any_of(s.checkpoints.begin(), s.checkpoints.end(),
                  [&](const ContextCheckpoint& c) { return c.n_tokens == s.n_past; }))
    return;
  const auto t0 = std::chrono::steady_clock::now();
  ContextCheckpoint c;
  if (static_cast<std::int32_t>(s.checkpoints.size()) >= config_.ctx_checkpoints) {
    c = take_checkpoint(s, 0);
  } else if (!spare_states_.empty()) {
    c.state = std::move(spare_states_.back());
    spare_states_.pop_back();
  }
  constexpr llama_state_seq_flags kPartial = LLAMA_STATE_SEQ_FLAGS_PARTIAL_ONLY;
  c.state.resize(llama_state_seq_get_size_ext(ctx_.get(), id, kPartial));
  if (c.state.empty() || llama_state_seq_get_data_ext(ctx_.get(), c.state.data(), c.state.size(),
                                                      id, kPartial) != c.state.size()) {
    spdlog::warn("slot {}: llama.cpp gave no state to checkpoint", id);
    recycle(std::move(c.state));
    return;
  }
  c.n_tokens = s.n_past;
  c.min_keep = min_keep(id);
  spdlog::debug(
      "slot {}: checkpoint at {} tokens (serving {} on, {:.1f} MiB, {:.1f} ms)", id, c.n_tokens,
      c.min_keep, static_cast<double>(c.state.size()) / (1 << 20),
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
  keep_checkpoint(s, std::move(c));
}

// Writes checkpoint `c` into slot `dest` (llama.cpp replaces that part of its memory); the
// caller then cuts dest's cells to the prefix the checkpoint serves. False (dest then to be
// emptied) when llama.cpp refuses the state.
bool EngineLoop::restore_checkpoint(std::int32_t dest, const ContextCheckpoint& c) {
  if (llama_state_seq_set_data_ext(ctx_.get(), c.state.data(), c.state.size(), dest,
                                   LLAMA_STATE_SEQ_FLAGS_PARTIAL_ONLY) == 0) {
    spdlog::warn("slot {}: llama.cpp refused a checkpoint of {} tokens", dest, c.n_tokens);
    return false;
  }
  counters_.checkpoint_restores.fetch_add(1, std::memory_order_relaxed);
  spdlog::debug("slot {}: a checkpoint at {} tokens restored", dest, c.n_tokens);
  return true;
}

// Checkpoint k of slot s, out of its list (and its bytes out of the count); keep_checkpoint
// puts one back as the slot's newest.
ContextCheckpoint EngineLoop::take_checkpoint(Slot& s, std::int32_t k) {
  ContextCheckpoint c = std::move(s.checkpoints[static_cast<std::size_t>(k)]);
  s.checkpoints.erase(s.checkpoints.begin() + k);
  checkpoint_bytes_ -= static_cast<std::int64_t>(c.state.size());
  counters_.checkpoint_bytes.store(checkpoint_bytes_, std::memory_order_relaxed);
  return c;
}

void EngineLoop::keep_checkpoint(Slot& s, ContextCheckpoint c) {
  checkpoint_bytes_ += static_cast<std::int64_t>(c.state.size());
  counters_.checkpoint_bytes.store(checkpoint_bytes_, std::memory_order_relaxed);
  s.checkpoints.push_back(std::move(c));
}

// A copy of checkpoint `c` (in a dropped one's buffer if one is kept), for another slot.
ContextCheckpoint EngineLoop::copy_checkpoint(const ContextCheckpoint& c) {
  ContextCheckpoint copy{c.n_tokens, c.min_keep, {}};
  if (!spare_states_.empty()) {
    copy.state = std::move(spare_states_.back());
    spare_states_.pop_back();
  }
  copy.state.assign(c.state.begin(), c.state.end());
  return copy;
}

// Keeps a dropped checkpoint's buffer for the next checkpoint, up to one a slot: more would be
// memory held that no checkpoint counts (a window's state can be hundreds of MiB).
void EngineLoop::recycle(std::vector<std::uint8_t> state) {
  if (spare_states_.size() < slots_.size())
    spare_states_.push_back(std::move(state));
}

// A slot's cells cut to `keep` tokens: its checkpoints of more go (their buffers kept). A
// slot's checkpoints are in order of their tokens: each was taken at the end of its cells.
void EngineLoop::drop_checkpoints(Slot& s, std::int32_t keep) {
  while (!s.checkpoints.empty() && s.checkpoints.back().n_tokens > keep) {
    checkpoint_bytes_ -= static_cast<std::int64_t>(s.checkpoints.back().state.size());
    recycle(std::move(s.checkpoints.back().state));
    s.checkpoints.pop_back();
  }
  counters_.checkpoint_bytes.store(checkpoint_bytes_, std::memory_order_relaxed);
}

// The longest prefix of `prompt` cached with LoRA scales `lora`: in slot `dest` itself (with
// min_chunk > 0, its chunks after that moved into place), in another slot (copied when long
// enough), or in host memory (restored). Returns its length.
std::int32_t EngineLoop::reuse_prefix(std::int32_t dest, const std::vector<Token>& prompt,
                                      std::int32_t lora, std::int32_t min_chunk) {
  // Keep at least one prompt token to decode: its logits give the first sampled token.
  const auto limit = static_cast<std::int32_t>(prompt.size()) - 1;
  std::int32_t best_src = -1;
  std::int32_t best = 0;
  std::int32_t best_checkpoint = -1;  // of best_src's, which best needs
  for (std::int32_t i = 0; i < static_cast<std::int32_t>(slots_.size()); ++i) {
    const Slot& s = slots_[static_cast<std::size_t>(i)];
    if (s.lora != lora)
      continue;  // cells computed with other adapters
    const CachedPrefix c =
        cached_prefix(i, std::span(prompt.data(), static_cast<std::size_t>(std::max(limit, 0))));
    if (c.n > best || (c.n == best && c.n > 0 && i == dest)) {
      best = c.n;
      best_src = i;
      best_checkpoint = c.checkpoint;
    }
  }
  std::int32_t chunked = chunk_reuse(dest, prompt, lora, min_chunk);
  if (const std::int32_t restored = restore(dest, prompt, std::max(best, chunked), lora);
      restored != 0) {
    if (restored > 0)
      return restored;
    chunked = 0;  // the failed restore took dest's own cells
    if (best_src == dest)
      best_src = -1;
  }
  if (chunked > best) {
    // Most of its cells staying (moved), the slot's old state is not worth a copy: as
    // llama-server keeps a slot's prompt out of its cache when the new one keeps half of it.
    // A restore that tried nothing left dest's cells, so the plan, as they were (a stash
    // copies them out; an eviction spares dest).
    if (2 * chunked < slots_[static_cast<std::size_t>(dest)].n_past)
      stash(dest, slots_[static_cast<std::size_t>(dest)].n_past);
    return shift_chunks(dest, chunked, min_chunk);
  }
  Slot& d = slots_[static_cast<std::size_t>(dest)];
  if (best_src == dest && best > 0) {
    // Stored only when the cut loses most of the slot's tokens, as llama-server keeps a slot's
    // prompt out of its cache when the new one keeps half of it: an edited last turn or a
    // regenerated answer would otherwise copy the whole conversation's state each time.
    if (2 * best < d.n_past)
      stash(dest, d.n_past);  // its checkpoint of more than best may serve best
    // The checkpoint is taken out first (cutting the cells drops the checkpoints of more) and
    // written before the cut (a recurrent state then ends where the cells are cut).
    std::optional<ContextCheckpoint> saved;
    if (best_checkpoint >= 0)
      saved = take_checkpoint(d, best_checkpoint);
    const bool served = (!saved || restore_checkpoint(dest, *saved)) && trim_cells(dest, best);
    if (saved && served && saved->n_tokens == best)
      keep_checkpoint(d, std::move(*saved));  // still that of its cells
    else if (saved)
      recycle(std::move(saved->state));
    if (served)
      return best;
  }
  stash(dest, 0);
  trim_cells(dest, 0);
  if (best_src < 0 || best_src == dest || best < config_.min_copy_prefix)
    return 0;
  llama_memory_seq_cp(mem_, best_src, dest, -1, -1);
  const Slot& src = slots_[static_cast<std::size_t>(best_src)];
  d.copied_from = best_src;
  d.shared = src.n_past;
  if ((best_checkpoint < 0 ||
       restore_checkpoint(dest, src.checkpoints[static_cast<std::size_t>(best_checkpoint)])) &&
      trim_cells(dest, best))
    return best;
  trim_cells(dest, 0);
  return 0;
}

std::int32_t EngineLoop::chunk_reuse(std::int32_t id, const std::vector<Token>& prompt,
                                     std::int32_t lora, std::int32_t min_chunk) {
  const Slot& s = slots_[static_cast<std::size_t>(id)];
  if (min_chunk <= 0 || !can_shift_ || s.lora != lora || s.n_past == 0 || prompt.empty())
    return 0;
  // In the pool a copied prefix's cells are the source's too: moving them would move its.
  if (shared_pool_ && ((s.copied_from >= 0 && s.shared > 0) ||
                       std::any_of(slots_.begin(), slots_.end(), [&](const Slot& o) {
                         return o.copied_from == id && o.shared > 0;
                       })))
    return 0;
  // Keep at least one prompt token to decode, as reuse_prefix does.
  const std::span<const Token> wanted(prompt.data(), prompt.size() - 1);
  const std::span<const Token> cached(s.tokens.data(), static_cast<std::size_t>(s.n_past));
  const std::int32_t head = common_prefix(s.tokens, s.n_past, wanted);
  const std::int32_t n = plan_chunk_reuse(cached, wanted, head, min_chunk, moves_);
  return moves_.empty() ? 0 : n;
}

std::int32_t EngineLoop::shift_chunks(std::int32_t id, std::int32_t n, std::int32_t min_chunk) {
  Slot& s = slots_[static_cast<std::size_t>(id)];
  std::int32_t moved = 0;
  for (const ChunkMove& m : moves_) {
    llama_memory_seq_rm(mem_, id, m.to, m.from);
    llama_memory_seq_add(mem_, id, m.from, m.from + m.n, m.to - m.from);
    std::copy_n(s.tokens.begin() + m.from, m.n, s.tokens.begin() + m.to);
    moved += m.n;
  }
  trim_cells(id, n);
  s.n_past = n;
  counters_.cache_reuse_tokens.fetch_add(moved, std::memory_order_relaxed);
  spdlog::debug("slot {}: {} cached tokens reused in {} chunks moved into place (--cache-reuse {})",
                id, moved, moves_.size(), min_chunk);
  return n;
}

// The free slot whose cells would serve most of `prompt` with its chunks moved into place,
// when that is more than any slot's cached prefix offers; -1: none.
std::int32_t EngineLoop::slot_with_chunks(const std::vector<Token>& prompt, std::int32_t lora,
                                          std::int32_t min_chunk) {
  if (min_chunk <= 0 || !can_shift_)
    return -1;
  std::int32_t best = -1;
  std::int32_t most = 0;
  std::int32_t prefix = 0;  // the longest cached prefix, which the usual choice finds
  for (std::int32_t i = 0; i < static_cast<std::int32_t>(slots_.size()); ++i) {
    const Slot& s = slots_[static_cast<std::size_t>(i)];
    if (s.lora != lora)
      continue;
    prefix = std::max(prefix, common_prefix(s.tokens, s.n_past, prompt));
    if (s.state != SlotState::free)
      continue;
    if (const std::int32_t n = chunk_reuse(i, prompt, lora, min_chunk); n > most) {
      best = i;
      most = n;
    }
  }
  return most > prefix ? best : -1;
}

// Stores free slot `id`'s cached cells, with its checkpoints, in host memory before they are
// cut to `keep` (0: all go), unless they are fewer than a copy is worth, already stored, or held
// whole by another slot. The checkpoints the cut drops go into the entry as they are; the others
// are copied (a window's can be hundreds of MiB).
void EngineLoop::stash(std::int32_t id, std::int32_t keep) {
  Slot& s = slots_[static_cast<std::size_t>(id)];
  if (!host_cache_.enabled() || s.n_past < std::max(config_.min_copy_prefix, 1))
    return;
  const std::span<const Token> tokens(s.tokens.data(), static_cast<std::size_t>(s.n_past));
  const std::vector<float>& lora = lora_sets_[static_cast<std::size_t>(s.lora)];
  const std::int32_t keep_from = min_keep(id);
  if (host_cache_.covers(tokens, lora, keep_from, s.checkpoints))
    return;
  // Another slot serving all the tokens holds what a state of them would; not what the slot's
  // checkpoints do.
  for (std::int32_t i = 0; i < static_cast<std::int32_t>(slots_.size()) && s.checkpoints.empty();
       ++i) {
    const Slot& o = slots_[static_cast<std::size_t>(i)];
    if (i != id && o.lora == s.lora && cached_prefix(i, tokens).n == s.n_past)
      return;
  }
  const auto t0 = std::chrono::steady_clock::now();
  HostCache::State state = host_cache_.allocate(llama_state_seq_get_size_ext(ctx_.get(), id, 0));
  if (state.size() == 0 ||
      llama_state_seq_get_data_ext(ctx_.get(), state.data(), state.size(), id, 0) != state.size()) {
    spdlog::warn(
        "host cache: no state stored for sequence {} ({} tokens): no memory for it, "
        "or llama.cpp gave none",
        id, s.n_past);
    return;
  }
  const std::size_t bytes = state.size();
  const std::size_t total = s.checkpoints.size();
  std::vector<ContextCheckpoint> checkpoints;
  checkpoints.reserve(total);
  for (const ContextCheckpoint& c : s.checkpoints) {
    if (c.n_tokens <= keep)
      checkpoints.push_back(c);
  }
  const std::size_t copied = checkpoints.size();
  while (checkpoints.size() < total)
    checkpoints.push_back(take_checkpoint(s, static_cast<std::int32_t>(copied)));
  if (host_cache_.store({tokens.begin(), tokens.end()}, std::move(state), lora, keep_from,
                        std::move(checkpoints)))
    counters_.host_cache_stores.fetch_add(1, std::memory_order_relaxed);
  count_host_cache();
  spdlog::debug(
      "host cache: stored {} tokens of slot {} ({:.1f} MiB, {:.1f} ms); {} entries", s.n_past, id,
      static_cast<double>(bytes) / (1 << 20),
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count(),
      host_cache_.size());
}

// Restores into slot `dest` (free, or preempted and holding no cells) the stored state that shares
// the longest prefix with `prompt`, when that prefix is longer than `beat` (what the slots offer)
// and worth a copy; its own cells are stashed first. Returns the prompt tokens now cached in dest;
// 0 when nothing was tried (dest untouched); -1 when llama.cpp refused the state (dest is then
// empty and the entry gone) or storing dest's cells dropped it (dest empty).
std::int32_t EngineLoop::restore(std::int32_t dest, std::span<const Token> prompt,
                                 std::int32_t beat, std::int32_t lora) {
  if (!host_cache_.enabled())
    return 0;
  Slot& d = slots_[static_cast<std::size_t>(dest)];
  std::optional<HostCache::Match> match;
  std::int32_t n = 0;
  // Keep at least one prompt token to decode, as reuse_prefix does.
  const std::span<const Token> wanted = prompt.first(prompt.empty() ? 0 : prompt.size() - 1);
  const auto found = [&] {
    match = host_cache_.find(wanted, lora_sets_[static_cast<std::size_t>(lora)]);
    n = match ? match->length : 0;
    return n > beat && n >= config_.min_copy_prefix;
  };
  if (!found())
    return 0;
  const auto t0 = std::chrono::steady_clock::now();
  // The whole state must fit the pool beside what it holds (dest's cells given back): older
  // idle caches make room, as they would for the prompt. Each store may drop entries, so the
  // match is looked up again after it.
  const auto fits = [&] {
    const auto size = static_cast<std::int64_t>(host_cache_.at(match->index).tokens.size());
    return !shared_pool_ || free_cells() + d.n_past - d.shared >= size;
  };
  for (;;) {
    if (!found())
      return 0;
    if (fits())
      break;
    if (!evict_idle_cache(/*spare=*/dest))
      return 0;
  }
  // dest's own cells are stored before they are cut; if that store dropped what was found,
  // they are cut all the same (its checkpoints went into the store).
  stash(dest, 0);
  const bool still = found() && fits();
  trim_cells(dest, 0);
  d.n_past = 0;  // its tokens are the caller's (a preempted sequence keeps them)
  if (!still)
    return -1;
  const HostCache::Entry& e = host_cache_.at(match->index);
  // A checkpoint is written over the state it was taken in (then the cells are cut to it).
  if (llama_state_seq_set_data_ext(ctx_.get(), e.state.data(), e.state.size(), dest, 0) == 0 ||
      (match->checkpoint >= 0 &&
       !restore_checkpoint(dest, e.checkpoints[static_cast<std::size_t>(match->checkpoint)]))) {
    spdlog::warn("host cache: llama.cpp refused a stored state of {} tokens; dropped",
                 e.tokens.size());
    trim_cells(dest, 0);
    host_cache_.erase(match->index);
    count_host_cache();
    return -1;
  }
  if (!trim_cells(dest, n)) {
    trim_cells(dest, 0);
    return -1;
  }
  // The slot's checkpoints again: those of the tokens it holds now.
  for (const ContextCheckpoint& c : e.checkpoints) {
    if (c.n_tokens <= n)
      keep_checkpoint(d, copy_checkpoint(c));
  }
  host_cache_.touch(match->index);
  counters_.host_cache_restores.fetch_add(1, std::memory_order_relaxed);
  counters_.host_cache_hits.fetch_add(n, std::memory_order_relaxed);
  spdlog::debug(
      "host cache: restored {} of {} stored tokens into slot {} ({:.1f} ms)", n, e.tokens.size(),
      dest,
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
  return n;
}

// A preempted sequence about to be prefilled again (its tokens fit the pool now): the state it
// stored when it gave its cells back, if host memory still holds it, instead of the recompute.
void EngineLoop::resume(std::int32_t id) {
  Slot& s = slots_[static_cast<std::size_t>(id)];
  s.preempted = false;
  if (s.n_past != 0)
    return;
  const std::int32_t n = restore(
      id, std::span<const Token>(s.tokens.data(), static_cast<std::size_t>(s.n_prompt)), 0, s.lora);
  if (n <= 0)
    return;
  s.n_past = n;
  s.paced = s.n_prompt - n > config_.n_seq_chunk;
  counters_.cells_live.fetch_add(n, std::memory_order_relaxed);
}

void EngineLoop::count_host_cache() {
  counters_.host_cache_bytes.store(static_cast<std::int64_t>(host_cache_.bytes()),
                                   std::memory_order_relaxed);
  counters_.host_cache_entries.store(static_cast<std::int64_t>(host_cache_.size()),
                                     std::memory_order_relaxed);
}

// kv_unified: the free slot whose cached tokens share the longest prefix with `prompt` (at
// least min_copy_prefix tokens; its cells are then reused in place); else an empty one, else
// the one freed longest ago, so that the caches most likely to be asked for again stay.
std::int32_t EngineLoop::free_slot_for(const std::vector<Token>& prompt, std::int32_t lora) const {
  std::int32_t best = -1;
  std::int32_t best_prefix = -1;
  for (std::int32_t i = 0; i < static_cast<std::int32_t>(slots_.size()); ++i) {
    const Slot& s = slots_[static_cast<std::size_t>(i)];
    if (s.state != SlotState::free)
      continue;
    std::int32_t prefix = s.lora == lora ? cached_prefix(i, prompt).n : 0;
    if (prefix < config_.min_copy_prefix)
      prefix = 0;  // a BOS in common is no reason to drop the rest of a cache
    if (best < 0 || prefix > best_prefix) {
      best = i;
      best_prefix = prefix;
      continue;
    }
    const Slot& b = slots_[static_cast<std::size_t>(best)];
    const bool emptier =
        (s.n_past == 0) != (b.n_past == 0) ? s.n_past == 0 : s.released < b.released;
    if (prefix == best_prefix && emptier)
      best = i;
  }
  return best;
}

// Cells of the pool not held by any slot's cached tokens (running or idle), a copied prefix
// counted once. Exact but where a slot that passed a prefix on dropped it while the copy and
// an earlier source both still hold it (then it overstates what is held, and a refused step
// corrects it: recover_from_full_cache).
std::int64_t EngineLoop::free_cells() const {
  std::int64_t held = 0;
  for (const Slot& s : slots_)
    held += s.n_past - s.shared;
  return n_cells_ - held;
}

// Keeps the first `keep` of slot `id`'s cells (0: none) in the KV cache, and what it shares
// with the slot it copied from and the slots that copied from it shrinks to match. False when
// llama.cpp cannot cut the sequence there (a recurrent state): nothing changed then. The
// slot's n_past and counters are the caller's.
bool EngineLoop::trim_cells(std::int32_t id, std::int32_t keep) {
  if (!llama_memory_seq_rm(mem_, id, keep > 0 ? keep : -1, -1))
    return false;
  drop_checkpoints(slots_[static_cast<std::size_t>(id)], keep);
  for (std::int32_t i = 0; i < static_cast<std::int32_t>(slots_.size()); ++i) {
    Slot& s = slots_[static_cast<std::size_t>(i)];
    if (s.copied_from < 0 || (i != id && s.copied_from != id))
      continue;  // no prefix shared with slot id
    s.shared = std::min(s.shared, keep);
    if (s.shared == 0)
      s.copied_from = -1;
  }
  return true;
}

// Drops the cached tokens of the idle slot freed longest ago (but `spare`), storing them in
// host memory first; false when no idle slot holds any.
bool EngineLoop::evict_idle_cache(std::int32_t spare) {
  std::int32_t oldest = -1;
  for (std::int32_t i = 0; i < static_cast<std::int32_t>(slots_.size()); ++i) {
    const Slot& s = slots_[static_cast<std::size_t>(i)];
    if (i != spare && s.state == SlotState::free && s.n_past > 0 &&
        (oldest < 0 || s.released < slots_[static_cast<std::size_t>(oldest)].released)) {
      oldest = i;
    }
  }
  if (oldest < 0)
    return false;
  Slot& s = slots_[static_cast<std::size_t>(oldest)];
  stash(oldest, 0);
  trim_cells(oldest, 0);
  s.tokens.clear();
  s.n_past = 0;
  counters_.cache_evictions.fetch_add(1, std::memory_order_relaxed);
  return true;
}

// The running generation sequence admitted last after `admitted_after`, among those holding
// cells (a generating one always does); -1: none.
std::int32_t EngineLoop::youngest_holder(std::uint64_t admitted_after) const {
  std::int32_t youngest = -1;
  for (std::int32_t i = 0; i < static_cast<std::int32_t>(slots_.size()); ++i) {
    const Slot& s = slots_[static_cast<std::size_t>(i)];
    if (s.state == SlotState::free || s.embed || s.n_past == 0 || s.admitted <= admitted_after)
      continue;
    if (youngest < 0 || s.admitted > slots_[static_cast<std::size_t>(youngest)].admitted)
      youngest = i;
  }
  return youngest;
}

// Gives a running sequence's cells back to the pool. It keeps its slot, its sampler and every
// token so far (its prompt, and while generating the tokens it sent, the last one not yet
// decoded), and is prefilled again when they fit: its next token then follows as if nothing had
// happened. A sequence in its prompt just starts it over.
void EngineLoop::preempt(std::int32_t id) {
  Slot& s = slots_[static_cast<std::size_t>(id)];
  stash(id, 0);  // with --cache-ram its cells come back from host memory rather than recomputed
  s.preempted = true;
  trim_cells(id, 0);
  counters_.cells_live.fetch_sub(s.n_past, std::memory_order_relaxed);
  counters_.preemptions.fetch_add(1, std::memory_order_relaxed);
  spdlog::debug("KV pool full: sequence {} gives back its {} cells, to be recomputed", id,
                s.n_past);
  s.n_past = 0;
  if (s.state == SlotState::generate) {
    s.state = SlotState::prefill;
    s.n_prompt = static_cast<std::int32_t>(s.tokens.size());
    const auto at = std::find_if(prefill_order_.begin(), prefill_order_.end(), [&](auto other) {
      return slots_[static_cast<std::size_t>(other)].admitted > s.admitted;
    });
    prefill_order_.insert(at, id);
  }
  s.paced = s.n_prompt > config_.n_seq_chunk;
}

// Each generating sequence needs one cell this step: idle caches go first, then the youngest
// running sequences, until they fit.
void EngineLoop::make_room_for_generation() {
  std::int32_t generating = 0;
  for (const Slot& s : slots_)
    generating += s.state == SlotState::generate ? 1 : 0;
  while (free_cells() < generating) {
    if (evict_idle_cache())
      continue;
    const std::int32_t victim = youngest_holder(0);
    if (victim < 0)
      return;
    if (slots_[static_cast<std::size_t>(victim)].state == SlotState::generate)
      --generating;
    preempt(victim);
  }
}

// How many of the waiting prompts (oldest first) may take tokens this step: those whose
// remaining tokens all fit the pool beside the generating sequences, with room left for each of
// those to grow kGrowthRoom more tokens (evicting idle caches for them): a prompt let in at the
// brim would be preempted again a step later. A prompt that does not fit waits, and so do the
// younger ones behind it. When nothing else would run, the oldest is made to fit by preempting
// younger sequences.
std::size_t EngineLoop::prompts_that_fit(std::int32_t generating) {
  constexpr std::int64_t kGrowthRoom = 16;
  std::int64_t committed = generating * (1 + kGrowthRoom);
  std::size_t n = 0;
  for (std::int32_t id : step_prefill_) {
    const Slot& s = slots_[static_cast<std::size_t>(id)];
    const std::int64_t need = s.n_prompt - s.n_past;
    while (free_cells() - committed < need && evict_idle_cache()) {
    }
    if (free_cells() - committed < need)
      break;
    committed += need;
    ++n;
  }
  if (n > 0 || generating > 0 || step_prefill_.empty())
    return n;
  const Slot& oldest = slots_[static_cast<std::size_t>(step_prefill_.front())];
  while (free_cells() < oldest.n_prompt - oldest.n_past) {
    const std::int32_t victim = youngest_holder(oldest.admitted);
    if (victim < 0)
      break;
    preempt(victim);
  }
  return free_cells() >= oldest.n_prompt - oldest.n_past ? 1 : 0;
}

// Whether embedding slot `id`'s prompt fits the pool beside `taken` cells already in the
// step, evicting idle caches and then preempting generation sequences for it.
bool EngineLoop::embed_fits(std::int32_t id, std::int64_t taken) {
  if (!shared_pool_)
    return true;
  const std::int64_t need = taken + slots_[static_cast<std::size_t>(id)].n_prompt;
  while (free_cells() < need) {
    if (evict_idle_cache())
      continue;
    if (taken > 0)
      return false;  // the step already has work: this one waits for the next
    const std::int32_t victim = youngest_holder(0);
    if (victim < 0)
      return false;
    preempt(victim);
  }
  return true;
}

// llama.cpp found no room for the step's batch although free_cells() saw some (its one
// overstatement, or a model whose cache counts cells otherwise). Nothing was decoded, so the
// step is undone and the youngest sequence (or an idle cache) gives its cells back. False
// when nothing can.
bool EngineLoop::recover_from_full_cache() {
  counters_.refused_steps.fetch_add(1, std::memory_order_relaxed);
  for (Slot& s : slots_) {
    s.chunk = 0;
    s.batch_row = -1;
    if (s.n_draft > 0) {  // before a preemption takes the tokens for its prompt
      s.tokens.resize(static_cast<std::size_t>(s.n_past) + 1);
      s.n_draft = 0;
    }
  }
  if (evict_idle_cache())
    return true;
  const std::int32_t victim = youngest_holder(0);
  if (victim < 0)
    return false;
  preempt(victim);
  return true;
}

void EngineLoop::release(const ReleaseSequence& r) {
  const auto waiting = std::find_if(pinned_.begin(), pinned_.end(),
                                    [&](const AdmitSequence& a) { return a.ticket == r.ticket; });
  if (waiting != pinned_.end()) {  // never started
    pinned_.erase(waiting);
    admission_.tell(SequenceReleased{r.ticket});
    return;
  }
  for (std::size_t i = 0; i < slots_.size(); ++i) {
    const Slot& s = slots_[i];
    if (s.state != SlotState::free && s.ticket == r.ticket) {
      finish(static_cast<std::int32_t>(i), r.drop_cache);
      return;
    }
  }
}

void EngineLoop::finish(std::int32_t id, bool drop_cache) {
  Slot& s = slots_[static_cast<std::size_t>(id)];
  counters_.cells_live.fetch_sub(s.n_past, std::memory_order_relaxed);
  s.state = SlotState::free;
  s.released = ++clock_;
  s.sampler.reset();
  s.sink = nullptr;
  s.prediction = {};
  s.chunk = 0;
  s.batch_row = -1;
  std::erase(prefill_order_, id);
  std::erase(embed_order_, id);
  s.tokens.resize(static_cast<std::size_t>(s.n_past));  // drop the sampled, undecoded token
  if (drop_cache) {
    trim_cells(id, 0);
    s.tokens.clear();
    s.n_past = 0;
  }
  --active_;
  const std::uint64_t ticket = s.ticket;
  // The slot's waiting actions, before a later admission can take it.
  for (auto it = slot_actions_.begin(); it != slot_actions_.end();) {
    if (it->slot != id) {
      ++it;
      continue;
    }
    SlotAction m = std::move(*it);
    it = slot_actions_.erase(it);
    run_slot_action(m);
  }
  // Then the first admission waiting for this slot (id_slot) that can start takes it, and the
  // released sequence's place with it; the ones that cannot start fail (they held no place).
  for (;;) {
    const auto pinned = std::find_if(pinned_.begin(), pinned_.end(),
                                     [&](const AdmitSequence& a) { return a.slot == id; });
    if (pinned == pinned_.end())
      break;
    AdmitSequence a = std::move(*pinned);
    pinned_.erase(pinned);
    if (Error e = admit_error(a, id); !e.message.empty()) {
      a.sink(SequenceFailed{std::move(e)});
      admission_.tell(SequenceReleased{a.ticket});
      continue;
    }
    admission_.tell(SequenceReleased{ticket, a.ticket});
    admit(a);
    return;
  }
  admission_.tell(SequenceReleased{ticket});
}

void EngineLoop::slot_action(SlotAction& m) {
  if (m.slot < 0 || m.slot >= static_cast<std::int32_t>(slots_.size())) {
    m.reply.fail(
        Error{Errc::invalid_request,
              fmt::format("Invalid slot ID: {} (the slots are 0 to {})", m.slot, slots_.size() - 1),
              "id_slot"});
    return;
  }
  if (!failed_ && slots_[static_cast<std::size_t>(m.slot)].state != SlotState::free) {
    slot_actions_.push_back(std::move(m));
    return;
  }
  run_slot_action(m);
}

void EngineLoop::run_slot_action(SlotAction& m) {
  if (failed_) {
    m.reply.fail(*failed_);
    return;
  }
  if (mem_ == nullptr) {
    m.reply.fail(Error{Errc::invalid_request, "this model keeps no KV cache in its slots"});
    return;
  }
  const auto t0 = std::chrono::steady_clock::now();
  Result<SlotActionDone> done = m.kind == SlotActionKind::save ? save_slot(m.slot, m.path)
                                : m.kind == SlotActionKind::restore
                                    ? restore_slot(m.slot, m.path, std::move(m.lora))
                                    : erase_slot(m.slot);
  if (!done) {
    m.reply.fail(std::move(done.error()));
    return;
  }
  done->ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  if (m.kind != SlotActionKind::erase) {
    spdlog::info("slot {}: {} {} tokens {} {} ({} bytes, {:.1f} ms)", m.slot,
                 m.kind == SlotActionKind::save ? "saved" : "restored", done->n_tokens,
                 m.kind == SlotActionKind::save ? "to" : "from", m.path, done->n_bytes, done->ms);
  }
  m.reply.send(*done);
}

// llama-server's save: the slot's cached tokens and their cells.
Result<SlotActionDone> EngineLoop::save_slot(std::int32_t id, const std::string& path) {
  const Slot& s = slots_[static_cast<std::size_t>(id)];
  const std::size_t bytes = llama_state_seq_save_file(ctx_.get(), path.c_str(), id, s.tokens.data(),
                                                      static_cast<std::size_t>(s.n_past));
  if (bytes == 0)
    return Error{Errc::internal, fmt::format("Unable to save slot {} to {}", id, path)};
  return SlotActionDone{s.n_past, bytes, 0.0};
}

// llama-server's restore: the slot's cells become the file's, and its cached tokens the file's
// tokens (troupe's plain list or llama-server's packed one: slot_tokens.hpp), for later prompts
// to reuse as any slot's cache. What the slot held goes to host memory first. In a shared pool
// idle slots' caches make room for the state, as for a prompt.
Result<SlotActionDone> EngineLoop::restore_slot(std::int32_t id, const std::string& path,
                                                std::vector<float> lora) {
  const auto refused = [&](std::string why) {
    return Error{Errc::invalid_request, fmt::format("Unable to restore slot {}: {}", id, why)};
  };
  const auto too_long = [&](std::size_t n) {
    return refused(fmt::format("its {} tokens do not fit a slot's context of {}", n, n_ctx_seq_));
  };
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec))
    return refused("no saved state " + std::filesystem::path(path).filename().string());
  // The length of the file's token list (llama.cpp reads only the header without a buffer).
  std::size_t n = 0;
  if (llama_state_seq_load_file(ctx_.get(), path.c_str(), id, nullptr, 0, &n) == 0)
    return refused("not a sequence state file of this llama.cpp");
  if (n >= static_cast<std::size_t>(n_ctx_seq_) + kPackedSlotWords)
    return too_long(n);
  Slot& s = slots_[static_cast<std::size_t>(id)];
  stash(id, 0);
  trim_cells(id, 0);
  s.tokens.clear();
  s.n_past = 0;
  if (shared_pool_) {
    while (free_cells() < static_cast<std::int64_t>(n) && evict_idle_cache(/*spare=*/id)) {
    }
    if (free_cells() < static_cast<std::int64_t>(n))
      return refused(fmt::format("no room for its {} tokens in the KV cache", n));
  }
  std::vector<Token> words(n);
  const std::size_t bytes =
      llama_state_seq_load_file(ctx_.get(), path.c_str(), id, words.data(), words.size(), &n);
  if (bytes == 0) {
    trim_cells(id, 0);
    return refused("llama.cpp refused the state (another model's?)");
  }
  std::optional<std::vector<Token>> tokens = unpack_slot_tokens(words);
  const auto valid = [&](Token t) { return t >= 0 && t < model_.n_vocab(); };
  const char* wrong = nullptr;
  if (!tokens)
    wrong = "its token list is neither troupe's nor llama-server's (a prompt with images?)";
  else if (!std::all_of(tokens->begin(), tokens->end(), valid))
    wrong = "its tokens are not this model's";
  else if (llama_memory_seq_pos_max(mem_, id) + 1 != static_cast<llama_pos>(tokens->size()))
    wrong = "its tokens do not match its cells";
  if (wrong != nullptr || tokens->size() >= static_cast<std::size_t>(n_ctx_seq_)) {
    trim_cells(id, 0);
    return wrong != nullptr ? refused(wrong) : too_long(tokens->size());
  }
  s.tokens.assign(tokens->begin(), tokens->end());
  s.n_past = static_cast<std::int32_t>(tokens->size());
  s.lora = intern_lora(std::move(lora));
  s.released = ++clock_;
  return SlotActionDone{s.n_past, bytes, 0.0};
}

// llama-server's erase: the slot's cached tokens dropped (not kept in host memory).
SlotActionDone EngineLoop::erase_slot(std::int32_t id) {
  Slot& s = slots_[static_cast<std::size_t>(id)];
  SlotActionDone done{s.n_past, 0, 0.0};
  trim_cells(id, 0);
  s.tokens.clear();
  s.n_past = 0;
  return done;
}

void EngineLoop::inspect(InspectEngine& m) const {
  EngineSnapshot snap;
  snap.failed = failed_.has_value();
  for (std::size_t i = 0; i < slots_.size(); ++i) {
    const Slot& s = slots_[i];
    EngineSnapshot::SlotView v;
    v.busy = s.state != SlotState::free;
    v.ticket = s.ticket;
    v.n_past = s.n_past;
    v.kv_pos_max =
        mem_ != nullptr ? llama_memory_seq_pos_max(mem_, static_cast<llama_seq_id>(i)) : -1;
    if (v.busy) {
      v.generating = s.state == SlotState::generate;
      v.embed = s.embed;
      v.n_prompt = s.n_prompt;
      v.cached = s.embed ? 0 : s.cached;
      v.generated = s.generated;
      v.max_tokens = s.embed ? 0 : s.stop.max_tokens.value_or(-1);
    }
    snap.slots.push_back(v);
  }
  m.reply.send(std::move(snap));
}

void EngineLoop::fail(const Error& error) {
  if (failed_)
    return;
  spdlog::error("engine failed: {}", error.message);
  failed_ = error;
  for (std::size_t i = 0; i < slots_.size(); ++i) {
    Slot& s = slots_[i];
    if (s.state == SlotState::free)
      continue;
    s.sink(SequenceFailed{error});
    finish(static_cast<std::int32_t>(i), /*drop_cache=*/true);
  }
  llama_memory_clear(mem_, false);
  admission_.tell(EngineFailed{error});
}

void EngineLoop::step() {
  step_pads_ = 0;  // build_batch's: an embedding step has none
  bool embed = embed_step();
  if (embed) {
    choose_step_lora(true);
    build_embed_batch();
  }
  if (!embed || batch_.size() == 0) {
    embed = false;  // no embedding fits the pool until generation gives cells back
    choose_step_lora(false);
    build_batch();
  }
  if (batch_.size() == 0) {
    turn_.reset();
    entered_ = false;
    lora_turn_start_ = {};  // nothing of this set could run: the next set's turn
    return;
  }
  set_embeddings(embed);
  apply_lora();
  enter_decode();
  if (on_decode_)
    on_decode_(DecodeEdge::begin);
  const auto t0 = std::chrono::steady_clock::now();
  const int rc = llama_decode(ctx_.get(), batch_.get());
  const auto t1 = std::chrono::steady_clock::now();
  if (on_decode_)
    on_decode_(DecodeEdge::end);
  turn_.reset();
  entered_ = false;
  if (step_pads_ > 0)
    drop_pads();
  if (rc == 1 && shared_pool_ && recover_from_full_cache()) {
    spdlog::debug("the KV pool had no room for a step of {} tokens: a sequence gave its back",
                  batch_.size());
    return;
  }
  if (rc != 0) {
    fail(Error{Errc::engine_failed, fmt::format("llama_decode failed with status {}", rc)});
    return;
  }
  const auto took = std::chrono::duration_cast<std::chrono::microseconds>(t1 - t0).count();
  counters_.decode_us.fetch_add(took, std::memory_order_relaxed);
  counters_.decode_steps.fetch_add(1, std::memory_order_relaxed);
  if (!embed) {
    // A drafted token costs the step what a sequence's next token does: the pacer counts rows.
    pacer_.record(step_generating_ + step_drafts_, step_prompt_, static_cast<double>(took));
    if (step_prompt_ == 0 && step_rows_ > 0)
      row_costs_.record(step_rows_, static_cast<double>(took));
    if (draft_ok_ && step_prompt_ == 0)
      draft_costs_.record(step_generating_ + step_drafts_, static_cast<double>(took));
    counters_.pad_rows.fetch_add(step_pads_, std::memory_order_relaxed);
    if (spdlog::should_log(spdlog::level::trace)) {
      // bench/peer/step_trace.py reads these lines (tests/bench/step_trace_test.py).
      spdlog::trace(
          "step: {} generating, {} drafted, {} prompt tokens (mean position {}), {} pads, {} us "
          "(pacer: generation step {:.0f} us, prompt token {:.0f} us)",
          step_generating_, step_drafts_, step_prompt_,
          step_prompt_ > 0 ? step_prompt_pos_ / step_prompt_ : 0, step_pads_, took,
          pacer_.generation_step_us(step_generating_), pacer_.prompt_token_us());
    }
    if (step_prompt_ > 0)
      counters_.prefill_steps.fetch_add(1, std::memory_order_relaxed);
  }
  counters_
      .sequences_per_step[std::min<std::size_t>(static_cast<std::size_t>(active_),
                                                EngineCounters::histogram_size - 1)]
      .fetch_add(1, std::memory_order_relaxed);
  last_step_embed_ = embed;
  if (embed)
    after_embed_decode();
  else
    after_decode();
}

// Embedding sequences and generation never share a step (the context computes either pooled
// vectors or logits); with both waiting they take turns.
bool EngineLoop::embed_step() const {
  if (embed_order_.empty())
    return false;
  const bool generation_waits = active_ > static_cast<std::int32_t>(embed_order_.size());
  return !generation_waits || !last_step_embed_;
}

// split: this step decodes with the engine's share of its threads among the busy engines
// (all of them when it is the only one), on a threadpool of that size: ggml's workers that a
// graph leaves out poll for the next one (ggml_graph_compute_poll_for_work) beside the other
// engine's graph, so the pool of all n_threads sleeps meanwhile (paused).
void EngineLoop::take_core_share() {
  if (!seat_)
    return;
  seat_->busy();
  const std::int32_t threads = seat_->threads(config_.n_threads);
  if (threads == counters_.decode_threads.load(std::memory_order_relaxed))
    return;
  if (pool_) {
    CpuThreadpool* next = pool_.get();
    if (threads < config_.n_threads) {
      share_pools_.resize(static_cast<std::size_t>(config_.n_threads));
      auto& made = share_pools_[static_cast<std::size_t>(threads)];
      if (!made)
        made = CpuThreadpool::create(threads, config_.thread_poll);
      if (made)
        next = made.get();
    }
    if (next != attached_) {
      attached_->pause();
      llama_attach_threadpool(ctx_.get(), next->get(), next->get());
      attached_ = next;
    }
  }
  llama_set_n_threads(ctx_.get(), threads, threads);
  if (drafter_)
    drafter_->attach(attached_, threads);
  spdlog::trace("engine: decodes with {} of its {} threads ({} models busy)", threads,
                config_.n_threads, CoreShare::process().busy_count());
  counters_.decode_threads.store(threads, std::memory_order_relaxed);
}

// This step's share of the threads, its turn among the process's engines and its threadpool
// awake: before its first decode (the draft model's, when it drafts, or its own).
void EngineLoop::enter_decode() {
  if (entered_)
    return;
  entered_ = true;
  take_core_share();
  if (cpu_share_ == CpuShare::turns)
    turn_.emplace(DecodeTurns::process().take(attached_));
  if (attached_)
    attached_->resume();  // a no-op unless the engine was idle or waited for its turn
}

void EngineLoop::set_embeddings(bool on) {
  if (embedding_only_ || ctx_embeddings_ == on)
    return;
  llama_set_embeddings(ctx_.get(), on);
  ctx_embeddings_ = on;
}

// Whole prompts, oldest first, while they fit the step's budget (the first always does:
// embed_limit_ <= n_batch). Every token is an output: pooling reads them all.
void EngineLoop::build_embed_batch() {
  batch_.clear();
  std::int32_t budget = config_.n_batch;
  const std::int32_t pack = config_.embed_pack > 0 ? config_.embed_pack : config_.n_batch;
  for (std::int32_t id : embed_order_) {
    Slot& s = slots_[static_cast<std::size_t>(id)];
    if (waits(s))
      continue;
    if (s.n_prompt > budget || !embed_fits(id, config_.n_batch - budget))
      break;
    if (batch_.size() > 0 && batch_.size() + s.n_prompt > pack)
      break;  // the step is full enough: see BatchEngineConfig::embed_pack
    for (std::int32_t pos = 0; pos < s.n_prompt; ++pos) {
      const std::int32_t row = batch_.add(s.tokens[static_cast<std::size_t>(pos)], pos, id, true);
      if (pos == 0)
        s.batch_row = row;
    }
    s.chunk = s.n_prompt;
    budget -= s.n_prompt;
  }
}

void EngineLoop::after_embed_decode() {
  const auto pooling = static_cast<Pooling>(llama_pooling_type(ctx_.get()));
  for (std::size_t i = 0; i < slots_.size(); ++i) {
    Slot& s = slots_[i];
    if (s.state == SlotState::free || !s.embed || s.chunk == 0)
      continue;
    const auto id = static_cast<std::int32_t>(i);
    if (auto v = read_embedding(s, id, pooling))
      s.sink(SequenceEmbedded{std::move(*v), pooling == Pooling::none ? s.chunk : 1});
    else
      s.sink(SequenceFailed{Error{Errc::internal, "the context returned no embedding"}});
    s.chunk = 0;
    s.batch_row = -1;
    finish(id, /*drop_cache=*/true);
  }
}

// Slot `id`'s answer from the step just decoded: its pooled vector, normalised as asked (a
// reranker's scores never), or with pooling none each of its tokens' vectors, one after
// another and as they are (llama-server normalises only pooled vectors).
std::optional<std::vector<float>> EngineLoop::read_embedding(const Slot& s, std::int32_t id,
                                                             Pooling pooling) {
  const auto n = static_cast<std::size_t>(n_embd_out_);
  std::vector<float> out;
  if (pooling == Pooling::none) {
    out.reserve(n * static_cast<std::size_t>(s.chunk));
    for (std::int32_t k = 0; k < s.chunk; ++k) {
      const float* v = llama_get_embeddings_ith(ctx_.get(), s.batch_row + k);
      if (v == nullptr)
        return std::nullopt;
      out.insert(out.end(), v, v + n);
    }
    return out;
  }
  const float* v = llama_get_embeddings_seq(ctx_.get(), id);
  if (v == nullptr)
    return std::nullopt;
  out.assign(v, v + n);
  if (pooling != Pooling::rank)
    normalize_embedding(out, s.norm);
  return out;
}

// The step's tokens in slot order (llama.cpp's per-stream split puts consecutive sequences in
// one ubatch: step_rows.hpp): each generating sequence's sampled token, the prompt chunks
// plan_prompt_chunks gives, and the pad tokens plan_pad_rows chooses.
void EngineLoop::build_batch() {
  batch_.clear();
  if (shared_pool_)
    make_room_for_generation();
  std::int32_t generating = 0;
  for (const Slot& s : slots_)
    generating += s.state == SlotState::generate && !waits(s) ? 1 : 0;
  plan_prompt_chunks(generating);
  step_drafts_ = plan_drafts(generating);
  plan_pad_rows();
  step_generating_ = generating;
  step_prompt_ = 0;
  step_prompt_pos_ = 0;
  step_pads_ = 0;
  for (std::size_t i = 0; i < slots_.size(); ++i) {
    Slot& s = slots_[i];
    const auto id = static_cast<llama_seq_id>(i);
    if (s.state == SlotState::generate && !waits(s)) {
      // Its next token, then its drafts: consecutive rows, each with logits.
      for (std::int32_t k = 0; k <= s.n_draft; ++k) {
        const std::int32_t pos = s.n_past + k;
        const std::int32_t row = batch_.add(s.tokens[static_cast<std::size_t>(pos)], pos, id, true);
        if (k == 0)
          s.batch_row = row;
      }
      s.chunk = 1 + s.n_draft;
    } else if (slot_take_[i] > 0) {
      for (std::int32_t k = 0; k < slot_take_[i]; ++k) {
        const std::int32_t pos = s.n_past + k;
        const bool last = pos == s.n_prompt - 1;
        const std::int32_t row = batch_.add(s.tokens[static_cast<std::size_t>(pos)], pos, id, last);
        if (last)
          s.batch_row = row;
      }
      s.chunk = slot_take_[i];
      step_prompt_ += s.chunk;
      step_prompt_pos_ +=
          std::int64_t{s.chunk} * s.n_past + std::int64_t{s.chunk} * (s.chunk - 1) / 2;
    } else if (pad_[i] != 0) {
      batch_.add(0, s.n_past, id, false);  // any token: its row is discarded (drop_pads)
      ++step_pads_;
    }
  }
}

// Prompt chunks, oldest admission first: plan_prompt_tokens (step_pacer.hpp) says how many
// tokens of each, into slot_take_. A prompt that needs more than one chunk is spread by the
// pacer while others generate, so that their next token is not held up for long; a prompt
// that fits one chunk (a usual turn) goes in whole: cut smaller it would cost more compute
// than the short wait it saves.
void EngineLoop::plan_prompt_chunks(std::int32_t generating) {
  std::fill(slot_take_.begin(), slot_take_.end(), 0);
  PromptRoom room;
  room.generating = generating;
  room.budget = config_.n_batch - generating;
  room.paced = pacer_.prompt_budget(generating, room.budget);
  room.chunk = config_.n_seq_chunk;
  room.paced_first = paced_first_;
  pending_.clear();
  step_prefill_.clear();
  for (std::int32_t id : prefill_order_) {
    if (!waits(slots_[static_cast<std::size_t>(id)]))
      step_prefill_.push_back(id);
  }
  const std::size_t n_fit = shared_pool_ ? prompts_that_fit(generating) : step_prefill_.size();
  for (std::size_t j = 0; j < n_fit; ++j) {
    if (slots_[static_cast<std::size_t>(step_prefill_[j])].preempted)
      resume(step_prefill_[j]);
    const Slot& s = slots_[static_cast<std::size_t>(step_prefill_[j])];
    pending_.push_back({s.n_prompt - s.n_past, s.paced});
  }
  const std::span<std::int32_t> take(take_.data(), pending_.size());
  plan_prompt_tokens(pending_, room, take);
  // A step that would go past where a prompt is checkpointed (checkpoint_at: a recurrent
  // state's before its last tokens) stops there.
  for (std::size_t j = 0; j < pending_.size(); ++j) {
    const Slot& s = slots_[static_cast<std::size_t>(step_prefill_[j])];
    const std::int32_t at = checkpoint_at(s);
    if (s.n_past < at && s.n_past + take[j] > at)
      take[j] = at - s.n_past;
  }
  paced_first_ = generating > 0 && paced_prompt_waited(pending_, take);
  for (std::size_t j = 0; j < pending_.size(); ++j)
    slot_take_[static_cast<std::size_t>(step_prefill_[j])] = take[j];
}

// Which idle slots take a pad token this step (step_rows.hpp): one whose stream has a free
// cell for it, at the position after its cached tokens.
void EngineLoop::plan_pad_rows() {
  std::fill(pad_.begin(), pad_.end(), std::uint8_t{0});
  step_rows_ = 0;
  if (!pad_rows_ || step_drafts_ > 0)
    return;
  for (std::size_t i = 0; i < slots_.size(); ++i) {
    const Slot& s = slots_[i];
    // A sequence whose adapters wait for their step is idle here: a pad in its stream (at
    // its next position, dropped after the step) keeps the step one pass over the weights.
    if ((s.state == SlotState::generate && !waits(s)) || slot_take_[i] > 0)
      row_roles_[i] = RowRole::busy;
    else
      row_roles_[i] = s.n_past < n_ctx_seq_ ? RowRole::idle : RowRole::blocked;
  }
  step_rows_ = plan_pads(row_roles_, row_costs_, pad_, config_.pad_rows == PadRows::always);
}

// Speculative decoding: each generating sequence's draft (from its request's prediction, else
// by n-gram lookup with --spec-type, else by the draft model), written after its next token in
// its tokens, while the step's token budget has room after its prompts (and, in the shared
// pool, free cells). With a KV stream per sequence only a sequence generating alone drafts
// (BatchEngineConfig::spec). The draft model is asked only for as many tokens as the policy
// takes of a full-length draft. Returns the step's drafted tokens.
std::int32_t EngineLoop::plan_drafts(std::int32_t generating) {
  for (Slot& s : slots_)
    s.n_draft = 0;
  if (!draft_ok_ || generating == 0 || (!config_.kv_unified && generating > 1))
    return 0;
  std::int32_t prompt = 0;
  for (std::int32_t t : slot_take_)
    prompt += t;
  std::int64_t room = config_.n_batch - generating - prompt;
  if (shared_pool_)
    room = std::min(room, free_cells() - generating - prompt);
  const NgramDraftParams params{config_.spec_ngram_n, config_.spec_ngram_m};
  const bool by_model = drafter_ && drafter_->working() && config_.spec_draft_max > 0;
  std::size_t n_offers = 0;
  for (std::size_t i = 0; i < slots_.size(); ++i) {
    Slot& s = slots_[i];
    if (s.state != SlotState::generate || waits(s) || (!spec_ && !by_model && s.prediction.empty()))
      continue;
    // Never past the context's last cell, nor past the request's last token (the token after
    // a draft is the sampler's own).
    std::int64_t most = std::min<std::int64_t>(room, n_ctx_seq_ - 1 - s.n_past);
    if (s.stop.max_tokens)
      most = std::min<std::int64_t>(most, *s.stop.max_tokens - s.generated - 1);
    if (most <= 0)
      continue;
    const auto next = static_cast<std::size_t>(s.n_past) + 1;  // tokens[n_past] is decoded next
    s.tokens.resize(next + static_cast<std::size_t>(most));    // within the reserved n_ctx_seq + 1
    const std::span<const Token> history(s.tokens.data(), next);
    const std::span<Token> out(s.tokens.data() + next, static_cast<std::size_t>(most));
    std::int32_t n = 0;
    if (!s.prediction.empty()) {
      n = prediction_draft(s.prediction, history.last(static_cast<std::size_t>(s.generated)),
                           config_.spec_ngram_m, s.prediction_at, out);
    }
    s.drafted_prediction = n > 0;
    if (n == 0 && spec_)
      n = ngram_draft(history, params, out);
    s.tokens.resize(next + static_cast<std::size_t>(n));
    by_model_[n_offers] = n == 0 && by_model ? 1 : 0;
    if (by_model_[n_offers] != 0)
      n = static_cast<std::int32_t>(std::min<std::int64_t>(most, config_.spec_draft_max));
    if (n == 0)
      continue;
    offers_[n_offers] = {n, s.draft_hits / s.draft_tries, by_model_[n_offers] != 0};
    offer_slot_[n_offers++] = static_cast<std::int32_t>(i);
  }
  const std::span<std::int32_t> take(draft_take_.data(), n_offers);
  if (config_.spec_measured) {
    choose_drafts(std::span<const DraftOffer>(offers_.data(), n_offers), generating, draft_costs_,
                  take, by_model ? drafter_->pass_us() : 0.0);
  } else {
    for (std::size_t k = 0; k < n_offers; ++k)
      take[k] = static_cast<std::int32_t>(std::min<std::int64_t>(offers_[k].available, room));
  }
  if (by_model)
    draft_by_model(n_offers);
  std::int32_t drafted = 0;
  for (std::size_t k = 0; k < n_offers; ++k) {
    Slot& s = slots_[static_cast<std::size_t>(offer_slot_[k])];
    const std::int32_t n = std::min<std::int32_t>(take[k], static_cast<std::int32_t>(room));
    if (n == 0) {
      // Not drafted: its estimate drifts back to the prior, so that a sequence whose drafts
      // were once rejected tries again later (its text may repeat by then).
      s.draft_hits += kDrift * (prior_hits(s) - s.draft_hits);
      s.draft_tries += kDrift * (kDraftTries - s.draft_tries);
    }
    s.tokens.resize(static_cast<std::size_t>(s.n_past) + 1 + static_cast<std::size_t>(n));
    s.n_draft = n;
    room -= n;
    drafted += n;
  }
  counters_.spec_drafted.fetch_add(drafted, std::memory_order_relaxed);
  return drafted;
}

// The draft model guesses the tokens the policy took of the offers it is to draft (by_model_),
// all those sequences in the same passes; each offer's take becomes what it drafted.
void EngineLoop::draft_by_model(std::size_t n_offers) {
  std::size_t n_wants = 0;
  for (std::size_t k = 0; k < n_offers; ++k) {
    if (by_model_[k] == 0 || draft_take_[k] == 0)
      continue;
    Slot& s = slots_[static_cast<std::size_t>(offer_slot_[k])];
    const auto next = static_cast<std::size_t>(s.n_past) + 1;
    s.tokens.resize(next + static_cast<std::size_t>(draft_take_[k]));  // within the reserve
    DraftWant& w = wants_[n_wants++];
    w.seq = offer_slot_[k];
    w.history = std::span<const Token>(s.tokens.data(), next);
    w.out = std::span<Token>(s.tokens.data() + next, static_cast<std::size_t>(draft_take_[k]));
    draft_take_[k] = 0;
  }
  if (n_wants == 0)
    return;
  enter_decode();
  const auto t0 = std::chrono::steady_clock::now();
  drafter_->draft(std::span<DraftWant>(wants_.data(), n_wants));
  if (spdlog::should_log(spdlog::level::trace)) {
    spdlog::trace(
        "draft model: {} sequences, {:.0f} us (a pass {:.0f} us)", n_wants,
        std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0).count(),
        drafter_->pass_us());
  }
  for (std::size_t j = 0, k = 0; j < n_wants; ++j) {
    while (offer_slot_[k] != wants_[j].seq)
      ++k;
    draft_take_[k] = wants_[j].drafted;
  }
}

// After slot `id`'s rows were sampled (`emitted` tokens from `first` in out_: its drafts that
// the sampler drew, then the one it drew instead, or the last): the accepted drafts' cells
// stay, the rest go, and drafts from a prediction are counted on the step's first token. On
// the engine thread.
void EngineLoop::settle_drafts(std::int32_t id, std::int32_t emitted, std::size_t first) {
  Slot& s = slots_[static_cast<std::size_t>(id)];
  const std::int32_t drafted = s.n_draft;
  s.n_draft = 0;
  if (drafted == 0)
    return;
  const std::int32_t accepted = std::max(emitted - 1, 0);
  s.n_past += accepted;
  counters_.cells_live.fetch_add(accepted, std::memory_order_relaxed);
  counters_.spec_accepted.fetch_add(accepted, std::memory_order_relaxed);
  if (accepted < drafted)
    llama_memory_seq_rm(mem_, id, s.n_past, -1);
  if (s.drafted_prediction && emitted > 0) {
    out_[first].prediction_kept = static_cast<std::uint16_t>(accepted);
    out_[first].prediction_rejected = static_cast<std::uint16_t>(drafted - accepted);
  }
  constexpr double kDecay = 0.8;  // the last few drafts decide
  s.draft_hits = kDecay * s.draft_hits + accepted;
  s.draft_tries = kDecay * s.draft_tries + accepted + (accepted < drafted ? 1 : 0);
}

// Removes the step's pad tokens from their slots' streams: each slot's cache is again its
// n_past cached tokens.
void EngineLoop::drop_pads() {
  for (std::size_t i = 0; i < slots_.size(); ++i) {
    if (pad_[i] != 0)
      llama_memory_seq_rm(mem_, static_cast<llama_seq_id>(i), slots_[i].n_past, -1);
  }
}

void EngineLoop::after_decode() {
  // Sample every sequence first, then send the step's tokens in one burst: the actors thread
  // is woken once per step and finds them all queued, instead of once per sequence with an
  // argmax between two wake-ups (a wake-up is a syscall here and, in a VM, an IPI).
  std::size_t n_out = 0;
  std::int32_t n_rows = 0;
  for (std::size_t i = 0; i < slots_.size(); ++i) {
    Slot& s = slots_[i];
    if (s.state == SlotState::free || s.chunk == 0)
      continue;
    const std::int32_t decoded = s.chunk - s.n_draft;  // drafts count once sampled
    s.n_past += decoded;
    counters_.cells_live.fetch_add(decoded, std::memory_order_relaxed);
    s.chunk = 0;
    if (s.state == SlotState::prefill && s.n_past == checkpoint_at(s))
      to_checkpoint_.push_back(static_cast<std::int32_t>(i));
    if (s.batch_row < 0)
      continue;  // a prompt chunk that is not the last
    if (s.state == SlotState::prefill) {
      s.state = SlotState::generate;
      std::erase(prefill_order_, static_cast<std::int32_t>(i));
    }
    // Here, on the engine thread: llama_get_logits_ith may reorder the context's outputs.
    out_first_[n_out] = n_rows;
    out_rows_[n_out] = 1 + s.n_draft;
    for (std::int32_t j = 0; j <= s.n_draft; ++j)
      out_logits_[static_cast<std::size_t>(n_rows++)] =
          llama_get_logits_ith(ctx_.get(), s.batch_row + j);
    s.batch_row = -1;
    out_slot_[n_out++] = static_cast<std::int32_t>(i);
  }
  sample_step(n_out);
  for (std::size_t k = 0; k < n_out; ++k) {
    const std::int32_t id = out_slot_[k];
    Slot& s = slots_[static_cast<std::size_t>(id)];
    settle_drafts(id, out_emitted_[k], static_cast<std::size_t>(out_first_[k]));
    bool ended = false;
    for (std::int32_t j = 0; j < out_emitted_[k]; ++j) {
      const SampledToken& t = out_[static_cast<std::size_t>(out_first_[k] + j)];
      ended = t.end != EngineEnd::none;
      s.sink(t);
    }
    if (out_ok_[k] == 0) {
      s.sink(SequenceFailed{
          Error{Errc::invalid_request, "the grammar admits no further token", "grammar"}});
      finish(id, /*drop_cache=*/false);
      continue;
    }
    if (ended)
      finish(id, /*drop_cache=*/false);
  }
  // Once the step's tokens are out: a checkpoint of each prompt computed in it.
  for (const std::int32_t id : to_checkpoint_)
    checkpoint(id);
  to_checkpoint_.clear();
}

// Samples the step's n sequences (out_slot_, out_logits_) into out_ and out_ok_: on the engine
// thread alone, or shared with the crew when the step's sampling is expected to cost more
// than waking it (each sequence's sampler is its own, and each thread has its scratch).
void EngineLoop::sample_step(std::size_t n) {
  const auto count = static_cast<std::int32_t>(n);
  if (count == 0)
    return;
  const bool share = crew_ && count >= 2 &&
                     sample_us_per_seq_ * count >= static_cast<double>(config_.share_sampling_us);
  auto one = [this](std::int32_t k, std::int32_t worker) {
    const auto kk = static_cast<std::size_t>(k);
    out_ok_[kk] = sample_rows(kk, scratch_[static_cast<std::size_t>(worker)]) ? 1 : 0;
  };
  const auto t0 = std::chrono::steady_clock::now();
  if (share) {
    crew_->run(count, one);
    counters_.shared_sampling_steps.fetch_add(1, std::memory_order_relaxed);
  } else {
    for (std::int32_t k = 0; k < count; ++k)
      one(k, 0);
  }
  const auto wall =
      std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0).count();
  // One thread's time per sequence (shared: the wall time times the threads that worked).
  const double threads = share ? std::min<double>(count, crew_->helpers() + 1) : 1.0;
  sample_us_per_seq_ = 0.75 * sample_us_per_seq_ + 0.25 * (wall * threads / count);
  counters_.sample_us.fetch_add(static_cast<std::int64_t>(wall), std::memory_order_relaxed);
}

// Samples sequence k's rows in order (out_first_, out_rows_): its next token, then, while
// the sampler draws the drafted token a row was decoded with, the token after it. The tokens
// drawn go to out_ and its tokens (the drafts kept, the last drawn token to be decoded next),
// their count to out_emitted_. False when the grammar admits no token: the sequence cannot go
// on. Any sampling thread: touches only the slot, `scratch`, its rows and relaxed counters.
bool EngineLoop::sample_rows(std::size_t k, SamplerScratch& scratch) {
  Slot& s = slots_[static_cast<std::size_t>(out_slot_[k])];
  const auto first = static_cast<std::size_t>(out_first_[k]);
  const std::int32_t rows = out_rows_[k];
  std::int32_t emitted = 0;
  bool ok = true;
  for (std::int32_t j = 0; j < rows; ++j) {
    SampledToken& out = out_[first + static_cast<std::size_t>(j)];
    // Row j computed position n_past + j - 1 (n_past counts the row-0 token already): its
    // token goes at n_past + j, where row j + 1's draft is.
    if (sample(s, out_logits_[first + static_cast<std::size_t>(j)], s.n_past + j, scratch, out) ==
        SampleStatus::grammar_failed) {
      ok = false;
      break;
    }
    ++emitted;
    if (out.end != EngineEnd::none || j + 1 == rows ||
        out.token != s.tokens[static_cast<std::size_t>(s.n_past + j)]) {
      break;
    }
  }
  if (emitted > 0) {
    s.tokens.resize(static_cast<std::size_t>(s.n_past + emitted - 1));
    s.tokens.push_back(out_[first + static_cast<std::size_t>(emitted - 1)].token);
  }
  out_emitted_[k] = emitted;
  return ok;
}

// One token at position `pos`: sampled, counted, and its end (sequence_end) decided.
SampleStatus EngineLoop::sample(Slot& s, const float* logits, std::int32_t pos,
                                SamplerScratch& scratch, SampledToken& out) {
  const bool suppress = eog_suppressed(s.stop, s.generated);
  out = SampledToken{};
  const SampleStatus status =
      s.sampler->sample(logits, suppress ? &model_.eog_tokens() : nullptr, scratch, out);
  if (status == SampleStatus::grammar_failed)
    return status;
  ++s.generated;
  counters_.generated_tokens.fetch_add(1, std::memory_order_relaxed);
  // A complete grammar ends the sequence even where EOG is suppressed: it allows nothing else.
  const bool eog = status == SampleStatus::grammar_end || (!suppress && model_.is_eog(out.token));
  out.end = sequence_end(s.stop, s.generated, eog, pos >= n_ctx_seq_);
  return status;
}

}  // namespace troupe::engine
