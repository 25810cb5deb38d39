#include "engine/sim_backend.hpp"

#include <fmt/format.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <thread>
#include <unordered_map>

#include "engine/admission.hpp"
#include "engine/coordinator.hpp"
#include "engine/sequence_actor.hpp"
#include "util/thread_name.hpp"

namespace troupe::engine {
namespace {

namespace asio = boost::asio;
using Clock = std::chrono::steady_clock;

// Token 0 ends generation; token t > 0 reads "w<t> ".
class SimText final : public TokenText {
 public:
  void append_piece(Token t, std::string& out) const override {
    if (t > 0)
      fmt::format_to(std::back_inserter(out), "w{} ", t);
  }
  bool is_eog(Token t) const override { return t == 0; }
};

bool is_space(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

// "w<digits>": how a token reads. Its number, or -1 for any other word.
std::int64_t token_word_number(std::string_view word) {
  if (word.size() < 2 || word.size() > 11 || word[0] != 'w')
    return -1;
  std::int64_t n = 0;
  for (char c : word.substr(1)) {
    if (c < '0' || c > '9')
      return -1;
    n = n * 10 + (c - '0');
  }
  return n;
}

// The tokenizer rule: calls fn(piece) for each token-sized piece: a whole "w<digits>" word,
// or pieces of at most 4 bytes of any other word.
template <class Fn>
void for_each_piece(std::string_view text, Fn&& fn) {
  std::size_t i = 0;
  while (i < text.size()) {
    while (i < text.size() && is_space(text[i]))
      ++i;
    std::size_t end = i;
    while (end < text.size() && !is_space(text[end]))
      ++end;
    const std::string_view word = text.substr(i, end - i);
    if (token_word_number(word) >= 0) {
      fn(word);
    } else {
      for (std::size_t p = 0; p < word.size(); p += 4)
        fn(word.substr(p, std::min<std::size_t>(4, word.size() - p)));
    }
    i = end;
  }
}

std::int32_t prompt_tokens(const Prompt& p) {
  std::int64_t n = 0;
  if (const auto* s = std::get_if<std::string>(&p))
    n = sim_token_count(*s);
  if (const auto* t = std::get_if<std::vector<Token>>(&p))
    n = static_cast<std::int64_t>(t->size());
  if (const auto* m = std::get_if<std::vector<ChatMessage>>(&p)) {
    for (const auto& msg : *m)
      n += sim_token_count(msg.content) + 4;
    n += 3;
  }
  return static_cast<std::int32_t>(std::min<std::int64_t>(n, INT32_MAX));
}

Clock::duration per_token(double tokens_per_s) {
  return std::chrono::duration_cast<Clock::duration>(
      std::chrono::duration<double>(1.0 / std::max(tokens_per_s, 1e-3)));
}

// Counters the simulated engine keeps for stats(): relaxed atomics, read from any thread.
struct SimCounters {
  std::atomic<std::int64_t> prompt_total{0};
  std::atomic<std::int64_t> generated_total{0};
};

// The simulated engine: an actor with the BatchEngine's protocol (EngineMessage) behind the
// same Admission, that produces a made-up token per sequence at the configured pace with one
// timer each. Its timers complete on the one thread that also runs its turns (the backend's
// io_context has one thread), so they touch its state without a race; `alive_` tells a
// completion that the behavior is gone.
class SimEngine final : public actor::Actor<EngineMessage> {
 public:
  SimEngine(const SimOptions& options, Clock::time_point epoch,
            actor::ActorRef<AdmissionMessage> admission, std::shared_ptr<SimCounters> counters)
      : options_(options),
        epoch_(epoch),
        admission_(std::move(admission)),
        counters_(std::move(counters)) {}

  void on_message(EngineMessage& msg) override {
    std::visit(
        actor::Overloaded{
            [this](AdmitSequence& m) { admit(m); },
            [this](ReleaseSequence& m) { finish(m.ticket); },
            [this](InspectEngine& m) { inspect(m); }, [this](FailEngine& m) { fail(m.error); },
            [](SlotAction& m) {
              m.reply.fail(Error{Errc::invalid_request, "the simulated engine keeps no KV cache"});
            }},
        msg);
  }

 private:
  struct Sequence {
    std::uint64_t ticket = 0;
    std::int32_t prompt_tokens = 0;
    StopParams stop;  // its limits (sequence_end)
    std::int32_t generated = 0;
    SequenceSink sink;
    std::unique_ptr<asio::steady_timer> timer;
    Clock::time_point next;
  };

  void admit(AdmitSequence& a);
  void arm(Sequence& s);
  void tick(std::uint64_t ticket);
  void finish(std::uint64_t ticket);
  void inspect(InspectEngine& m) const;
  void fail(const Error& error);
  Clock::time_point paced(Clock::time_point due) const;

  SimOptions options_;
  Clock::time_point epoch_;  // the step clock's origin (step_aligned)
  actor::ActorRef<AdmissionMessage> admission_;
  std::shared_ptr<SimCounters> counters_;
  std::unordered_map<std::uint64_t, Sequence> running_;
  std::optional<Error> failed_;
  std::shared_ptr<char> alive_ = std::make_shared<char>();
};

void SimEngine::admit(AdmitSequence& a) {
  if (failed_) {
    a.sink(SequenceFailed{*failed_});
    admission_.tell(SequenceReleased{a.ticket});
    return;
  }
  const auto n_prompt = static_cast<std::int32_t>(a.prompt.size());
  counters_->prompt_total.fetch_add(n_prompt, std::memory_order_relaxed);
  a.sink(SequenceStarted{n_prompt, 0});
  Sequence s{a.ticket, n_prompt, std::move(a.stop), 0, std::move(a.sink), nullptr, {}};
  s.timer = std::make_unique<asio::steady_timer>(system().io_context());
  s.next = paced(Clock::now() + per_token(options_.prefill_tokens_per_s) * n_prompt +
                 per_token(options_.decode_tokens_per_s));
  auto [it, _] = running_.emplace(s.ticket, std::move(s));
  arm(it->second);
}

void SimEngine::arm(Sequence& s) {
  s.timer->expires_at(s.next);
  s.timer->async_wait(
      [this, ticket = s.ticket, alive = std::weak_ptr<char>(alive_)](boost::system::error_code ec) {
        if (!ec && alive.lock())
          tick(ticket);
      });
}

void SimEngine::tick(std::uint64_t ticket) {
  auto it = running_.find(ticket);
  if (it == running_.end())
    return;
  Sequence& s = it->second;
  ++s.generated;
  counters_->generated_total.fetch_add(1, std::memory_order_relaxed);
  SampledToken t;
  t.token =
      1 + static_cast<Token>((ticket * 7919 + static_cast<std::uint64_t>(s.generated) * 104729) %
                             static_cast<std::uint64_t>(options_.n_vocab - 1));
  // Its tokens are never EOG (token 0): only the limits end it.
  t.end = sequence_end(s.stop, s.generated, false, s.prompt_tokens + s.generated >= options_.n_ctx);
  const bool ended = t.end != EngineEnd::none;
  s.sink(t);
  if (ended)
    return finish(ticket);
  s.next = paced(sim_next_due(s.next, Clock::now(), per_token(options_.decode_tokens_per_s)));
  arm(s);
}

Clock::time_point SimEngine::paced(Clock::time_point due) const {
  if (!options_.step_aligned)
    return due;
  return sim_step_align(due, epoch_, per_token(options_.decode_tokens_per_s));
}

// The sequence ended (its last token, a stop string, a cancellation): its slot frees.
void SimEngine::finish(std::uint64_t ticket) {
  auto it = running_.find(ticket);
  if (it == running_.end())
    return;  // unknown or already finished
  running_.erase(it);
  admission_.tell(SequenceReleased{ticket});
}

void SimEngine::inspect(InspectEngine& m) const {
  EngineSnapshot snap;
  snap.failed = failed_.has_value();
  for (const auto& [ticket, s] : running_)
    snap.slots.push_back({true, ticket, s.prompt_tokens + s.generated, -1});
  m.reply.send(std::move(snap));
}

void SimEngine::fail(const Error& error) {
  if (failed_)
    return;
  failed_ = error;
  for (auto& [ticket, s] : running_) {
    s.sink(SequenceFailed{error});
    admission_.tell(SequenceReleased{ticket});
  }
  running_.clear();
  admission_.tell(EngineFailed{error});
}

class SimBackend final : public Backend {
 public:
  explicit SimBackend(SimOptions o);
  ~SimBackend() override;

  asio::awaitable<TokenStream> generate(Task task) override;
  asio::awaitable<Result<std::vector<Token>>> tokenize(std::string model, std::string text, bool,
                                                       bool) override;
  asio::awaitable<Result<std::string>> detokenize(std::string model,
                                                  std::vector<Token> tokens) override;
  std::vector<ModelInfo> models() const override {
    return {ModelInfo{options_.model_id, options_.n_ctx, options_.n_vocab, "troupe", 0}};
  }
  Health health() const override {
    if (auto e = gauges_->failure())
      return {HealthState::failed, e->message};
    return {HealthState::ready, {}};
  }
  BackendStats stats() const override;

 private:
  std::optional<Error> precheck(const Task& t, std::int32_t prompt_tokens) const;

  SimOptions options_;
  SimText text_;
  asio::io_context io_;
  asio::executor_work_guard<asio::io_context::executor_type> work_;
  std::thread thread_;
  // The Admission, the SimEngine and the SequenceActors: light actors on io_ (one thread).
  actor::ActorSystem system_{io_};
  std::shared_ptr<AdmissionGauges> gauges_ = std::make_shared<AdmissionGauges>();
  std::shared_ptr<SimCounters> counters_ = std::make_shared<SimCounters>();
  AdmissionLimits limits_;
  actor::ActorRef<AdmissionMessage> admission_;
  actor::ActorRef<EngineMessage> engine_;
  std::atomic<std::uint64_t> next_ticket_{1};
};

SimBackend::SimBackend(SimOptions o)
    : options_(std::move(o)),
      work_(asio::make_work_guard(io_)),
      thread_(util::named_thread("sim-engine", [this] { io_.run(); })),
      limits_{options_.n_parallel, options_.max_queue} {
  admission_ = spawn_admission(system_, limits_, gauges_);
  actor::SpawnOptions opts;
  opts.name = "sim-engine";
  engine_ =
      system_.spawn<SimEngine>(std::move(opts), options_, Clock::now(), admission_, counters_);
  admission_.tell(EngineReady{engine_});
}

SimBackend::~SimBackend() {
  system_.shutdown(actor::StopMode::drop);
  work_.reset();
  io_.stop();
  thread_.join();
}

std::optional<Error> SimBackend::precheck(const Task& t, std::int32_t prompt_tokens) const {
  if (!t.model.empty() && t.model != options_.model_id) {
    return Error{Errc::not_found, fmt::format("model '{}' does not exist", t.model), "model"};
  }
  if (auto e = validate_parameters(t.sampling, t.stop))
    return e;
  if (t.sampling.grammar) {  // refused rather than ignored: an answer would not match it
    return Error{Errc::invalid_request,
                 "the simulated engine cannot constrain output with a grammar", "grammar"};
  }
  if (!t.chat.json_schema.empty()) {  // the same: a conversation's schema is a grammar
    return Error{Errc::invalid_request,
                 "the simulated engine cannot constrain output to a JSON schema",
                 "response_format"};
  }
  if (!t.chat.tools.empty()) {  // refused rather than ignored: it renders no chat template
    return Error{Errc::invalid_request,
                 "the simulated engine renders no chat templates, so it cannot offer tools",
                 "tools"};
  }
  if (prompt_tokens == 0)
    return Error{Errc::invalid_request, "the prompt is empty", "prompt"};
  if (limits_.full(gauges_->running.load(std::memory_order_relaxed),
                   gauges_->queued.load(std::memory_order_relaxed)))
    return overloaded_error();
  if (prompt_tokens >= options_.n_ctx) {
    return Error{Errc::prompt_too_long,
                 fmt::format("the prompt has {} tokens, but the context holds {} tokens",
                             prompt_tokens, options_.n_ctx),
                 "prompt"};
  }
  return std::nullopt;
}

asio::awaitable<TokenStream> SimBackend::generate(Task task) {
  if (task.embedding) {
    co_return failed_stream(Error{Errc::invalid_request,
                                  "the simulated engine computes no embeddings: serve a model "
                                  "with --embeddings",
                                  task.embedding->rerank ? "documents" : "input"});
  }
  if (auto lora = LoraTable().scales_for(task.lora); !lora)  // it loads no adapters
    co_return failed_stream(lora.error());
  if (task.id_slot) {  // its sequences have no slots to choose (GET /slots: none either)
    co_return failed_stream(Error{
        Errc::invalid_request, "the simulated engine has no sequence slots to choose", "id_slot"});
  }
  apply_defaults(task, options_.defaults, options_.n_ctx);
  std::int64_t infill = 0;  // a fill-in-the-middle's parts and its three FIM tokens
  if (task.infill) {
    infill = sim_token_count(task.infill->prefix) + sim_token_count(task.infill->suffix) + 3;
    for (const auto& [file, text] : task.infill->extra)
      infill += sim_token_count(file) + sim_token_count(text) + 1;
  }
  const auto n_prompt = static_cast<std::int32_t>(
      std::min<std::int64_t>(prompt_tokens(task.prompt) + infill, INT32_MAX));
  if (auto e = precheck(task, n_prompt))
    co_return failed_stream(std::move(*e));
  auto [writer, stream] = make_stream();
  const std::uint64_t ticket = next_ticket_.fetch_add(1, std::memory_order_relaxed);
  SequenceConfig cfg{task.stop, task.sampling.logprobs || task.sampling.top_logprobs > 0,
                     task.sampling.top_logprobs, n_prompt};
  auto ref = spawn_sequence(system_, text_, std::move(cfg), std::move(writer), ticket, engine_,
                            admission_);
  AdmitSequence a;
  a.ticket = ticket;
  a.prompt.assign(static_cast<std::size_t>(n_prompt), 1);  // only its length is simulated
  a.stop = std::move(task.stop);
  a.sink = actor_sink(ref);
  admission_.tell(SubmitSequence{std::move(a), std::move(ref)});
  co_return std::move(stream);
}

asio::awaitable<Result<std::vector<Token>>> SimBackend::tokenize(std::string model,
                                                                 std::string text, bool, bool) {
  if (!model.empty() && model != options_.model_id) {
    co_return Error{Errc::not_found, fmt::format("model '{}' does not exist", model), "model"};
  }
  co_return sim_tokenize(text, options_.n_vocab);
}

asio::awaitable<Result<std::string>> SimBackend::detokenize(std::string model,
                                                            std::vector<Token> tokens) {
  if (!model.empty() && model != options_.model_id) {
    co_return Error{Errc::not_found, fmt::format("model '{}' does not exist", model), "model"};
  }
  std::string out;
  for (Token t : tokens)
    text_.append_piece(t, out);
  co_return out;
}

BackendStats SimBackend::stats() const {
  BackendStats s;
  s.requests_running = gauges_->running.load(std::memory_order_relaxed);
  s.requests_queued = gauges_->queued.load(std::memory_order_relaxed);
  s.prompt_tokens_total = counters_->prompt_total.load(std::memory_order_relaxed);
  s.generation_tokens_total = counters_->generated_total.load(std::memory_order_relaxed);
  s.cancelled_total = gauges_->cancelled_total.load(std::memory_order_relaxed);
  return s;
}

}  // namespace

std::unique_ptr<Backend> make_sim_backend(SimOptions options) {
  return std::make_unique<SimBackend>(std::move(options));
}

std::vector<Token> sim_tokenize(std::string_view text, std::int32_t n_vocab) {
  std::vector<Token> out;
  const auto range = static_cast<std::size_t>(std::max(n_vocab - 1, 1));
  for_each_piece(text, [&](std::string_view piece) {
    const std::int64_t t = token_word_number(piece);
    if (t > 0 && t < n_vocab) {
      out.push_back(static_cast<Token>(t));  // detokenized text reads back as its tokens
    } else {
      out.push_back(1 + static_cast<Token>(std::hash<std::string_view>{}(piece) % range));
    }
  });
  return out;
}

std::int64_t sim_token_count(std::string_view text) {
  std::int64_t n = 0;
  for_each_piece(text, [&](std::string_view) { ++n; });
  return n;
}

Clock::time_point sim_next_due(Clock::time_point due, Clock::time_point now,
                               Clock::duration interval) {
  return now - due > interval / 2 ? now + interval : due + interval;
}

Clock::time_point sim_step_align(Clock::time_point t, Clock::time_point epoch,
                                 Clock::duration interval) {
  if (t <= epoch || interval <= Clock::duration::zero())
    return std::max(t, epoch);
  const auto steps = (t - epoch + interval - Clock::duration(1)) / interval;  // rounded up
  return epoch + steps * interval;
}

}  // namespace troupe::engine
