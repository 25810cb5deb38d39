#pragma once
// Coordinator: the local Backend. It validates and tokenizes requests (on its tokenizer
// thread, never on the caller's), spawns one SequenceActor per request and submits it to its
// Admission actor (engine/admission.hpp: the bounded FIFO queue in front of the BatchEngine,
// cancellation routing, the engine's failure), which admits it into the BatchEngine actor.
//
// Threads: the caller's (generate() does quick checks, then awaits the tokenizer), one
// tokenizer thread, one actors thread ("sequences": an io_context running the light actors of
// the Coordinator's actor::ActorSystem: the Admission and every SequenceActor, so per-token
// text work is kept off the engine thread), the BatchEngine's dedicated thread (an actor of
// the same system), and a loader thread while the model loads.
//
// Thread-safety: the Backend members may be called from any thread concurrently. Destroy the
// Coordinator after every TokenStream it returned (a stream's cancel posts to it).

#include <boost/asio/io_context.hpp>
#include <boost/asio/thread_pool.hpp>
#include <condition_variable>
#include <future>
#include <mutex>
#include <thread>

#include "actor/actor_system.hpp"
#include "engine/admission.hpp"
#include "engine/backend.hpp"
#include "engine/batch_engine.hpp"
#include "engine/local_backend.hpp"
#include "engine/model.hpp"
#include "engine/sampler.hpp"
#include "engine/sequence_actor.hpp"

namespace troupe::engine {

class Coordinator final : public Backend {
 public:
  explicit Coordinator(EngineOptions options);
  ~Coordinator() override;
  Coordinator(const Coordinator&) = delete;
  Coordinator& operator=(const Coordinator&) = delete;

  boost::asio::awaitable<TokenStream> generate(Task task) override;
  boost::asio::awaitable<Result<std::vector<Token>>> tokenize(std::string model, std::string text,
                                                              bool add_special,
                                                              bool parse_special) override;
  boost::asio::awaitable<Result<std::string>> detokenize(std::string model,
                                                         std::vector<Token> tokens) override;
  boost::asio::awaitable<Result<std::vector<std::string>>> token_pieces(
      std::string model, std::vector<Token> tokens) override;
  boost::asio::awaitable<Result<std::string>> apply_template(Task task) override;
  boost::asio::awaitable<Result<ModelProps>> props(std::string model) override;
  boost::asio::awaitable<Result<SlotsInfo>> slots(std::string model) override;
  boost::asio::awaitable<Result<SlotActionDone>> slot_action(std::string model,
                                                             SlotActionRequest request) override;
  boost::asio::awaitable<Result<std::vector<LoraAdapterInfo>>> lora_adapters(
      std::string model) override;
  boost::asio::awaitable<Result<void>> set_lora_adapters(std::string model,
                                                         LoraRequest request) override;
  std::vector<ModelInfo> models() const override;
  Health health() const override;
  BackendStats stats() const override;

  // Blocks until loading has ended; returns the health then. Any thread.
  Health wait_loaded() const override;

  // The engine's slots, for tests: an ask, run by the future's get() on the caller's thread
  // (not the actors thread). Precondition: loaded.
  std::future<EngineSnapshot> inspect_engine();

  // Fails the engine as a fatal decode error would (tests, supervisors). Precondition: loaded.
  void inject_failure(Error error);

 private:
  void load();
  void set_health(HealthState state, std::string message);
  // Checks that need no tokenizing: readiness, model name, parameters (once the defaults
  // filled what `task` left unset), queue room, and a prompt whose byte length alone proves
  // it cannot fit.
  std::optional<Error> precheck(Task& task) const;
  std::optional<Error> check_model(const std::string& name) const;
  // On the tokenizer thread. A conversation is rendered with the chat template: its grammar
  // and stop strings go into `task`, its output parser into `parser`, its reasoning budget's
  // block (ReasoningBlock, Task::reasoning_budget) into `reasoning`, the special tokens its answer
  // shows (SequenceConfig::shown) into `shown`. `truncated`: an infill's parts were cut to its
  // budget.
  Result<std::vector<Token>> prepare_prompt(Task& task,
                                            std::unique_ptr<chatfmt::OutputParser>& parser,
                                            std::unique_ptr<ReasoningBlock>& reasoning,
                                            std::vector<Token>& shown, bool& truncated) const;
  // The template's reasoning block `thinking` with the conversation's reasoning budget
  // (unlimited where only a lazy grammar needs to know where the block is); null when
  // neither asks for it.
  std::unique_ptr<ReasoningBlock> reasoning_block(const Task& task,
                                                  const chatfmt::Thinking& thinking) const;
  // Whether the task's grammar waits for its trigger outside a reasoning block (lazy).
  static bool gates_grammar(const Task& task);
  // A fill-in-the-middle prompt (engine/infill.hpp) from the model's FIM tokens.
  Result<std::vector<Token>> infill_tokens(const Task& task, bool& truncated) const;
  // On the tokenizer thread: text logit biases tokenized into token biases, and DRY's
  // sampler (null when the request uses no DRY).
  Result<SamplerPtr> prepare_sampling(SamplingParams& s) const;
  Result<chatfmt::Rendered> render_chat(const Task& task) const;
  // Embedding requests: the checks before tokenizing (the server serves embeddings, the
  // pooling fits the endpoint, queue room, a text that cannot fit), then on the tokenizer
  // thread the tokens (a rerank pair's, truncated when asked) within the engine's limit.
  std::optional<Error> precheck_embedding(Task& task) const;
  Result<std::vector<Token>> prepare_embedding(const Task& task) const;
  boost::asio::awaitable<TokenStream> generate_embedding(Task task);
  // The render's grammar and stops applied to `task`; the parser it needs.
  Result<std::unique_ptr<chatfmt::OutputParser>> apply_render(const chatfmt::Rendered& r,
                                                              Task& task) const;
  GrammarSpec to_grammar_spec(const chatfmt::Grammar& g) const;
  // By the loader: the template EngineOptions::chat_template names, or the model's own.
  Result<std::unique_ptr<chatfmt::ChatTemplate>> load_chat_template() const;
  // Spawns the request's SequenceActor around `writer` and builds its submission for the
  // Admission (the grammar and DRY samplers are the caller's to fill in).
  SubmitSequence make_submission(Task& task, std::vector<Token> prompt, StreamWriter writer,
                                 std::unique_ptr<chatfmt::OutputParser> parser,
                                 bool truncated = false, std::vector<Token> shown = {});
  // The tokens of `preserved` (Rendered::preserved_tokens) that are one token each, sorted.
  std::vector<Token> single_tokens(const std::vector<std::string>& preserved) const;

  EngineOptions options_;
  std::string model_id_;
  std::int64_t created_ = 0;
  ModelDetails details_;  // its file's, read once loaded

  boost::asio::io_context actors_;
  boost::asio::executor_work_guard<boost::asio::io_context::executor_type> actors_work_;
  // The runtime of the Admission, the SequenceActors (light actors on actors_, run by
  // actor_thread_) and the BatchEngine (its own dedicated thread).
  actor::ActorSystem system_{actors_};
  std::shared_ptr<AdmissionGauges> gauges_ = std::make_shared<AdmissionGauges>();
  AdmissionLimits limits_;
  actor::ActorRef<AdmissionMessage> admission_;
  boost::asio::thread_pool tokenizer_{1};
  std::thread actor_thread_;
  std::thread loader_;

  mutable std::mutex health_mu_;
  mutable std::condition_variable health_cv_;
  Health health_;  // guarded by health_mu_

  // Written by the loader before ready_ is set (release), read after (acquire).
  std::atomic<bool> ready_{false};
  std::unique_ptr<LlamaModel> model_;
  std::unique_ptr<LlamaModel> draft_model_;  // EngineOptions::draft_model_path
  std::unique_ptr<chatfmt::ChatTemplate> chat_template_;
  LoraTable lora_;  // the model's adapters and their server-wide scales
  // Parsed grammars for reuse (tokenizer thread only); declared after model_, whose vocabulary
  // they point to, so they go first.
  GrammarCache grammars_;
  std::unique_ptr<BatchEngine> engine_;
  std::int32_t n_ctx_seq_ = 0;

  std::atomic<std::uint64_t> next_ticket_{1};
};

// Checks sampling and stop parameters (set ones only: unset ones take valid defaults); the
// error names the parameter as requests spell it.
std::optional<Error> validate_parameters(const SamplingParams& s, const StopParams& stop);

}  // namespace troupe::engine
