// The ModelSupervisor's rules with a loader the test controls (FakeBackend models, loads that
// wait for the test to let them finish): requests queue while a model loads, a failed load
// fails only its queue, the memory budget waits for a busy model and refuses what can never
// fit, the wait queue is bounded. Waits are on states, never on time.

#include <gtest/gtest.h>

#include <condition_variable>
#include <future>
#include <mutex>
#include <set>
#include <thread>

#include "engine/engine_test_util.hpp"
#include "models/model_set.hpp"
#include "server/fake_backend.hpp"

namespace troupe::models {
namespace {

using engine::testing::collect;
using engine::testing::run_sync;
using namespace std::chrono_literals;

// Loads finish when the test opens their model's gate; a model whose path starts with "bad"
// fails. A model's path is its estimated size in bytes otherwise.
class Gate {
 public:
  void open(const std::string& id) {
    std::lock_guard lock(mu_);
    open_.insert(id);
    cv_.notify_all();
  }
  std::int64_t loads(const std::string& id) {
    std::lock_guard lock(mu_);
    return started_.count(id);
  }
  ModelLoader loader() {
    ModelLoader l;
    l.load = [this](const ModelConfig& c) -> Result<std::unique_ptr<engine::Backend>> {
      if (c.options.on_load_progress)
        c.options.on_load_progress(0.5f);  // halfway, as llama.cpp reports it
      std::unique_lock lock(mu_);
      started_.insert(c.id());
      cv_.wait(lock, [&] { return open_.count(c.id()) > 0; });
      if (c.options.model_path.starts_with("bad"))
        return Error{Errc::engine_failed, "corrupt file " + c.options.model_path};
      return std::unique_ptr<engine::Backend>(std::make_unique<server::test::FakeBackend>());
    };
    l.estimate = [](const ModelConfig& c) -> Result<MemoryEstimate> {
      return MemoryEstimate{std::stoull(c.options.model_path), 0};
    };
    return l;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::set<std::string> open_;
  std::multiset<std::string> started_;
};

ModelConfig model(const std::string& id, const std::string& path, int max_queue = 8) {
  ModelConfig c;
  c.options.model_id = id;
  c.options.model_path = path;
  c.options.max_queue = max_queue;
  return c;
}

std::unique_ptr<engine::Backend> make(ModelSetOptions o, Gate& g) {
  return make_model_set(std::move(o), g.loader()).value();
}

engine::Task task(const std::string& m, const std::string& prompt = "hi") {
  engine::Task t;
  t.model = m;
  t.prompt = prompt;
  t.stop.max_tokens = 2;
  return t;
}

std::string state(const engine::Backend& b, const std::string& id, bool message = false) {
  for (const auto& m : b.models()) {
    if (m.id == id)
      return message ? m.state_message : m.state;
  }
  return "absent";
}

bool wait_for(const std::function<bool()>& pred) {
  for (auto until = std::chrono::steady_clock::now() + 30s;
       std::chrono::steady_clock::now() < until; std::this_thread::sleep_for(1ms)) {
    if (pred())
      return true;
  }
  return pred();
}

std::future<engine::TokenStream> start(engine::Backend& b, engine::Task t) {
  return std::async(std::launch::async, [&b, t = std::move(t)]() mutable {
    return run_sync(b.generate(std::move(t)));
  });
}

TEST(ModelSupervisor, RequestsWaitWhileTheirModelLoads) {
  Gate gate;
  ModelSetOptions o;
  o.models = {model("a", "100")};
  auto set = make(std::move(o), gate);
  auto first = start(*set, task("a"));
  auto second = start(*set, task("a"));
  ASSERT_TRUE(wait_for([&] { return state(*set, "a") == "loading"; }));
  ASSERT_TRUE(wait_for([&] { return set->stats().requests_queued == 2; }));
  ASSERT_TRUE(wait_for([&] { return state(*set, "a", true) == "50% loaded"; }));
  EXPECT_EQ(first.wait_for(0s), std::future_status::timeout);
  gate.open("a");
  for (auto* f : {&first, &second}) {
    auto s = f->get();
    EXPECT_TRUE(collect(s).finished);
  }
  EXPECT_EQ(gate.loads("a"), 1);  // one load for both
  EXPECT_TRUE(wait_for([&] { return set->stats().requests_queued == 0; }));
}

TEST(ModelSupervisor, AFailedLoadFailsItsQueueAndTheNextRequestLoadsAgain) {
  Gate gate;
  ModelSetOptions o;
  o.models = {model("a", "bad")};
  auto set = make(std::move(o), gate);
  gate.open("a");
  auto s = run_sync(set->generate(task("a")));
  auto c = collect(s);
  ASSERT_TRUE(c.error);
  EXPECT_EQ(c.error->message, "model 'a' failed to load: corrupt file bad");
  EXPECT_EQ(state(*set, "a"), "failed");
  auto again = run_sync(set->load_model("a"));
  ASSERT_FALSE(again);
  EXPECT_EQ(gate.loads("a"), 2);
}

TEST(ModelSupervisor, TheBudgetWaitsForABusyModelAndRefusesWhatCanNeverFit) {
  Gate gate;
  for (const char* id : {"a", "b", "c", "huge"})
    gate.open(id);
  ModelSetOptions o;
  o.models = {model("a", "100"), model("b", "100"), model("c", "100"), model("huge", "300")};
  o.memory_budget = 250;
  auto set = make(std::move(o), gate);
  auto a = run_sync(set->generate(task("a", "hold")));  // a and b busy
  auto b = run_sync(set->generate(task("b", "hold")));
  auto c = start(*set, task("c"));
  // c needs room: a, the least recently used, unloads once its request ends; b stays.
  ASSERT_TRUE(wait_for([&] { return state(*set, "a") == "unloading"; }));
  EXPECT_EQ(state(*set, "b"), "loaded");
  EXPECT_EQ(state(*set, "c"), "unloaded");
  EXPECT_EQ(c.wait_for(0s), std::future_status::timeout);
  a = engine::TokenStream();  // a's request ends (cancelled by its client)
  auto cs = c.get();
  EXPECT_TRUE(collect(cs).finished);
  EXPECT_EQ(state(*set, "a"), "unloaded");
  EXPECT_EQ(state(*set, "b"), "loaded");
  auto h = run_sync(set->generate(task("huge")));
  auto ch = collect(h);
  ASSERT_TRUE(ch.error);
  EXPECT_EQ(ch.error->code, Errc::invalid_request);
  EXPECT_EQ(gate.loads("huge"), 0);
}

TEST(ModelSupervisor, TheWaitQueueOfAModelIsBounded) {
  Gate gate;
  ModelSetOptions o;
  o.models = {model("a", "1", /*max_queue=*/1)};
  auto set = make(std::move(o), gate);
  auto first = start(*set, task("a"));
  ASSERT_TRUE(wait_for([&] { return set->stats().requests_queued == 1; }));
  auto second = run_sync(set->generate(task("a")));
  auto c = collect(second);
  ASSERT_TRUE(c.error);
  EXPECT_EQ(c.error->code, Errc::overloaded);
  gate.open("a");
  auto s = first.get();
  EXPECT_TRUE(collect(s).finished);
}

}  // namespace
}  // namespace troupe::models
