#include "engine/sim_backend.hpp"

#include <fmt/format.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <deque>
#include <thread>
#include <unordered_map>

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

class SimBackend final : public Backend {
 public:
  explicit SimBackend(SimOptions o)
      : options_(std::move(o)),
        epoch_(Clock::now()),
        work_(asio::make_work_guard(io_)),
        thread_(util::named_thread("sim-engine", [this] { io_.run(); })) {}

  ~SimBackend() override {
    work_.reset();
    io_.stop();
    thread_.join();
  }

  asio::awaitable<TokenStream> generate(Task task) override;
  asio::awaitable<Result<std::vector<Token>>> tokenize(std::string model, std::string text, bool,
                                                       bool) override;
  asio::awaitable<Result<std::string>> detokenize(std::string model,
                                                  std::vector<Token> tokens) override;
  std::vector<ModelInfo> models() const override {
    return {ModelInfo{options_.model_id, options_.n_ctx, options_.n_vocab, "troupe", 0}};
  }
  Health health() const override { return {HealthState::ready, {}}; }
  BackendStats stats() const override;

 private:
  struct Sequence {
    std::uint64_t ticket = 0;
    std::shared_ptr<SequenceActor> actor;
    std::int32_t prompt_tokens = 0;
    std::int32_t max_tokens = 0;
    std::int32_t generated = 0;
    std::unique_ptr<asio::steady_timer> timer;
    Clock::time_point next;
  };

  std::optional<Error> precheck(const Task& t, std::int32_t prompt_tokens) const;
  // On the io thread:
  void submit(Sequence s);
  void start(Sequence s);
  void arm(Sequence& s);
  void tick(std::uint64_t ticket);
  void release(std::uint64_t ticket);
  Clock::time_point paced(Clock::time_point due) const;
  void cancel(std::uint64_t ticket, const std::weak_ptr<SequenceActor>& weak);

  SimOptions options_;
  Clock::time_point epoch_;  // the step clock's origin (step_aligned)
  SimText text_;
  asio::io_context io_;
  asio::executor_work_guard<asio::io_context::executor_type> work_;
  std::thread thread_;
  // io-thread state
  std::unordered_map<std::uint64_t, Sequence> running_;
  std::deque<Sequence> queue_;
  std::atomic<std::uint64_t> next_ticket_{1};
  std::atomic<std::int64_t> n_running_{0}, n_queued_{0}, prompt_total_{0}, generated_total_{0},
      cancelled_total_{0};
};

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
  apply_defaults(task, options_.defaults, options_.n_ctx);
  const std::int32_t n_prompt = prompt_tokens(task.prompt);
  if (auto e = precheck(task, n_prompt))
    co_return failed_stream(std::move(*e));
  auto [writer, stream] = make_stream();
  const std::uint64_t ticket = next_ticket_.fetch_add(1, std::memory_order_relaxed);
  SequenceConfig cfg{task.stop, task.sampling.logprobs || task.sampling.top_logprobs > 0,
                     task.sampling.top_logprobs, n_prompt};
  auto actor = std::make_shared<SequenceActor>(std::move(cfg), text_, StreamWriter{},
                                               [this, ticket](bool) { release(ticket); });
  writer.on_cancel([this, ticket, weak = std::weak_ptr<SequenceActor>(actor)] {
    asio::post(io_, [this, ticket, weak] { cancel(ticket, weak); });
  });
  actor->attach(std::move(writer));
  Sequence s{ticket, std::move(actor), n_prompt, *task.stop.max_tokens, 0, nullptr, {}};
  asio::post(io_, [this, s = std::move(s)]() mutable { submit(std::move(s)); });
  co_return std::move(stream);
}

void SimBackend::submit(Sequence s) {
  if (s.actor->done())
    return;
  if (static_cast<std::int32_t>(running_.size()) < options_.n_parallel) {
    start(std::move(s));
  } else if (static_cast<std::int32_t>(queue_.size()) < options_.max_queue) {
    queue_.push_back(std::move(s));
  } else {
    s.actor->handle(
        SequenceFailed{Error{Errc::overloaded, "the server is busy: the request queue is full"}});
  }
  n_queued_.store(static_cast<std::int64_t>(queue_.size()), std::memory_order_relaxed);
}

void SimBackend::start(Sequence s) {
  prompt_total_.fetch_add(s.prompt_tokens, std::memory_order_relaxed);
  s.actor->handle(SequenceStarted{s.prompt_tokens, 0});
  s.timer = std::make_unique<asio::steady_timer>(io_);
  s.next = paced(Clock::now() + per_token(options_.prefill_tokens_per_s) * s.prompt_tokens +
                 per_token(options_.decode_tokens_per_s));
  auto [it, _] = running_.emplace(s.ticket, std::move(s));
  n_running_.store(static_cast<std::int64_t>(running_.size()), std::memory_order_relaxed);
  arm(it->second);
}

void SimBackend::arm(Sequence& s) {
  s.timer->expires_at(s.next);
  s.timer->async_wait([this, ticket = s.ticket](boost::system::error_code ec) {
    if (!ec)
      tick(ticket);
  });
}

void SimBackend::tick(std::uint64_t ticket) {
  auto it = running_.find(ticket);
  if (it == running_.end())
    return;
  Sequence& s = it->second;
  ++s.generated;
  generated_total_.fetch_add(1, std::memory_order_relaxed);
  SampledToken t;
  t.token = 1 + static_cast<Token>((ticket * 7919 + s.generated * 104729) %
                                   static_cast<std::uint64_t>(options_.n_vocab - 1));
  if (s.generated >= s.max_tokens)
    t.end = EngineEnd::max_tokens;
  if (s.prompt_tokens + s.generated >= options_.n_ctx)
    t.end = EngineEnd::context_full;
  const bool ended = t.end != EngineEnd::none;
  s.actor->handle(std::move(t));
  if (ended)
    return release(ticket);
  if (s.actor->done())
    return;  // the actor released it (a stop string)
  s.next = paced(sim_next_due(s.next, Clock::now(), per_token(options_.decode_tokens_per_s)));
  arm(s);
}

Clock::time_point SimBackend::paced(Clock::time_point due) const {
  if (!options_.step_aligned)
    return due;
  return sim_step_align(due, epoch_, per_token(options_.decode_tokens_per_s));
}

void SimBackend::release(std::uint64_t ticket) {
  // Deferred: release may be called from inside tick() through the actor.
  asio::post(io_, [this, ticket] {
    if (running_.erase(ticket) == 0)
      return;
    while (static_cast<std::int32_t>(running_.size()) < options_.n_parallel && !queue_.empty()) {
      Sequence next = std::move(queue_.front());
      queue_.pop_front();
      start(std::move(next));
    }
    n_running_.store(static_cast<std::int64_t>(running_.size()), std::memory_order_relaxed);
    n_queued_.store(static_cast<std::int64_t>(queue_.size()), std::memory_order_relaxed);
  });
  if (auto it = running_.find(ticket); it != running_.end())
    it->second.timer->cancel();
}

void SimBackend::cancel(std::uint64_t ticket, const std::weak_ptr<SequenceActor>& weak) {
  auto actor = weak.lock();
  if (!actor || actor->done())
    return;
  cancelled_total_.fetch_add(1, std::memory_order_relaxed);
  std::erase_if(queue_, [&](const Sequence& s) { return s.ticket == ticket; });
  n_queued_.store(static_cast<std::int64_t>(queue_.size()), std::memory_order_relaxed);
  actor->cancel();  // releases it if it was running
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
  s.requests_running = n_running_.load(std::memory_order_relaxed);
  s.requests_queued = n_queued_.load(std::memory_order_relaxed);
  s.prompt_tokens_total = prompt_total_.load(std::memory_order_relaxed);
  s.generation_tokens_total = generated_total_.load(std::memory_order_relaxed);
  s.cancelled_total = cancelled_total_.load(std::memory_order_relaxed);
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
