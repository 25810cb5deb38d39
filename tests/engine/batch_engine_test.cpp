#include "engine/batch_engine.hpp"

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <condition_variable>
#include <filesystem>
#include <fstream>
#include <future>
#include <map>
#include <mutex>
#include <string>
#include <thread>

#include "actor/actor_system.hpp"
#include "engine/core_share.hpp"
#include "engine_test_util.hpp"

namespace troupe::engine {
namespace {

// Receives the messages of many sequences on the engine thread; the test thread waits.
class Recorder {
 public:
  SequenceSink sink(std::uint64_t ticket) {
    return [this, ticket](SequenceMessage m) {
      std::lock_guard lock(mu_);
      auto& seq = seqs_[ticket];
      if (auto* s = std::get_if<SequenceStarted>(&m))
        seq.started = *s;
      if (auto* t = std::get_if<SampledToken>(&m)) {
        seq.tokens.push_back(*t);
        seq.ended = t->end != EngineEnd::none;
      }
      if (auto* f = std::get_if<SequenceFailed>(&m))
        seq.error = f->error;
      cv_.notify_all();
    };
  }
  void released(std::uint64_t ticket) {
    std::lock_guard lock(mu_);
    released_.push_back(ticket);
    cv_.notify_all();
  }

  struct Seq {
    std::optional<SequenceStarted> started;
    std::vector<SampledToken> tokens;
    bool ended = false;
    std::optional<Error> error;
  };

  // Waits until `pred(seqs, released)` holds.
  template <class Pred>
  void wait(Pred pred) {
    std::unique_lock lock(mu_);
    cv_.wait(lock, [&] { return pred(seqs_, released_); });
  }
  Seq get(std::uint64_t ticket) {
    std::lock_guard lock(mu_);
    return seqs_[ticket];
  }
  void wait_ended(std::uint64_t ticket) {
    wait([&](auto& s, auto&) { return s[ticket].ended || s[ticket].error.has_value(); });
  }
  void wait_released(std::uint64_t ticket) {
    wait([&](auto&, auto& r) { return std::find(r.begin(), r.end(), ticket) != r.end(); });
  }
  void wait_tokens(std::uint64_t ticket, std::size_t n) {
    wait([&](auto& s, auto&) { return s[ticket].tokens.size() >= n || s[ticket].error; });
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::map<std::uint64_t, Seq> seqs_;
  std::vector<std::uint64_t> released_;
};

bool top5_agree(const Recorder::Seq& a, const Recorder::Seq& b, std::size_t at);
bool identical_or_top5(const Recorder::Seq& a, const Recorder::Seq& b, const std::string& what);

class BatchEngineTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto m = LlamaModel::load({testing::tiny_model()});
    ASSERT_TRUE(m) << m.error().message;
    model_ = std::move(m.value());
  }

  // One llama.cpp thread unless the test asks for more.
  std::unique_ptr<BatchEngine> start(BatchEngineConfig cfg, DecodeHook on_decode = {},
                                     const LlamaModel* draft = nullptr) {
    if (cfg.n_threads == 0)
      cfg.n_threads = 1;
    auto listener = system_.spawn<testing::ReleaseListener>(
        actor::SpawnOptions{},
        std::function<void(std::uint64_t)>([this](std::uint64_t t) { rec_.released(t); }));
    auto e = BatchEngine::start(system_, *model_, cfg, listener, std::move(on_decode), draft);
    EXPECT_TRUE(e) << e.error().message;
    return e ? std::move(e.value()) : nullptr;
  }

  AdmitSequence admit(std::uint64_t ticket, std::vector<Token> prompt, std::int32_t max_tokens,
                      SamplingParams sp = greedy()) {
    AdmitSequence a;
    a.ticket = ticket;
    a.prompt = std::move(prompt);
    a.sampling = std::move(sp);
    a.stop.max_tokens = max_tokens;
    a.stop.ignore_eos = true;
    a.sink = rec_.sink(ticket);
    return a;
  }

  // A unified pool of 512 cells and 4 slots: a's and b's 203 cells (200 prompt tokens, 4
  // answers) both stay cached, a third prompt's 200 do not fit beside them, so a's cache (freed
  // longest ago) is evicted. Tickets 1 to 3.
  std::unique_ptr<BatchEngine> evict_first_of_three(const std::vector<Token>& a,
                                                    const std::vector<Token>& b,
                                                    std::int64_t host_cache_bytes) {
    BatchEngineConfig cfg{512, 4, 256, 256};
    cfg.kv_unified = true;
    cfg.host_cache_bytes = host_cache_bytes;
    auto e = start(cfg);
    e->tell(admit(1, a, 4));
    rec_.wait_released(1);
    e->tell(admit(2, b, 4));
    rec_.wait_released(2);
    EXPECT_EQ(e->counters().cache_evictions.load(), 0);
    e->tell(admit(3, prompt(12, 200), 4));
    rec_.wait_released(3);
    EXPECT_EQ(e->counters().cache_evictions.load(), 1);
    return e;
  }

  // Two sequences whose tokens outgrow a unified pool of 256 cells (tickets 1 and 2), then
  // each alone in a roomy pool (10, 11): the younger is preempted, and each answer is the one
  // it gives alone, as far as greedy decoding of a random model can tell (vLLM's criterion).
  // With a host cache the preempted cells come back from it (at least one restore).
  void expect_preempted_answers_as_alone(std::int64_t host_cache_bytes) {
    constexpr int max_tokens = 100;
    BatchEngineConfig cfg{256, 2, 128, 64};
    cfg.kv_unified = true;
    cfg.host_cache_bytes = host_cache_bytes;
    auto e = start(cfg);
    e->tell(admit(1, prompt(20, 100), max_tokens));
    e->tell(admit(2, prompt(21, 100), max_tokens));  // 2 x 200 cells needed, 256 there
    rec_.wait_released(1);
    rec_.wait_released(2);
    EXPECT_GE(e->counters().preemptions.load(), 1);
    EXPECT_EQ(e->counters().refused_steps.load(), 0);  // the engine's accounting saw it coming
    EXPECT_EQ(e->counters().cells_live.load(), 0);
    if (host_cache_bytes > 0)
      EXPECT_GE(e->counters().host_cache_restores.load(), 1);
    else
      EXPECT_EQ(e->counters().host_cache_restores.load(), 0);
    e.reset();
    for (int i = 0; i < 2; ++i) {
      const auto batched = rec_.get(1 + i);
      ASSERT_FALSE(batched.error) << batched.error->message;
      ASSERT_EQ(batched.tokens.size(), static_cast<std::size_t>(max_tokens));
      EXPECT_EQ(batched.tokens.back().end, EngineEnd::max_tokens);
      BatchEngineConfig roomy{512, 2, 128, 64};
      roomy.kv_unified = true;
      auto alone = start(roomy);
      alone->tell(admit(10 + i, prompt(20 + i, 100), max_tokens));
      rec_.wait_ended(10 + i);
      EXPECT_EQ(alone->counters().preemptions.load(), 0);
      const auto single = rec_.get(10 + i);
      std::size_t k = 0;
      while (k < single.tokens.size() && batched.tokens[k].token == single.tokens[k].token)
        ++k;
      if (k < single.tokens.size()) {
        EXPECT_TRUE(top5_agree(batched, single, k)) << "sequence " << i << " diverged at " << k;
      }
    }
  }

  static SamplingParams greedy() {
    SamplingParams sp;
    sp.temperature = 0.0f;
    sp.logprobs = true;
    sp.top_logprobs = 5;
    return sp;
  }

  std::vector<Token> prompt(int i, std::size_t len = 12) const {
    std::vector<Token> p;
    for (std::size_t k = 0; k < len; ++k) {
      p.push_back(static_cast<Token>(100 + (i * 37 + static_cast<int>(k) * 11) % 1500));
    }
    return p;
  }

  static EngineSnapshot snapshot(BatchEngine& e) {
    return e.ref().ask_blocking(InspectEngine{}, actor::kNoTimeout).value();
  }

  static std::vector<Token> ids(const Recorder::Seq& s) {
    std::vector<Token> out;
    for (const auto& t : s.tokens)
      out.push_back(t.token);
    return out;
  }

  std::unique_ptr<LlamaModel> model_;
  Recorder rec_;
  actor::ActorSystem system_;  // the engines' and the listeners' runtime; stops first
};

// Where two greedy runs first differ, vLLM's criterion: each token is among the other run's
// top-5 alternatives at that position.
bool top5_agree(const Recorder::Seq& a, const Recorder::Seq& b, std::size_t at) {
  auto in_top = [](const SampledToken& t, Token tok) {
    return std::any_of(t.top.begin(), t.top.end(), [&](auto& x) { return x.token == tok; });
  };
  return in_top(a.tokens[at], b.tokens[at].token) && in_top(b.tokens[at], a.tokens[at].token);
}

// Two greedy runs of the same sequence: true when token-identical, else (checked) vLLM's
// criterion where they first differ.
bool identical_or_top5(const Recorder::Seq& a, const Recorder::Seq& b, const std::string& what) {
  std::size_t k = 0;
  while (k < a.tokens.size() && k < b.tokens.size() && a.tokens[k].token == b.tokens[k].token)
    ++k;
  if (k == a.tokens.size() && k == b.tokens.size())
    return true;
  EXPECT_TRUE(k < a.tokens.size() && k < b.tokens.size() && top5_agree(a, b, k))
      << what << " diverged at token " << k;
  return false;
}

TEST_F(BatchEngineTest, EightPromptsBatchedEqualEachAlone) {
  constexpr int n = 8;
  constexpr int max_tokens = 24;
  auto batched = start({512, n, 128, 64});
  for (int i = 0; i < n; ++i)
    batched->tell(admit(1 + i, prompt(i, 10 + i * 3), max_tokens));
  for (int i = 0; i < n; ++i)
    rec_.wait_ended(1 + i);
  batched.reset();
  int identical = 0;
  for (int i = 0; i < n; ++i) {
    auto alone = start({512, n, 128, 64});
    alone->tell(admit(100 + i, prompt(i, 10 + i * 3), max_tokens));
    rec_.wait_ended(100 + i);
    const auto a = rec_.get(1 + i);
    const auto b = rec_.get(100 + i);
    ASSERT_EQ(a.tokens.size(), static_cast<std::size_t>(max_tokens));
    ASSERT_EQ(b.tokens.size(), static_cast<std::size_t>(max_tokens));
    identical += identical_or_top5(a, b, "prompt " + std::to_string(i)) ? 1 : 0;
  }
  std::printf("batched vs alone: %d of %d sequences token-identical, the rest top-5 agree\n",
              identical, n);
  RecordProperty("identical", identical);
}

// Pad rows (step_rows.hpp): idle slots between and beside the generating ones take a token
// that is dropped after the step. Short sequences finish early and leave idle slots among
// running ones, later prompts land in them; with pads wherever a slot can take one (always)
// every sequence's greedy output is the one without pads (token-identical, or where a
// different ubatch shape tips a near tie, vLLM's top-5 criterion), and the idle slots' caches
// hold what they held: their cells end where their tokens do and a repeated prompt is served
// from them.
TEST_F(BatchEngineTest, PadRowsLeaveOutputsAndCachesAsTheyWere) {
  constexpr int n = 8;
  const int max_tokens[] = {16, 20, 2, 20, 10, 20, 12, 12};
  auto run = [&](PadRows mode, std::uint64_t base) {
    BatchEngineConfig cfg{512, n, 128, 64};
    cfg.pad_rows = mode;
    auto e = start(cfg);
    for (int i = 0; i < 6; ++i)
      e->tell(admit(base + i, prompt(i, 10 + i * 3), max_tokens[i]));
    rec_.wait_released(base + 2);  // slot 2 idle between running sequences
    rec_.wait_released(base + 0);
    for (int i = 6; i < 8; ++i)  // prompts into slots 0 and 2 while the others generate
      e->tell(admit(base + i, prompt(i, 10 + i * 3), max_tokens[i]));
    for (int i = 0; i < 8; ++i)
      rec_.wait_released(base + i);
    const auto snap = snapshot(*e);
    for (std::size_t i = 0; i < snap.slots.size(); ++i)
      EXPECT_EQ(snap.slots[i].kv_pos_max, snap.slots[i].n_past - 1) << "slot " << i;
    // Sequence 4's prompt again: slot 4 sat idle between running slots 3 and 5 after it.
    e->tell(admit(base + 8, prompt(4, 22), 2));
    rec_.wait_ended(base + 8);
    EXPECT_EQ(rec_.get(base + 8).started->cached_tokens, 21);
    const auto first = ids(rec_.get(base + 4));
    EXPECT_EQ(ids(rec_.get(base + 8)), std::vector<Token>(first.begin(), first.begin() + 2));
    return e->counters().pad_rows.load();
  };
  EXPECT_GT(run(PadRows::always, 100), 0);
  EXPECT_EQ(run(PadRows::off, 200), 0);
  int identical = 0;
  for (int i = 0; i < 8; ++i) {
    const auto a = rec_.get(100 + static_cast<std::uint64_t>(i));
    const auto b = rec_.get(200 + static_cast<std::uint64_t>(i));
    ASSERT_EQ(a.tokens.size(), static_cast<std::size_t>(max_tokens[i]));
    ASSERT_EQ(b.tokens.size(), static_cast<std::size_t>(max_tokens[i]));
    identical += identical_or_top5(a, b, "sequence " + std::to_string(i)) ? 1 : 0;
  }
  RecordProperty("identical", identical);
}

// Speculative decoding (BatchEngineConfig::spec): sequences whose prompts repeat a phrase, and
// whose greedy answers (a random model's) fall into cycles, draft tokens by n-gram lookup. Their
// answers are the ones without drafts (token-identical, or where a step of several rows tips a
// near tie, vLLM's top-5 criterion), exactly max_tokens long, and each slot's cells end where
// its tokens do once it is done: a rejected draft's cells are gone.
class SpeculativeTest : public BatchEngineTest {
 protected:
  std::vector<Token> repeating(int i) const {
    std::vector<Token> p;
    for (int r = 0; r < 4; ++r) {
      const auto phrase = prompt(i, 6);
      p.insert(p.end(), phrase.begin(), phrase.end());
    }
    return p;
  }

  // Runs `n` sequences of `max_tokens` on `cfg`, tickets from `base`; returns the drafts the
  // sampler kept.
  std::int64_t run(BatchEngineConfig cfg, SpecType spec, int n, int max_tokens,
                   std::uint64_t base) {
    cfg.spec = spec;
    cfg.spec_ngram_n = 2;
    cfg.spec_ngram_m = 6;
    cfg.spec_measured = false;  // every drafted token: the same steps on every machine
    auto e = start(cfg);
    for (int i = 0; i < n; ++i)
      e->tell(admit(base + static_cast<std::uint64_t>(i), repeating(i), max_tokens));
    for (int i = 0; i < n; ++i)
      rec_.wait_released(base + static_cast<std::uint64_t>(i));
    const auto snap = snapshot(*e);
    for (std::size_t i = 0; i < snap.slots.size(); ++i)
      EXPECT_EQ(snap.slots[i].kv_pos_max, snap.slots[i].n_past - 1) << "slot " << i;
    if (spec == SpecType::none)
      EXPECT_EQ(e->counters().spec_drafted.load(), 0);
    return e->counters().spec_accepted.load();
  }

  void expect_same_answers(int n, int max_tokens, std::uint64_t with, std::uint64_t without) {
    int identical = 0;
    for (int i = 0; i < n; ++i) {
      const auto a = rec_.get(with + static_cast<std::uint64_t>(i));
      const auto b = rec_.get(without + static_cast<std::uint64_t>(i));
      ASSERT_EQ(a.tokens.size(), static_cast<std::size_t>(max_tokens)) << "sequence " << i;
      ASSERT_EQ(b.tokens.size(), static_cast<std::size_t>(max_tokens)) << "sequence " << i;
      EXPECT_EQ(a.tokens.back().end, EngineEnd::max_tokens);
      identical += identical_or_top5(a, b, "sequence " + std::to_string(i)) ? 1 : 0;
    }
    RecordProperty("identical", identical);
  }
};

TEST_F(SpeculativeTest, AloneOnAStreamPerSequence) {
  const BatchEngineConfig cfg{1024, 2, 256, 64};
  EXPECT_GT(run(cfg, SpecType::ngram_simple, 1, 64, 100), 0);
  EXPECT_EQ(run(cfg, SpecType::none, 1, 64, 200), 0);
  expect_same_answers(1, 64, 100, 200);
}

TEST_F(SpeculativeTest, ManySequencesInTheUnifiedPool) {
  BatchEngineConfig cfg{1024, 4, 256, 64};
  cfg.kv_unified = true;
  EXPECT_GT(run(cfg, SpecType::ngram_simple, 4, 48, 100), 0);
  EXPECT_EQ(run(cfg, SpecType::none, 4, 48, 200), 0);
  expect_same_answers(4, 48, 100, 200);
}

// With a KV stream per sequence only a sequence generating alone drafts: beside another one a
// step of unequal token counts would be a second pass over the weights.
TEST_F(SpeculativeTest, NoDraftsBesideAnotherSequenceOnStreamsPerSequence) {
  BatchEngineConfig cfg{1024, 3, 256, 64};
  cfg.spec = SpecType::ngram_simple;
  cfg.spec_ngram_n = 2;
  cfg.spec_measured = false;
  // The first step (a one-token answer's prompt) waits until both sequences are queued, so
  // that they start together and, with the same max_tokens, end together.
  std::promise<void> queued;
  std::shared_future<void> gate = queued.get_future().share();
  std::atomic<bool> first{true};
  auto e = start(cfg, [&first, gate](DecodeEdge edge) {
    if (edge == DecodeEdge::begin && first.exchange(false))
      gate.wait();
  });
  e->tell(admit(1, prompt(0), 1));
  e->tell(admit(2, repeating(1), 40));
  e->tell(admit(3, repeating(2), 40));
  queued.set_value();
  for (std::uint64_t t : {1, 2, 3})
    rec_.wait_released(t);
  EXPECT_EQ(rec_.get(2).tokens.size(), 40u);
  EXPECT_EQ(rec_.get(3).tokens.size(), 40u);
  EXPECT_EQ(e->counters().spec_drafted.load(), 0);
}

// Drafts never reach past the context: the sequence ends with context_full at the token it
// ends with without them.
TEST_F(SpeculativeTest, ContextFullEndsWhereItDoesWithoutDrafts) {
  BatchEngineConfig cfg{512, 2, 128, 64};
  cfg.spec = SpecType::ngram_simple;
  cfg.spec_ngram_n = 1;
  cfg.spec_measured = false;
  auto e = start(cfg);
  std::vector<Token> p;
  while (p.size() + 6 < static_cast<std::size_t>(e->n_ctx_seq()) - 12)
    for (Token t : prompt(7, 6))
      p.push_back(t);
  const auto room = static_cast<std::size_t>(e->n_ctx_seq()) - p.size();
  e->tell(admit(1, p, 100000));
  rec_.wait_ended(1);
  const auto s = rec_.get(1);
  ASSERT_FALSE(s.tokens.empty());
  EXPECT_EQ(s.tokens.back().end, EngineEnd::context_full);
  EXPECT_EQ(s.tokens.size(), room + 1);  // every position decoded, the last token has no room
  EXPECT_GT(e->counters().spec_accepted.load(), 0);
}

// OpenAI's Predicted Outputs (AdmitSequence::prediction), without --spec-type: a prediction
// that is the answer supplies nearly all of it; one with an edit in the middle (another span
// of tokens) still its start and end. The answers are the ones without a prediction.
TEST_F(SpeculativeTest, APredictionIsDraftedFrom) {
  BatchEngineConfig cfg{1024, 2, 256, 64};
  cfg.spec_measured = false;
  constexpr int n = 48;
  std::int64_t rejected = 0;  // the last call's rejected prediction tokens
  auto e = start(cfg);
  e->tell(admit(1, prompt(3, 20), n));
  rec_.wait_released(1);
  const std::vector<Token> answer = ids(rec_.get(1));
  ASSERT_EQ(answer.size(), static_cast<std::size_t>(n));
  auto with = [&](std::uint64_t ticket, std::vector<Token> prediction) {
    const auto before = e->counters().spec_accepted.load();
    AdmitSequence a = admit(ticket, prompt(3, 20), n);
    a.prediction = std::move(prediction);
    e->tell(std::move(a));
    rec_.wait_released(ticket);
    const auto kept = e->counters().spec_accepted.load() - before;
    // What the tokens carry for usage: the same kept drafts, and those rejected.
    std::int64_t carried = 0;
    rejected = 0;
    for (const auto& t : rec_.get(ticket).tokens) {
      carried += t.prediction_kept;
      rejected += t.prediction_rejected;
    }
    EXPECT_EQ(carried, kept);
    return kept;
  };
  // The answer's first token is sampled from the prompt, the second drafted on: all but the
  // first and the last (the token after the last draft is the sampler's own) can be.
  const auto whole = with(2, answer);
  EXPECT_GE(whole, n / 2);
  std::vector<Token> edited = answer;
  for (int i = 20; i < 28; ++i)
    edited[static_cast<std::size_t>(i)] = 1400 + i;
  const auto around_an_edit = with(3, edited);
  EXPECT_GE(around_an_edit, 16);
  EXPECT_GT(rejected, 0);                     // the edited tokens, drafted and not drawn
  EXPECT_EQ(with(4, {1401, 1402, 1403}), 0);  // a prediction that has nothing of the answer
  std::printf("prediction: %lld of %d tokens drafted and kept, %lld around an edit\n",
              static_cast<long long>(whole), n, static_cast<long long>(around_an_edit));
  expect_same_answers(1, n, 2, 1);
  expect_same_answers(1, n, 3, 1);
  expect_same_answers(1, n, 4, 1);
}

// With the measured policy (the server's default) and no --spec-type, the engine still learns
// its step costs and drafts from a prediction: once one step of its rows was measured, the
// rows above it are guessed cheap and tried.
TEST_F(SpeculativeTest, TheMeasuredPolicyDraftsAPrediction) {
  auto e = start({1024, 2, 256, 64});
  e->tell(admit(1, prompt(3, 20), 24));
  rec_.wait_released(1);
  EXPECT_EQ(e->counters().spec_drafted.load(), 0);
  AdmitSequence a = admit(2, prompt(3, 20), 24);
  a.prediction = ids(rec_.get(1));
  e->tell(std::move(a));
  rec_.wait_released(2);
  EXPECT_GT(e->counters().spec_drafted.load(), 0);
}

TEST_F(SpeculativeTest, DraftSizesBelowOneAreRefused) {
  BatchEngineConfig cfg{512, 2, 128, 64};
  cfg.spec = SpecType::ngram_simple;
  cfg.spec_ngram_m = 0;
  auto listener = system_.spawn<testing::ReleaseListener>(
      actor::SpawnOptions{}, std::function<void(std::uint64_t)>([](std::uint64_t) {}));
  auto e = BatchEngine::start(system_, *model_, cfg, listener);
  ASSERT_FALSE(e);
  EXPECT_EQ(e.error().code, Errc::invalid_request);
}

// Speculative decoding with a draft model (engine/draft_model.hpp): the sequences' answers are
// the ones without it whatever the draft model guesses, each slot's cells end where its tokens
// do, and a draft model of the same weights has nearly every guess kept.
class DraftModelTest : public SpeculativeTest {
 protected:
  static std::unique_ptr<LlamaModel> load(const std::string& path) {
    auto m = LlamaModel::load({path});
    EXPECT_TRUE(m) << m.error().message;
    return m ? std::move(m.value()) : nullptr;
  }

  // Runs `n` sequences (more than the slots: later ones reuse a slot the draft model has seen)
  // of `max_tokens` with `draft`, every drafted token decoded; returns {drafted, kept}.
  std::pair<std::int64_t, std::int64_t> run_with(BatchEngineConfig cfg, const LlamaModel* draft,
                                                 int n, int max_tokens, std::uint64_t base) {
    cfg.spec_measured = false;
    cfg.spec_draft_max = 4;
    auto e = start(cfg, {}, draft);
    if (!e)
      return {-1, -1};
    // At most a sequence per slot at once (the admission actor's queue is not in these tests).
    for (int i = 0; i < n; ++i) {
      if (i >= cfg.n_parallel)
        rec_.wait_released(base + static_cast<std::uint64_t>(i - cfg.n_parallel));
      e->tell(admit(base + static_cast<std::uint64_t>(i), prompt(i % 3, 12 + i), max_tokens));
    }
    for (int i = 0; i < n; ++i)
      rec_.wait_released(base + static_cast<std::uint64_t>(i));
    const auto snap = snapshot(*e);
    for (std::size_t i = 0; i < snap.slots.size(); ++i)
      EXPECT_EQ(snap.slots[i].kv_pos_max, snap.slots[i].n_past - 1) << "slot " << i;
    return {e->counters().spec_drafted.load(), e->counters().spec_accepted.load()};
  }

  void expect_same(int n, int max_tokens, std::uint64_t with, std::uint64_t without) {
    for (int i = 0; i < n; ++i) {
      const auto a = rec_.get(with + static_cast<std::uint64_t>(i));
      const auto b = rec_.get(without + static_cast<std::uint64_t>(i));
      ASSERT_EQ(a.tokens.size(), static_cast<std::size_t>(max_tokens)) << "sequence " << i;
      ASSERT_EQ(b.tokens.size(), static_cast<std::size_t>(max_tokens)) << "sequence " << i;
      identical_or_top5(a, b, "sequence " + std::to_string(i));
    }
  }
};

TEST_F(DraftModelTest, TheSameWeightsGuessNearlyEveryToken) {
  auto draft = load(testing::tiny_model());
  ASSERT_TRUE(draft);
  for (bool unified : {false, true}) {
    SCOPED_TRACE(unified ? "unified pool" : "a stream per sequence");
    BatchEngineConfig cfg{1024, unified ? 4 : 1, 256, 64};
    cfg.kv_unified = unified;
    const int n = unified ? 6 : 2;
    const std::uint64_t base = unified ? 300 : 100;
    const auto [drafted, kept] = run_with(cfg, draft.get(), n, 40, base);
    run_with(cfg, nullptr, n, 40, base + 100);
    expect_same(n, 40, base, base + 100);
    EXPECT_GT(drafted, n * 10);
    EXPECT_GE(kept * 10, drafted * 9) << kept << " of " << drafted << " kept";
  }
}

TEST_F(DraftModelTest, AnotherModelsGuessesChangeNoAnswer) {
  auto draft = load(test::generated_model("tiny", mkmodel::WeightType::f32, 2));
  ASSERT_TRUE(draft);
  BatchEngineConfig cfg{1024, 4, 256, 64};
  cfg.kv_unified = true;
  const auto [drafted, kept] = run_with(cfg, draft.get(), 6, 40, 100);
  run_with(cfg, nullptr, 6, 40, 200);
  expect_same(6, 40, 100, 200);
  EXPECT_GT(drafted, 0);
  EXPECT_LT(kept, drafted);  // its own weights: guesses the target's sampler does not draw
}

// A draft context whose unified pool has no room left for a pass: the sequences not drafting
// give their cells back, or the step goes without drafts; answers unchanged either way.
TEST_F(DraftModelTest, AFullDraftPoolCostsDraftsNotAnswers) {
  auto draft = load(testing::tiny_model());
  ASSERT_TRUE(draft);
  BatchEngineConfig cfg{512, 4, 256, 64};
  cfg.kv_unified = true;
  std::vector<Token> p;
  for (int i = 0; p.size() < 150; ++i)
    for (Token t : prompt(i, 6))
      p.push_back(t);
  std::int64_t drafted = 0, kept = 0;
  auto go = [&](const LlamaModel* d, std::uint64_t base) {
    cfg.spec_measured = false;
    auto e = start(cfg, {}, d);
    for (std::uint64_t i = 0; i < 4; ++i) {  // 4 x (150 + 40) cells of 512: preemptions too
      auto q = p;
      q[0] = static_cast<Token>(10 + i);
      e->tell(admit(base + i, std::move(q), 40));
    }
    for (std::uint64_t i = 0; i < 4; ++i)
      rec_.wait_released(base + i);
    drafted = e->counters().spec_drafted.load();
    kept = e->counters().spec_accepted.load();
  };
  go(draft.get(), 100);
  // The draft cells still follow the sequences: the same weights' guesses are kept.
  EXPECT_GT(drafted, 0);
  EXPECT_GE(kept * 10, drafted * 9) << kept << " of " << drafted << " kept";
  go(nullptr, 200);
  expect_same(4, 40, 100, 200);
}

TEST_F(DraftModelTest, GuessesBelowPMinOrShorterThanNMinAreNotDecoded) {
  auto draft = load(testing::tiny_model());
  ASSERT_TRUE(draft);
  BatchEngineConfig cfg{1024, 2, 256, 64};
  cfg.kv_unified = true;        // both sequences draft
  cfg.spec_draft_p_min = 1.0f;  // no token of a random model is that sure
  EXPECT_EQ(run_with(cfg, draft.get(), 2, 24, 100).first, 0);
  cfg.spec_draft_p_min = 0.0f;
  cfg.spec_draft_min = 5;  // more than the 4 run_with drafts at most
  EXPECT_EQ(run_with(cfg, draft.get(), 2, 24, 200).first, 0);
  cfg.spec_draft_min = 4;
  EXPECT_GT(run_with(cfg, draft.get(), 2, 24, 300).first, 0);
}

TEST_F(DraftModelTest, ADraftOfAnotherVocabularyIsRefused) {
  auto other = load(test::generated_bert_model());
  ASSERT_TRUE(other);
  auto listener = system_.spawn<testing::ReleaseListener>(
      actor::SpawnOptions{}, std::function<void(std::uint64_t)>([](std::uint64_t) {}));
  auto e = BatchEngine::start(system_, *model_, BatchEngineConfig{512, 2, 128, 64}, listener, {},
                              other.get());
  ASSERT_FALSE(e);
  EXPECT_EQ(e.error().code, Errc::invalid_request);
  EXPECT_NE(e.error().message.find("the draft model cannot draft for this model"),
            std::string::npos)
      << e.error().message;
}

// A long prompt arriving while a sequence generates: paced (stretch 1 with a KV stream per
// sequence: no room for a pass of its own, one prompt token a step) it is spread over many
// steps; unpaced it goes in whole. Either way the prompt's answer is the same as far as greedy
// decoding of a random model can tell.
TEST_F(BatchEngineTest, PacedPromptIsSpreadOverStepsWhileAnotherGenerates) {
  // The prefill steps of a prompt of `length` tokens admitted while another sequence
  // generates, with chunks of at most 128 tokens.
  auto prefill_steps = [&](double stretch, std::int32_t length, std::uint64_t base) {
    BatchEngineConfig cfg{1024, 2, 256, 128};
    cfg.prefill_stretch = stretch;
    auto e = start(cfg);
    e->tell(admit(base, prompt(1), 100000));
    rec_.wait_tokens(base, 3);  // its prompt step and two generation-only steps are measured
    const auto before = e->counters().prefill_steps.load();
    e->tell(admit(base + 1, prompt(2, length), 8));
    rec_.wait_ended(base + 1);
    const auto steps = e->counters().prefill_steps.load() - before;
    e->tell(ReleaseSequence{base, /*drop_cache=*/true});
    rec_.wait_released(base);
    return steps;
  };
  EXPECT_EQ(prefill_steps(0.0, 200, 10), 2);   // two chunks
  EXPECT_GE(prefill_steps(1.0, 200, 20), 13);  // at most 16 a step
  EXPECT_EQ(prefill_steps(1.0, 100, 30), 1);   // one chunk's worth goes in whole
  const auto whole = rec_.get(11);
  const auto paced = rec_.get(21);
  ASSERT_EQ(whole.tokens.size(), 8u);
  ASSERT_EQ(paced.tokens.size(), 8u);
  std::size_t k = 0;
  while (k < whole.tokens.size() && whole.tokens[k].token == paced.tokens[k].token)
    ++k;
  if (k < whole.tokens.size()) {
    EXPECT_TRUE(top5_agree(whole, paced, k)) << "diverged at token " << k;
  }
}

TEST_F(BatchEngineTest, PrefillStretchBelowOneIsRefused) {
  BatchEngineConfig cfg{512, 2, 128, 64};
  cfg.prefill_stretch = 0.5;
  cfg.n_threads = 1;
  auto e = BatchEngine::start(system_, *model_, cfg, actor::ActorRef<AdmissionMessage>{});
  ASSERT_FALSE(e);
  EXPECT_EQ(e.error().param, "prefill_stretch");
}

TEST_F(BatchEngineTest, SeededSamplingIsReproducible) {
  SamplingParams sp;
  sp.temperature = 0.9f;
  sp.top_k = 40;
  sp.top_p = 0.95f;
  sp.min_p = 0.0f;
  sp.seed = 1234;
  auto e = start({512, 2, 128, 64});
  e->tell(admit(1, prompt(1), 32, sp));
  rec_.wait_ended(1);
  e->tell(admit(2, prompt(1), 32, sp));
  rec_.wait_ended(2);
  EXPECT_EQ(ids(rec_.get(1)), ids(rec_.get(2)));
}

TEST_F(BatchEngineTest, CancellationFreesKvCellsAndTheSlotIsReused) {
  auto e = start({512, 2, 128, 64});
  e->tell(admit(1, prompt(1), 100000));
  rec_.wait_tokens(1, 2);
  e->tell(ReleaseSequence{1, /*drop_cache=*/true});
  rec_.wait_released(1);
  auto snap = snapshot(*e);
  EXPECT_FALSE(snap.slots[0].busy);
  EXPECT_EQ(snap.slots[0].kv_pos_max, -1);  // no cells left for sequence 0
  EXPECT_EQ(e->counters().cells_live.load(), 0);
  e->tell(admit(2, prompt(2), 4));
  rec_.wait_tokens(2, 1);
  snap = snapshot(*e);
  EXPECT_EQ(snap.slots[0].ticket, 2u);  // the lowest free slot, the one just freed
  rec_.wait_ended(2);
}

TEST_F(BatchEngineTest, PrefixReuseFromTheSameSlotAndFromALiveSequence) {
  auto e = start({1024, 2, 128, 64});
  const auto p = prompt(3, 80);
  e->tell(admit(1, p, 8));
  rec_.wait_ended(1);
  EXPECT_EQ(rec_.get(1).started->cached_tokens, 0);
  e->tell(admit(2, p, 8));  // same slot, same prompt: all but the last token cached
  rec_.wait_ended(2);
  EXPECT_EQ(rec_.get(2).started->cached_tokens, 79);
  EXPECT_EQ(ids(rec_.get(1)), ids(rec_.get(2)));
  // A live sequence in slot 0 holds the prompt; a new request on slot 1 copies it.
  e->tell(admit(3, p, 100000));
  rec_.wait_tokens(3, 2);
  e->tell(admit(4, p, 8));
  rec_.wait_ended(4);
  EXPECT_EQ(rec_.get(4).started->cached_tokens, 79);
  EXPECT_EQ(ids(rec_.get(4)), ids(rec_.get(1)));
  EXPECT_GE(e->counters().prefix_hits.load(), 79 * 3);
  e->tell(ReleaseSequence{3, true});
  rec_.wait_released(3);
}

// --cache-ram: the only slot's cached prompt goes to host memory when another prompt takes the
// slot, and comes back when the first conversation does: the same cached tokens and the same
// answer as where the slot had kept it, and nothing restored with the cache off.
std::vector<Token> joined(std::initializer_list<std::vector<Token>> parts) {
  std::vector<Token> out;
  for (const auto& p : parts)
    out.insert(out.end(), p.begin(), p.end());
  return out;
}

// Chunk reuse (llama-server's --cache-reuse): an editor's prompt whose first context chunk
// left keeps the chunk and text after it, their cells moved down into place, in a KV stream
// per sequence and in one pool; without it only the common prefix is reused. (Whether the
// moved cells give the fresh answer is the trained model's test below: this random model's
// next-token distribution is too flat for greedy runs to tell.)
TEST_F(BatchEngineTest, ChunkReuseMovesCachedChunksIntoPlace) {
  const auto head = prompt(70, 8), dropped = prompt(71, 40), kept = prompt(72, 40),
             text = prompt(73, 20);
  const auto first = joined({head, dropped, kept, text});
  const auto second = joined({head, kept, text, prompt(74, 10)});
  for (const bool unified : {false, true}) {
    SCOPED_TRACE(unified ? "one pool" : "a stream per sequence");
    const std::uint64_t t = unified ? 10 : 0;
    BatchEngineConfig cfg{512, 1, 128, 64};
    cfg.kv_unified = unified;
    auto e = start(cfg);
    // The first prompt, then the second with chunk reuse from `min_chunk` tokens (tickets
    // ticket and ticket + 1): the second's record.
    const auto round = [&](std::uint64_t ticket, std::int32_t min_chunk) {
      e->tell(admit(ticket, first, 4));
      rec_.wait_released(ticket);
      auto a = admit(ticket + 1, second, 12);
      a.cache_reuse = min_chunk;
      e->tell(std::move(a));
      rec_.wait_released(ticket + 1);
      return rec_.get(ticket + 1);
    };
    const auto reused = round(t + 1, 16);
    ASSERT_TRUE(reused.started);
    EXPECT_EQ(reused.started->cached_tokens, 8 + 60);
    EXPECT_EQ(reused.tokens.size(), 12u);
    EXPECT_EQ(e->counters().cache_reuse_tokens.load(), 60);
    const auto slot = snapshot(*e).slots[0];
    EXPECT_EQ(slot.n_past, static_cast<std::int32_t>(second.size()) + 11);
    EXPECT_EQ(slot.kv_pos_max, slot.n_past - 1);
    // Without chunk reuse, or with a minimum above the chunk: the prefix alone.
    EXPECT_EQ(round(t + 3, 0).started->cached_tokens, 8);
    EXPECT_EQ(round(t + 5, 61).started->cached_tokens, 8);
    EXPECT_EQ(e->counters().cache_reuse_tokens.load(), 60);
  }
}

// The moved cells are those a fresh computation gives: on the trained stories model the
// answer to a prompt whose first chunk left, reused in place, is the fresh one (vLLM's
// criterion where greedy runs differ) and its first token's probability the same.
TEST_F(BatchEngineTest, ChunkReuseAnswersAsAFreshPrompt) {
  const auto path = test::shared_model("stories260K.gguf");
  if (!path)
    GTEST_SKIP() << "../shared/models/stories260K.gguf is not here";
  auto m = LlamaModel::load({*path});
  ASSERT_TRUE(m) << m.error().message;
  model_ = std::move(m.value());
  const auto tok = [&](std::string_view text, bool bos) {
    return model_->tokenize(text, bos, false).value();
  };
  const auto head = tok("Once upon a time,", true);
  const auto dropped =
      tok(" there was a little girl named Lily. She loved to play outside.", false);
  const auto kept = tok(" One day, she saw a big red ball under a tree. She ran to get it.", false);
  const auto text = tok(" Her mom said, \"Be careful!\" Lily smiled and", false);
  const auto second = joined({head, kept, text, tok(" said", false)});
  BatchEngineConfig cfg{512, 1, 128, 64};
  auto e = start(cfg);
  e->tell(admit(1, joined({head, dropped, kept, text}), 4));
  rec_.wait_released(1);
  auto a = admit(2, second, 16);
  a.cache_reuse = 8;
  e->tell(std::move(a));
  rec_.wait_released(2);
  const auto reused = rec_.get(2);
  ASSERT_TRUE(reused.started);
  EXPECT_EQ(reused.started->cached_tokens,
            static_cast<std::int32_t>(head.size() + kept.size() + text.size()));
  e.reset();
  auto fresh = start(cfg);
  fresh->tell(admit(3, second, 16));
  rec_.wait_released(3);
  const auto computed = rec_.get(3);
  ASSERT_EQ(computed.started->cached_tokens, 0);
  identical_or_top5(reused, computed, "the reused prompt's answer");
  EXPECT_NEAR(reused.tokens[0].logprob, computed.tokens[0].logprob, 0.02);
}

TEST_F(BatchEngineTest, HostCacheRestoresAPromptItsSlotGaveUp) {
  const auto a = prompt(30, 100);
  const auto b = prompt(31, 100);
  std::vector<std::uint64_t> next = {1};
  // Runs a, then (unless `only_a`) b, then a's next turn; returns that turn's record.
  const auto conversation = [&](BatchEngine& e, bool only_a) {
    const std::uint64_t t = next.back();
    next.push_back(t + 3);
    e.tell(admit(t, a, 8));
    rec_.wait_released(t);
    if (!only_a) {
      e.tell(admit(t + 1, b, 8));
      rec_.wait_released(t + 1);
    }
    auto turn = a;
    for (Token x : ids(rec_.get(t)))
      turn.push_back(x);
    for (Token x : prompt(32, 10))
      turn.push_back(x);
    e.tell(admit(t + 2, turn, 8));
    rec_.wait_released(t + 2);
    return rec_.get(t + 2);
  };
  BatchEngineConfig cfg{1024, 1, 128, 64};
  cfg.host_cache_bytes = 64 << 20;
  auto e = start(cfg);
  const auto restored = conversation(*e, false);
  ASSERT_FALSE(restored.error);
  // a's 100 tokens and 7 of its 8 answers (the last was sampled, never decoded).
  EXPECT_EQ(restored.started->cached_tokens, 107);
  EXPECT_EQ(e->counters().host_cache_stores.load(), 2);  // a's cells, then b's
  EXPECT_EQ(e->counters().host_cache_restores.load(), 1);
  EXPECT_EQ(e->counters().host_cache_hits.load(), 107);
  EXPECT_EQ(e->counters().host_cache_entries.load(), 2);
  EXPECT_GT(e->counters().host_cache_bytes.load(), 0);
  e.reset();

  auto kept = start({1024, 1, 128, 64});  // the slot keeps a: the same 107 cells, from the slot
  const auto from_slot = conversation(*kept, true);
  EXPECT_EQ(from_slot.started->cached_tokens, 107);
  EXPECT_EQ(ids(from_slot), ids(restored));
  kept.reset();

  auto off = start({1024, 1, 128, 64});
  const auto recomputed = conversation(*off, false);
  EXPECT_EQ(recomputed.started->cached_tokens, 0);
  EXPECT_EQ(off->counters().host_cache_stores.load(), 0);
  EXPECT_EQ(ids(recomputed), ids(restored));
}

// A prompt that keeps most of its slot's cached tokens (an edited last turn, a regenerated
// answer) leaves the slot's state out of host memory, as llama-server does: storing it would
// copy the whole conversation each time. One that keeps less than half stores it first.
TEST_F(BatchEngineTest, HostCacheStoresASlotOnlyWhenAPromptLosesMostOfIt) {
  const auto a = prompt(33, 100);
  BatchEngineConfig cfg{1024, 1, 128, 64};
  cfg.host_cache_bytes = 64 << 20;
  auto e = start(cfg);
  e->tell(admit(1, a, 8));
  rec_.wait_released(1);
  // The same prompt again: 99 of the slot's 107 tokens kept.
  e->tell(admit(2, a, 8));
  rec_.wait_released(2);
  EXPECT_EQ(rec_.get(2).started->cached_tokens, 99);
  EXPECT_EQ(e->counters().host_cache_stores.load(), 0);
  // 40 tokens of it and others: the slot's 107 go to host memory before the cut.
  e->tell(admit(3, joined({std::vector<Token>(a.begin(), a.begin() + 40), prompt(34, 20)}), 8));
  rec_.wait_released(3);
  EXPECT_EQ(rec_.get(3).started->cached_tokens, 40);
  EXPECT_EQ(e->counters().host_cache_stores.load(), 1);
}

// A stored state goes into whichever slot the returning prompt gets: here slot 1's KV stream,
// while slot 0, where it was computed, generates for another request.
TEST_F(BatchEngineTest, HostCacheRestoresIntoAnotherSlotsStream) {
  BatchEngineConfig cfg{1024, 2, 128, 64};
  cfg.host_cache_bytes = 64 << 20;
  auto e = start(cfg);
  const auto a = prompt(40, 90);
  e->tell(admit(1, a, 8));
  rec_.wait_released(1);
  e->tell(admit(2, prompt(41, 90), 100000));  // slot 0 again: a's cells go to host memory
  rec_.wait_tokens(2, 2);
  auto turn = a;
  for (Token x : ids(rec_.get(1)))
    turn.push_back(x);
  e->tell(admit(3, turn, 8));  // slot 1
  rec_.wait_released(3);
  EXPECT_EQ(snapshot(*e).slots[0].ticket, 2u);
  EXPECT_EQ(rec_.get(3).started->cached_tokens, 97);  // 90 + 7 decoded answers
  EXPECT_EQ(e->counters().host_cache_restores.load(), 1);
  e->tell(ReleaseSequence{2, true});
  rec_.wait_released(2);
  e.reset();

  auto kept = start({1024, 2, 128, 64});
  kept->tell(admit(4, a, 8));
  rec_.wait_released(4);
  kept->tell(admit(5, turn, 8));
  rec_.wait_released(5);
  EXPECT_EQ(rec_.get(5).started->cached_tokens, 97);
  EXPECT_EQ(ids(rec_.get(5)), ids(rec_.get(3)));
}

// POST /slots/ID?action=...: a slot's cache saved to a file, erased, and restored into another
// slot serves the next turn as the slot itself would have: the same cached tokens, the same
// greedy answer.
class SlotFileTest : public BatchEngineTest {
 protected:
  void SetUp() override {
    BatchEngineTest::SetUp();
    dir_ = std::filesystem::temp_directory_path() /
           fmt::format("troupe-slot-test-{}-{}", ::getpid(),
                       ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  Result<SlotActionDone> act(BatchEngine& e, SlotActionKind kind, std::int32_t slot,
                             const std::string& file = {}) {
    SlotAction m;
    m.kind = kind;
    m.slot = slot;
    m.path = file.empty() ? std::string() : (dir_ / file).string();
    return e.ref().ask_blocking(std::move(m), actor::kNoTimeout);
  }
  std::vector<Token> next_turn(const std::vector<Token>& p, std::uint64_t answer) {
    auto turn = p;
    for (Token x : ids(rec_.get(answer)))
      turn.push_back(x);
    for (Token x : prompt(52, 10))
      turn.push_back(x);
    return turn;
  }

  std::filesystem::path dir_;
};

TEST_F(SlotFileTest, SavedEraseRestoredIntoAnotherSlotServesTheNextTurn) {
  const auto a = prompt(50, 100);
  auto e = start({1024, 2, 128, 64});
  e->tell(admit(1, a, 8));
  rec_.wait_released(1);
  auto saved = act(*e, SlotActionKind::save, 0, "a.bin");
  ASSERT_TRUE(saved) << saved.error().message;
  EXPECT_EQ(saved->n_tokens, 107);  // the prompt and 7 decoded answers (the 8th never was)
  EXPECT_EQ(saved->n_bytes, std::filesystem::file_size(dir_ / "a.bin"));
  auto erased = act(*e, SlotActionKind::erase, 0);
  ASSERT_TRUE(erased);
  EXPECT_EQ(erased->n_tokens, 107);
  EXPECT_EQ(snapshot(*e).slots[0].n_past, 0);
  EXPECT_EQ(snapshot(*e).slots[0].kv_pos_max, -1);
  auto restored = act(*e, SlotActionKind::restore, 1, "a.bin");
  ASSERT_TRUE(restored) << restored.error().message;
  EXPECT_EQ(restored->n_tokens, 107);
  EXPECT_EQ(restored->n_bytes, saved->n_bytes);
  EXPECT_EQ(snapshot(*e).slots[1].n_past, 107);
  EXPECT_EQ(snapshot(*e).slots[1].kv_pos_max, 106);
  const auto turn = next_turn(a, 1);
  e->tell(admit(2, turn, 8));  // slot 0 (the lowest free) copies slot 1's restored cells
  rec_.wait_released(2);
  EXPECT_EQ(rec_.get(2).started->cached_tokens, 107);
  e.reset();

  auto kept = start({1024, 2, 128, 64});  // the slot keeps a: the same turn from its own cells
  kept->tell(admit(3, a, 8));
  rec_.wait_released(3);
  kept->tell(admit(4, turn, 8));
  rec_.wait_released(4);
  EXPECT_EQ(rec_.get(4).started->cached_tokens, 107);
  EXPECT_EQ(ids(rec_.get(4)), ids(rec_.get(2)));
}

// llama-server defers an action on a busy slot; so does the engine, until the request ends.
TEST_F(SlotFileTest, AnActionOnABusySlotWaitsForItsRequest) {
  auto e = start({1024, 2, 128, 64});
  e->tell(admit(1, prompt(51, 40), 100000));
  rec_.wait_tokens(1, 3);
  auto pending =
      std::async(std::launch::async, [&] { return act(*e, SlotActionKind::save, 0, "busy.bin"); });
  rec_.wait_tokens(1, 6);  // steps go on; the save cannot have run while the slot is busy
  EXPECT_FALSE(std::filesystem::exists(dir_ / "busy.bin"));
  e->tell(ReleaseSequence{1, false});
  auto saved = pending.get();
  ASSERT_TRUE(saved) << saved.error().message;
  EXPECT_EQ(saved->n_tokens, snapshot(*e).slots[0].n_past);
  EXPECT_GE(saved->n_tokens, 40 + 5);
  EXPECT_TRUE(std::filesystem::exists(dir_ / "busy.bin"));
}

TEST_F(SlotFileTest, BadActionsAreRefusedAndTheSlotsWorkOn) {
  auto e = start({1024, 2, 128, 64});
  auto out_of_range = act(*e, SlotActionKind::erase, 2);
  ASSERT_FALSE(out_of_range);
  EXPECT_EQ(out_of_range.error().code, Errc::invalid_request);
  auto missing = act(*e, SlotActionKind::restore, 0, "none.bin");
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().code, Errc::invalid_request);
  EXPECT_NE(missing.error().message.find("none.bin"), std::string::npos);
  {
    std::ofstream junk(dir_ / "junk.bin", std::ios::binary);
    junk << "not a state file at all, just text";
  }
  e->tell(admit(1, prompt(53, 30), 4));
  rec_.wait_released(1);
  // Refused at its header: the slot keeps its cells.
  auto refused = act(*e, SlotActionKind::restore, 0, "junk.bin");
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().code, Errc::invalid_request);
  EXPECT_EQ(snapshot(*e).slots[0].kv_pos_max, 32);
  // A state cut short is refused once the slot's cells are gone: the slot is empty then.
  ASSERT_TRUE(act(*e, SlotActionKind::save, 0, "cut.bin"));
  std::filesystem::resize_file(dir_ / "cut.bin", std::filesystem::file_size(dir_ / "cut.bin") / 2);
  auto cut = act(*e, SlotActionKind::restore, 0, "cut.bin");
  ASSERT_FALSE(cut);
  EXPECT_EQ(cut.error().code, Errc::invalid_request);
  EXPECT_EQ(snapshot(*e).slots[0].kv_pos_max, -1);
  EXPECT_EQ(snapshot(*e).slots[0].n_past, 0);
  // A state longer than a slot's context here: saved where a slot has 1,024 cells, refused
  // where it has 256.
  e.reset();
  auto roomy = start({1024, 1, 128, 64});
  roomy->tell(admit(2, prompt(54, 300), 4));
  rec_.wait_released(2);
  ASSERT_TRUE(act(*roomy, SlotActionKind::save, 0, "long.bin"));
  roomy.reset();
  auto small = start({512, 2, 128, 64});
  auto too_long = act(*small, SlotActionKind::restore, 0, "long.bin");
  ASSERT_FALSE(too_long);
  EXPECT_NE(too_long.error().message.find("do not fit"), std::string::npos);
  // The slots still work.
  small->tell(admit(3, prompt(55, 20), 4));
  rec_.wait_released(3);
  EXPECT_FALSE(rec_.get(3).error);
}

// llama-server's id_slot: a request for a busy slot waits for it (another slot idle meanwhile),
// starts there once it is free, and may be cancelled while it waits; a slot that is not one
// is an error.
TEST_F(SlotFileTest, AnAdmissionForABusySlotWaitsForIt) {
  auto e = start({1024, 2, 128, 64});
  e->tell(admit(1, prompt(58, 20), 100000));
  rec_.wait_tokens(1, 2);
  auto pinned = admit(2, prompt(59, 20), 100000);
  pinned.slot = 0;
  e->tell(std::move(pinned));
  rec_.wait_tokens(1, 6);  // steps go on without it
  EXPECT_FALSE(rec_.get(2).started);
  EXPECT_FALSE(snapshot(*e).slots[1].busy);
  e->tell(ReleaseSequence{1, false});
  rec_.wait_tokens(2, 2);
  auto snap = snapshot(*e);
  EXPECT_EQ(snap.slots[0].ticket, 2u);
  EXPECT_TRUE(snap.slots[0].busy);
  EXPECT_FALSE(snap.slots[1].busy);

  auto cancelled = admit(3, prompt(60, 20), 4);
  cancelled.slot = 0;
  e->tell(std::move(cancelled));
  e->tell(ReleaseSequence{3, false});
  rec_.wait_released(3);
  EXPECT_FALSE(rec_.get(3).started);
  e->tell(ReleaseSequence{2, false});
  rec_.wait_released(2);

  auto nowhere = admit(4, prompt(61, 20), 4);
  nowhere.slot = 2;
  e->tell(std::move(nowhere));
  rec_.wait_released(4);
  ASSERT_TRUE(rec_.get(4).error);
  EXPECT_EQ(rec_.get(4).error->param, "id_slot");
}

// In a shared pool a restored state takes cells like a prompt: the idle cache freed longest
// ago makes room for it.
TEST_F(SlotFileTest, RestoreIntoASharedPoolEvictsTheOldestIdleCache) {
  const auto a = prompt(56, 200);
  const auto b = prompt(57, 200);
  auto e = evict_first_of_three(a, b, 0);  // a's cache (slot 0) evicted for the third prompt
  ASSERT_TRUE(act(*e, SlotActionKind::save, 1, "b.bin"));  // b's slot: 203 tokens
  // Into slot 0: 106 cells are free beside b's and the third's 203 each, so b's idle cache
  // (freed before the third's) goes.
  auto restored = act(*e, SlotActionKind::restore, 0, "b.bin");
  ASSERT_TRUE(restored) << restored.error().message;
  EXPECT_EQ(restored->n_tokens, 203);
  EXPECT_EQ(e->counters().cache_evictions.load(), 2);
  EXPECT_EQ(snapshot(*e).slots[1].n_past, 0);
  const auto turn = next_turn(b, 2);
  e->tell(admit(4, turn, 4));
  rec_.wait_released(4);
  EXPECT_EQ(rec_.get(4).started->cached_tokens, 203);
}

// Penalties see the prompt (llama-server primes its sampler chain with it): on a repetitive
// prompt the first greedy token without a penalty is one the prompt holds; with a presence
// penalty it cannot be, although nothing was generated yet.
TEST_F(BatchEngineTest, PenaltiesArePrimedWithThePrompt) {
  auto e = start({1024, 1, 128, 64});
  SamplingParams plain;
  plain.temperature = 0.0f;
  const auto base = prompt(6, 8);
  e->tell(admit(1, base, 40, plain));  // a random model's greedy continuation repeats itself
  rec_.wait_ended(1);
  std::vector<Token> repetitive = base;
  for (Token t : ids(rec_.get(1)))
    repetitive.push_back(t);
  ASSERT_LT(repetitive.size(), 64u);  // all of it inside the default repeat_last_n window

  e->tell(admit(2, repetitive, 8, plain));
  rec_.wait_ended(2);
  const auto unpenalized = ids(rec_.get(2));
  const auto in_prompt = [&](Token t) {
    return std::find(repetitive.begin(), repetitive.end(), t) != repetitive.end();
  };
  ASSERT_TRUE(in_prompt(unpenalized[0])) << "the premise: greedy repeats a prompt token";

  SamplingParams penalized = plain;
  penalized.presence_penalty = 100.0f;
  e->tell(admit(3, repetitive, 8, penalized));
  rec_.wait_ended(3);
  const auto with_penalty = ids(rec_.get(3));
  EXPECT_FALSE(in_prompt(with_penalty[0])) << "token " << with_penalty[0];
  EXPECT_NE(with_penalty, unpenalized);

  // Deterministic: the same penalized request gives the same tokens.
  e->tell(admit(4, repetitive, 8, penalized));
  rec_.wait_ended(4);
  EXPECT_EQ(ids(rec_.get(4)), with_penalty);
}

// A lone prompt (nobody generating, so nobody to protect) is split by the step's token budget
// alone, not by the per-sequence chunk: 100 tokens at 32 a step, then one generation step.
TEST_F(BatchEngineTest, ChunkedPrefillSplitsALongPrompt) {
  auto e = start({1024, 2, 32, 16});
  e->tell(admit(1, prompt(4, 100), 2));
  rec_.wait_ended(1);
  EXPECT_EQ(e->counters().prefill_steps.load(), 4);
  EXPECT_EQ(e->counters().decode_steps.load(), 5);
}

// Two short prompts waiting together while nothing generates, 80 tokens against a budget of
// 64: both go in whole, in one step (llama.cpp computes it in two passes), instead of the
// second's last 16 tokens making a step of their own beside the first's first token.
TEST_F(BatchEngineTest, ShortPromptsWaitingTogetherStartInOneStep) {
  // The first step (a one-token answer's prompt, alone) waits until both prompts are queued.
  std::promise<void> entered, queued;
  std::shared_future<void> gate = queued.get_future().share();
  std::atomic<bool> first{true};
  auto e = start({1024, 3, 64, 64}, [&first, &entered, gate](DecodeEdge edge) {
    if (edge == DecodeEdge::begin && first.exchange(false)) {
      entered.set_value();
      gate.wait();
    }
  });
  e->tell(admit(1, prompt(0), 1));
  entered.get_future().wait();
  e->tell(admit(2, prompt(1, 40), 3));
  e->tell(admit(3, prompt(2, 40), 3));
  queued.set_value();
  for (std::uint64_t t : {1, 2, 3})
    rec_.wait_ended(t);
  EXPECT_EQ(rec_.get(2).tokens.size(), 3u);
  EXPECT_EQ(rec_.get(3).tokens.size(), 3u);
  EXPECT_EQ(e->counters().prefill_steps.load(), 2);  // the one-token answer's, then both
  EXPECT_EQ(e->counters().decode_steps.load(), 4);   // and two generation steps
}

TEST_F(BatchEngineTest, ContextFullEndsWithContextFull) {
  auto e = start({512, 2, 128, 64});
  const auto n_prompt = static_cast<std::size_t>(e->n_ctx_seq() - 4);
  e->tell(admit(1, prompt(5, n_prompt), 100000));
  rec_.wait_ended(1);
  const auto s = rec_.get(1);
  ASSERT_FALSE(s.tokens.empty());
  EXPECT_EQ(s.tokens.back().end, EngineEnd::context_full);
  EXPECT_EQ(s.tokens.size(), 5u);  // 4 more positions decoded, the 5th token has no room
}

// --kv-unified: one pool of cells; a request may use all of it, where a stream per sequence
// would give it a quarter.
TEST_F(BatchEngineTest, UnifiedCacheLetsOneRequestUseTheWholeContext) {
  auto split = start({1024, 4, 128, 64});
  EXPECT_EQ(split->n_ctx_seq(), 256);
  EXPECT_EQ(split->n_cells(), 1024);
  split.reset();
  BatchEngineConfig cfg{1024, 4, 128, 64};
  cfg.kv_unified = true;
  auto e = start(cfg);
  EXPECT_EQ(e->n_ctx_seq(), 1024);
  EXPECT_EQ(e->n_cells(), 1024);
  e->tell(admit(1, prompt(1, 900), 8));
  e->tell(admit(2, prompt(2, 20), 8));  // a short one beside it
  rec_.wait_ended(1);
  rec_.wait_ended(2);
  EXPECT_FALSE(rec_.get(1).error);
  EXPECT_EQ(rec_.get(1).tokens.size(), 8u);
  EXPECT_EQ(rec_.get(2).tokens.size(), 8u);
  // Alone, a sequence ends where the pool does.
  e->tell(admit(3, prompt(3, 1012), 100000));
  rec_.wait_ended(3);
  const auto s = rec_.get(3);
  ASSERT_EQ(s.tokens.size(), 13u);  // 12 more positions decoded, the 13th token has no room
  EXPECT_EQ(s.tokens.back().end, EngineEnd::context_full);
  EXPECT_EQ(e->counters().preemptions.load(), 0);
}

// Idle slots keep their prompts' cells for reuse until a new prompt needs the room: then the
// cache freed longest ago goes first.
TEST_F(BatchEngineTest, UnifiedCacheEvictsTheOldestIdleCacheForANewPrompt) {
  const auto a = prompt(10, 200);
  const auto b = prompt(11, 200);
  auto e = evict_first_of_three(a, b, /*host_cache_bytes=*/0);
  e->tell(admit(4, b, 4));  // b's cache stayed
  rec_.wait_released(4);
  EXPECT_EQ(rec_.get(4).started->cached_tokens, 199);
  e->tell(admit(5, a, 4));  // a's did not
  rec_.wait_released(5);
  EXPECT_EQ(rec_.get(5).started->cached_tokens, 0);
}

// With --cache-ram the evicted cache goes to host memory and the prompt that returns to it
// restores it into another slot (making room by evicting the oldest idle cache there).
TEST_F(BatchEngineTest, UnifiedCacheRestoresAnEvictedPromptFromHostMemory) {
  const auto a = prompt(10, 200);
  const auto b = prompt(11, 200);
  auto e = evict_first_of_three(a, b, /*host_cache_bytes=*/64 << 20);
  EXPECT_EQ(e->counters().host_cache_stores.load(), 1);  // a's cells went to host memory
  e->tell(admit(5, a, 4));  // restored; b's idle cache, the oldest, makes room
  rec_.wait_released(5);
  EXPECT_EQ(rec_.get(5).started->cached_tokens, 199);
  EXPECT_EQ(e->counters().host_cache_restores.load(), 1);
  EXPECT_EQ(e->counters().cache_evictions.load(), 2);
  EXPECT_EQ(ids(rec_.get(5)), ids(rec_.get(1)));
  e->tell(admit(6, b, 4));  // and b's from host memory in turn
  rec_.wait_released(6);
  EXPECT_EQ(rec_.get(6).started->cached_tokens, 199);
  EXPECT_EQ(ids(rec_.get(6)), ids(rec_.get(2)));
  EXPECT_EQ(e->counters().host_cache_restores.load(), 2);
  EXPECT_EQ(e->counters().refused_steps.load(), 0);
}

// Two sequences whose tokens outgrow the pool: the younger gives its cells back and is
// recomputed once the older one ends. Both send exactly the tokens asked for, none twice,
// and each answer is the one it gives alone, as far as greedy decoding of a random model can
// tell (vLLM's criterion).
TEST_F(BatchEngineTest, UnifiedCachePreemptsTheYoungestAndRecomputesIt) {
  expect_preempted_answers_as_alone(/*host_cache_bytes=*/0);
}

// With --cache-ram the preempted sequence's cells go to host memory and come back from there
// when it fits again, instead of being recomputed: the same answers.
TEST_F(BatchEngineTest, UnifiedCachePreemptsTheYoungestAndRestoresItFromHostMemory) {
  expect_preempted_answers_as_alone(/*host_cache_bytes=*/64 << 20);
}

// Two sequences (tickets 2 and 3) on one 300-token prompt, generating `max_tokens` each in a
// pool of 512 cells, both starting from the cache a first request left: the one on that slot in
// place, the other through a copy, so that they share the prompt's cells. run_two returns the
// engine once both have finished.
class UnifiedSharedPrefix : public BatchEngineTest {
 protected:
  std::unique_ptr<BatchEngine> run_two(int seed, std::int32_t max_tokens) {
    BatchEngineConfig cfg{512, 2, 512, 512};
    cfg.kv_unified = true;
    auto e = start(cfg);
    const auto p = prompt(seed, 300);
    e->tell(admit(1, p, 1));
    rec_.wait_released(1);
    e->tell(admit(2, p, max_tokens));
    e->tell(admit(3, p, max_tokens));
    rec_.wait_released(2);
    rec_.wait_released(3);
    for (std::uint64_t t : {2u, 3u}) {
      const auto s = rec_.get(t);
      EXPECT_FALSE(s.error);
      EXPECT_EQ(s.started->cached_tokens, 299);
      EXPECT_EQ(s.tokens.size(), static_cast<std::size_t>(max_tokens));
    }
    EXPECT_EQ(e->counters().refused_steps.load(), 0);  // the count saw it coming
    return e;
  }
};

// 2 x 400 positions, about 500 distinct cells: the pool holds them although the sum of their
// lengths would not fit, and nobody is preempted on the strength of that sum.
TEST_F(UnifiedSharedPrefix, CountsTheSharedCellsOnce) {
  auto e = run_two(30, 100);
  EXPECT_EQ(e->counters().preemptions.load(), 0);
}

// 300 shared + 2 x 150: more than 512. The younger sequence gives its cells back before
// llama.cpp would refuse a step, and both finish.
TEST_F(UnifiedSharedPrefix, OutgrowingThePoolPreemptsTheYoungest) {
  auto e = run_two(31, 150);
  EXPECT_GE(e->counters().preemptions.load(), 1);
  EXPECT_EQ(e->counters().cells_live.load(), 0);
}

TEST_F(BatchEngineTest, FatalErrorFailsInFlightAndLaterAdmissions) {
  auto e = start({512, 2, 128, 64});
  e->tell(admit(1, prompt(1), 100000));
  rec_.wait_tokens(1, 1);
  e->tell(FailEngine{Error{Errc::engine_failed, "injected"}});
  rec_.wait_released(1);
  EXPECT_EQ(rec_.get(1).error->code, Errc::engine_failed);
  e->tell(admit(2, prompt(2), 4));
  rec_.wait_released(2);
  EXPECT_EQ(rec_.get(2).error->message, "injected");
}

TEST_F(BatchEngineTest, IdleEngineRunsNoLoopIterations) {
  auto e = start({512, 2, 128, 64});
  e->tell(admit(1, prompt(1), 8));
  rec_.wait_ended(1);
  snapshot(*e);  // the engine has handled everything sent so far
  // Let it reach its blocking wait, then prove it stays there: this sleep observes the
  // absence of activity, it synchronises nothing.
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  const auto before = e->counters().loop_iterations.load();
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  EXPECT_EQ(e->counters().loop_iterations.load(), before);
}

// What GET /slots shows: a generating sequence's prompt, cached prefix, tokens so far and limit
// while it runs (each decode is held 20 ms, so 1000 tokens outlast the ask by far), then the
// slot free again with its cells cached. A second request with the same prompt finds it cached.
TEST_F(BatchEngineTest, SnapshotShowsEachSlotsCounts) {
  auto hook = [](DecodeEdge edge) {
    if (edge == DecodeEdge::begin)
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
  };
  BatchEngineConfig cfg{4096, 2, 256, 256};
  auto e = start(cfg, hook);
  const auto p = prompt(3, 40);
  e->tell(admit(1, p, 4));
  rec_.wait_released(1);
  e->tell(admit(2, p, 1000));
  rec_.wait_tokens(2, 3);
  const EngineSnapshot busy = snapshot(*e);
  ASSERT_EQ(busy.slots.size(), 2u);
  const auto it =
      std::find_if(busy.slots.begin(), busy.slots.end(), [](const auto& s) { return s.busy; });
  ASSERT_NE(it, busy.slots.end());
  EXPECT_EQ(
      std::count_if(busy.slots.begin(), busy.slots.end(), [](const auto& s) { return s.busy; }), 1);
  EXPECT_EQ(it->ticket, 2u);
  EXPECT_TRUE(it->generating);
  EXPECT_FALSE(it->embed);
  EXPECT_EQ(it->n_prompt, 40);
  EXPECT_EQ(it->cached, 39);  // all but the last prompt token, whose logits it needs
  EXPECT_GE(it->generated, 3);
  EXPECT_LT(it->generated, 1000);
  EXPECT_EQ(it->max_tokens, 1000);
  e->tell(ReleaseSequence{2, /*drop_cache=*/false});
  rec_.wait_released(2);
  const EngineSnapshot after = snapshot(*e);
  for (const auto& s : after.slots)
    EXPECT_FALSE(s.busy);
  EXPECT_GT(after.slots[static_cast<std::size_t>(it - busy.slots.begin())].n_past, 40);
}

TEST_F(BatchEngineTest, EnginesOfOneProcessTakeTurnsAtDecoding) {
  // Two engines (two contexts of one model) that take turns generate at the same time; their
  // decodes must never overlap. Each decode is held open a moment (the hook's sleep), so that
  // without turns the other engine's decode would start inside it: this widens the window, it
  // synchronises nothing.
  std::atomic<int> decoding{0};
  std::atomic<int> most{0};
  std::atomic<int> decodes{0};
  auto hook = [&](DecodeEdge edge) {
    if (edge == DecodeEdge::end) {
      decoding.fetch_sub(1);
      return;
    }
    const int now = decoding.fetch_add(1) + 1;
    int seen = most.load();
    while (now > seen && !most.compare_exchange_weak(seen, now)) {
    }
    decodes.fetch_add(1);
    std::this_thread::sleep_for(std::chrono::microseconds(300));
  };
  BatchEngineConfig cfg{512, 2, 128, 64};
  cfg.cpu_share = CpuShare::turns;  // automatic: split on the CPU
  auto a = start(cfg, hook);
  auto b = start(cfg, hook);
  for (std::uint64_t t = 1; t <= 2; ++t) {
    a->tell(admit(t, prompt(static_cast<int>(t)), 24));
    b->tell(admit(t + 10, prompt(static_cast<int>(t + 10)), 24));
  }
  for (std::uint64_t t : {1, 2, 11, 12}) {
    rec_.wait_ended(t);
    EXPECT_EQ(rec_.get(t).tokens.size(), 24u) << "ticket " << t;
  }
  EXPECT_GE(decodes.load(), 2 * 24);
  EXPECT_EQ(most.load(), 1) << "two engines decoded at the same time";
}

TEST_F(BatchEngineTest, BusyEnginesOfOneProcessSplitTheirThreads) {
  // Two engines of two threads each: alone, an engine decodes on both; while the other is busy,
  // on one; alone again, on both. The other engine is held inside its first decode (busy) by
  // its hook until the first has begun two decodes beside it: the second of those planned its
  // threads after the other was busy, whatever the threads' timing.
  BatchEngineConfig cfg{512, 2, 128, 64};
  cfg.n_threads = 2;
  cfg.cpu_share = CpuShare::split;
  enum class Phase { alone, beside_b, alone_again };
  std::mutex mu;
  std::condition_variable cv;
  Phase phase = Phase::alone;
  std::map<Phase, std::vector<std::int32_t>> a_threads;
  BatchEngine* a_engine = nullptr;
  auto a_hook = [&](DecodeEdge edge) {
    if (edge != DecodeEdge::begin)
      return;
    std::unique_lock lock(mu);
    a_threads[phase].push_back(a_engine->counters().decode_threads.load());
    cv.notify_all();
    // Alone, its third decode (two tokens out) waits for the other's first: however slowly the
    // other starts, this one is still running beside it.
    if (phase == Phase::alone && a_threads[Phase::alone].size() >= 3)
      cv.wait_for(lock, std::chrono::seconds(30), [&] { return phase != Phase::alone; });
  };
  auto b_hook = [&](DecodeEdge edge) {
    if (edge != DecodeEdge::begin)
      return;
    std::unique_lock lock(mu);
    if (phase != Phase::alone)
      return;  // its first decode only
    phase = Phase::beside_b;
    cv.notify_all();
    cv.wait_for(lock, std::chrono::seconds(30),
                [&] { return a_threads[Phase::beside_b].size() >= 2; });
  };
  auto a = start(cfg, a_hook);
  auto b = start(cfg, b_hook);
  a_engine = a.get();
  a->tell(admit(1, prompt(1), 48));
  rec_.wait_tokens(1, 2);
  b->tell(admit(2, prompt(2), 4));
  rec_.wait_ended(2);
  rec_.wait_ended(1);
  // Both idle now, or soon: an engine says so right before it blocks on its mailbox.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (CoreShare::process().busy_count() > 0 && std::chrono::steady_clock::now() < deadline)
    std::this_thread::yield();
  ASSERT_EQ(CoreShare::process().busy_count(), 0) << "an engine with nothing to do stays busy";
  {
    std::lock_guard lock(mu);
    phase = Phase::alone_again;
  }
  a->tell(admit(3, prompt(3), 8));
  rec_.wait_ended(3);
  std::lock_guard lock(mu);
  ASSERT_FALSE(a_threads[Phase::alone].empty());
  EXPECT_EQ(a_threads[Phase::alone].front(), 2) << "an engine alone decodes on all its threads";
  ASSERT_GE(a_threads[Phase::beside_b].size(), 2u) << "it stopped before the other was busy";
  EXPECT_EQ(a_threads[Phase::beside_b][1], 1) << "beside another busy engine: one of two";
  ASSERT_FALSE(a_threads[Phase::alone_again].empty());
  for (std::int32_t t : a_threads[Phase::alone_again])
    EXPECT_EQ(t, 2) << "alone again: all of them back";
}

// Models whose memory cannot be cut back to any token (the suites below): the engine's
// configuration for them, and answers compared token by token.
class UncuttableMemoryTest : public BatchEngineTest {
 protected:
  void load(const std::string& path) {
    auto m = LlamaModel::load({path});
    ASSERT_TRUE(m) << m.error().message;
    model_ = std::move(m.value());
    path_ = path;
  }

  // llama.cpp's count of a dry run (memory_use.hpp) is what the engine's context allocates,
  // with every cell of the windowed layers (swa_full) or the window's, in one pool or a
  // stream per sequence.
  void expect_a_dry_run_counts_what_the_engine_allocates() {
    if (!memory_use_known())
      GTEST_SKIP() << "this build of llama.cpp has no memory account";
    for (const bool swa_full : {false, true}) {
      for (const bool unified : {false, true}) {
        SCOPED_TRACE(::testing::Message() << "swa_full " << swa_full << " unified " << unified);
        BatchEngineConfig cfg = config(2, unified, swa_full);
        cfg.n_threads = 1;
        const auto planned = planned_memory_use(path_, cfg);
        ASSERT_TRUE(planned) << planned.error().message;
        ASSERT_TRUE(planned->has_value());
        auto e = start(cfg);
        ASSERT_TRUE(e && e->memory_use());
        EXPECT_EQ((*planned)->weights, e->memory_use()->weights);
        EXPECT_EQ((*planned)->context, e->memory_use()->context);
        EXPECT_EQ((*planned)->compute, e->memory_use()->compute);
        EXPECT_GT((*planned)->context, 0u);
      }
    }
  }

  // 2,048 cells a sequence, steps of 64 tokens: a window of 16 keeps 256 cells a stream.
  static BatchEngineConfig config(std::int32_t n_parallel, bool unified, bool swa_full) {
    BatchEngineConfig cfg{unified ? 2048 : 2048 * n_parallel, n_parallel, 64, 64};
    cfg.kv_unified = unified;
    cfg.swa_full = swa_full;
    return cfg;
  }

  // One slot keeping up to `checkpoints` checkpoints.
  std::unique_ptr<BatchEngine> start_one_slot(std::int32_t checkpoints) {
    BatchEngineConfig cfg = config(1, false, false);
    cfg.ctx_checkpoints = checkpoints;
    return start(cfg);
  }

  // Each token's log-probability within `tolerance` of the other run's, token by token.
  static void expect_same_answer(const Recorder::Seq& a, const Recorder::Seq& b, double tolerance) {
    ASSERT_EQ(a.tokens.size(), b.tokens.size());
    for (std::size_t i = 0; i < a.tokens.size(); ++i) {
      ASSERT_EQ(a.tokens[i].token, b.tokens[i].token) << "token " << i;
      EXPECT_NEAR(a.tokens[i].logprob, b.tokens[i].logprob, tolerance) << "token " << i;
    }
  }

  // The next turn of a conversation whose long answer comes back rendered otherwise (its
  // reasoning dropped): a 600-token prompt (from `seed`) answered with `answer_tokens`, then
  // the prompt and 30 other tokens. With checkpoints the one taken when the prompt had been
  // computed serves its 600 tokens; without, they are computed again; both answer as a fresh
  // computation does. Another prompt, too short to checkpoint, then leaves no checkpoint.
  void expect_a_checkpoint_serves_the_next_turn(int seed, std::int32_t answer_tokens) {
    const auto a = prompt(seed, 600);
    const auto next = joined({a, prompt(seed + 1, 30)});
    const auto computed = fresh_answer(next, 1);
    for (const std::int32_t checkpoints : {8, 0}) {
      SCOPED_TRACE(checkpoints);
      const std::uint64_t t = checkpoints > 0 ? 10 : 20;
      auto e = start_one_slot(checkpoints);
      e->tell(admit(t, a, answer_tokens));
      rec_.wait_released(t);
      EXPECT_EQ(e->counters().checkpoint_bytes.load() > 0, checkpoints > 0);
      e->tell(admit(t + 1, next, 8));
      rec_.wait_released(t + 1);
      const auto turn = rec_.get(t + 1);
      ASSERT_TRUE(turn.started);
      EXPECT_EQ(turn.started->cached_tokens, checkpoints > 0 ? 600 - before_end_ : 0);
      EXPECT_EQ(e->counters().checkpoint_restores.load(), checkpoints > 0 ? 1 : 0);
      expect_same_answer(turn, computed, 0.02);
      e->tell(admit(t + 2, prompt(46, 8), 2));
      rec_.wait_released(t + 2);
      EXPECT_EQ(e->counters().checkpoint_bytes.load(), 0);
    }
  }

  // --cache-ram: a conversation displaced from the only slot by another prompt comes back
  // from host memory for its next turn (all its tokens: a recurrent state serves no fewer),
  // answering as a fresh computation does; a prompt that shares only the conversation's first
  // 40 tokens is computed again.
  void expect_the_host_cache_brings_back_a_displaced_conversation() {
    const auto a = prompt(52, 300);
    BatchEngineConfig cfg = config(1, false, false);
    cfg.host_cache_bytes = 64 << 20;
    auto e = start(cfg);
    e->tell(admit(1, a, 8));
    rec_.wait_released(1);
    e->tell(admit(2, prompt(53, 100), 4));  // takes the slot: the conversation is stored
    rec_.wait_released(2);
    EXPECT_EQ(e->counters().host_cache_stores.load(), 1);
    const auto next = joined({a, ids(rec_.get(1)), prompt(54, 20)});
    e->tell(admit(3, next, 8));
    rec_.wait_released(3);
    EXPECT_EQ(rec_.get(3).started->cached_tokens, 300 + 7);
    EXPECT_EQ(e->counters().host_cache_restores.load(), 1);
    const auto cut = joined({std::vector<Token>(a.begin(), a.begin() + 40), prompt(55, 20)});
    e->tell(admit(4, cut, 8));
    rec_.wait_released(4);
    EXPECT_EQ(rec_.get(4).started->cached_tokens, 0);
    EXPECT_EQ(e->counters().host_cache_restores.load(), 1);
    e.reset();
    expect_same_answer(rec_.get(3), fresh_answer(next, 5), 0.02);
    expect_same_answer(rec_.get(4), fresh_answer(cut, 6), 1e-4);
  }

  // --cache-ram: the conversation of expect_a_checkpoint_serves_the_next_turn, displaced from
  // the only slot by another prompt before its next turn, comes back from host memory with its
  // checkpoint (600 tokens); the slot keeps the stored checkpoints, so a third turn rendered
  // otherwise again is served from the slot's. Both answer as a fresh computation does.
  void expect_the_host_cache_keeps_a_displaced_conversations_checkpoints(int seed,
                                                                         std::int32_t answer) {
    const auto a = prompt(seed, 600);
    BatchEngineConfig cfg = config(1, false, false);
    cfg.host_cache_bytes = 256 << 20;
    auto e = start(cfg);
    e->tell(admit(1, a, answer));
    rec_.wait_released(1);
    e->tell(admit(2, prompt(seed + 1, 100), 4));  // takes the slot: the conversation is stored
    rec_.wait_released(2);
    EXPECT_EQ(e->counters().host_cache_stores.load(), 1);
    const auto second = joined({a, prompt(seed + 2, 30)});
    e->tell(admit(3, second, answer));
    rec_.wait_released(3);
    EXPECT_EQ(rec_.get(3).started->cached_tokens, 600 - before_end_);
    EXPECT_EQ(e->counters().host_cache_restores.load(), 1);
    EXPECT_EQ(e->counters().checkpoint_restores.load(), 1);
    const auto third = joined({a, prompt(seed + 3, 30)});
    e->tell(admit(4, third, 8));
    rec_.wait_released(4);
    EXPECT_EQ(rec_.get(4).started->cached_tokens, 600 - before_end_);
    EXPECT_EQ(e->counters().host_cache_restores.load(), 1);
    EXPECT_EQ(e->counters().checkpoint_restores.load(), 2);
    e.reset();
    expect_same_answer(rec_.get(3), fresh_answer(second, 5, answer), 0.02);
    expect_same_answer(rec_.get(4), fresh_answer(third, 6), 0.02);
  }

  // How many tokens before its prompt's end a checkpoint is taken: 4 for a recurrent state
  // (EngineLoop::checkpoint).
  std::int32_t before_end_ = 0;
  std::string path_;  // the model's file

  // The answer to `p` on a fresh engine (ticket t).
  Recorder::Seq fresh_answer(const std::vector<Token>& p, std::uint64_t t,
                             std::int32_t max_tokens = 8) {
    auto fresh = start(config(1, false, false));
    fresh->tell(admit(t, p, max_tokens));
    rec_.wait_released(t);
    return rec_.get(t);
  }
};

// A model with sliding-window attention (a window of 16 tokens on three layers of four): with
// the window's cells only (the default, llama-server's), a prompt that shares a prefix with a
// slot's longer cached one, cut further back than the window, is computed again (its windowed
// layers' cells are gone: reused, the answer is another model's), from the same slot, another
// slot, or the pool; a conversation that goes on reuses all its cells; with every cell kept
// (swa_full) the prefix is reused.
class SlidingWindowTest : public UncuttableMemoryTest {
 protected:
  void SetUp() override { load(test::generated_swa_model(16)); }
};

TEST_F(SlidingWindowTest, APrefixCutBehindTheWindowIsComputedAgain) {
  const auto a = prompt(40, 600);
  auto b = std::vector<Token>(a.begin(), a.begin() + 40);
  const auto tail = prompt(41, 30);
  b.insert(b.end(), tail.begin(), tail.end());
  auto fresh = start(config(1, false, false));
  fresh->tell(admit(1, b, 12));
  rec_.wait_released(1);
  fresh.reset();
  const auto computed = rec_.get(1);
  ASSERT_EQ(computed.tokens.size(), 12u);
  std::uint64_t t = 10;
  struct Case {
    const char* name;
    std::int32_t n_parallel;
    bool unified;
  };
  for (const Case c : {Case{"the same slot", 1, false}, Case{"another slot", 2, false},
                       Case{"one pool", 2, true}}) {
    SCOPED_TRACE(c.name);
    auto e = start(config(c.n_parallel, c.unified, false));
    // In two slots the first prompt stays live in slot 0 while the second starts in slot 1.
    const bool live = c.n_parallel > 1;
    e->tell(admit(t, a, live ? 100000 : 4));
    if (live)
      rec_.wait_tokens(t, 2);
    else
      rec_.wait_released(t);
    e->tell(admit(t + 1, b, 12));
    rec_.wait_released(t + 1);
    const auto again = rec_.get(t + 1);
    ASSERT_TRUE(again.started) << (again.error ? again.error->message : "no start");
    EXPECT_EQ(again.started->cached_tokens, 0);
    expect_same_answer(again, computed, 1e-4);
    if (live) {
      e->tell(ReleaseSequence{t, true});
      rec_.wait_released(t);
    }
    t += 2;
  }
  // Every cell kept: the 40 tokens are reused, and the answer is the same up to rounding.
  auto full = start(config(1, false, true));
  full->tell(admit(t, a, 4));
  rec_.wait_released(t);
  full->tell(admit(t + 1, b, 12));
  rec_.wait_released(t + 1);
  const auto reused = rec_.get(t + 1);
  EXPECT_EQ(reused.started->cached_tokens, 40);
  expect_same_answer(reused, computed, 0.02);
}

TEST_F(SlidingWindowTest, AConversationThatGoesOnReusesItsCells) {
  const auto a = prompt(42, 600);
  auto e = start(config(1, false, false));
  e->tell(admit(1, a, 8));
  rec_.wait_released(1);
  // The next turn: the prompt, the answer (its last token not yet in the cache) and more.
  auto next = joined({a, ids(rec_.get(1)), prompt(43, 20)});
  e->tell(admit(2, next, 8));
  rec_.wait_released(2);
  EXPECT_EQ(rec_.get(2).started->cached_tokens, 600 + 7);
  e.reset();
  auto fresh = start(config(1, false, false));
  fresh->tell(admit(3, next, 8));
  rec_.wait_released(3);
  expect_same_answer(rec_.get(2), rec_.get(3), 0.02);
}

// The slot's window moved past the prompt while it answered (300 tokens).
TEST_F(SlidingWindowTest, ACheckpointServesThePromptWhoseAnswerIsRenderedOtherwise) {
  expect_a_checkpoint_serves_the_next_turn(44, 300);
}

// A state llama.cpp writes holds a windowed layer's last n_swa positions only: a checkpoint
// serves its whole prompt (or all but its last token), never a prompt cut 10 tokens before
// its end, which is computed again.
TEST_F(SlidingWindowTest, ACheckpointServesNoPromptCutBeforeItsEnd) {
  const auto a = prompt(56, 600);
  const auto cut = joined({std::vector<Token>(a.begin(), a.begin() + 590), prompt(57, 30)});
  auto e = start(config(1, false, false));
  e->tell(admit(1, a, 300));
  rec_.wait_released(1);
  e->tell(admit(2, cut, 8));
  rec_.wait_released(2);
  EXPECT_EQ(rec_.get(2).started->cached_tokens, 0);
  EXPECT_EQ(e->counters().checkpoint_restores.load(), 0);
  e.reset();
  expect_same_answer(rec_.get(2), fresh_answer(cut, 3), 1e-4);
}

TEST_F(SlidingWindowTest, ADryRunCountsWhatTheEngineAllocates) {
  expect_a_dry_run_counts_what_the_engine_allocates();
}

TEST_F(SlidingWindowTest, TheHostCacheBringsBackADisplacedConversation) {
  expect_the_host_cache_brings_back_a_displaced_conversation();
}

TEST_F(SlidingWindowTest, TheHostCacheKeepsADisplacedConversationsCheckpoints) {
  expect_the_host_cache_keeps_a_displaced_conversations_checkpoints(61, 300);
}

// A slot file (llama.cpp's state of a sequence) holds a windowed layer's last n_swa positions
// only, even where the slot kept every cell (swa_full): once restored, it serves a prompt that
// goes on from its end, and a prompt cut before it is computed again.
TEST_F(SlidingWindowTest, ARestoredSlotFileServesOnlyPromptsThatGoOnFromItsEnd) {
  const auto dir =
      std::filesystem::temp_directory_path() / fmt::format("troupe-swa-slot-{}", ::getpid());
  std::filesystem::create_directories(dir);
  const auto act = [&](BatchEngine& e, SlotActionKind kind) {
    SlotAction m;
    m.kind = kind;
    m.slot = 0;
    m.path = kind == SlotActionKind::erase ? std::string() : (dir / "a.bin").string();
    auto r = e.ref().ask_blocking(std::move(m), actor::kNoTimeout);
    EXPECT_TRUE(r) << r.error().message;
  };
  const auto a = prompt(58, 300);
  auto e = start(config(1, false, true));
  e->tell(admit(1, a, 8));
  rec_.wait_released(1);
  act(*e, SlotActionKind::save);
  act(*e, SlotActionKind::erase);
  act(*e, SlotActionKind::restore);
  const auto cut = joined({std::vector<Token>(a.begin(), a.begin() + 200), prompt(59, 20)});
  e->tell(admit(2, cut, 8));
  rec_.wait_released(2);
  EXPECT_EQ(rec_.get(2).started->cached_tokens, 0);
  act(*e, SlotActionKind::restore);
  const auto next = joined({a, ids(rec_.get(1)), prompt(60, 20)});
  e->tell(admit(3, next, 8));
  rec_.wait_released(3);
  EXPECT_EQ(rec_.get(3).started->cached_tokens, 300 + 7);
  e.reset();
  std::filesystem::remove_all(dir);
  expect_same_answer(rec_.get(2), fresh_answer(cut, 4), 1e-4);
  expect_same_answer(rec_.get(3), fresh_answer(next, 5), 0.02);
}

// A hybrid model (short convolutions with a recurrent state, attention on every third layer):
// its state is that of all a slot's tokens, so a cached prefix serves only a prompt that
// begins with every one of them (a conversation that goes on) or with a checkpoint's (the
// prompt of a turn whose answer comes back rendered otherwise); any other is computed again.
class HybridMemoryTest : public UncuttableMemoryTest {
 protected:
  void SetUp() override {
    load(test::generated_hybrid_model());
    before_end_ = 4;
  }
};

TEST_F(HybridMemoryTest, AConversationThatGoesOnReusesItsState) {
  const auto a = prompt(47, 300);
  auto e = start(config(2, false, false));
  e->tell(admit(1, a, 8));
  rec_.wait_released(1);
  const auto next = joined({a, ids(rec_.get(1)), prompt(48, 20)});
  e->tell(admit(2, next, 8));
  rec_.wait_released(2);
  EXPECT_EQ(rec_.get(2).started->cached_tokens, 300 + 7);
  // The same prompt cut short: the state cannot be cut back to it.
  const auto cut = joined({std::vector<Token>(a.begin(), a.begin() + 100), prompt(49, 20)});
  e->tell(admit(3, cut, 8));
  rec_.wait_released(3);
  EXPECT_EQ(rec_.get(3).started->cached_tokens, 0);
  e.reset();
  expect_same_answer(rec_.get(2), fresh_answer(next, 4), 0.02);
  expect_same_answer(rec_.get(3), fresh_answer(cut, 5), 1e-4);
}

TEST_F(HybridMemoryTest, ACheckpointServesThePromptWhoseAnswerIsRenderedOtherwise) {
  expect_a_checkpoint_serves_the_next_turn(50, 20);
}

// The same prompt again (an answer regenerated): the checkpoint taken 4 tokens before its end
// serves all the rest, and the answer is the first one's; without checkpoints it is computed
// again.
TEST_F(HybridMemoryTest, TheSamePromptAgainIsServedFromTheCheckpointBeforeItsEnd) {
  const auto a = prompt(71, 300);
  for (const std::int32_t checkpoints : {8, 0}) {
    SCOPED_TRACE(checkpoints);
    const std::uint64_t t = checkpoints > 0 ? 10 : 20;
    auto e = start_one_slot(checkpoints);
    e->tell(admit(t, a, 8));
    rec_.wait_released(t);
    e->tell(admit(t + 1, a, 8));
    rec_.wait_released(t + 1);
    EXPECT_EQ(rec_.get(t + 1).started->cached_tokens, checkpoints > 0 ? 296 : 0);
    EXPECT_EQ(e->counters().checkpoint_restores.load(), checkpoints > 0 ? 1 : 0);
    e.reset();
    expect_same_answer(rec_.get(t + 1), rec_.get(t), 0.02);
  }
}

TEST_F(HybridMemoryTest, ADryRunCountsWhatTheEngineAllocates) {
  expect_a_dry_run_counts_what_the_engine_allocates();
}

TEST_F(HybridMemoryTest, TheHostCacheBringsBackADisplacedConversation) {
  expect_the_host_cache_brings_back_a_displaced_conversation();
}

TEST_F(HybridMemoryTest, TheHostCacheKeepsADisplacedConversationsCheckpoints) {
  expect_the_host_cache_keeps_a_displaced_conversations_checkpoints(66, 20);
}

}  // namespace
}  // namespace troupe::engine
