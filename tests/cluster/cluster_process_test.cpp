// End to end: `troupe gateway` and `troupe worker`s as separate processes on loopback, serving
// a generated tiny model, driven through the gateway's OpenAI-compatible HTTP API. Every wait
// is for a log line or an HTTP answer, with a deadline.

#include <gtest/gtest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <charconv>
#include <functional>
#include <memory>

#include "client/client.hpp"
#include "cluster/child_process.hpp"
#include "support/test_models.hpp"

namespace troupe::cluster::test {
namespace {

namespace asio = boost::asio;
constexpr const char* kSecret = "process-test-secret";

struct Gateway {
  std::unique_ptr<ChildProcess> process;
  std::string cluster;  // host:port workers join
  std::string url;      // http://host:port
};

struct Worker {
  std::unique_ptr<ChildProcess> process;
  std::string url;  // its own HTTP server (direct answers, /metrics)
};

Gateway start_gateway() {
  Gateway g;
  g.process = std::make_unique<ChildProcess>(
      std::vector<std::string>{"gateway", "--listen", "127.0.0.1:0", "--http-port", "0",
                               "--cluster-secret", kSecret},
      "gateway");
  auto m = g.process->wait_for(
      std::regex(R"(listening on (http://[0-9.]+:[0-9]+), cluster node \S+ at (\S+))"));
  EXPECT_TRUE(m.has_value()) << "gateway did not start";
  if (m) {
    g.url = (*m)[1];
    g.cluster = (*m)[2];
  }
  return g;
}

Worker start_worker(const std::string& seed, const std::string& name,
                    const std::string& secret = kSecret) {
  Worker w;
  w.process = std::make_unique<ChildProcess>(
      std::vector<std::string>{"worker", "--model", troupe::test::generated_model("tiny"),
                               "--alias", "tiny", "--threads", "1", "--parallel", "4", "--ctx-size",
                               "4096", "--listen", "127.0.0.1:0", "--join", seed,
                               "--cluster-secret", secret, "--http-port", "0"},
      name);
  auto m = w.process->wait_for(std::regex(R"(direct HTTP on (http://[0-9.]+:[0-9]+))"));
  EXPECT_TRUE(m.has_value()) << name << " did not start";
  if (m)
    w.url = (*m)[1];
  EXPECT_TRUE(w.process->wait_for(std::regex("worker: ready")).has_value());
  return w;
}

// Waits until the gateway has logged that it sees `n` workers.
bool gateway_sees(Gateway& g, int n) {
  return g.process->wait_for(std::regex("\\(" + std::to_string(n) + " workers\\)")).has_value();
}

// Runs `body` with a Client for `url` on a fresh single-threaded io_context until every
// coroutine it started is done.
void with_client(const std::string& url,
                 const std::function<asio::awaitable<void>(client::Client&)>& body) {
  asio::io_context io;
  client::Client c(io.get_executor(), {.base_url = url});
  asio::co_spawn(io, body(c), asio::detached);
  io.run();
}

struct Outcome {
  std::string text;
  int deltas = 0;
  bool done = false;
  std::string error;
};

client::ChatRequest chat(std::string content, int max_tokens, bool ignore_eos = false) {
  client::ChatRequest r;
  r.messages = {{"user", std::move(content)}};
  r.sampling.max_tokens = max_tokens;
  r.sampling.temperature = 0.0;
  if (ignore_eos)
    r.extra["ignore_eos"] = true;
  return r;
}

asio::awaitable<void> stream_one(client::Client& c, client::ChatRequest req, Outcome& out,
                                 std::function<void()> on_first_delta) {
  auto s = co_await c.stream_chat(req);
  if (!s) {
    out.error = s.error().message;
    co_return;
  }
  for (;;) {
    auto ev = co_await s->next();
    if (auto* d = std::get_if<client::Delta>(&ev)) {
      out.text += d->content;
      if (++out.deltas == 1 && on_first_delta)
        on_first_delta();
      continue;
    }
    if (std::holds_alternative<client::Done>(ev))
      out.done = true;
    else
      out.error = std::get<client::ClientError>(ev).message;
    break;
  }
}

// Streams every request concurrently; `on_all_started` runs once all got a first delta.
std::vector<Outcome> stream_all(const std::string& url, std::vector<client::ChatRequest> reqs,
                                std::function<void()> on_all_started = {}) {
  std::vector<Outcome> out(reqs.size());
  auto started = std::make_shared<std::size_t>(0);
  with_client(url, [&](client::Client& c) -> asio::awaitable<void> {
    for (std::size_t i = 0; i < reqs.size(); ++i) {
      auto first = [&, started] {
        if (++*started == reqs.size() && on_all_started)
          on_all_started();
      };
      asio::co_spawn(c.executor(), stream_one(c, reqs[i], out[i], first), asio::detached);
    }
    co_return;
  });
  return out;
}

// A counter from a worker's /metrics.
std::int64_t metric(const std::string& url, const std::string& name) {
  std::int64_t value = -1;
  with_client(url, [&](client::Client& c) -> asio::awaitable<void> {
    auto r = co_await c.request("GET", "/metrics");
    if (!r)
      co_return;
    const auto& body = r->body;
    auto at = body.find("\n" + name + " ");
    if (at == std::string::npos)
      co_return;
    at += name.size() + 2;
    double v = 0;
    std::from_chars(body.data() + at, body.data() + body.size(), v);
    value = static_cast<std::int64_t>(v);
  });
  return value;
}

std::string models_json(const std::string& url) {
  std::string body;
  with_client(url, [&](client::Client& c) -> asio::awaitable<void> {
    auto r = co_await c.request("GET", "/v1/models");
    if (r)
      body = r->body;
  });
  return body;
}

TEST(ClusterProcessSlow, SpreadsStreamsAndMatchesTheWorkersOwnAnswer) {
  auto gw = start_gateway();
  auto a = start_worker(gw.cluster, "worker-a");
  auto b = start_worker(gw.cluster, "worker-b");
  ASSERT_TRUE(gateway_sees(gw, 2));
  EXPECT_NE(models_json(gw.url).find("\"tiny\""), std::string::npos);

  std::vector<client::ChatRequest> reqs;
  for (int i = 0; i < 8; ++i)
    reqs.push_back(chat("question number " + std::to_string(i), 16, true));
  for (const auto& o : stream_all(gw.url, reqs)) {
    EXPECT_TRUE(o.done) << o.error;
    EXPECT_GT(o.deltas, 0);
  }
  EXPECT_GT(metric(a.url, "troupe_generation_tokens_total"), 0);
  EXPECT_GT(metric(b.url, "troupe_generation_tokens_total"), 0);

  // Greedy: the answer through the gateway is the worker's own answer.
  auto through = stream_all(gw.url, {chat("tell me a story", 24, true)});
  auto direct = stream_all(a.url, {chat("tell me a story", 24, true)});
  ASSERT_TRUE(through[0].done && direct[0].done);
  EXPECT_EQ(through[0].text, direct[0].text);
  EXPECT_FALSE(direct[0].text.empty());
}

TEST(ClusterProcessSlow, KilledWorkerFailsOnlyItsStreams) {
  auto gw = start_gateway();
  auto a = start_worker(gw.cluster, "worker-a");
  auto b = start_worker(gw.cluster, "worker-b");
  ASSERT_TRUE(gateway_sees(gw, 2));
  std::vector<client::ChatRequest> reqs;
  for (int i = 0; i < 4; ++i)
    reqs.push_back(chat("long answer " + std::to_string(i), 900, true));
  // Worker A is killed once every stream has begun (two of them run there).
  auto outcomes = stream_all(gw.url, reqs, [&] { a.process->kill(); });
  int failed = 0;
  for (const auto& o : outcomes) {
    if (o.done) {
      continue;
    }
    ++failed;
    EXPECT_FALSE(o.error.empty());
  }
  // Streams on B were not disturbed (they finished); A's ended with an error event.
  EXPECT_GE(failed, 1);
  EXPECT_LE(failed, 2);
  a.process->wait();
  ASSERT_TRUE(gw.process->wait_for(std::regex("worker lost")).has_value());
  std::vector<client::ChatRequest> later;
  for (int i = 0; i < 4; ++i)
    later.push_back(chat("after the crash " + std::to_string(i), 8, true));
  for (const auto& o : stream_all(gw.url, later))
    EXPECT_TRUE(o.done) << o.error;
}

TEST(ClusterProcessSlow, NewWorkerJoinsAndTakesTraffic) {
  auto gw = start_gateway();
  auto a = start_worker(gw.cluster, "worker-a");
  ASSERT_TRUE(gateway_sees(gw, 1));
  for (const auto& o : stream_all(gw.url, {chat("before", 8, true)}))
    EXPECT_TRUE(o.done) << o.error;
  auto b = start_worker(gw.cluster, "worker-b");
  ASSERT_TRUE(gateway_sees(gw, 2));
  EXPECT_EQ(metric(b.url, "troupe_generation_tokens_total"), 0);
  std::vector<client::ChatRequest> reqs;
  for (int i = 0; i < 4; ++i)
    reqs.push_back(chat("after join " + std::to_string(i), 8, true));
  for (const auto& o : stream_all(gw.url, reqs))
    EXPECT_TRUE(o.done) << o.error;
  EXPECT_GT(metric(b.url, "troupe_generation_tokens_total"), 0);
}

TEST(ClusterProcessSlow, SharedPrefixStaysOnOneWorker) {
  auto gw = start_gateway();
  auto a = start_worker(gw.cluster, "worker-a");
  auto b = start_worker(gw.cluster, "worker-b");
  ASSERT_TRUE(gateway_sees(gw, 2));
  std::string system;
  for (int i = 0; i < 10; ++i)
    system += "You are a careful assistant who answers briefly. ";
  for (int i = 0; i < 4; ++i) {  // one after the other, so both workers are idle each time
    auto r = chat("question " + std::to_string(i), 4, true);
    r.messages.insert(r.messages.begin(), client::Message{"system", system});
    for (const auto& o : stream_all(gw.url, {r}))
      ASSERT_TRUE(o.done) << o.error;
  }
  const auto pa = metric(a.url, "troupe_prompt_tokens_total");
  const auto pb = metric(b.url, "troupe_prompt_tokens_total");
  EXPECT_TRUE((pa > 0) != (pb > 0)) << "a: " << pa << " b: " << pb;
  const auto hits = std::max(metric(a.url, "troupe_prefix_cache_hits_total"),
                             metric(b.url, "troupe_prefix_cache_hits_total"));
  EXPECT_GT(hits, 0);
}

TEST(ClusterProcessSlow, WrongSecretIsRefused) {
  auto gw = start_gateway();
  auto good = start_worker(gw.cluster, "worker-good");
  ASSERT_TRUE(gateway_sees(gw, 1));
  ChildProcess bad({"worker", "--engine", "sim", "--alias", "intruder", "--listen", "127.0.0.1:0",
                    "--join", gw.cluster, "--cluster-secret", "wrong"},
                   "worker-bad");
  EXPECT_TRUE(gw.process->wait_for(std::regex("refused connection")).has_value());
  EXPECT_EQ(models_json(gw.url).find("intruder"), std::string::npos);
  EXPECT_TRUE(bad.wait_for(std::regex("handshake .* failed")).has_value());
}

}  // namespace
}  // namespace troupe::cluster::test
