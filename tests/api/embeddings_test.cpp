#include "api/embeddings.hpp"

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <boost/json/parse.hpp>
#include <cstring>

namespace troupe::api {
namespace {

namespace json = boost::json;

void expect_invalid(std::string_view body, const std::string& param) {
  auto r = parse_embeddings_request(body);
  ASSERT_FALSE(r.ok()) << body;
  EXPECT_EQ(r.error().code, Errc::invalid_request) << r.error().message;
  EXPECT_EQ(r.error().param, param) << r.error().message;
}

void expect_rerank_invalid(std::string_view body, const std::string& param) {
  auto r = parse_rerank_request(body);
  ASSERT_FALSE(r.ok()) << body;
  EXPECT_EQ(r.error().code, Errc::invalid_request) << r.error().message;
  EXPECT_EQ(r.error().param, param) << r.error().message;
}

TEST(EmbeddingsRequest, TakesEveryInputShape) {
  auto one = parse_embeddings_request(R"({"model":"m","input":"hello"})");
  ASSERT_TRUE(one.ok());
  EXPECT_EQ(one->model, "m");
  ASSERT_EQ(one->inputs.size(), 1u);
  EXPECT_EQ(std::get<std::string>(one->inputs[0]), "hello");
  EXPECT_EQ(one->encoding_format, EncodingFormat::float_array);
  EXPECT_EQ(one->norm, 2);
  EXPECT_FALSE(one->truncate);
  EXPECT_FALSE(one->content);

  auto strings = parse_embeddings_request(R"({"input":["a","b","c"]})");
  ASSERT_TRUE(strings.ok());
  EXPECT_EQ(strings->inputs.size(), 3u);

  auto ids = parse_embeddings_request(R"({"input":[1,2,3]})");
  ASSERT_TRUE(ids.ok());
  ASSERT_EQ(ids->inputs.size(), 1u);
  EXPECT_EQ(std::get<std::vector<std::int32_t>>(ids->inputs[0]),
            (std::vector<std::int32_t>{1, 2, 3}));

  auto arrays = parse_embeddings_request(R"({"input":[[1,2],[3],"text"]})");
  ASSERT_TRUE(arrays.ok());
  ASSERT_EQ(arrays->inputs.size(), 3u);
  EXPECT_EQ(std::get<std::vector<std::int32_t>>(arrays->inputs[1]), std::vector<std::int32_t>{3});
  EXPECT_EQ(std::get<std::string>(arrays->inputs[2]), "text");
}

TEST(EmbeddingsRequest, ReadsTheOptions) {
  auto r = parse_embeddings_request(
      R"({"input":"x","encoding_format":"base64","dimensions":64,"truncate":true,
          "embd_normalize":-1,"user":"u"})");
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->encoding_format, EncodingFormat::base64);
  EXPECT_EQ(*r->dimensions, 64);
  EXPECT_TRUE(r->truncate);
  EXPECT_EQ(r->norm, -1);
  for (int norm : {0, 1, 2, 3, 64})  // llama-server's: max-abs, taxicab, Euclidean, p-norms
    EXPECT_EQ(
        parse_embeddings_request(fmt::format(R"({{"input":"x","embd_normalize":{}}})", norm))->norm,
        norm);
}

// llama-server's `content` takes `input`'s shapes (and marks the request for its answer shape);
// `input` wins when both are there, as in llama-server.
TEST(EmbeddingsRequest, TakesLlamaServersContent) {
  auto r = parse_embeddings_request(R"({"content":["a",[1,2]]})");
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_TRUE(r->content);
  ASSERT_EQ(r->inputs.size(), 2u);
  EXPECT_EQ(std::get<std::string>(r->inputs[0]), "a");
  auto both = parse_embeddings_request(R"({"input":"i","content":"c"})");
  ASSERT_TRUE(both.ok());
  EXPECT_FALSE(both->content);
  EXPECT_EQ(std::get<std::string>(both->inputs[0]), "i");
  expect_invalid(R"({"content":""})", "input");
}

TEST(EmbeddingsRequest, RefusesBadInput) {
  expect_invalid(R"({"model":"m"})", "input");
  expect_invalid(R"({"input":""})", "input");
  expect_invalid(R"({"input":[]})", "input");
  expect_invalid(R"({"input":["a",""]})", "input");
  expect_invalid(R"({"input":[[1],[]]})", "input");
  expect_invalid(R"({"input":[-1]})", "input");
  expect_invalid(R"({"input":[[1,"a"]]})", "input[0]");
  expect_invalid(R"({"input":[{"text":"a"}]})", "input");
  expect_invalid(R"({"input":7})", "input");
  expect_invalid(R"({"input":"a","encoding_format":"int8"})", "encoding_format");
  expect_invalid(R"({"input":"a","dimensions":0})", "dimensions");
  expect_invalid(R"({"input":"a","embd_normalize":-2})", "embd_normalize");
  expect_invalid(R"({"input":"a","embd_normalize":65})", "embd_normalize");
  expect_invalid(R"({"input":"a","embd_normalize":1.5})", "embd_normalize");
  expect_invalid(R"({"input":"a","truncate":"yes"})", "truncate");
  std::string many = R"({"input":[)";
  for (int i = 0; i < 2049; ++i)
    many += i ? ",\"a\"" : "\"a\"";
  many += "]}";
  expect_invalid(many, "input");
  EXPECT_FALSE(parse_embeddings_request("not json").ok());
}

TEST(RerankRequest, ParsesStringsAndObjects) {
  auto r = parse_rerank_request(
      R"({"model":"r","query":"q","documents":["a",{"text":"b"}],"top_n":1,
          "return_documents":true})");
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->query, "q");
  EXPECT_EQ(r->documents, (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(*r->top_n, 1);
  EXPECT_TRUE(r->return_documents);
}

TEST(RerankRequest, RefusesBadInput) {
  expect_rerank_invalid(R"({"documents":["a"]})", "query");
  expect_rerank_invalid(R"({"query":"","documents":["a"]})", "query");
  expect_rerank_invalid(R"({"query":"q"})", "documents");
  expect_rerank_invalid(R"({"query":"q","documents":[]})", "documents");
  expect_rerank_invalid(R"({"query":"q","documents":[""]})", "documents");
  expect_rerank_invalid(R"({"query":"q","documents":[{"title":"a"}]})", "documents");
  expect_rerank_invalid(R"({"query":"q","documents":["a"],"top_n":0})", "top_n");
}

TEST(EmbeddingsResponse, WritesFloatsAndBase64) {
  EmbeddingsAnswer a{"m", {{0.5f, -0.25f}, {1.0f, 0.0f}}, EncodingFormat::float_array, 7};
  auto v = json::parse(write_embeddings_response(a)).as_object();
  EXPECT_EQ(v.at("object").as_string(), "list");
  EXPECT_EQ(v.at("model").as_string(), "m");
  EXPECT_EQ(v.at("usage").at("prompt_tokens").as_int64(), 7);
  EXPECT_EQ(v.at("usage").at("total_tokens").as_int64(), 7);
  const auto& data = v.at("data").as_array();
  ASSERT_EQ(data.size(), 2u);
  EXPECT_EQ(data[1].at("index").as_int64(), 1);
  EXPECT_EQ(data[1].at("object").as_string(), "embedding");
  EXPECT_EQ(data[0].at("embedding").as_array()[1].to_number<double>(), -0.25);

  a.encoding_format = EncodingFormat::base64;
  auto b = json::parse(write_embeddings_response(a)).as_object();
  const std::string text(b.at("data").as_array()[0].at("embedding").as_string());
  float raw[2] = {0.5f, -0.25f};
  std::string bytes(sizeof(raw), '\0');
  std::memcpy(bytes.data(), raw, sizeof(raw));
  EXPECT_EQ(text, base64_encode(bytes));
}

// llama-server's own shape: each input's rows, pooled (one) or per token.
TEST(EmbeddingsResponse, WritesLlamaServersShape) {
  const auto v = json::parse(write_native_embeddings_response(
      {{0.5f, -0.25f}, {1.0f, 2.0f, 3.0f, 4.0f, 5.0f, 6.0f}}, {1, 3}));
  const auto& a = v.as_array();
  ASSERT_EQ(a.size(), 2u);
  EXPECT_EQ(a[0].at("index").as_int64(), 0);
  EXPECT_EQ(a[1].at("index").as_int64(), 1);
  const auto& pooled = a[0].at("embedding").as_array();
  ASSERT_EQ(pooled.size(), 1u);
  EXPECT_EQ(pooled[0].as_array()[1].to_number<double>(), -0.25);
  const auto& tokens = a[1].at("embedding").as_array();
  ASSERT_EQ(tokens.size(), 3u);
  EXPECT_EQ(tokens[2].as_array().size(), 2u);
  EXPECT_EQ(tokens[2].as_array()[0].to_number<double>(), 5.0);
  EXPECT_EQ(tokens[1].as_array()[1].to_number<double>(), 4.0);
  EXPECT_EQ(write_native_embeddings_response({}, {}), "[]");
}

TEST(EmbeddingsResponse, Base64MatchesTheStandard) {
  EXPECT_EQ(base64_encode(""), "");
  EXPECT_EQ(base64_encode("f"), "Zg==");
  EXPECT_EQ(base64_encode("fo"), "Zm8=");
  EXPECT_EQ(base64_encode("foo"), "Zm9v");
  EXPECT_EQ(base64_encode("foobar"), "Zm9vYmFy");
}

TEST(RerankResponse, SortsCutsAndEchoes) {
  const std::vector<std::string> docs = {"a", "b", "c"};
  RerankAnswer a{"r", {0.1f, 2.0f, -1.0f}, &docs, 2, 9};
  auto v = json::parse(write_rerank_response(a)).as_object();
  const auto& results = v.at("results").as_array();
  ASSERT_EQ(results.size(), 2u);
  EXPECT_EQ(results[0].at("index").as_int64(), 1);
  EXPECT_EQ(results[0].at("document").at("text").as_string(), "b");
  EXPECT_EQ(results[1].at("index").as_int64(), 0);
  EXPECT_EQ(v.at("usage").at("prompt_tokens").as_int64(), 9);
  a.documents = nullptr;
  a.top_n.reset();
  auto w = json::parse(write_rerank_response(a)).as_object();
  ASSERT_EQ(w.at("results").as_array().size(), 3u);
  EXPECT_FALSE(w.at("results").as_array()[0].as_object().contains("document"));
}

}  // namespace
}  // namespace troupe::api

namespace troupe::api {
namespace {

TEST(EmbeddingsRequest, ReadsLlamaServersLora) {
  auto e = parse_embeddings_request(R"({"input":"a","lora":[{"id":0,"scale":0.5}]})");
  ASSERT_TRUE(e.ok()) << e.error().message;
  ASSERT_TRUE(e->lora);
  EXPECT_EQ(*e->lora, (std::vector<std::pair<std::int32_t, float>>{{0, 0.5f}}));
  auto r = parse_rerank_request(R"({"query":"q","documents":["d"],"lora":[{"id":1,"scale":1}]})");
  ASSERT_TRUE(r.ok()) << r.error().message;
  ASSERT_TRUE(r->lora);
  EXPECT_EQ(*r->lora, (std::vector<std::pair<std::int32_t, float>>{{1, 1.0f}}));
  EXPECT_FALSE(parse_embeddings_request(R"({"input":"a","lora":[]})")->lora);
  auto bad = parse_embeddings_request(R"({"input":"a","lora":[{"id":0}]})");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().param, "lora");
}

}  // namespace
}  // namespace troupe::api
