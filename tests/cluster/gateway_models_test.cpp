// Workers that hold several models (models::ModelSet) behind the gateway: the gateway routes
// by model, and prefers a worker that has the model loaded (from the workers' gossip).

#include <gtest/gtest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <future>
#include <optional>

#include "cluster/cluster_nodes.hpp"
#include "cluster/cluster_protocol.hpp"
#include "cluster/directory.hpp"
#include "cluster/gateway.hpp"
#include "cluster/worker.hpp"
#include "models/model_set.hpp"
#include "models/tiny_models.hpp"
#include "remote/test_node.hpp"
#include "support/test_models.hpp"

namespace troupe::cluster {
namespace {

using namespace std::chrono_literals;
using models::test_models::alpha_and_beta;
using remote::test::fast_options;
using remote::test::Signal;
using remote::test::TestNode;
using test_nodes::GatewayNode;
using test_nodes::run_sync;

// A worker process whose backend holds alpha and beta, loaded on demand.
struct ModelsWorker : test_nodes::WorkerNode {
  ModelsWorker(std::vector<std::string> seeds, Signal& sig)
      : WorkerNode(std::move(seeds), sig, models::make_model_set(alpha_and_beta()).value(),
                   {.capacity = 2, .load_interval = 10ms}) {}
};

engine::Task task(const std::string& model, int max_tokens) {
  engine::Task t;
  t.model = model;
  t.prompt = std::string("Once upon a time");
  t.stop.max_tokens = max_tokens;
  t.stop.ignore_eos = true;
  return t;
}

// The stream's token count, or -1 when it did not finish.
std::int64_t tokens_of(engine::TokenStream s) {
  std::optional<engine::StreamEvent> last;
  while (auto ev = s.next_blocking())
    last = std::move(ev);
  if (!last || !std::holds_alternative<engine::Finished>(*last))
    return -1;
  return std::get<engine::Finished>(*last).usage.completion_tokens;
}

bool serves(Gateway& g, const std::string& id) {
  for (const auto& m : g.models()) {
    if (m.id == id)
      return true;
  }
  return false;
}

// What the gateway's node has heard of `worker`'s loaded models.
std::optional<std::vector<std::string>> loaded_on(GatewayNode& gw, ModelsWorker& worker) {
  const auto snap = gw.node->snapshot();
  for (const auto& m : snap->members) {
    if (m.id == worker.node->id())
      return parse_worker_meta(m.meta).loaded;
  }
  return std::nullopt;
}

TEST(GatewayModels, AWorkerWithTwoModelsServesBoth) {
  Signal sig;
  GatewayNode gw(sig);
  ModelsWorker a({gw.node->address()}, sig);
  ASSERT_TRUE(sig.wait([&] { return serves(gw.gateway, "alpha") && serves(gw.gateway, "beta"); }));
  auto sa = run_sync(gw.gateway.generate(task("alpha", 6)));
  auto sb = run_sync(gw.gateway.generate(task("beta", 5)));
  EXPECT_EQ(tokens_of(std::move(sb)), 5);
  EXPECT_EQ(tokens_of(std::move(sa)), 6);
  EXPECT_EQ(a.worker.stats().streams_total, 2);
  // The worker gossips what it has loaded.
  ASSERT_TRUE(sig.wait([&] {
    auto l = loaded_on(gw, a);
    return l && l->size() == 2;
  }));
}

TEST(GatewayModels, PrefersTheWorkerThatHasTheModelLoaded) {
  Signal sig;
  GatewayNode gw(sig);
  ModelsWorker a({gw.node->address()}, sig), b({gw.node->address()}, sig);
  ASSERT_TRUE(sig.wait([&] {
    return loaded_on(gw, a).has_value() && loaded_on(gw, b).has_value() &&
           serves(gw.gateway, "alpha");
  }));
  ASSERT_TRUE(run_sync(b.backend->load_model("alpha")));
  ASSERT_TRUE(sig.wait([&] {
    auto l = loaded_on(gw, b);
    return l && std::find(l->begin(), l->end(), "alpha") != l->end();
  }));
  for (int i = 0; i < 4; ++i)
    EXPECT_EQ(tokens_of(run_sync(gw.gateway.generate(task("alpha", 2)))), 2);
  EXPECT_EQ(b.worker.stats().streams_total, 4);
  EXPECT_EQ(a.worker.stats().streams_total, 0);
  EXPECT_EQ(a.backend->models()[0].state, "unloaded");  // a never had to load it
}

}  // namespace
}  // namespace troupe::cluster
