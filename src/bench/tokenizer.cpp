#include "bench/tokenizer.hpp"

#include <boost/json.hpp>

#include "engine/vocab_tokenizer.hpp"

namespace troupe::bench {

namespace asio = boost::asio;
namespace json = boost::json;

namespace {

Error from_client(const client::ClientError& e) {
  return Error{e.code, e.message};
}

class ServerTokenizer final : public Tokenizer {
 public:
  explicit ServerTokenizer(client::Client& c) : client_(c) {}

  std::string describe() const override { return "server"; }

  asio::awaitable<Result<std::vector<std::int32_t>>> tokenize(std::string_view text) override {
    auto r = co_await client_.tokenize(text, false);
    if (!r)
      co_return from_client(r.error());
    co_return std::move(r).value();
  }

  asio::awaitable<Result<std::string>> detokenize(
      const std::vector<std::int32_t>& tokens) override {
    json::object body;
    body["tokens"] = json::array(tokens.begin(), tokens.end());
    auto r = co_await client_.request("POST", "/detokenize", json::serialize(body));
    if (!r)
      co_return from_client(r.error());
    if (r->status != 200) {
      co_return Error{r->status == 404 ? Errc::not_found : Errc::internal,
                      "POST /detokenize answered HTTP " + std::to_string(r->status)};
    }
    json::error_code ec;
    auto v = json::parse(r->body, ec);
    const json::value* content =
        (!ec && v.is_object()) ? v.as_object().if_contains("content") : nullptr;
    if (!content || !content->is_string())
      co_return Error{Errc::internal, "POST /detokenize: no \"content\" string in the answer"};
    co_return std::string(content->as_string());
  }

 private:
  client::Client& client_;
};

class LocalTokenizer final : public Tokenizer {
 public:
  explicit LocalTokenizer(std::unique_ptr<engine::VocabTokenizer> vocab)
      : vocab_(std::move(vocab)) {}

  std::string describe() const override { return "local:" + vocab_->path(); }

  // Tokenizing is CPU work done inline: the workload is built before a point's traffic starts.
  asio::awaitable<Result<std::vector<std::int32_t>>> tokenize(std::string_view text) override {
    co_return vocab_->tokenize(text, /*add_special=*/false, /*parse_special=*/true);
  }

  asio::awaitable<Result<std::string>> detokenize(
      const std::vector<std::int32_t>& tokens) override {
    co_return vocab_->detokenize(tokens);
  }

 private:
  std::unique_ptr<engine::VocabTokenizer> vocab_;
};

}  // namespace

std::unique_ptr<Tokenizer> make_server_tokenizer(client::Client& c) {
  return std::make_unique<ServerTokenizer>(c);
}

Result<std::unique_ptr<Tokenizer>> make_local_tokenizer(const std::string& gguf_path) {
  auto vocab = engine::VocabTokenizer::load(gguf_path);
  if (!vocab)
    return Error{vocab.error().code, "--tokenizer: " + vocab.error().message, "tokenizer"};
  return std::unique_ptr<Tokenizer>(std::make_unique<LocalTokenizer>(std::move(vocab).value()));
}

}  // namespace troupe::bench
