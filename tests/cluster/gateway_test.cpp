// Gateway and Worker in one process: each on its own node, io_context and thread (as if in
// separate processes), over loopback, with the simulated engine.

#include "cluster/gateway.hpp"

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <optional>

#include "cluster/cluster_nodes.hpp"
#include "cluster/worker.hpp"
#include "engine/local_backend.hpp"
#include "engine/sim_backend.hpp"
#include "remote/test_node.hpp"
#include "support/prometheus_text.hpp"
#include "support/promtool.hpp"
#include "support/test_models.hpp"

namespace troupe::cluster {
namespace {

using namespace std::chrono_literals;
using remote::test::fast_options;
using remote::test::Signal;
using remote::test::TestNode;
using test_nodes::GatewayNode;
using test_nodes::run_sync;

// A worker process: node + sim backend + Worker.
struct SimWorker : test_nodes::WorkerNode {
  SimWorker(std::vector<std::string> seeds, Signal& sig, double tps = 2000.0,
            std::string model = "sim", engine::SamplingDefaults defaults = {})
      : WorkerNode(std::move(seeds), sig,
                   engine::make_sim_backend({.model_id = std::move(model),
                                             .n_parallel = 8,
                                             .decode_tokens_per_s = tps,
                                             .defaults = defaults}),
                   {.capacity = 8}) {}
};

engine::TokenStream start(Gateway& g, engine::Task t) {
  return run_sync(g.generate(std::move(t)));
}

engine::Task task(int max_tokens, std::string prompt = "hello there") {
  engine::Task t;
  t.model = "sim";
  t.prompt = std::move(prompt);
  t.stop.max_tokens = max_tokens;
  return t;
}

// Reads a stream to its end; returns the final event.
engine::StreamEvent drain(engine::TokenStream& s, std::string* text = nullptr) {
  engine::StreamEvent last;
  while (auto ev = s.next_blocking()) {
    if (auto* d = std::get_if<engine::Delta>(&*ev); d && text)
      *text += d->text;
    last = std::move(*ev);
  }
  return last;
}

bool workers_visible(Gateway& g, std::size_t n) {
  return g.gateway_stats().workers.size() == n;
}

TEST(Gateway, StreamsThroughAWorkerAndSpreadsLoad) {
  Signal sig;
  GatewayNode gw(sig);
  SimWorker a({gw.address()}, sig), b({gw.address()}, sig);
  ASSERT_TRUE(sig.wait([&] { return workers_visible(gw.gateway, 2); }));
  ASSERT_EQ(gw.gateway.models().size(), 1u);
  EXPECT_EQ(gw.gateway.health().state, engine::HealthState::ready);

  std::vector<engine::TokenStream> streams;
  for (int i = 0; i < 8; ++i)
    streams.push_back(start(gw.gateway, task(20, "prompt " + std::to_string(i))));
  for (auto& s : streams) {
    std::string text;
    auto last = drain(s, &text);
    ASSERT_TRUE(std::holds_alternative<engine::Finished>(last));
    EXPECT_EQ(std::get<engine::Finished>(last).usage.completion_tokens, 20);
    EXPECT_FALSE(text.empty());
  }
  EXPECT_EQ(a.worker.stats().streams_total + b.worker.stats().streams_total, 8);
  EXPECT_GT(a.worker.stats().streams_total, 0);
  EXPECT_GT(b.worker.stats().streams_total, 0);
  EXPECT_EQ(gw.gateway.stats().generation_tokens_total, 160);
}

TEST(Gateway, TheWorkersDefaultsFillWhatTheRequestLeftUnset) {
  Signal sig;
  GatewayNode gw(sig);
  SimWorker a({gw.address()}, sig, 2000.0, "sim", {.n_predict = 7});
  ASSERT_TRUE(sig.wait([&] { return workers_visible(gw.gateway, 1); }));
  engine::Task t = task(1);
  t.stop.max_tokens.reset();  // the gateway has no default of its own: the worker's applies
  auto s = start(gw.gateway, t);
  auto last = drain(s);
  ASSERT_TRUE(std::holds_alternative<engine::Finished>(last));
  EXPECT_EQ(std::get<engine::Finished>(last).usage.completion_tokens, 7);
  t.stop.max_tokens = 4;
  s = start(gw.gateway, t);
  last = drain(s);
  ASSERT_TRUE(std::holds_alternative<engine::Finished>(last));
  EXPECT_EQ(std::get<engine::Finished>(last).usage.completion_tokens, 4);
}

TEST(Gateway, DroppingTheStreamCancelsOnTheWorker) {
  Signal sig;
  GatewayNode gw(sig);
  SimWorker a({gw.address()}, sig, /*tps=*/5.0);
  ASSERT_TRUE(sig.wait([&] { return workers_visible(gw.gateway, 1); }));
  {
    auto s = start(gw.gateway, task(1000));
    auto first = s.next_blocking();
    ASSERT_TRUE(first && std::holds_alternative<engine::Started>(*first));
    EXPECT_EQ(a.worker.stats().streams_active, 1);
  }
  ASSERT_TRUE(sig.wait([&] { return a.worker.stats().streams_active == 0; }));
  EXPECT_EQ(a.worker.stats().cancelled_total, 1);
  EXPECT_EQ(gw.gateway.stats().cancelled_total, 1);
}

TEST(Gateway, UnknownModelAndNoWorkersAreErrors) {
  Signal sig;
  GatewayNode gw(sig);
  EXPECT_EQ(gw.gateway.health().state, engine::HealthState::loading);
  auto none = start(gw.gateway, task(5));
  auto ev = drain(none);
  ASSERT_TRUE(std::holds_alternative<engine::Failed>(ev));
  SimWorker a({gw.address()}, sig);
  ASSERT_TRUE(sig.wait([&] { return workers_visible(gw.gateway, 1); }));
  auto t = task(5);
  t.model = "nope";
  auto s = start(gw.gateway, t);
  ev = drain(s);
  ASSERT_TRUE(std::holds_alternative<engine::Failed>(ev));
  EXPECT_EQ(std::get<engine::Failed>(ev).error.code, Errc::not_found);
  t.model.clear();  // the default model
  auto ok = start(gw.gateway, t);
  EXPECT_TRUE(std::holds_alternative<engine::Finished>(drain(ok)));
  t.id_slot = 0;  // a worker's slot: not the gateway's to name (as GET /slots)
  auto pinned = start(gw.gateway, t);
  ev = drain(pinned);
  ASSERT_TRUE(std::holds_alternative<engine::Failed>(ev));
  EXPECT_EQ(std::get<engine::Failed>(ev).error.param, "id_slot");
}

TEST(Gateway, AWorkerThatLeavesFailsOnlyItsStartedStreams) {
  Signal sig;
  GatewayNode gw(sig);
  auto a = std::make_unique<SimWorker>(std::vector<std::string>{gw.address()}, sig, 5.0);
  SimWorker b({gw.address()}, sig, 5.0);
  ASSERT_TRUE(sig.wait([&] { return workers_visible(gw.gateway, 2); }));
  std::vector<engine::TokenStream> streams;
  for (int i = 0; i < 4; ++i) {
    streams.push_back(start(gw.gateway, task(8, "p" + std::to_string(i))));
    auto first = streams.back().next_blocking();
    ASSERT_TRUE(first && std::holds_alternative<engine::Started>(*first));
  }
  const auto on_a = a->worker.stats().streams_active;
  ASSERT_GT(on_a, 0);
  const auto lost_id = (*a->node).id();
  a->node->leave(100ms);  // as a crash looks to the gateway: the node is gone
  a.reset();
  int failed = 0, finished = 0;
  for (auto& s : streams) {
    auto last = drain(s);
    if (auto* f = std::get_if<engine::Failed>(&last)) {
      EXPECT_EQ(f->error.code, Errc::unavailable);
      ++failed;
    } else {
      ASSERT_TRUE(std::holds_alternative<engine::Finished>(last));
      ++finished;
    }
  }
  EXPECT_EQ(failed, on_a);
  EXPECT_EQ(finished, 4 - on_a);
  // The lost worker stays in /metrics with up 0, its gauges reset (it runs nothing).
  const auto m = troupe::test::parse_prometheus(gw.gateway.extra_metrics());
  const auto node_a = fmt::format("node=\"{:016x}\"", lost_id);
  EXPECT_EQ(m.at("troupe_gateway_worker_up").find(node_a), 0);
  for (const char* gauge :
       {"troupe_gateway_worker_running", "troupe_gateway_worker_queued",
        "troupe_gateway_worker_capacity", "troupe_gateway_worker_kv_usage_ratio",
        "troupe_gateway_worker_outstanding"}) {
    EXPECT_EQ(m.at(gauge).find(node_a), 0) << gauge;
  }
  EXPECT_GT(m.at("troupe_gateway_worker_routed_total").find(node_a), 0);
  auto later = start(gw.gateway, task(3));
  EXPECT_TRUE(std::holds_alternative<engine::Finished>(drain(later)));
}

// The tokenize/detokenize asks go to a worker and back (remote ask, RemoteReply). A request
// built in the co_await's argument list once crashed here (a GCC 12 coroutine bug; see
// Gateway::tokenize).
TEST(Gateway, TokenizeAndDetokenizeGoToAWorker) {
  Signal sig;
  GatewayNode gw(sig);
  SimWorker a({gw.address()}, sig);
  ASSERT_TRUE(sig.wait([&] { return workers_visible(gw.gateway, 1); }));
  auto tokens = run_sync(gw.gateway.tokenize("sim", "w1 w2 w3", false, false));
  ASSERT_TRUE(tokens.ok()) << tokens.error().message;
  EXPECT_EQ(tokens->size(), 3u);
  // The worker's own answer, byte for byte.
  auto direct = run_sync(a.backend->tokenize("sim", "w1 w2 w3", false, false));
  ASSERT_TRUE(direct.ok());
  EXPECT_EQ(*tokens, *direct);

  // Longer than a string's inline buffer, and a default model.
  const std::string text = "a rather longer text that certainly does not fit inline";
  auto more = run_sync(gw.gateway.tokenize("", text, true, false));
  ASSERT_TRUE(more.ok()) << more.error().message;
  auto back = run_sync(gw.gateway.detokenize("sim", *more));
  ASSERT_TRUE(back.ok()) << back.error().message;
  auto direct_back = run_sync(a.backend->detokenize("sim", *more));
  ASSERT_TRUE(direct_back.ok());
  EXPECT_EQ(*back, *direct_back);
  EXPECT_FALSE(back->empty());

  // An unknown model is an error (no worker publishes it).
  auto unknown = run_sync(gw.gateway.tokenize("nope", "x", false, false));
  ASSERT_FALSE(unknown.ok());
  EXPECT_EQ(unknown.error().code, Errc::not_found);
}

TEST(Gateway, ExtraMetricsHavePerWorkerSeries) {
  Signal sig;
  GatewayNode gw(sig);
  SimWorker a({gw.address()}, sig), b({gw.address()}, sig);
  ASSERT_TRUE(sig.wait([&] { return workers_visible(gw.gateway, 2); }));
  for (int i = 0; i < 4; ++i) {
    auto s = start(gw.gateway, task(3, "metrics " + std::to_string(i)));
    ASSERT_TRUE(std::holds_alternative<engine::Finished>(drain(s)));
  }
  auto none = start(gw.gateway, [] {
    auto t = task(3);
    t.model = "nope";
    return t;
  }());
  ASSERT_TRUE(std::holds_alternative<engine::Failed>(drain(none)));

  const auto m = troupe::test::parse_prometheus(gw.gateway.extra_metrics());
  ASSERT_TRUE(m.count("troupe_gateway_worker_up"));
  EXPECT_EQ(m.at("troupe_gateway_worker_up").samples.size(), 2u);
  const auto node_a = fmt::format("node=\"{:016x}\"", (*a.node).id());
  EXPECT_EQ(m.at("troupe_gateway_worker_up").find(node_a), 1);
  EXPECT_EQ(m.at("troupe_gateway_worker_capacity").find(node_a), 8);
  EXPECT_EQ(m.at("troupe_gateway_worker_routed_total").find(node_a),
            a.worker.stats().streams_total);
  EXPECT_EQ(m.at("troupe_gateway_routed_total").type, "counter");
  double routed = 0;
  for (const auto& [labels, v] : m.at("troupe_gateway_routed_total").samples)
    routed += v;
  EXPECT_EQ(routed, 4);
  EXPECT_EQ(m.at("troupe_gateway_no_worker_total").samples.at(0).second, 1);
  EXPECT_EQ(m.at("troupe_gateway_workers").samples.at(0).second, 2);
}

TEST(Gateway, MetricsLabelValuesAreEscaped) {
  GatewayStats s;
  WorkerView w;
  w.node = 0xab;
  w.address = "10.0.0.1:7946";
  w.model = "odd \"model\"\\name\nline";
  s.workers.push_back(w);
  w.up = false;
  w.node = 0xcd;
  w.model = "gone";
  s.workers.push_back(w);
  const auto m = troupe::test::parse_prometheus(render_gateway_metrics(s));
  ASSERT_TRUE(m.count("troupe_gateway_worker_up"));
  const auto& up = m.at("troupe_gateway_worker_up");
  ASSERT_EQ(up.samples.size(), 2u);
  EXPECT_NE(up.samples[0].first.find(R"(model="odd \"model\"\\name\nline")"), std::string::npos)
      << up.samples[0].first;
  EXPECT_EQ(up.samples[0].second, 1);
  EXPECT_EQ(up.samples[1].second, 0);
  EXPECT_EQ(m.at("troupe_gateway_workers").samples.at(0).second, 1);
  TROUPE_EXPECT_PROMTOOL_ACCEPTS(render_gateway_metrics(s));
}

}  // namespace
}  // namespace troupe::cluster

namespace troupe::cluster {
namespace {

// A worker serving a generated BERT model (embeddings) through the real engine.
struct EmbedWorker {
  EmbedWorker(std::vector<std::string> seeds, Signal& sig, const std::string& path)
      : node(fast_options(std::move(seeds)), &sig),
        backend(engine::make_local_backend(
            {.model_path = path,
             .model_id = "bert",
             .engine = {.n_ctx = 2048, .n_parallel = 4, .n_threads = 1, .embeddings = true}})),
        worker(*node, *backend, node.io().get_executor(), {.capacity = 4}) {
    EXPECT_EQ(backend->wait_loaded().state, engine::HealthState::ready);
    std::promise<bool> ready;
    worker.start([&](Result<std::vector<std::string>> r) { ready.set_value(r.ok()); });
    EXPECT_TRUE(ready.get_future().get());
  }
  ~EmbedWorker() {
    worker.stop();
    node.shutdown();
  }
  TestNode node;
  std::unique_ptr<engine::Backend> backend;
  Worker worker;
};

engine::Task embed_task(std::string text) {
  engine::Task t;
  t.model = "bert";
  t.prompt = std::move(text);
  t.embedding = engine::EmbeddingParams{};
  return t;
}

TEST(Gateway, EmbeddingsGoThroughAWorker) {
  Signal sig;
  GatewayNode gw(sig);
  EmbedWorker a({gw.address()}, sig, test::generated_bert_model());
  ASSERT_TRUE(sig.wait([&] { return workers_visible(gw.gateway, 1); }));
  for (const char* text : {"hello world", "The cat sat on the mat."}) {
    auto s = start(gw.gateway, embed_task(text));
    auto last = drain(s);
    ASSERT_TRUE(std::holds_alternative<engine::Finished>(last));
    const auto& f = std::get<engine::Finished>(last);
    ASSERT_EQ(f.embedding.size(), 128u);
    auto d = run_sync(a.backend->generate(embed_task(text)));
    auto direct = drain(d);
    ASSERT_TRUE(std::holds_alternative<engine::Finished>(direct));
    EXPECT_EQ(f.embedding, std::get<engine::Finished>(direct).embedding);  // bit for bit
    EXPECT_EQ(f.usage.prompt_tokens, std::get<engine::Finished>(direct).usage.prompt_tokens);
  }
  // A refusal travels back as a Failed (this model is no reranker).
  engine::Task rerank = embed_task("");
  rerank.embedding->rerank = std::pair{std::string("q"), std::string("d")};
  auto s = start(gw.gateway, std::move(rerank));
  auto last = drain(s);
  ASSERT_TRUE(std::holds_alternative<engine::Failed>(last));
  EXPECT_EQ(std::get<engine::Failed>(last).error.code, Errc::invalid_request);
}

}  // namespace
}  // namespace troupe::cluster
