#pragma once
// Backend: what the HTTP server (and any other front end) needs from an inference service.
// The local Coordinator is one Backend; the cluster gateway is another; the simulated engine
// is a third. The server never knows which.
//
// Thread-safety: every member function may be called from any thread concurrently (the HTTP
// server calls them from its I/O threads). None of them blocks for long: CPU-heavy work
// (tokenizing a long prompt, decoding) happens elsewhere and is awaited.

#include <algorithm>
#include <boost/asio/awaitable.hpp>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "engine/lora.hpp"
#include "engine/model_details.hpp"
#include "engine/task.hpp"
#include "engine/token_stream.hpp"
#include "util/result.hpp"

namespace troupe::engine {

struct ModelInfo {
  std::string id;          // the name clients use in "model"
  std::int32_t n_ctx = 0;  // context per sequence
  std::int32_t n_vocab = 0;
  std::string owned_by = "troupe";
  std::int64_t created = 0;          // unix seconds
  std::vector<std::string> aliases;  // more names requests may use for it
  // Where the model stands in a server that loads models on demand (models::ModelSet):
  // "unloaded", "loading", "loaded", "unloading" or "failed" (`state_message` then says why);
  // empty for a backend whose models are fixed (/v1/models then shows no status).
  std::string state;
  std::string state_message;
  // Its file's architecture, size and weights' type (read_model_details); empty when the
  // backend does not know its file (a gateway's workers' models).
  ModelDetails details;
};

// What llama-server's GET /props tells of a served model: the engine's shape and request
// defaults, the model's file, chat template and special tokens. Empty texts (and 0) are
// unknown to the backend that answers.
struct ModelProps {
  std::string id;
  std::int32_t n_ctx = 0;        // context per sequence
  std::int32_t total_slots = 0;  // sequences decoded together (--parallel)
  std::string model_path;
  std::string chat_template;  // the template chat requests are rendered with (its source)
  std::string bos_token;      // the BOS and EOS tokens' texts
  std::string eos_token;
  SamplingDefaults defaults;  // what requests leave unset
  bool embeddings = false;    // the engine serves embeddings (--embeddings)
  // What the model can do beyond that (Ollama's /api/show capabilities): generate (not an
  // embedding-only model), call tools and think (its chat template's), fill in the middle.
  bool generates = true;
  bool tools = false;
  bool thinking = false;
  bool infill = false;
};

// llama-server's GET /slots: a served model's sequence slots as they stand. No prompt or
// answer text: the counts only.
struct SlotStatus {
  std::int32_t id = 0;
  bool busy = false;             // a request holds it
  bool generating = false;       // busy: sampling its answer (else taking its prompt in)
  bool embedding = false;        // busy with an embedding input
  std::uint64_t task = 0;        // busy: the engine's ticket of the request
  std::int32_t n_prompt = 0;     // busy: its prompt's tokens
  std::int32_t n_processed = 0;  // busy: of them, those in the KV cache so far
  std::int32_t n_cached = 0;     // busy: of them, those found cached at admission
  std::int32_t n_decoded = 0;    // busy: tokens sampled
  std::int32_t max_tokens = -1;  // busy: its limit; -1: none but the context
};

struct SlotsInfo {
  std::int32_t n_ctx = 0;    // context per slot
  bool speculative = false;  // the engine drafts (--spec-type, a draft model)
  std::vector<SlotStatus> slots;
};

// llama-server's POST /slots/ID?action=save|restore|erase (`--slot-save-path`): what to do with
// which slot, and the file (the server joins its save directory and the request's filename).
struct SlotActionRequest {
  SlotActionKind kind = SlotActionKind::erase;
  std::int32_t slot = 0;
  std::string path;  // save and restore
};

enum class HealthState { loading, ready, failed };

struct Health {
  HealthState state = HealthState::loading;
  std::string message;  // why, when not ready
};

// Counters and gauges for /metrics. Counters only grow; gauges are instantaneous.
struct BackendStats {
  std::int64_t requests_running = 0;  // gauge: admitted and generating
  std::int64_t requests_queued = 0;   // gauge: waiting for a sequence slot
  std::int64_t prompt_tokens_total = 0;
  std::int64_t generation_tokens_total = 0;
  std::int64_t prefix_cache_hits_total = 0;     // prompt tokens served from the KV cache
  std::int64_t prefix_cache_queries_total = 0;  // prompt tokens looked up
  std::int64_t decode_steps_total = 0;
  std::int64_t decode_us_total = 0;  // time spent inside the decode calls
  std::int64_t sample_us_total = 0;  // wall time spent sampling the steps' sequences
  std::int64_t cancelled_total = 0;
  double kv_cache_usage_ratio = 0.0;  // gauge: used / total KV cells
  // --kv-unified: sequences that gave their KV cells back, to be recomputed when they fit.
  std::int64_t kv_preemptions_total = 0;
  // Discarded tokens added to steps so that each is one pass over the weights (pad_rows).
  std::int64_t pad_rows_total = 0;
  // --cache-ram: displaced slots' KV states stored in host memory, and restored (with the
  // prompt tokens they served, also counted in prefix_cache_hits_total); gauges: its bytes and
  // entries.
  std::int64_t host_cache_stores_total = 0;
  std::int64_t host_cache_restores_total = 0;
  std::int64_t host_cache_hits_total = 0;
  std::int64_t host_cache_bytes = 0;
  std::int64_t host_cache_entries = 0;
  // Sliding-window models (--ctx-checkpoints): prompts served with a checkpoint's window, and
  // the gauge of the checkpoints' bytes.
  std::int64_t checkpoint_restores_total = 0;
  std::int64_t checkpoint_bytes = 0;
  // --cache-reuse: cached tokens reused by moving their cells into place (also counted in
  // prefix_cache_hits_total).
  std::int64_t cache_reuse_tokens_total = 0;
  // --spec-type: tokens drafted, and those the sampler drew (each a step saved).
  std::int64_t spec_draft_tokens_total = 0;
  std::int64_t spec_accepted_tokens_total = 0;
  // Histogram of sequences per decode step: count of steps with exactly i sequences, i < 64,
  // steps with more are counted in the last bucket.
  std::vector<std::int64_t> sequences_per_step;
};

class Backend {
 public:
  virtual ~Backend() = default;

  // Starts a generation. Always returns a stream: a refused request (unknown model, invalid
  // parameters, prompt too long, queue full, engine failed) yields a stream that delivers a
  // single Failed event, so there is one path for errors. Otherwise the first event is
  // Started. Destroying the stream cancels the request.
  virtual boost::asio::awaitable<TokenStream> generate(Task task) = 0;

  // Tokenizes text with the model's vocabulary. add_special: add BOS etc. as the model
  // wants; parse_special: recognise special-token text such as "<|im_start|>".
  virtual boost::asio::awaitable<Result<std::vector<Token>>> tokenize(std::string model,
                                                                      std::string text,
                                                                      bool add_special,
                                                                      bool parse_special) = 0;

  // Turns tokens back into text (special tokens rendered as their text).
  virtual boost::asio::awaitable<Result<std::string>> detokenize(std::string model,
                                                                 std::vector<Token> tokens) = 0;

  // Renders a conversation (task.prompt holds its messages, task.chat the options) with the
  // model's chat template, exactly as generate() would: POST /apply-template. Errors as
  // generate()'s. Default: backends that render no templates say so.
  virtual boost::asio::awaitable<Result<std::string>> apply_template(Task task) {
    (void)task;
    co_return Error{Errc::invalid_request, "this backend does not render chat templates"};
  }

  // Each token's own text as it appears inside a longer text (" is", special tokens as their
  // text): /tokenize's pieces. The default detokenizes each token alone, which is right for
  // backends whose detokenize never strips a leading space; the local engine overrides it.
  virtual boost::asio::awaitable<Result<std::vector<std::string>>> token_pieces(
      std::string model, std::vector<Token> tokens) {
    std::vector<std::string> pieces;
    pieces.reserve(tokens.size());
    for (Token t : tokens) {
      std::vector<Token> one(1, t);
      auto piece = co_await detokenize(model, std::move(one));
      if (!piece)
        co_return piece.error();
      pieces.push_back(std::move(piece).value());
    }
    co_return pieces;
  }

  // Loads `model` (POST /models/load) and completes once it is loaded, or with the reason it
  // could not be. Default: Errc::invalid_request "this server holds one fixed model", for
  // backends whose models are fixed at start (the single-model engine, the gateway).
  virtual boost::asio::awaitable<Result<ModelInfo>> load_model(std::string model) {
    co_return fixed_models_error(model);
  }

  // Unloads `model` (POST /models/unload): at once when it is idle, else as soon as its
  // running and queued requests end (they are never cut); completes with its state then
  // ("unloaded", or "unloading"). Default: as load_model's.
  virtual boost::asio::awaitable<Result<ModelInfo>> unload_model(std::string model) {
    co_return fixed_models_error(model);
  }

  // GET /props: what the backend knows of `model` (empty: the default one). Errors:
  // not_found for an unknown model, unavailable while it loads. Default: the id and context
  // of models(), for backends that know no more.
  virtual boost::asio::awaitable<Result<ModelProps>> props(std::string model) {
    const auto all = models();
    for (const auto& m : all) {
      if (model.empty() || m.id == model ||
          std::find(m.aliases.begin(), m.aliases.end(), model) != m.aliases.end()) {
        ModelProps p;
        p.id = m.id;
        p.n_ctx = m.n_ctx;
        co_return p;
      }
    }
    co_return unknown_model_error(model);
  }

  // GET /lora-adapters: `model`'s LoRA adapters (their ids: their indices) with the scales a
  // request that names none gets. Default: none, for backends that load no adapters.
  virtual boost::asio::awaitable<Result<std::vector<LoraAdapterInfo>>> lora_adapters(
      std::string model) {
    (void)model;
    co_return std::vector<LoraAdapterInfo>{};
  }

  // POST /lora-adapters: sets those scales (adapters `request` leaves out: 0); running
  // requests keep theirs. Errors: invalid_request for an unknown id or a bad scale. Default:
  // the backend has no adapters, so any id is unknown.
  virtual boost::asio::awaitable<Result<void>> set_lora_adapters(std::string model,
                                                                 LoraRequest request) {
    (void)model;
    co_return LoraTable().set_scales(request);
  }

  // GET /slots: `model`'s sequence slots (empty: the default model). Default: an error, for
  // backends that have no slots of their own to show.
  virtual boost::asio::awaitable<Result<SlotsInfo>> slots(std::string model) {
    (void)model;
    co_return Error{Errc::invalid_request, "this server has no sequence slots of its own to show"};
  }

  // POST /slots/ID?action=...: engine/engine_protocol.hpp's SlotAction on `model`'s engine (it
  // waits while the slot is busy). Default: an error, as for slots().
  virtual boost::asio::awaitable<Result<SlotActionDone>> slot_action(std::string model,
                                                                     SlotActionRequest request) {
    (void)model;
    (void)request;
    co_return Error{Errc::invalid_request, "this server has no sequence slots of its own"};
  }

  // The models served. The first is the default.
  virtual std::vector<ModelInfo> models() const = 0;

  virtual Health health() const = 0;

  // Blocks until the backend has finished starting (a model loaded, or failed to) and returns
  // its health then: never `loading`. Any thread but the ones the backend's own work runs on.
  // Default: health(), for backends that are ready once built.
  virtual Health wait_loaded() const { return health(); }
  virtual BackendStats stats() const = 0;

  // Further Prometheus text-format series (complete families: # HELP, # TYPE, samples) that
  // the server appends to /metrics; e.g. the cluster gateway's per-worker state.
  virtual std::string extra_metrics() const { return {}; }

 protected:
  static Error unknown_model_error(const std::string& model) {
    if (model.empty())
      return Error{Errc::unavailable, "No model is loaded yet"};
    return Error{Errc::not_found, "The model '" + model + "' does not exist", "model"};
  }
  static Error fixed_models_error(const std::string& model) {
    return Error{Errc::invalid_request,
                 "this server holds one fixed model and cannot load or unload '" + model +
                     "': serve several with troupe serve --models-dir DIR (or several --model)",
                 "model"};
  }
};

// A Backend that passes every call on to `inner`: a wrapper overrides only what it changes.
// Every virtual of Backend is forwarded here, so that a wrapper cannot fall to a default (a
// 400 for /slots) by missing a new one: add each new virtual to both classes.
class ForwardingBackend : public Backend {
 public:
  explicit ForwardingBackend(std::unique_ptr<Backend> inner) : inner_(std::move(inner)) {}

  boost::asio::awaitable<TokenStream> generate(Task task) override {
    return inner_->generate(std::move(task));
  }
  boost::asio::awaitable<Result<std::vector<Token>>> tokenize(std::string model, std::string text,
                                                              bool add_special,
                                                              bool parse_special) override {
    return inner_->tokenize(std::move(model), std::move(text), add_special, parse_special);
  }
  boost::asio::awaitable<Result<std::string>> detokenize(std::string model,
                                                         std::vector<Token> tokens) override {
    return inner_->detokenize(std::move(model), std::move(tokens));
  }
  boost::asio::awaitable<Result<std::string>> apply_template(Task task) override {
    return inner_->apply_template(std::move(task));
  }
  boost::asio::awaitable<Result<std::vector<std::string>>> token_pieces(
      std::string model, std::vector<Token> tokens) override {
    return inner_->token_pieces(std::move(model), std::move(tokens));
  }
  boost::asio::awaitable<Result<ModelInfo>> load_model(std::string model) override {
    return inner_->load_model(std::move(model));
  }
  boost::asio::awaitable<Result<ModelInfo>> unload_model(std::string model) override {
    return inner_->unload_model(std::move(model));
  }
  boost::asio::awaitable<Result<ModelProps>> props(std::string model) override {
    return inner_->props(std::move(model));
  }
  boost::asio::awaitable<Result<std::vector<LoraAdapterInfo>>> lora_adapters(
      std::string model) override {
    return inner_->lora_adapters(std::move(model));
  }
  boost::asio::awaitable<Result<void>> set_lora_adapters(std::string model,
                                                         LoraRequest request) override {
    return inner_->set_lora_adapters(std::move(model), std::move(request));
  }
  boost::asio::awaitable<Result<SlotsInfo>> slots(std::string model) override {
    return inner_->slots(std::move(model));
  }
  boost::asio::awaitable<Result<SlotActionDone>> slot_action(std::string model,
                                                             SlotActionRequest request) override {
    return inner_->slot_action(std::move(model), std::move(request));
  }
  std::vector<ModelInfo> models() const override { return inner_->models(); }
  Health health() const override { return inner_->health(); }
  Health wait_loaded() const override { return inner_->wait_loaded(); }
  BackendStats stats() const override { return inner_->stats(); }
  std::string extra_metrics() const override { return inner_->extra_metrics(); }

 private:
  std::unique_ptr<Backend> inner_;
};

}  // namespace troupe::engine
