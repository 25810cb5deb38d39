// End to end: `troupe gateway` and `troupe worker`s as separate processes on loopback, serving
// a generated tiny model, driven through the gateway's OpenAI-compatible HTTP API. Every wait
// is for a log line or an HTTP answer, with a deadline.

#include <gtest/gtest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/json.hpp>
#include <cstring>
#include <functional>
#include <map>
#include <memory>

#include "client/client.hpp"
#include "cluster/child_process.hpp"
#include "remote/test_certs.hpp"
#include "support/prometheus_text.hpp"
#include "support/raw_socket.hpp"
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
  std::string url;      // its own HTTP server (direct answers, /metrics)
  std::string cluster;  // its cluster address (a seed for a gateway started later)
};

// The --tls-cert/--tls-key/--tls-ca arguments for `tls`.
std::vector<std::string> tls_args(const remote::TlsOptions& tls) {
  return {"--tls-cert", tls.cert_file, "--tls-key", tls.key_file, "--tls-ca", tls.ca_file};
}

// A gateway joining through `seeds` (none: the workers join it), with `extra` arguments.
Gateway start_gateway(const std::vector<std::string>& seeds = {},
                      const std::vector<std::string>& extra = {}) {
  Gateway g;
  std::vector<std::string> args{"gateway", "--listen",         "127.0.0.1:0", "--port",
                                "0",       "--cluster-secret", kSecret};
  args.insert(args.end(), extra.begin(), extra.end());
  for (const auto& s : seeds) {
    args.push_back("--join");
    args.push_back(s);
  }
  g.process = std::make_unique<ChildProcess>(std::move(args), "gateway");
  auto m = g.process->wait_for(
      std::regex(R"(listening on (http://[0-9.]+:[0-9]+), cluster node \S+ at (\S+))"));
  EXPECT_TRUE(m.has_value()) << "gateway did not start";
  if (m) {
    g.url = (*m)[1];
    g.cluster = (*m)[2];
  }
  return g;
}

Worker started(Worker w, const std::string& name);

Worker start_worker(const std::string& seed, const std::string& name,
                    const std::string& secret = kSecret) {
  Worker w;
  w.process = std::make_unique<ChildProcess>(
      std::vector<std::string>{"worker", "--model", troupe::test::generated_model("tiny"),
                               "--alias", "tiny", "--threads", "1", "--parallel", "4", "--ctx-size",
                               "4096", "--listen", "127.0.0.1:0", "--join", seed,
                               "--cluster-secret", secret, "--port", "0"},
      name);
  return started(std::move(w), name);
}

// Worker `w` once it logged its direct URL and its readiness.
Worker started(Worker w, const std::string& name) {
  auto m = w.process->wait_for(std::regex(R"(direct HTTP on (http://[0-9.]+:[0-9]+))"));
  EXPECT_TRUE(m.has_value()) << name << " did not start";
  if (m)
    w.url = (*m)[1];
  auto r = w.process->wait_for(std::regex(R"(worker: ready, cluster node \S+ at (\S+))"));
  EXPECT_TRUE(r.has_value()) << name << " did not become ready";
  if (r)
    w.cluster = (*r)[1];
  return w;
}

// A worker on the simulated engine (model "sim"): cheap to start, fast to answer.
Worker start_sim_worker(const std::string& seed, const std::string& name,
                        const std::vector<std::string>& extra = {}) {
  Worker w;
  std::vector<std::string> args{
      "worker",      "--engine", "sim", "--sim-decode-tps", "500",   "--parallel", "4", "--listen",
      "127.0.0.1:0", "--join",   seed,  "--cluster-secret", kSecret, "--port",     "0"};
  args.insert(args.end(), extra.begin(), extra.end());
  w.process = std::make_unique<ChildProcess>(std::move(args), name);
  return started(std::move(w), name);
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

// The body of GET `path` ("" when the request failed).
std::string get(const std::string& url, const std::string& path) {
  std::string body;
  with_client(url, [&](client::Client& c) -> asio::awaitable<void> {
    auto r = co_await c.request("GET", path);
    if (r)
      body = r->body;
  });
  return body;
}

// POST `path` with a JSON body: the status and the body (status 0 when the request failed).
std::pair<int, std::string> post(const std::string& url, const std::string& path,
                                 std::string body) {
  std::pair<int, std::string> out{0, ""};
  with_client(url, [&](client::Client& c) -> asio::awaitable<void> {
    auto r = co_await c.request("POST", path, std::move(body));
    if (r)
      out = {r->status, r->body};
  });
  return out;
}

// /metrics, parsed (the parser fails the test on a malformed line).
std::map<std::string, troupe::test::PromFamily> metrics(const std::string& url) {
  return troupe::test::parse_prometheus(get(url, "/metrics"));
}

// An unlabelled series from /metrics; -1 when absent.
std::int64_t metric(const std::string& url, const std::string& name) {
  const auto all = metrics(url);
  auto it = all.find(name);
  if (it == all.end() || it->second.samples.empty())
    return -1;
  return static_cast<std::int64_t>(it->second.samples.front().second);
}

// The sum over a family's samples; -1 when absent.
double metric_sum(const std::map<std::string, troupe::test::PromFamily>& all,
                  const std::string& name) {
  auto it = all.find(name);
  if (it == all.end())
    return -1;
  double sum = 0;
  for (const auto& [labels, v] : it->second.samples)
    sum += v;
  return sum;
}

std::string models_json(const std::string& url) {
  return get(url, "/v1/models");
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

  // The gateway's /metrics: per-worker state and the routing decisions of those 9 requests.
  const auto m = metrics(gw.url);
  ASSERT_TRUE(m.count("troupe_gateway_worker_up"));
  const auto& up = m.at("troupe_gateway_worker_up");
  ASSERT_EQ(up.samples.size(), 2u);
  for (const auto& [labels, v] : up.samples) {
    EXPECT_EQ(v, 1) << labels;
    EXPECT_NE(labels.find("model=\"tiny\""), std::string::npos) << labels;
  }
  EXPECT_EQ(metric_sum(m, "troupe_gateway_worker_capacity"), 8);
  EXPECT_EQ(metric_sum(m, "troupe_gateway_worker_routed_total"), 9);
  EXPECT_EQ(metric_sum(m, "troupe_gateway_routed_total"), 9);
  for (const auto& [labels, v] : m.at("troupe_gateway_worker_routed_total").samples)
    EXPECT_GT(v, 0) << labels;
  EXPECT_EQ(metric_sum(m, "troupe_gateway_worker_outstanding"), 0);
  EXPECT_EQ(metric_sum(m, "troupe_gateway_no_worker_total"), 0);
  EXPECT_EQ(metric_sum(m, "troupe_gateway_workers"), 2);
  EXPECT_GE(metric_sum(m, "troupe_generation_tokens_total"), 8 * 16 + 24);  // the server's own
}

// A conversation's template and its structured output are the worker's: /apply-template
// through the gateway renders on a worker, a JSON schema constrains the worker's answer.
TEST(ClusterProcessSlow, ApplyTemplateAndStructuredOutputGoThroughTheGateway) {
  auto gw = start_gateway();
  auto a = start_worker(gw.cluster, "worker-a");
  ASSERT_TRUE(gateway_sees(gw, 1));
  const std::string conversation = R"({"messages":[{"role":"system","content":"Be brief."},
      {"role":"user","content":"Hello"}]})";
  const auto through = post(gw.url, "/apply-template", conversation);
  const auto direct = post(a.url, "/apply-template", conversation);
  ASSERT_EQ(through.first, 200) << through.second;
  ASSERT_EQ(direct.first, 200) << direct.second;
  EXPECT_EQ(through.second, direct.second);
  EXPECT_NE(through.second.find("Be brief."), std::string::npos) << through.second;
  // llama-server's GET /props: the worker's model, template and defaults, asked of it.
  const auto props = get(gw.url, "/props");
  EXPECT_EQ(props, get(a.url, "/props"));
  const auto pv = boost::json::parse(props);
  EXPECT_GT(pv.at("default_generation_settings").at("n_ctx").as_int64(), 0) << props;
  EXPECT_FALSE(pv.at("chat_template").as_string().empty()) << props;

  const auto answer = post(gw.url, "/v1/chat/completions", R"({"messages":[{"role":"user",
      "content":"JSON"}],"max_tokens":300,"temperature":1,"seed":3,"response_format":{
      "type":"json_schema","json_schema":{"name":"x","schema":{"type":"object","properties":{
      "n":{"type":"integer","minimum":1,"maximum":9},"ok":{"type":"boolean"}},
      "required":["n","ok"],"additionalProperties":false}}}})");
  ASSERT_EQ(answer.first, 200) << answer.second;
  const auto content =
      boost::json::parse(answer.second).at("choices").at(0).at("message").at("content").as_string();
  const auto value = boost::json::parse(content);
  EXPECT_TRUE(value.at("n").is_int64()) << content;
  EXPECT_TRUE(value.at("ok").is_bool()) << content;
  EXPECT_EQ(value.as_object().size(), 2u) << content;

  // n choices through the gateway: each one constrained by the schema.
  const auto two = post(gw.url, "/v1/chat/completions", R"({"messages":[{"role":"user",
      "content":"JSON"}],"max_tokens":300,"temperature":1,"seed":5,"n":2,"response_format":{
      "type":"json_schema","json_schema":{"name":"x","schema":{"type":"object","properties":{
      "n":{"type":"integer","minimum":1,"maximum":9},"ok":{"type":"boolean"}},
      "required":["n","ok"],"additionalProperties":false}}}})");
  ASSERT_EQ(two.first, 200) << two.second;
  const auto choices = boost::json::parse(two.second).at("choices").as_array();
  ASSERT_EQ(choices.size(), 2u) << two.second;
  for (std::size_t i = 0; i < choices.size(); ++i) {
    EXPECT_EQ(choices[i].at("index").to_number<std::size_t>(), i);
    const auto text = choices[i].at("message").at("content").as_string();
    EXPECT_TRUE(boost::json::parse(text).at("ok").is_bool()) << text;
  }

  // A schema the converter cannot honour is refused by the gateway itself.
  const auto refused = post(gw.url, "/v1/chat/completions", R"({"messages":[{"role":"user",
      "content":"x"}],"response_format":{"type":"json_schema","json_schema":{"schema":
      {"type":"string","format":"email"}}}})");
  EXPECT_EQ(refused.first, 400) << refused.second;
}

// Anthropic's Messages API (and OpenAI's Responses API) through a gateway and two workers: answers,
// streams, counts and errors in Anthropic's shapes, the same as a worker's own server gives.
TEST(ClusterProcessSlow, MessagesGoThroughTheGateway) {
  auto gw = start_gateway();
  auto a = start_worker(gw.cluster, "worker-a");
  auto b = start_worker(gw.cluster, "worker-b");
  ASSERT_TRUE(gateway_sees(gw, 2));
  const std::string conversation = R"("system":"Be brief.","messages":[{"role":"user",
      "content":"Hello"}])";
  const std::string ask = R"({"model":"tiny","max_tokens":4,"temperature":0,)" + conversation + "}";
  const auto through = post(gw.url, "/v1/messages", ask);
  const auto direct = post(a.url, "/v1/messages", ask);
  ASSERT_EQ(through.first, 200) << through.second;
  ASSERT_EQ(direct.first, 200) << direct.second;
  const auto tv = boost::json::parse(through.second);
  const auto dv = boost::json::parse(direct.second);
  EXPECT_EQ(tv.at("type"), "message");
  EXPECT_EQ(tv.at("content"), dv.at("content"));
  EXPECT_EQ(tv.at("stop_reason"), dv.at("stop_reason"));

  const auto streamed =
      post(gw.url, "/v1/messages",
           R"({"model":"tiny","max_tokens":4,"temperature":0,"stream":true,)" + conversation + "}");
  ASSERT_EQ(streamed.first, 200) << streamed.second;
  EXPECT_EQ(streamed.second.find("event: message_start"), 0u) << streamed.second;
  EXPECT_NE(streamed.second.find("event: message_stop"), std::string::npos) << streamed.second;

  const auto count =
      post(gw.url, "/v1/messages/count_tokens", R"({"model":"tiny",)" + conversation + "}");
  const auto count_direct =
      post(b.url, "/v1/messages/count_tokens", R"({"model":"tiny",)" + conversation + "}");
  ASSERT_EQ(count.first, 200) << count.second;
  EXPECT_EQ(count.second, count_direct.second);
  const auto& usage = tv.at("usage");
  EXPECT_EQ(usage.at("input_tokens").as_int64() + usage.at("cache_read_input_tokens").as_int64(),
            boost::json::parse(count.second).at("input_tokens").as_int64());

  const auto missing =
      post(gw.url, "/v1/messages", R"({"model":"nope","max_tokens":4,)" + conversation + "}");
  EXPECT_EQ(missing.first, 404) << missing.second;
  EXPECT_EQ(boost::json::parse(missing.second).at("error").at("type"), "not_found_error");

  // The Responses API too: the gateway keeps the stored responses, so a continuation works
  // whichever worker serves it.
  const auto first =
      post(gw.url, "/v1/responses", R"({"model":"tiny","input":"Hello","max_output_tokens":3})");
  ASSERT_EQ(first.first, 200) << first.second;
  const std::string id(boost::json::parse(first.second).at("id").as_string());
  EXPECT_EQ(get(gw.url, "/v1/responses/" + id), first.second);
  const auto next = post(gw.url, "/v1/responses",
                         R"({"model":"tiny","input":"More","max_output_tokens":3,)"
                         R"("previous_response_id":")" +
                             id + "\"}");
  ASSERT_EQ(next.first, 200) << next.second;
  EXPECT_GT(boost::json::parse(next.second).at("usage").at("input_tokens").as_int64(),
            boost::json::parse(first.second).at("usage").at("input_tokens").as_int64());
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
  // /metrics keeps the lost worker with up 0.
  const auto m = metrics(gw.url);
  EXPECT_EQ(metric_sum(m, "troupe_gateway_workers"), 1);
  ASSERT_TRUE(m.count("troupe_gateway_worker_up"));
  std::vector<double> ups;
  for (const auto& [labels, v] : m.at("troupe_gateway_worker_up").samples)
    ups.push_back(v);
  std::sort(ups.begin(), ups.end());
  EXPECT_EQ(ups, (std::vector<double>{0, 1}));
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
  // The gateway's routing decisions: the first request least loaded, the others by affinity.
  const auto routed = metrics(gw.url).at("troupe_gateway_routed_total");
  EXPECT_EQ(routed.find("decision=\"least_loaded\""), 1);
  EXPECT_EQ(routed.find("decision=\"affinity\""), 3);
}

TEST(ClusterProcess, RestartedGatewayFindsTheWorkersAgain) {
  auto gw = start_gateway();
  auto a = start_sim_worker(gw.cluster, "worker-a");
  auto b = start_sim_worker(gw.cluster, "worker-b");
  ASSERT_TRUE(gateway_sees(gw, 2));
  for (const auto& o : stream_all(gw.url, {chat("before the restart", 8)}))
    EXPECT_TRUE(o.done) << o.error;

  // The gateway crashes; the workers keep running. A new gateway joins through one of them.
  gw.process->kill();
  gw.process->wait();
  auto again = start_gateway({a.cluster});
  ASSERT_TRUE(gateway_sees(again, 2));
  std::vector<client::ChatRequest> reqs;
  for (int i = 0; i < 8; ++i)
    reqs.push_back(chat("after the restart " + std::to_string(i), 8));
  for (const auto& o : stream_all(again.url, reqs)) {
    EXPECT_TRUE(o.done) << o.error;
    EXPECT_GT(o.deltas, 0);
  }
  // Both workers (neither restarted) took part.
  const auto m = metrics(again.url);
  ASSERT_TRUE(m.count("troupe_gateway_worker_routed_total"));
  const auto& routed = m.at("troupe_gateway_worker_routed_total").samples;
  ASSERT_EQ(routed.size(), 2u);
  for (const auto& [labels, v] : routed)
    EXPECT_GT(v, 0) << labels;
}

// The gateway's HTTP side has the server's defences: its per-address limit refuses a third
// connection from 127.0.0.1 with a 503 the client reads whole (20 of 20), while a client on
// 127.0.0.2 is served through a worker; /metrics counts the refusals by cause.
TEST(ClusterProcess, GatewayRefusesPerAddressAndTheAnswerArrives) {
  auto gw = start_gateway({}, {"--max-connections-per-ip", "2"});
  auto w = start_sim_worker(gw.cluster, "worker-a");
  ASSERT_TRUE(gateway_sees(gw, 1));
  const auto port = static_cast<std::uint16_t>(std::stoi(gw.url.substr(gw.url.rfind(':') + 1)));
  const int held[2] = {troupe::test::connect_from(port, "127.0.0.1"),
                       troupe::test::connect_from(port, "127.0.0.1")};
  ASSERT_GE(held[0], 0);
  ASSERT_GE(held[1], 0);
  const std::string chat_body =
      R"({"messages":[{"role":"user","content":"hi"}],"max_tokens":2,"ignore_eos":true})";
  int arrived = 0;
  for (int i = 0; i < 20; ++i) {
    const int fd = troupe::test::connect_from(port, "127.0.0.1");
    ASSERT_GE(fd, 0);
    troupe::test::send_all(fd, troupe::test::post_request("/v1/chat/completions", chat_body));
    int error = 0;
    const std::string answer = troupe::test::read_all(fd, error);
    ::close(fd);
    EXPECT_EQ(error, 0) << std::strerror(error);
    EXPECT_EQ(troupe::test::status_of(answer), 503) << answer;
    EXPECT_NE(answer.find("Retry-After: "), std::string::npos) << answer;
    EXPECT_NE(answer.find("\"code\":\"overloaded\""), std::string::npos) << answer;
    arrived += error == 0 && troupe::test::status_of(answer) == 503 ? 1 : 0;
  }
  EXPECT_EQ(arrived, 20);
  const int good = troupe::test::connect_from(port, "127.0.0.2");
  ASSERT_GE(good, 0);
  troupe::test::send_all(good, troupe::test::post_request("/v1/chat/completions", chat_body));
  int error = 0;
  const std::string answer = troupe::test::read_all(good, error);
  ::close(good);
  EXPECT_EQ(troupe::test::status_of(answer), 200) << answer;
  const int fd = troupe::test::connect_from(port, "127.0.0.2");
  troupe::test::send_all(fd, "GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  const std::string text = troupe::test::read_all(fd, error);
  ::close(fd);
  ::close(held[0]);
  ::close(held[1]);
  const auto body_at = text.find("\r\n\r\n");
  ASSERT_EQ(troupe::test::status_of(text), 200) << text;
  const auto after = troupe::test::parse_prometheus(text.substr(body_at + 4));
  ASSERT_TRUE(after.count("troupe_http_connections_refused_total"));
  EXPECT_GE(after.at("troupe_http_connections_refused_total").find("cause=\"per_ip_limit\""), 20);
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

// --tls-cert/--tls-key/--tls-ca: gateway and worker link over mutual TLS and serve; a worker
// without TLS is refused.
TEST(ClusterProcess, TlsLinksServeAndRefusePlaintext) {
  const auto dir = remote::test::make_temp_dir("cluster-tls");
  const auto ca = remote::test::make_ca(dir, "ca");
  auto gw = start_gateway({}, tls_args(remote::test::make_node_cert(ca, dir, "gateway")));
  auto w = start_sim_worker(gw.cluster, "worker-tls",
                            tls_args(remote::test::make_node_cert(ca, dir, "worker")));
  ASSERT_TRUE(gateway_sees(gw, 1));
  for (const auto& o : stream_all(gw.url, {chat("over tls", 8)})) {
    EXPECT_TRUE(o.done) << o.error;
    EXPECT_GT(o.deltas, 0);
  }
  ChildProcess plain({"worker", "--engine", "sim", "--alias", "plaintext", "--listen",
                      "127.0.0.1:0", "--join", gw.cluster, "--cluster-secret", kSecret},
                     "worker-plain");
  EXPECT_TRUE(plain.wait_for(std::regex("handshake .* failed")).has_value());
  EXPECT_EQ(models_json(gw.url).find("plaintext"), std::string::npos);
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace troupe::cluster::test
