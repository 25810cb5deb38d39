#pragma once
// Coordinator: the local Backend. It validates and tokenizes requests (on its tokenizer
// thread, never on the caller's), admits them in FIFO order from a bounded queue while the
// BatchEngine has a free sequence slot, spawns one SequenceActor per request and routes
// cancellations: a queued request leaves the queue, a running one is released by its actor.
//
// Threads: the caller's (generate() does quick checks, then awaits the tokenizer), one
// tokenizer thread, one actor thread (an io_context: the queue and the slot count, and every
// SequenceActor as a light actor of an actor::ActorSystem sharing it: per-token text work is
// kept off the engine thread), the BatchEngine's thread, and a loader thread while the model
// loads.
//
// Thread-safety: the Backend members may be called from any thread concurrently. Destroy the
// Coordinator after every TokenStream it returned (a stream's cancel posts to it).

#include <boost/asio/io_context.hpp>
#include <boost/asio/thread_pool.hpp>
#include <condition_variable>
#include <deque>
#include <future>
#include <mutex>
#include <thread>
#include <unordered_map>

#include "actor/actor_system.hpp"
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
  std::vector<ModelInfo> models() const override;
  Health health() const override;
  BackendStats stats() const override;

  // Blocks until loading has ended; returns the health then. Any thread.
  Health wait_loaded() const override;

  // The engine's slots, for tests. Precondition: loaded.
  std::future<EngineSnapshot> inspect_engine();

  // Fails the engine as a fatal decode error would (tests, supervisors). Precondition: loaded.
  void inject_failure(Error error);

 private:
  struct Pending {
    std::uint64_t ticket = 0;
    actor::ActorRef<SequenceMessage> actor;
    std::vector<Token> prompt;
    SamplingParams sampling;
    StopParams stop;
    SamplerPtr grammar;  // built from sampling.grammar on the tokenizer thread
    SamplerPtr dry;      // DRY's sampler, built on the tokenizer thread (null: no DRY)
    std::optional<EmbeddingParams> embedding;  // set: an embedding sequence
  };

  void load();
  void set_health(HealthState state, std::string message);
  // Checks that need no tokenizing: readiness, model name, parameters (once the defaults
  // filled what `task` left unset), queue room, and a prompt whose byte length alone proves
  // it cannot fit.
  std::optional<Error> precheck(Task& task) const;
  std::optional<Error> check_model(const std::string& name) const;
  // On the tokenizer thread. A conversation is rendered with the chat template: its grammar
  // and stop strings go into `task`, its output parser into `parser`.
  Result<std::vector<Token>> prepare_prompt(Task& task,
                                            std::unique_ptr<chatfmt::OutputParser>& parser) const;
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
  Pending make_pending(Task& task, std::vector<Token> prompt, StreamWriter writer,
                       std::unique_ptr<chatfmt::OutputParser> parser);

  // On the actor thread:
  void submit(Pending p);
  void admit(Pending p);
  void on_released(std::uint64_t ticket);
  void cancel_request(std::uint64_t ticket);
  void on_fatal(const Error& error);

  EngineOptions options_;
  std::string model_id_;
  std::int64_t created_ = 0;

  boost::asio::io_context actors_;
  boost::asio::executor_work_guard<boost::asio::io_context::executor_type> actors_work_;
  // The SequenceActors' runtime, on actors_ (run by actor_thread_).
  actor::ActorSystem system_{actors_};
  boost::asio::thread_pool tokenizer_{1};
  std::thread actor_thread_;
  std::thread loader_;

  mutable std::mutex health_mu_;
  mutable std::condition_variable health_cv_;
  Health health_;  // guarded by health_mu_

  // Written by the loader before ready_ is set (release), read after (acquire).
  std::atomic<bool> ready_{false};
  std::unique_ptr<LlamaModel> model_;
  std::unique_ptr<chatfmt::ChatTemplate> chat_template_;
  // Parsed grammars for reuse (tokenizer thread only); declared after model_, whose vocabulary
  // they point to, so they go first.
  GrammarCache grammars_;
  std::unique_ptr<BatchEngine> engine_;
  std::int32_t n_ctx_seq_ = 0;

  // Actor-thread state.
  std::deque<Pending> queue_;
  std::unordered_map<std::uint64_t, actor::ActorRef<SequenceMessage>> admitted_;
  std::int32_t running_ = 0;

  std::atomic<std::uint64_t> next_ticket_{1};
  std::atomic<std::int64_t> queued_gauge_{0};
  std::atomic<std::int64_t> running_gauge_{0};
  std::atomic<std::int64_t> cancelled_total_{0};
};

// Checks sampling and stop parameters (set ones only: unset ones take valid defaults); the
// error names the parameter as requests spell it.
std::optional<Error> validate_parameters(const SamplingParams& s, const StopParams& stop);

}  // namespace troupe::engine
