// Grammar-constrained sampling on the random-weight tiny model: the output matches the
// grammar (a choice, a small JSON object) on every sampling path; a lazy grammar constrains
// only after its trigger (a pattern, a token); batched equals alone; an invalid grammar is
// refused before admission with param "grammar"; the sim backend refuses any grammar.
#include <gtest/gtest.h>

#include <condition_variable>
#include <map>
#include <mutex>
#include <regex>
#include <set>

#include "actor/actor_system.hpp"
#include "engine/batch_engine.hpp"
#include "engine/coordinator.hpp"
#include "engine/sim_backend.hpp"
#include "engine_test_util.hpp"

namespace troupe::engine {
namespace {

using testing::collect;
using testing::run_sync;

const char* const kJson = R"(root ::= "{" ws "\"name\":" ws str "," ws "\"n\":" ws num ws "}"
str ::= "\"" [a-z]{1,6} "\""
num ::= [0-9]{1,3}
ws ::= " "?
)";
const std::regex kJsonText(R"(\{ ?"name": ?"[a-z]{1,6}", ?"n": ?[0-9]{1,3} ?\})");

class GrammarTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    EngineOptions o;
    o.model_path = testing::tiny_model();
    o.model_id = "tiny";
    o.engine.n_threads = 1;
    o.engine.n_ctx = 2048;
    o.engine.n_parallel = 4;
    coordinator_ = std::make_unique<Coordinator>(std::move(o));
    ASSERT_EQ(coordinator_->wait_loaded().state, HealthState::ready);
  }
  static void TearDownTestSuite() { coordinator_.reset(); }

  static Task task(GrammarSpec g, float temperature, std::uint32_t seed, int max_tokens = 64) {
    Task t;
    t.prompt = std::string("Once upon a time");
    t.sampling.temperature = temperature;
    t.sampling.top_k = 0;  // no filter (unset: the server's default filters)
    t.sampling.top_p = 1.0f;
    t.sampling.min_p = 0.0f;
    t.sampling.seed = seed;
    t.sampling.grammar = std::move(g);
    t.stop.max_tokens = max_tokens;
    return t;
  }

  static testing::Collected run(Task t) {
    auto s = run_sync(coordinator_->generate(std::move(t)));
    return collect(s);
  }

  static inline std::unique_ptr<Coordinator> coordinator_;
};

TEST_F(GrammarTest, AChoiceGrammarForcesOneOfItsWordsOnEveryPath) {
  const GrammarSpec yes_no{R"(root ::= "yes" | "no")", false, {}, {}};
  std::set<std::string> seen;
  for (std::uint32_t seed = 1; seed <= 6; ++seed) {
    for (float temperature : {0.0f, 1.0f}) {
      auto t = task(yes_no, temperature, seed);
      if (seed % 2 == 0) {  // llama-server's default filters
        t.sampling.top_k = 40;
        t.sampling.top_p = 0.95f;
        t.sampling.min_p = 0.05f;
      }
      if (seed == 5)
        t.sampling.repeat_penalty = 1.1f;  // llama.cpp's chain
      auto r = run(std::move(t));
      ASSERT_FALSE(r.error) << r.error->message;
      EXPECT_TRUE(r.text == "yes" || r.text == "no") << "'" << r.text << "'";
      ASSERT_TRUE(r.finished);
      EXPECT_EQ(r.finished->reason, FinishReason::stop) << "the grammar is complete: EOG";
      seen.insert(r.text);
    }
  }
  // Without the grammar the random model writes other text (the grammar does the work).
  auto free = task(yes_no, 0.0f, 1, 8);
  free.sampling.grammar.reset();
  free.stop.ignore_eos = true;
  EXPECT_NE(run(std::move(free)).text.substr(0, 3), "yes");
}

TEST_F(GrammarTest, AJsonGrammarForcesAWellFormedObject) {
  for (std::uint32_t seed = 1; seed <= 4; ++seed) {
    for (float temperature : {0.0f, 0.8f, 1.5f}) {
      auto r = run(task({kJson, false, {}, {}}, temperature, seed, 96));
      ASSERT_FALSE(r.error) << r.error->message;
      EXPECT_TRUE(std::regex_match(r.text, kJsonText)) << r.text;
      ASSERT_TRUE(r.finished);
      EXPECT_EQ(r.finished->reason, FinishReason::stop);
    }
  }
}

TEST_F(GrammarTest, ACompleteGrammarEndsTheSequenceEvenWithIgnoreEos) {
  auto t = task({R"(root ::= "no")", false, {}, {}}, 1.0f, 3);
  t.stop.ignore_eos = true;
  auto r = run(std::move(t));
  ASSERT_FALSE(r.error) << r.error->message;
  EXPECT_EQ(r.text, "no");
  ASSERT_TRUE(r.finished);
  EXPECT_EQ(r.finished->reason, FinishReason::stop);
}

TEST_F(GrammarTest, ALazyGrammarConstrainsOnlyAfterItsTriggerPattern) {
  // Free text until the first "e"; from there on letters, a colon, three digits, the end.
  const GrammarSpec g{R"(root ::= "e" [a-z]{0,12} ":" [0-9] [0-9] [0-9])", true, {"e"}, {}};
  int triggered = 0;
  for (std::uint32_t seed = 1; seed <= 4; ++seed) {
    auto r = run(task(g, 1.0f, seed, 200));
    ASSERT_FALSE(r.error) << r.error->message;
    const auto at = r.text.find('e');
    if (at == std::string::npos)
      continue;  // never triggered: free text throughout
    ++triggered;
    EXPECT_TRUE(std::regex_match(r.text.substr(at), std::regex("e[a-z]{0,12}:[0-9]{3}"))) << r.text;
    EXPECT_GT(at, 0u) << "free text before the trigger: " << r.text;
  }
  EXPECT_GE(triggered, 2) << "the trigger is common in this model's text";
  // The same grammar, not lazy, constrains from the first token.
  auto strict = run(task({g.gbnf, false, {}, {}}, 1.0f, 1, 200));
  EXPECT_TRUE(std::regex_match(strict.text, std::regex("e[a-z]{0,12}:[0-9]{3}"))) << strict.text;
}

TEST_F(GrammarTest, ALazyGrammarConstrainsOnlyAfterItsTriggerToken) {
  // A seeded run without a grammar, to learn the tokens; the trigger is the first token from
  // the third on that did not come before. Until it comes, the lazy grammar changes nothing:
  // the same seed draws the same tokens.
  auto free = task({}, 1.0f, 7, 16);
  free.sampling.grammar.reset();
  free.stop.ignore_eos = true;
  const auto plain = run(std::move(free));
  ASSERT_EQ(plain.tokens.size(), 16u);
  std::size_t at = 2;
  while (at < plain.tokens.size() &&
         std::count(plain.tokens.begin(), plain.tokens.begin() + static_cast<long>(at),
                    plain.tokens[at]) > 0)
    ++at;
  ASSERT_LT(at, plain.tokens.size());
  const Token trigger = plain.tokens[at];
  auto model = LlamaModel::load({testing::tiny_model()});
  ASSERT_TRUE(model) << model.error().message;
  std::string piece;
  (*model)->append_piece(trigger, piece);
  ASSERT_FALSE(piece.empty());
  std::string literal;
  for (char c : piece)
    literal += (c == '"' || c == '\\') ? std::string("\\") + c : std::string(1, c);
  // The grammar starts with the trigger's own text (it is fed the trigger token), then "!42".
  const GrammarSpec g{"root ::= \"" + literal + "\" \"!\" [0-9] [0-9]", true, {}, {trigger}};
  auto lazy = task(g, 1.0f, 7, 48);
  lazy.stop.ignore_eos = true;  // as above: the same suppressed set, the same draws
  auto r = run(std::move(lazy));
  ASSERT_FALSE(r.error) << r.error->message;
  ASSERT_GE(r.tokens.size(), at + 2);
  EXPECT_TRUE(std::equal(plain.tokens.begin(), plain.tokens.begin() + static_cast<long>(at) + 1,
                         r.tokens.begin()))
      << "unconstrained, as without a grammar, up to and including the trigger";
  const auto tail = r.text.substr(r.text.size() - 3);
  EXPECT_TRUE(std::regex_match(tail, std::regex("![0-9]{2}"))) << r.text;
  ASSERT_TRUE(r.finished);
  EXPECT_EQ(r.finished->reason, FinishReason::stop);
}

TEST_F(GrammarTest, AnInvalidGrammarIsRefusedBeforeAdmission) {
  const std::vector<GrammarSpec> bad = {
      {R"(root ::= "unterminated)", false, {}, {}},
      {R"(answer ::= "yes")", false, {}, {}},         // no rule "root"
      {R"(root ::= root "x" | "y")", false, {}, {}},  // left recursion
      {"", false, {}, {}},
      {R"(root ::= "x")", true, {}, {}},             // lazy without a trigger
      {R"(root ::= "x")", true, {"(unclosed"}, {}},  // a pattern that is no regex
      {R"(root ::= "x")", true, {}, {1 << 30}},      // a trigger token out of range
  };
  for (const auto& g : bad) {
    auto r = run(task(g, 1.0f, 1));
    ASSERT_TRUE(r.error) << g.gbnf;
    EXPECT_EQ(r.error->code, Errc::invalid_request) << g.gbnf;
    EXPECT_EQ(r.error->param, "grammar") << g.gbnf;
    EXPECT_FALSE(r.started) << "never admitted";
  }
  EXPECT_EQ(coordinator_->health().state, HealthState::ready);
  auto ok = run(task({R"(root ::= "yes")", false, {}, {}}, 1.0f, 1));  // still serving
  EXPECT_EQ(ok.text, "yes");
  // Triggers on a grammar that is not lazy are ignored (llama.cpp's rule): it constrains.
  auto eager = run(task({R"(root ::= "no")", false, {"(unclosed"}, {1 << 30}}, 1.0f, 1));
  ASSERT_FALSE(eager.error) << eager.error->message;
  EXPECT_EQ(eager.text, "no");
}

TEST(GrammarSim, TheSimBackendRefusesAGrammar) {
  SimOptions o;
  o.decode_tokens_per_s = 1e6;
  auto b = make_sim_backend(o);
  Task t;
  t.prompt = std::string("hello");
  t.sampling.grammar = GrammarSpec{R"(root ::= "yes")", false, {}, {}};
  auto s = run_sync(b->generate(std::move(t)));
  auto r = collect(s);
  ASSERT_TRUE(r.error);
  EXPECT_EQ(r.error->code, Errc::invalid_request);
  EXPECT_EQ(r.error->param, "grammar");
}

// Greedy grammar sequences batched on one engine produce what each produces alone (or, where
// llama.cpp's batched logits differ in the last bits, diverge only between near-equal
// tokens), and every output matches the grammar. The batched engine samples with
// `sampling_threads` (the runs alone: the engine thread).
void check_batched_equals_alone(std::int32_t sampling_threads) {
  auto model = LlamaModel::load({testing::tiny_model()});
  ASSERT_TRUE(model) << model.error().message;
  std::mutex mu;
  std::condition_variable cv;
  std::map<std::uint64_t, std::vector<SampledToken>> out;
  std::set<std::uint64_t> done;
  actor::ActorSystem system;  // the engines' runtime: stops before what their sinks touch
  const auto admit = [&](BatchEngine& e, std::uint64_t ticket, int variant) {
    AdmitSequence a;
    a.ticket = ticket;
    for (int k = 0; k < 8 + variant; ++k)
      a.prompt.push_back(static_cast<Token>(300 + (variant * 41 + k * 13) % 1500));
    a.sampling.temperature = 0.0f;
    a.sampling.logprobs = true;
    a.sampling.top_logprobs = 5;
    a.sampling.grammar = GrammarSpec{kJson, false, {}, {}};
    auto g = make_grammar_sampler((*model)->vocab(), *a.sampling.grammar);
    ASSERT_TRUE(g) << g.error().message;
    a.grammar = std::move(g.value());
    a.stop.max_tokens = 96;
    a.sink = [&, ticket](SequenceMessage m) {
      std::lock_guard lock(mu);
      if (auto* t = std::get_if<SampledToken>(&m)) {
        out[ticket].push_back(*t);
        if (t->end != EngineEnd::none)
          done.insert(ticket);
      }
      if (std::holds_alternative<SequenceFailed>(m))
        done.insert(ticket);
      cv.notify_all();
    };
    e.tell(std::move(a));
  };
  const auto start = [&](std::int32_t samplers) {
    BatchEngineConfig cfg{1024, 4, 128, 64};
    cfg.n_threads = 1;
    cfg.sampling_threads = samplers;
    cfg.share_sampling_us = 0;  // every step with two or more sequences, however cheap
    auto listener = system.spawn<testing::ReleaseListener>(
        actor::SpawnOptions{}, std::function<void(std::uint64_t)>([](std::uint64_t) {}));
    return std::move(BatchEngine::start(system, **model, cfg, listener).value());
  };
  const auto wait = [&](std::uint64_t ticket) {
    std::unique_lock lock(mu);
    cv.wait(lock, [&] { return done.count(ticket) > 0; });
  };
  {
    auto batched = start(sampling_threads);
    for (int i = 0; i < 4; ++i)
      admit(*batched, 1 + i, i);
    for (int i = 0; i < 4; ++i)
      wait(1 + i);
    const auto shared = batched->counters().shared_sampling_steps.load();
    if (sampling_threads > 1)
      EXPECT_GT(shared, 0) << "no step was sampled by more than one thread";
    else
      EXPECT_EQ(shared, 0);
  }
  for (int i = 0; i < 4; ++i) {
    auto alone = start(1);
    admit(*alone, 100 + i, i);
    wait(100 + i);
  }
  std::lock_guard lock(mu);
  for (int i = 0; i < 4; ++i) {
    const auto& a = out[1 + i];
    const auto& b = out[100 + i];
    std::string text;
    for (const auto& t : a) {
      if (t.end != EngineEnd::eog)
        (*model)->append_piece(t.token, text);
    }
    EXPECT_TRUE(std::regex_match(text, kJsonText)) << text;
    ASSERT_FALSE(a.empty());
    EXPECT_EQ(a.back().end, EngineEnd::eog);
    std::size_t k = 0;
    while (k < a.size() && k < b.size() && a[k].token == b[k].token)
      ++k;
    if (k == a.size() && k == b.size())
      continue;
    ASSERT_LT(k, std::min(a.size(), b.size())) << "one stopped early: sequence " << i;
    const auto in_top = [](const SampledToken& t, Token tok) {
      return std::any_of(t.top.begin(), t.top.end(), [&](auto& x) { return x.token == tok; });
    };
    EXPECT_TRUE(in_top(a[k], b[k].token) && in_top(b[k], a[k].token))
        << "sequence " << i << " diverged at token " << k;
  }
}

TEST(GrammarBatch, BatchedEqualsAlone) {
  check_batched_equals_alone(1);
}

// The same with the step's sampling shared by the engine thread and a helper: each sequence
// keeps its own sampler and grammar state whichever thread samples it.
TEST(GrammarBatch, SharedSamplingEqualsAlone) {
  check_batched_equals_alone(2);
}

}  // namespace
}  // namespace troupe::engine
