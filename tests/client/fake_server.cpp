#include "fake_server.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/json.hpp>
#include <sstream>

namespace troupe::test {

namespace json = boost::json;
using asio::ip::tcp;
constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);

FakeServer::FakeServer(asio::io_context& io, FakeHandler handler)
    : acceptor_(io, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0)),
      handler_(std::move(handler)) {
  port_ = acceptor_.local_endpoint().port();
  gate_ = std::make_unique<Gate>(io);
  asio::co_spawn(io, accept_loop(), asio::detached);
}

FakeServer::~FakeServer() {
  stop();
}

void FakeServer::stop() {
  boost::system::error_code ec;
  acceptor_.close(ec);
}

asio::awaitable<void> FakeServer::accept_loop() {
  for (;;) {
    auto [ec, sock] = co_await acceptor_.async_accept(use_tuple);
    if (ec)
      co_return;
    ++connections_;
    sock.set_option(tcp::no_delay(true), ec);
    asio::co_spawn(acceptor_.get_executor(), session(std::move(sock)), asio::detached);
  }
}

namespace {

std::string lower(std::string s) {
  for (auto& c : s)
    c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

FakeRequest parse_head(std::string_view head) {
  FakeRequest r;
  std::istringstream in{std::string(head)};
  std::string line;
  std::getline(in, line);
  std::istringstream first(line);
  first >> r.method >> r.target;
  while (std::getline(in, line) && line != "\r") {
    auto colon = line.find(':');
    if (colon == std::string::npos)
      continue;
    std::string value = line.substr(colon + 1);
    while (!value.empty() && (value.front() == ' '))
      value.erase(0, 1);
    while (!value.empty() && (value.back() == '\r' || value.back() == ' '))
      value.pop_back();
    r.headers[lower(line.substr(0, colon))] = value;
  }
  return r;
}

}  // namespace

asio::awaitable<void> FakeServer::session(tcp::socket sock) {
  std::string buf;
  for (;;) {
    auto [ec, n] =
        co_await asio::async_read_until(sock, asio::dynamic_buffer(buf), "\r\n\r\n", use_tuple);
    if (ec) {
      if (ec == asio::error::eof || ec == asio::error::connection_reset)
        ++closed_by_peer_;
      co_return;
    }
    FakeRequest req = parse_head(std::string_view(buf).substr(0, n));
    buf.erase(0, n);
    std::size_t len =
        req.headers.count("content-length") ? std::stoul(req.headers["content-length"]) : 0;
    if (buf.size() < len) {
      auto [ec2, m] = co_await asio::async_read(
          sock, asio::dynamic_buffer(buf), asio::transfer_exactly(len - buf.size()), use_tuple);
      if (ec2)
        co_return;
    }
    req.body = buf.substr(0, len);
    buf.erase(0, len);
    requests_.push_back(req);
    bool keep = co_await handler_(req, sock);
    if (!keep) {
      boost::system::error_code ignored;
      sock.shutdown(tcp::socket::shutdown_send, ignored);
      // Wait for the peer to close, so that closed_by_peer() counts this connection too.
      char c;
      auto [ec3, m3] = co_await sock.async_read_some(asio::buffer(&c, 1), use_tuple);
      if (ec3)
        ++closed_by_peer_;
      co_return;
    }
  }
}

Gate::Gate(asio::io_context& io) : timer_(io) {}

asio::awaitable<void> Gate::wait() {
  while (!open_) {
    timer_.expires_at(asio::steady_timer::time_point::max());
    co_await timer_.async_wait(use_tuple);
  }
}

void Gate::open() {
  open_ = true;
  timer_.cancel();
}

asio::awaitable<void> write_all(tcp::socket& s, std::string_view bytes) {
  co_await asio::async_write(s, asio::buffer(bytes.data(), bytes.size()), use_tuple);
}

std::string sse_head_close() {
  return "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nConnection: close\r\n\r\n";
}

std::string sse_head_chunked() {
  return "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n";
}

std::string json_response(int status, std::string_view body, bool keep_alive) {
  return "HTTP/1.1 " + std::to_string(status) + " X\r\nContent-Type: application/json\r\n" +
         (keep_alive ? "" : "Connection: close\r\n") +
         "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n" + std::string(body);
}

std::string http_chunk(std::string_view data) {
  std::ostringstream o;
  o << std::hex << data.size() << "\r\n" << data << "\r\n";
  return o.str();
}

std::string chat_chunk(std::string_view content, std::string_view finish_reason) {
  json::object delta;
  if (!content.empty())
    delta["content"] = content;
  json::object choice{{"index", 0}, {"delta", delta}};
  choice["finish_reason"] =
      finish_reason.empty() ? json::value(nullptr) : json::value(finish_reason);
  json::object o{
      {"id", "x"}, {"object", "chat.completion.chunk"}, {"choices", json::array{choice}}};
  return "data: " + json::serialize(o) + "\n\n";
}

std::string usage_chunk(int prompt_tokens, int completion_tokens) {
  json::object o{{"id", "x"},
                 {"choices", json::array{}},
                 {"usage", json::object{{"prompt_tokens", prompt_tokens},
                                        {"completion_tokens", completion_tokens},
                                        {"total_tokens", prompt_tokens + completion_tokens}}}};
  return "data: " + json::serialize(o) + "\n\n";
}

namespace {

std::string completion_chunk(std::string_view text, std::string_view finish_reason) {
  json::object choice{{"index", 0}, {"text", text}};
  choice["finish_reason"] =
      finish_reason.empty() ? json::value(nullptr) : json::value(finish_reason);
  json::object o{{"id", "x"}, {"object", "text_completion"}, {"choices", json::array{choice}}};
  return "data: " + json::serialize(o) + "\n\n";
}

// Prompt length in the fake's tokens: one token per byte of all message contents / prompt.
int prompt_tokens(const json::object& body) {
  std::size_t n = 0;
  if (const auto* p = body.if_contains("prompt"); p && p->is_string())
    n += p->as_string().size();
  if (const auto* m = body.if_contains("messages"); m && m->is_array()) {
    for (const auto& msg : m->as_array())
      n += msg.at("content").as_string().size();
  }
  return static_cast<int>(n);
}

asio::awaitable<bool> answer_generation(const json::object& body, bool chat, tcp::socket& s) {
  int n = 8;
  if (const auto* m = body.if_contains("max_tokens"); m && m->is_int64())
    n = int(m->as_int64());
  bool stream = body.if_contains("stream") && body.at("stream").as_bool();
  int prompt = prompt_tokens(body);
  if (!stream) {
    std::string text;
    for (int i = 0; i < n; ++i)
      text += "t" + std::to_string(i) + " ";
    json::object msg{{"role", "assistant"}, {"content", text}};
    json::object choice{{"index", 0}, {"finish_reason", "length"}};
    if (chat)
      choice["message"] = msg;
    else
      choice["text"] = text;
    json::object o{{"choices", json::array{choice}},
                   {"usage", json::object{{"prompt_tokens", prompt}, {"completion_tokens", n}}}};
    std::string response = json_response(200, json::serialize(o));
    co_await write_all(s, response);
    co_return true;
  }
  co_await write_all(s, sse_head_chunked());
  for (int i = 0; i < n; ++i) {
    std::string tok = "t" + std::to_string(i) + " ";
    std::string_view fin = i + 1 == n ? "length" : "";
    std::string chunk = http_chunk(chat ? chat_chunk(tok, fin) : completion_chunk(tok, fin));
    co_await write_all(s, chunk);
  }
  std::string tail = http_chunk(usage_chunk(prompt, n) + "data: [DONE]\n\n") + http_chunk("");
  co_await write_all(s, tail);
  co_return true;
}

}  // namespace

namespace {

asio::awaitable<bool> openai_respond(std::shared_ptr<int> count, int fail_every,
                                     const FakeRequest& req, tcp::socket& s) {
  if (req.target == "/v1/models") {
    std::string models = R"({"object":"list","data":[{"id":"fake","owned_by":"test"}]})";
    co_await write_all(s, json_response(200, models));
    co_return true;
  }
  auto body = json::parse(req.body.empty() ? "{}" : req.body).as_object();
  if (req.target == "/tokenize") {
    json::array toks;
    for (unsigned char c : body.at("content").as_string())
      toks.push_back(c);
    json::object out;
    out["tokens"] = std::move(toks);
    std::string response = json_response(200, json::serialize(out));
    co_await write_all(s, response);
    co_return true;
  }
  if (req.target == "/detokenize") {
    std::string text;
    for (const auto& t : body.at("tokens").as_array())
      text.push_back(static_cast<char>(t.as_int64()));
    json::object out;
    out["content"] = text;
    std::string response = json_response(200, json::serialize(out));
    co_await write_all(s, response);
    co_return true;
  }
  ++*count;
  if (fail_every > 0 && *count % fail_every == 0) {
    std::string error = R"({"error":{"message":"boom","type":"server_error"}})";
    co_await write_all(s, json_response(500, error));
    co_return true;
  }
  co_return co_await answer_generation(body, req.target == "/v1/chat/completions", s);
}

}  // namespace

FakeHandler openai_handler(int fail_every) {
  auto count = std::make_shared<int>(0);
  return [count, fail_every](const FakeRequest& req, tcp::socket& s) {
    return openai_respond(count, fail_every, req, s);
  };
}

}  // namespace troupe::test
