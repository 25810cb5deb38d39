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
  explicit EmbedServer(std::string model, bool embeddings = true,
                       engine::Pooling pooling = engine::Pooling::model) {
    engine::EngineOptions o;
    o.model_path = std::move(model);
    o.model_id = "emb";
    o.engine.n_threads = 1;
    o.engine.n_parallel = 8;
    o.engine.n_ctx = 4096;
    o.engine.embeddings = embeddings;
    o.engine.pooling = pooling;
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

// llama-server's POST /embedding: `content` (or `input`), each input's vectors as rows, the same
// vector as OpenAI's answer; `content` on /v1/embeddings answers in this shape too, as in
// llama-server. base64 has no place in it: 400.
TEST(EmbeddingsServer, AnswersLlamaServersEmbeddingShape) {
  EmbedServer t(test::generated_bert_model());
  const json::value first = t.post("/v1/embeddings", R"({"input":"The cat sat."})").json();
  const auto oai = vector_of(first.at("data").as_array()[0]);
  for (const auto& [path, body] :
       {std::pair{"/embedding", R"({"content":["The cat sat.","x"]})"},
        std::pair{"/embedding", R"({"input":["The cat sat.","x"]})"},
        std::pair{"/v1/embeddings", R"({"content":["The cat sat.","x"]})"}}) {
    auto r = t.post(path, body);
    ASSERT_EQ(r.status, 200) << path << r.body;
    const json::value answer = r.json();
    const auto& a = answer.as_array();
    ASSERT_EQ(a.size(), 2u) << r.body;
    EXPECT_EQ(a[1].at("index").as_int64(), 1);
    const auto& rows = a[0].at("embedding").as_array();
    ASSERT_EQ(rows.size(), 1u);
    ASSERT_EQ(rows[0].as_array().size(), 128u);
    for (std::size_t i = 0; i < 128; ++i)
      EXPECT_NEAR(rows[0].as_array()[i].to_number<double>(), oai[i], 1e-4) << path;
  }
  auto raw = t.post("/embedding", R"({"content":"The cat sat.","embd_normalize":-1})");
  ASSERT_EQ(raw.status, 200) << raw.body;
  std::vector<double> v;
  const json::value raw_answer = raw.json();
  for (const auto& x : raw_answer.as_array()[0].at("embedding").as_array()[0].as_array())
    v.push_back(x.to_number<double>());
  EXPECT_GT(std::abs(norm(v) - 1.0), 1e-3);
  expect_error(t.post("/embedding", R"({"content":"x","encoding_format":"base64"})"), 400,
               "encoding_format");
  expect_error(t.post("/embedding", R"({"content":"x","embd_normalize":99})"), 400,
               "embd_normalize");
  expect_error(t.post("/embedding", R"({"nothing":1})"), 400, "input");
}

// With pooling none the answer is every token's vector (llama-server's /embedding); OpenAI's
// endpoint, whose answer has one vector per input, refuses and names /embedding.
TEST(EmbeddingsServer, PoolingNoneAnswersAVectorPerToken) {
  EmbedServer t(test::generated_bert_model(), true, engine::Pooling::none);
  auto tok = t.post("/tokenize", R"({"content":"The cat sat.","add_special":true})");
  ASSERT_EQ(tok.status, 200);
  const std::size_t n = tok.json().at("tokens").as_array().size();
  auto r = t.post("/embedding", R"({"content":["The cat sat.","x y"]})");
  ASSERT_EQ(r.status, 200) << r.body;
  const json::value answer = r.json();
  const auto& rows = answer.as_array()[0].at("embedding").as_array();
  ASSERT_EQ(rows.size(), n);
  for (const auto& row : rows)
    EXPECT_EQ(row.as_array().size(), 128u);
  EXPECT_NE(json::serialize(rows[0]), json::serialize(rows[1]));
  auto oai = t.post("/v1/embeddings", R"({"input":"The cat sat."})");
  expect_error(oai, 400, "input");
  EXPECT_NE(oai.body.find("/embedding"), std::string::npos) << oai.body;
}

// Ollama's /api/embed: normalised vectors, equal to OpenAI's; `dimensions` keeps the first ones
// normalised again; the legacy /api/embeddings gives the raw vector; no input only loads.
TEST(EmbeddingsServer, AnswersOllamasEmbed) {
  EmbedServer t(test::generated_bert_model());
  const json::value oai = t.post("/v1/embeddings", R"({"input":["The cat sat.","x"]})").json();
  auto r = t.post("/api/embed", R"({"model":"emb:latest","input":["The cat sat.","x"]})");
  ASSERT_EQ(r.status, 200) << r.body;
  const json::value v = r.json();
  EXPECT_EQ(v.at("model"), "emb:latest");
  ASSERT_EQ(v.at("embeddings").as_array().size(), 2u);
  EXPECT_EQ(v.at("prompt_eval_count"), oai.at("usage").at("prompt_tokens"));
  for (std::size_t i = 0; i < 2; ++i) {
    std::vector<double> e;
    for (const auto& x : v.at("embeddings").at(i).as_array())
      e.push_back(x.to_number<double>());
    const auto o = vector_of(oai.at("data").at(i));
    ASSERT_EQ(e.size(), o.size());
    for (std::size_t k = 0; k < e.size(); ++k)
      EXPECT_NEAR(e[k], o[k], 1e-5);
  }
  auto cut = t.post("/api/embed", R"({"model":"emb","input":"The cat sat.","dimensions":16})");
  ASSERT_EQ(cut.status, 200) << cut.body;
  const json::value c = cut.json();
  std::vector<double> short_one;
  for (const auto& x : c.at("embeddings").at(0).as_array())
    short_one.push_back(x.to_number<double>());
  ASSERT_EQ(short_one.size(), 16u);
  EXPECT_NEAR(norm(short_one), 1.0, 1e-5);
  const auto full = vector_of(oai.at("data").at(0));
  EXPECT_NEAR(short_one[3] / short_one[0], full[3] / full[0], 1e-4);  // the same direction
  auto legacy = t.post("/api/embeddings", R"({"model":"emb","prompt":"The cat sat."})");
  ASSERT_EQ(legacy.status, 200) << legacy.body;
  const json::value raw =
      t.post("/embedding", R"({"content":"The cat sat.","embd_normalize":-1})").json();
  const json::value l = legacy.json();
  ASSERT_EQ(l.at("embedding").as_array().size(), 128u);
  for (std::size_t k = 0; k < 128; ++k) {
    EXPECT_NEAR(l.at("embedding").at(k).to_number<double>(),
                raw.at(0).at("embedding").at(0).at(k).to_number<double>(), 1e-4);
  }
  EXPECT_EQ(t.post("/api/embed", R"({"model":"emb"})").json().at("embeddings").as_array().size(),
            0u);
  EXPECT_EQ(t.post("/api/embeddings", R"({"model":"emb"})").body, R"({"embedding":[]})");
  auto too_wide = t.post("/api/embed", R"({"model":"emb","input":"x","dimensions":4096})");
  EXPECT_EQ(too_wide.status, 400);
  EXPECT_TRUE(too_wide.json().at("error").is_string());
  std::string long_text;
  for (int i = 0; i < 700; ++i)
    long_text += "word ";
  EXPECT_EQ(t.post("/api/embed", R"({"model":"emb","input":")" + long_text + R"("})").status,
            200);  // Ollama's default: truncate
  EXPECT_EQ(
      t.post("/api/embed", R"({"model":"emb","truncate":false,"input":")" + long_text + R"("})")
          .status,
      400);
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
