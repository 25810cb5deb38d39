// The ModelSet over real random-weight models: on-demand loads, interleaved streams, LRU and
// idle unloads, a broken model, the memory budget. Waits are on states, never on time.

#include "models/model_set.hpp"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <future>
#include <thread>

#include "engine/engine_test_util.hpp"
#include "models/tiny_models.hpp"
#include "support/test_models.hpp"

namespace troupe::models {
namespace {

namespace fs = std::filesystem;
using engine::testing::collect;
using engine::testing::run_sync;
using namespace std::chrono_literals;

bool has(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

ModelConfig config(const std::string& id, const std::string& path) {
  ModelConfig c = test_models::tiny(id, path);
  c.options.max_queue = 8;
  return c;
}

// Two models of different weights: alpha and beta, with short queues.
ModelSetOptions two_models() {
  auto o = test_models::alpha_and_beta();
  for (auto& c : o.models)
    c.options.max_queue = 8;
  return o;
}

std::unique_ptr<engine::Backend> make(ModelSetOptions o) {
  auto b = make_model_set(std::move(o));
  EXPECT_TRUE(b) << b.error().message;
  return std::move(b).value();
}

engine::Task task(const std::string& model, int max_tokens = 16) {
  engine::Task t;
  t.model = model;
  t.prompt = std::string("Once upon a time");
  t.stop.max_tokens = max_tokens;
  t.stop.ignore_eos = true;
  t.sampling.temperature = 0.0f;
  return t;
}

engine::ModelInfo info_of(const engine::Backend& b, const std::string& id) {
  for (const auto& m : b.models()) {
    if (m.id == id)
      return m;
  }
  ADD_FAILURE() << "no model " << id;
  return {};
}

// Waits (on the model's state, checked every few ms, up to a minute) until `id` is `state`.
bool wait_state(const engine::Backend& b, const std::string& id, const std::string& state) {
  for (auto until = std::chrono::steady_clock::now() + 60s;
       std::chrono::steady_clock::now() < until; std::this_thread::sleep_for(2ms)) {
    if (info_of(b, id).state == state)
      return true;
  }
  ADD_FAILURE() << id << " never became " << state << " (is " << info_of(b, id).state << ")";
  return false;
}

engine::TokenStream generate(engine::Backend& b, engine::Task t) {
  return run_sync(b.generate(std::move(t)));
}

// The next event that is not Started.
std::optional<engine::StreamEvent> next_delta(engine::TokenStream& s) {
  auto ev = s.next_blocking();
  if (ev && std::holds_alternative<engine::Started>(*ev))
    ev = s.next_blocking();
  return ev;
}

TEST(ModelSet, ListsEveryModelUnloadedAndLoadsOnDemand) {
  auto set = make(two_models());
  ASSERT_EQ(set->models().size(), 2u);
  EXPECT_EQ(set->models()[0].id, "alpha");
  EXPECT_EQ(info_of(*set, "alpha").state, "unloaded");
  EXPECT_EQ(info_of(*set, "beta").state, "unloaded");
  auto s = generate(*set, task("beta", 4));
  auto c = collect(s);
  ASSERT_TRUE(c.finished) << (c.error ? c.error->message : "");
  EXPECT_EQ(c.tokens.size(), 4u);
  EXPECT_EQ(info_of(*set, "beta").state, "loaded");
  EXPECT_EQ(info_of(*set, "alpha").state, "unloaded");
  EXPECT_TRUE(has(set->extra_metrics(), "troupe_model_loads_total{model=\"beta\"} 1"))
      << set->extra_metrics();
  // The default model (no name) is the first.
  auto d = generate(*set, task("", 2));
  EXPECT_TRUE(collect(d).finished);
  EXPECT_EQ(info_of(*set, "alpha").state, "loaded");
}

TEST(ModelSet, TwoModelsStreamInterleaved) {
  auto set = make(two_models());
  auto a = generate(*set, task("alpha", 24));
  auto b = generate(*set, task("beta", 24));
  engine::testing::Collected ca, cb;
  bool a_done = false, b_done = false;
  auto step = [](engine::TokenStream& s, engine::testing::Collected& c, bool& done) {
    auto ev = s.next_blocking();
    if (!ev) {
      done = true;
      return;
    }
    if (auto* d = std::get_if<engine::Delta>(&*ev))
      c.tokens.insert(c.tokens.end(), d->tokens.begin(), d->tokens.end());
    if (auto* f = std::get_if<engine::Finished>(&*ev))
      c.finished = *f;
    if (auto* f = std::get_if<engine::Failed>(&*ev))
      c.error = f->error;
  };
  while (!a_done || !b_done) {  // one event of each in turn
    if (!a_done)
      step(a, ca, a_done);
    if (!b_done)
      step(b, cb, b_done);
  }
  ASSERT_TRUE(ca.finished) << (ca.error ? ca.error->message : "");
  ASSERT_TRUE(cb.finished) << (cb.error ? cb.error->message : "");
  EXPECT_EQ(ca.tokens.size(), 24u);
  EXPECT_EQ(cb.tokens.size(), 24u);
  EXPECT_EQ(info_of(*set, "alpha").state, "loaded");
  EXPECT_EQ(info_of(*set, "beta").state, "loaded");
  // Each stream came from its own model: alone, each gives the same tokens again.
  auto again = generate(*set, task("beta", 24));
  EXPECT_EQ(collect(again).tokens, cb.tokens);
}

TEST(ModelSet, MaxLoadedOneWaitsForTheBusyModelAndNeverCutsIt) {
  auto o = two_models();
  o.max_loaded = 1;
  auto set = make(std::move(o));
  auto a = generate(*set, task("alpha", 32));
  ASSERT_TRUE(next_delta(a));  // alpha runs; its stream (its lease) stays held
  auto b_future = std::async(std::launch::async, [&] { return generate(*set, task("beta", 8)); });
  // beta's request makes alpha leave once its requests end; beta waits, unloaded.
  ASSERT_TRUE(wait_state(*set, "alpha", "unloading"));
  EXPECT_EQ(info_of(*set, "beta").state, "unloaded");
  EXPECT_EQ(b_future.wait_for(0s), std::future_status::timeout);
  // alpha's request runs to its end: 32 tokens, nothing cut.
  auto rest = collect(a);
  ASSERT_TRUE(rest.finished) << (rest.error ? rest.error->message : "");
  EXPECT_EQ(rest.finished->usage.completion_tokens, 32);
  a = engine::TokenStream();  // the request is over: alpha is idle
  auto b = b_future.get();
  auto cb = collect(b);
  ASSERT_TRUE(cb.finished) << (cb.error ? cb.error->message : "");
  EXPECT_EQ(cb.tokens.size(), 8u);
  EXPECT_EQ(info_of(*set, "alpha").state, "unloaded");
  EXPECT_EQ(info_of(*set, "beta").state, "loaded");
  EXPECT_TRUE(has(set->extra_metrics(), "troupe_model_unloads_total{model=\"alpha\"} 1"));
}

TEST(ModelSet, MaxLoadedOneUnloadsTheIdleModelAtOnce) {
  auto o = two_models();
  o.max_loaded = 1;
  auto set = make(std::move(o));
  for (const char* m : {"alpha", "beta", "alpha"}) {
    auto s = generate(*set, task(m, 2));
    EXPECT_TRUE(collect(s).finished) << m;
  }
  EXPECT_EQ(info_of(*set, "alpha").state, "loaded");
  EXPECT_TRUE(wait_state(*set, "beta", "unloaded"));
}

TEST(ModelSet, IdleModelsUnloadAfterTheirKeepAlive) {
  auto o = two_models();
  o.idle_unload = 20ms;
  auto set = make(std::move(o));
  {
    auto s = generate(*set, task("alpha", 2));
    EXPECT_TRUE(collect(s).finished);
  }
  EXPECT_TRUE(wait_state(*set, "alpha", "unloaded"));
  EXPECT_TRUE(has(set->extra_metrics(), "troupe_model_unloads_total{model=\"alpha\"} 1"));
}

TEST(ModelSet, KeepAliveZeroUnloadsRightAfterTheRequest) {
  auto set = make(two_models());  // no idle unload of its own
  auto t = task("beta", 2);
  t.keep_alive = 0ms;
  {
    auto s = generate(*set, std::move(t));
    EXPECT_TRUE(collect(s).finished);
  }
  EXPECT_TRUE(wait_state(*set, "beta", "unloaded"));
}

fs::path fresh_dir(const std::string& name) {
  const auto dir =
      fs::path(TROUPE_BINARY_DIR) / "models-test" / (name + "-" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir;
}

TEST(ModelSet, ABrokenModelFailsOnlyItsOwnRequestsAndLoadsOnceFixed) {
  const auto broken = fresh_dir("broken") / "broken.gguf";
  std::ofstream(broken) << "this is not a GGUF file";
  auto o = two_models();
  o.models.push_back(config("broken", broken.string()));
  auto set = make(std::move(o));
  auto a = generate(*set, task("alpha", 16));
  ASSERT_TRUE(next_delta(a));
  auto bad = generate(*set, task("broken", 4));
  auto cbad = collect(bad);
  ASSERT_TRUE(cbad.error);
  EXPECT_EQ(cbad.error->code, Errc::engine_failed);
  EXPECT_TRUE(has(cbad.error->message, "model 'broken' failed to load")) << cbad.error->message;
  EXPECT_TRUE(has(cbad.error->message, broken.string())) << cbad.error->message;
  EXPECT_EQ(info_of(*set, "broken").state, "failed");
  EXPECT_FALSE(info_of(*set, "broken").state_message.empty());
  // alpha kept serving, and beta serves.
  auto ca = collect(a);
  ASSERT_TRUE(ca.finished);
  EXPECT_EQ(ca.finished->usage.completion_tokens, 16);
  auto b = generate(*set, task("beta", 2));
  EXPECT_TRUE(collect(b).finished);
  // The file is fixed: the next request loads it.
  fs::copy_file(test::generated_model("tiny", mkmodel::WeightType::f32, 3), broken,
                fs::copy_options::overwrite_existing);
  auto fixed = generate(*set, task("broken", 3));
  auto cf = collect(fixed);
  ASSERT_TRUE(cf.finished) << (cf.error ? cf.error->message : "");
  EXPECT_EQ(cf.tokens.size(), 3u);
  EXPECT_EQ(info_of(*set, "broken").state, "loaded");
  EXPECT_TRUE(has(set->extra_metrics(), "troupe_model_load_failures_total{model=\"broken\"} 1"));
}

TEST(ModelSet, TheMemoryBudgetRefusesAModelThatCannotFit) {
  auto o = two_models();
  o.memory_budget = 1 << 20;  // 1 MiB: less than the weights
  auto set = make(std::move(o));
  auto s = generate(*set, task("alpha", 2));
  auto c = collect(s);
  ASSERT_TRUE(c.error);
  EXPECT_EQ(c.error->code, Errc::invalid_request);
  EXPECT_TRUE(has(c.error->message, "more than --models-memory-budget 1.0 MiB"))
      << c.error->message;
  EXPECT_EQ(info_of(*set, "alpha").state, "failed");
  EXPECT_TRUE(has(set->extra_metrics(), "troupe_model_loads_total{model=\"alpha\"} 0"));
}

TEST(ModelSet, TheMemoryBudgetUnloadsTheIdleModelToMakeRoom) {
  auto o = two_models();
  const auto est = [&](const ModelConfig& c) { return local_loader().estimate(c).value().total(); };
  o.memory_budget = est(o.models[0]) + est(o.models[1]) / 2;  // one fits, not both
  auto set = make(std::move(o));
  for (const char* m : {"alpha", "beta"}) {
    auto s = generate(*set, task(m, 2));
    auto c = collect(s);
    EXPECT_TRUE(c.finished) << m << ": " << (c.error ? c.error->message : "");
  }
  EXPECT_EQ(info_of(*set, "beta").state, "loaded");
  EXPECT_TRUE(wait_state(*set, "alpha", "unloaded"));
}

TEST(ModelSet, LoadAndUnloadOnRequest) {
  auto set = make(two_models());
  auto loaded = run_sync(set->load_model("beta"));
  ASSERT_TRUE(loaded) << loaded.error().message;
  EXPECT_EQ(loaded->state, "loaded");
  EXPECT_EQ(info_of(*set, "beta").state, "loaded");
  auto unloaded = run_sync(set->unload_model("beta"));
  ASSERT_TRUE(unloaded);
  EXPECT_EQ(unloaded->state, "unloaded");
  auto missing = run_sync(set->load_model("gamma"));
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().code, Errc::not_found);
  // A busy model unloads when its request ends, not before.
  auto s = generate(*set, task("alpha", 8));
  ASSERT_TRUE(next_delta(s));
  auto later = run_sync(set->unload_model("alpha"));
  ASSERT_TRUE(later);
  EXPECT_EQ(later->state, "unloading");
  auto c = collect(s);
  ASSERT_TRUE(c.finished);
  EXPECT_EQ(c.finished->usage.completion_tokens, 8);
  s = engine::TokenStream();
  EXPECT_TRUE(wait_state(*set, "alpha", "unloaded"));
}

TEST(ModelSet, AliasesAndTokenizeRouteToTheirModel) {
  auto o = two_models();
  o.models[1].options.aliases = {"b"};
  auto set = make(std::move(o));
  auto toks = run_sync(set->tokenize("b", "hello world", false, false));
  ASSERT_TRUE(toks) << toks.error().message;
  EXPECT_FALSE(toks->empty());
  EXPECT_EQ(info_of(*set, "beta").state, "loaded");
  auto unknown = generate(*set, task("gamma", 2));
  auto c = collect(unknown);
  ASSERT_TRUE(c.error);
  EXPECT_EQ(c.error->code, Errc::not_found);
}

TEST(ModelSet, RefusesDuplicateNamesAndAnEmptyList) {
  auto o = two_models();
  o.models[1].options.aliases = {"alpha"};
  auto dup = make_model_set(std::move(o));
  ASSERT_FALSE(dup);
  EXPECT_TRUE(has(dup.error().message, "two models are named 'alpha'"));
  EXPECT_FALSE(make_model_set(ModelSetOptions{}));
}

}  // namespace
}  // namespace troupe::models
