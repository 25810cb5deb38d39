// Sampling through the whole local engine (Coordinator, tokenizer thread, BatchEngine) on the
// generated tiny model: the serving engine's defaults for what a request leaves unset, text
// logit biases tokenized where the model is, DRY built off the engine thread, and the
// engine's own refusal of out-of-range values. Greedy or seeded, so every run is the same.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>

#include "engine/coordinator.hpp"
#include "engine_test_util.hpp"

namespace troupe::engine {
namespace {

using testing::collect;
using testing::run_sync;

std::unique_ptr<Coordinator> make(SamplingDefaults defaults = {}) {
  EngineOptions o;
  o.model_path = testing::tiny_model();
  o.model_id = "tiny";
  o.engine.n_threads = 1;
  o.engine.n_parallel = 1;
  o.engine.n_ctx = 512;
  o.defaults = defaults;
  auto c = std::make_unique<Coordinator>(std::move(o));
  EXPECT_EQ(c->wait_loaded().state, HealthState::ready);
  return c;
}

// A request that leaves every sampling field unset.
Task bare(Prompt prompt = std::string("Once upon a time")) {
  Task t;
  t.prompt = std::move(prompt);
  t.stop.ignore_eos = true;
  return t;
}

testing::Collected run(Coordinator& c, Task t) {
  auto s = run_sync(c.generate(std::move(t)));
  return collect(s);
}

std::vector<Token> tokens_of(Coordinator& c, Task t) {
  auto r = run(c, std::move(t));
  EXPECT_FALSE(r.error) << r.error->message;
  return r.tokens;
}

TEST(CoordinatorSampling, ServerDefaultsApplyWhenOmittedAndLoseToExplicitValues) {
  // Defaults: temperature 1 with top_k 1 (so greedy), a fixed seed, 5 tokens.
  auto c = make({.temperature = 1.0f,
                 .top_k = 1,
                 .top_p = 1.0f,
                 .min_p = 0.0f,
                 .repeat_penalty = 1.0f,
                 .seed = 42,
                 .n_predict = 5});
  Task greedy = bare();
  greedy.sampling.temperature = 0.0f;
  greedy.stop.max_tokens = 5;
  const auto reference = tokens_of(*c, greedy);
  ASSERT_EQ(reference.size(), 5u);

  EXPECT_EQ(tokens_of(*c, bare()), reference) << "n_predict and top_k 1 apply";
  Task three = bare();
  three.stop.max_tokens = 3;
  EXPECT_EQ(tokens_of(*c, three).size(), 3u) << "an explicit max_tokens wins";

  Task open = bare();
  open.sampling.top_k = 0;  // explicit: no filter, temperature 1, the default seed
  const auto drawn = tokens_of(*c, open);
  EXPECT_NE(drawn, reference) << "an explicit top_k wins";
  EXPECT_EQ(tokens_of(*c, open), drawn) << "the default seed applies: the same draws";
  open.sampling.seed = 7;
  EXPECT_NE(tokens_of(*c, open), drawn) << "an explicit seed wins";
}

TEST(CoordinatorSampling, WithoutNPredictGenerationRunsToTheContext) {
  auto c = make({.temperature = 0.0f});
  auto r = run(*c, bare());
  ASSERT_TRUE(r.finished) << (r.error ? r.error->message : "");
  EXPECT_EQ(r.finished->reason, FinishReason::length);
  EXPECT_GE(r.started->prompt_tokens + r.finished->usage.completion_tokens, 512);
}

TEST(CoordinatorSampling, ATextLogitBiasHitsEveryTokenOfTheText) {
  auto c = make({.temperature = 0.0f});
  const std::string text = " the dragon slept";
  auto ids = run_sync(c->tokenize("tiny", text, false, false));
  ASSERT_TRUE(ids.ok()) << ids.error().message;
  std::vector<Token> distinct = *ids;
  std::sort(distinct.begin(), distinct.end());
  distinct.erase(std::unique(distinct.begin(), distinct.end()), distinct.end());
  ASSERT_GE(distinct.size(), 3u) << "the premise: the text is several tokens";
  const auto in_text = [&](Token t) {
    return std::find(distinct.begin(), distinct.end(), t) != distinct.end();
  };

  // +100 on every token of the text: greedy picks only those. With the first (or the last)
  // token also banned by id, another token of the text is chosen: they all got the bias.
  for (const auto& banned : {std::vector<Token>{}, std::vector<Token>{distinct.front()},
                             std::vector<Token>{distinct.back()}}) {
    Task t = bare();
    t.stop.max_tokens = 6;
    t.sampling.logit_bias_text = {{text, 100.0f}};
    for (Token b : banned)
      t.sampling.logit_bias.emplace_back(b, -std::numeric_limits<float>::infinity());
    const auto out = tokens_of(*c, std::move(t));
    ASSERT_EQ(out.size(), 6u);
    for (Token tok : out) {
      EXPECT_TRUE(in_text(tok)) << "token " << tok;
      EXPECT_TRUE(std::find(banned.begin(), banned.end(), tok) == banned.end()) << tok;
    }
  }
  // "Never" (false: -inf) on the text: none of its tokens comes out, although each has +100
  // by id and would win every step otherwise.
  Task never = bare();
  never.stop.max_tokens = 32;
  for (Token tok : distinct)
    never.sampling.logit_bias.emplace_back(tok, 100.0f);
  never.sampling.logit_bias_text = {{text, -std::numeric_limits<float>::infinity()}};
  for (Token tok : tokens_of(*c, std::move(never)))
    EXPECT_FALSE(in_text(tok)) << "token " << tok;
}

// True when `next` after `context` ends a run of `length` tokens that occurred before: the
// token would extend a repetition of the `length - 1` tokens before it (what DRY penalizes).
bool extends_repeat(const std::vector<Token>& context, Token next, std::size_t length) {
  std::vector<Token> s = context;
  s.push_back(next);
  if (s.size() <= length)
    return false;
  const auto tail = s.end() - static_cast<long>(length);
  for (std::size_t start = 0; start + length < s.size(); ++start) {
    if (std::equal(tail, s.end(), s.begin() + static_cast<long>(start)))
      return true;
  }
  return false;
}

TEST(CoordinatorSampling, DryStopsGreedyFromExtendingARepetition) {
  auto c = make({.temperature = 0.0f});
  // A random model's greedy text keeps coming back to the same pairs of tokens: its prompt
  // plus 60 greedy tokens is a prompt whose next greedy token repeats a pair seen before.
  auto prompt = *run_sync(c->tokenize("tiny", "Once upon a time", true, false));
  Task loop = bare(prompt);
  loop.stop.max_tokens = 60;
  for (Token t : tokens_of(*c, std::move(loop)))
    prompt.push_back(t);
  Task plain = bare(prompt);
  plain.stop.max_tokens = 1;
  const auto next = tokens_of(*c, std::move(plain));
  ASSERT_EQ(next.size(), 1u);
  ASSERT_TRUE(extends_repeat(prompt, next[0], 2)) << "the premise: greedy repeats a pair";

  Task dry = bare(prompt);
  dry.stop.max_tokens = 1;
  dry.sampling.dry_multiplier = 20.0f;  // with the default breakers: a vocabulary scan
  dry.sampling.dry_allowed_length = 1;  // a repeated pair costs 20
  dry.sampling.dry_penalty_last_n = -1;
  const auto with_dry = tokens_of(*c, std::move(dry));
  ASSERT_EQ(with_dry.size(), 1u);
  EXPECT_NE(with_dry[0], next[0]);
  EXPECT_FALSE(extends_repeat(prompt, with_dry[0], 2));
  // Its window: DRY that sees only the last token finds no pair to repeat.
  Task narrow = bare(prompt);
  narrow.stop.max_tokens = 1;
  narrow.sampling.dry_multiplier = 20.0f;
  narrow.sampling.dry_allowed_length = 1;
  narrow.sampling.dry_penalty_last_n = 1;
  EXPECT_EQ(tokens_of(*c, std::move(narrow)), next);
}

TEST(CoordinatorSampling, EverySamplerRunsInTheEngine) {
  auto c = make();  // llama-server's defaults: temperature 0.8, top_k 40, ...
  Task t = bare();
  t.stop.max_tokens = 12;
  t.sampling.seed = 3;
  t.sampling.repeat_penalty = 1.1f;
  t.sampling.typical_p = 0.9f;
  t.sampling.top_n_sigma = 2.0f;
  t.sampling.dynatemp_range = 0.3f;
  t.sampling.dry_multiplier = 0.8f;
  t.sampling.xtc_probability = 0.5f;
  t.sampling.logit_bias_text = {{"time", -2.0f}};
  auto r = run(*c, t);
  ASSERT_FALSE(r.error) << r.error->message;
  EXPECT_EQ(r.tokens.size(), 12u);
  EXPECT_EQ(run(*c, t).tokens, r.tokens) << "seeded: the same tokens again";
  for (int version : {1, 2}) {
    Task m = bare();
    m.stop.max_tokens = 12;
    m.sampling.mirostat = version;
    auto mr = run(*c, m);
    ASSERT_FALSE(mr.error) << mr.error->message;
    EXPECT_EQ(mr.tokens.size(), 12u);
  }
}

TEST(CoordinatorSampling, OutOfRangeValuesAreRefusedWithTheirName) {
  auto c = make();
  const std::vector<std::pair<void (*)(Task&), std::string>> cases = {
      {[](Task& t) { t.sampling.typical_p = 0.0f; }, "typical_p"},
      {[](Task& t) { t.sampling.dynatemp_range = -1.0f; }, "dynatemp_range"},
      {[](Task& t) { t.sampling.dynatemp_exponent = -1.0f; }, "dynatemp_exponent"},
      {[](Task& t) { t.sampling.dry_multiplier = -1.0f; }, "dry_multiplier"},
      {[](Task& t) { t.sampling.dry_base = 0.5f; }, "dry_base"},
      {[](Task& t) { t.sampling.dry_allowed_length = -1; }, "dry_allowed_length"},
      {[](Task& t) { t.sampling.dry_penalty_last_n = -2; }, "dry_penalty_last_n"},
      {[](Task& t) {
         t.sampling.dry_sequence_breakers = {"a", ""};
       },
       "dry_sequence_breakers"},
      {[](Task& t) { t.sampling.xtc_probability = 2.0f; }, "xtc_probability"},
      {[](Task& t) { t.sampling.xtc_threshold = -0.1f; }, "xtc_threshold"},
      {[](Task& t) { t.sampling.mirostat = 3; }, "mirostat"},
      {[](Task& t) { t.sampling.mirostat_tau = -1.0f; }, "mirostat_tau"},
      {[](Task& t) { t.sampling.mirostat_eta = std::nanf(""); }, "mirostat_eta"},
      {[](Task& t) { t.sampling.repeat_last_n = -5; }, "repeat_last_n"},
      {[](Task& t) { t.sampling.top_n_sigma = std::numeric_limits<float>::infinity(); },
       "top_n_sigma"},
      {[](Task& t) {
         t.sampling.logit_bias_text = {{"x", std::nanf("")}};
       },
       "logit_bias"},
  };
  for (const auto& [set, param] : cases) {
    Task t = bare();
    set(t);
    auto r = run(*c, std::move(t));
    ASSERT_TRUE(r.error) << param;
    EXPECT_EQ(r.error->code, Errc::invalid_request) << param;
    EXPECT_EQ(r.error->param, param);
  }
}

}  // namespace
}  // namespace troupe::engine
