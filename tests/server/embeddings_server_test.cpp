// Integration tests of POST /v1/embeddings and /v1/rerank: the real Server on a loopback port
// over a Coordinator serving generated BERT models (random weights, the real bert-bge
// vocabulary), driven by blocking Beast clients.

#include <gtest/gtest.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <cmath>
#include <future>
#include <thread>

#include "engine/coordinator.hpp"
#include "server/server.hpp"
#include "support/test_models.hpp"

namespace troupe::server {
namespace {

namespace net = boost::asio;
namespace http = boost::beast::http;
namespace json = boost::json;
using tcp = net::ip::tcp;

struct Reply {
  int status = 0;
  std::string body;
  json::value json() const { return json::parse(body); }
};

class EmbedServer {
 public:
  explicit EmbedServer(std::string model, bool embeddings = true) {
    engine::EngineOptions o;
    o.model_path = std::move(model);
    o.model_id = "emb";
    o.engine.n_threads = 1;
    o.engine.n_parallel = 8;
    o.engine.n_ctx = 4096;
    o.engine.embeddings = embeddings;
    backend_ = std::make_unique<engine::Coordinator>(std::move(o));
    EXPECT_EQ(backend_->wait_loaded().state, engine::HealthState::ready);
    ServerConfig cfg;
    cfg.host = "127.0.0.1";
    cfg.port = 0;
    server_ = std::make_unique<Server>(ioc_.get_executor(), *backend_, cfg);
    auto port = server_->listen();
    EXPECT_TRUE(port.ok());
    port_ = port.ok() ? *port : 0;
    thread_ = std::thread([this] { ioc_.run(); });
  }
  ~EmbedServer() {
    std::promise<void> done;
    server_->shutdown([&] { done.set_value(); });
    done.get_future().wait_for(std::chrono::seconds(20));
    ioc_.stop();
    thread_.join();
  }

  Reply request(http::verb method, const std::string& target, const std::string& body = {}) {
    net::io_context ioc;
    tcp::socket s(ioc);
    s.connect(tcp::endpoint(net::ip::make_address("127.0.0.1"), port_));
    http::request<http::string_body> req{method, target, 11};
    req.set(http::field::host, "localhost");
    req.set(http::field::content_type, "application/json");
    req.body() = body;
    req.prepare_payload();
    http::write(s, req);
    boost::beast::flat_buffer buf;
    http::response_parser<http::string_body> parser;
    parser.body_limit(64u << 20);
    http::read(s, buf, parser);
    auto raw = parser.release();
    return Reply{static_cast<int>(raw.result_int()), raw.body()};
  }
  Reply post(const std::string& target, const std::string& body) {
    return request(http::verb::post, target, body);
  }

 private:
  std::unique_ptr<engine::Coordinator> backend_;
  net::io_context ioc_;
  std::unique_ptr<Server> server_;
  std::thread thread_;
  std::uint16_t port_ = 0;
};

std::vector<double> vector_of(const json::value& item) {
  std::vector<double> v;
  for (const auto& x : item.at("embedding").as_array())
    v.push_back(x.to_number<double>());
  return v;
}

double norm(const std::vector<double>& v) {
  double s = 0;
  for (double x : v)
    s += x * x;
  return std::sqrt(s);
}

void expect_error(const Reply& r, int status, const std::string& param) {
  EXPECT_EQ(r.status, status) << r.body;
  auto v = r.json();
  ASSERT_TRUE(v.as_object().contains("error")) << r.body;
  EXPECT_EQ(v.at("error").at("param"), param.c_str()) << r.body;
}

TEST(EmbeddingsServer, AnswersEveryInputShape) {
  EmbedServer t(test::generated_bert_model());
  auto r = t.post("/v1/embeddings", R"({"model":"emb","input":["The cat sat.","A dog ran."]})");
  ASSERT_EQ(r.status, 200) << r.body;
  auto v = r.json();
  EXPECT_EQ(v.at("object"), "list");
  EXPECT_EQ(v.at("model"), "emb");
  const auto& data = v.at("data").as_array();
  ASSERT_EQ(data.size(), 2u);
  EXPECT_EQ(data[1].at("index").as_int64(), 1);
  EXPECT_EQ(data[0].at("object"), "embedding");
  const auto a = vector_of(data[0]);
  EXPECT_EQ(a.size(), 128u);
  EXPECT_NEAR(norm(a), 1.0, 1e-4);
  EXPECT_GT(v.at("usage").at("prompt_tokens").as_int64(), 4);
  EXPECT_EQ(v.at("usage").at("prompt_tokens"), v.at("usage").at("total_tokens"));

  // The same text alone, on the other path, and as tokens, gives the same vector.
  auto one = t.post("/embeddings", R"({"input":"The cat sat."})");
  ASSERT_EQ(one.status, 200) << one.body;
  const auto b = vector_of(one.json().at("data").as_array()[0]);
  auto tok = t.post("/tokenize", R"({"content":"The cat sat.","add_special":true})");
  ASSERT_EQ(tok.status, 200);
  const std::string ids = json::serialize(tok.json().at("tokens"));
  auto by_ids = t.post("/v1/embeddings", R"({"input":)" + ids + "}");
  ASSERT_EQ(by_ids.status, 200) << by_ids.body;
  const auto c = vector_of(by_ids.json().at("data").as_array()[0]);
  auto nested = t.post("/v1/embeddings", R"({"input":[)" + ids + "]}");
  ASSERT_EQ(nested.status, 200) << nested.body;
  const auto d = vector_of(nested.json().at("data").as_array()[0]);
  for (std::size_t i = 0; i < a.size(); ++i) {
    EXPECT_NEAR(a[i], b[i], 1e-4);
    EXPECT_NEAR(b[i], c[i], 1e-6);
    EXPECT_NEAR(c[i], d[i], 1e-6);
  }
  EXPECT_EQ(t.post("/v1/embeddings", R"({"input":"x","dimensions":128})").status, 200);
}

TEST(EmbeddingsServer, Base64IsTheFloatBytes) {
  EmbedServer t(test::generated_bert_model());
  auto f = t.post("/v1/embeddings", R"({"input":"hello"})");
  auto b = t.post("/v1/embeddings", R"({"input":"hello","encoding_format":"base64"})");
  ASSERT_EQ(b.status, 200) << b.body;
  const std::string text(b.json().at("data").as_array()[0].at("embedding").as_string());
  EXPECT_EQ(text.size(), (128u * 4 + 2) / 3 * 4);
  EXPECT_NE(f.body, b.body);
}

TEST(EmbeddingsServer, RefusesWithTheRightStatus) {
  EmbedServer t(test::generated_bert_model());
  expect_error(t.post("/v1/embeddings", R"({"input":""})"), 400, "input");
  expect_error(t.post("/v1/embeddings", R"({"input":[]})"), 400, "input");
  expect_error(t.post("/v1/embeddings", R"({"nothing":1})"), 400, "input");
  expect_error(t.post("/v1/embeddings", R"({"input":"x","dimensions":64})"), 400, "dimensions");
  expect_error(t.post("/v1/embeddings", R"({"input":"x","encoding_format":"hex"})"), 400,
               "encoding_format");
  expect_error(t.post("/v1/embeddings", R"({"input":[99999999]})"), 400, "input");
  std::string long_text;
  for (int i = 0; i < 700; ++i)
    long_text += "word ";
  expect_error(t.post("/v1/embeddings", R"({"input":")" + long_text + R"("})"), 400, "input");
  EXPECT_EQ(t.post("/v1/embeddings", R"({"input":")" + long_text + R"(","truncate":true})").status,
            200);
  EXPECT_EQ(t.post("/v1/embeddings", R"({"model":"other","input":"x"})").status, 404);
  expect_error(t.post("/v1/rerank", R"({"query":"q","documents":["a"]})"), 400, "documents");
  expect_error(t.post("/v1/completions", R"({"prompt":"hello","max_tokens":2})"), 400, "model");
  EXPECT_EQ(t.request(http::verb::get, "/v1/embeddings").status, 405);
  auto metrics = t.request(http::verb::get, "/metrics");
  // One answered request: the truncated input (refusals are not counted).
  EXPECT_NE(metrics.body.find("troupe_embedding_inputs_total 1\n"), std::string::npos);
  EXPECT_NE(metrics.body.find("troupe_embedding_tokens_total 512\n"), std::string::npos);
  EXPECT_NE(metrics.body.find("troupe_requests_total{endpoint=\"embeddings\",code=\"400\"}"),
            std::string::npos);
}

TEST(EmbeddingsServer, ServerWithoutTheFlagNamesIt) {
  EmbedServer t(test::generated_model("tiny"), /*embeddings=*/false);
  auto r = t.post("/v1/embeddings", R"({"input":"hello"})");
  expect_error(r, 400, "input");
  EXPECT_NE(r.body.find("--embeddings"), std::string::npos) << r.body;
  auto rr = t.post("/v1/rerank", R"({"query":"q","documents":["a"]})");
  expect_error(rr, 400, "documents");
  EXPECT_NE(rr.body.find("--embeddings"), std::string::npos) << rr.body;
}

TEST(RerankServer, OrdersCutsAndEchoes) {
  EmbedServer t(test::generated_bert_model(mkmodel::BertPooling::rank));
  const std::string docs = R"(["a cat","a dog","the mat","red ball",{"text":"blue sky"}])";
  auto all = t.post("/v1/rerank", R"({"query":"cat on a mat","documents":)" + docs + "}");
  ASSERT_EQ(all.status, 200) << all.body;
  const auto results = all.json().at("results").as_array();
  ASSERT_EQ(results.size(), 5u);
  for (std::size_t i = 1; i < results.size(); ++i) {
    EXPECT_GE(results[i - 1].at("relevance_score").to_number<double>(),
              results[i].at("relevance_score").to_number<double>());
  }
  EXPECT_FALSE(results[0].as_object().contains("document"));
  auto top = t.post("/v2/rerank", R"({"query":"cat on a mat","top_n":2,"return_documents":true,
                                      "documents":)" +
                                      docs + "}");
  ASSERT_EQ(top.status, 200) << top.body;
  const auto cut = top.json().at("results").as_array();
  ASSERT_EQ(cut.size(), 2u);
  EXPECT_EQ(cut[0].at("index"), results[0].at("index"));
  EXPECT_EQ(cut[1].at("index"), results[1].at("index"));
  EXPECT_TRUE(cut[0].at("document").at("text").is_string());
  EXPECT_EQ(t.post("/rerank", R"({"query":"q","documents":["x"]})").status, 200);
  expect_error(t.post("/v1/rerank", R"({"documents":["a"]})"), 400, "query");
  expect_error(t.post("/v1/rerank", R"({"query":"q","documents":[]})"), 400, "documents");
  expect_error(t.post("/v1/rerank", R"({"query":"q"})"), 400, "documents");
  expect_error(t.post("/v1/embeddings", R"({"input":"x"})"), 400, "input");  // a reranker
}

}  // namespace
}  // namespace troupe::server
