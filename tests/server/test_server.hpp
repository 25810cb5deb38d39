#pragma once
// The real Server on a loopback ephemeral port over a FakeBackend (or another Backend), run
// by 2 I/O threads of its own, and a blocking Beast client for it. Shared by the server's
// integration tests.

#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/time.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>
#include <boost/json/parse.hpp>
#include <future>
#include <memory>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "engine/coordinator.hpp"
#include "fake_backend.hpp"
#include "server/server.hpp"
#include "support/test_models.hpp"

namespace troupe::server::test {

namespace net = boost::asio;
namespace http = boost::beast::http;
namespace json = boost::json;
using tcp = net::ip::tcp;

struct Reply {
  int status = 0;
  http::response<http::string_body> raw;
  json::value body() const { return json::parse(raw.body()); }
  // The "data:" payloads of an SSE body, in order.
  std::vector<std::string> events() const {
    std::vector<std::string> out;
    const std::string& b = raw.body();
    for (std::size_t pos = 0; (pos = b.find("data: ", pos)) != std::string::npos;) {
      const auto end = b.find("\n\n", pos);
      out.push_back(b.substr(pos + 6, end - pos - 6));
      pos = end;
    }
    return out;
  }
};

// The server on 2 I/O threads, torn down with a graceful shutdown.
//
// Teardown order matters: a Backend answers asks from its own threads by posting to the
// io_context, so it is destroyed after the server drained and before the io_context stops
// (a backend that outlived the io_context could post into freed memory). Hence a Backend
// other than the FakeBackend is handed over, not lent.
class TestServer {
 public:
  // Serves `other` when given, else the FakeBackend `backend`.
  explicit TestServer(ServerConfig cfg = {}, std::unique_ptr<engine::Backend> other = nullptr)
      : other_(std::move(other)) {
    cfg.host = "127.0.0.1";
    cfg.port = 0;
    engine::Backend& served = other_ != nullptr ? *other_ : backend;
    server_ = std::make_unique<Server>(ioc_.get_executor(), served, cfg);
    auto port = server_->listen();
    EXPECT_TRUE(port.ok());
    port_ = port.ok() ? *port : 0;
    for (int i = 0; i < 2; ++i)
      threads_.emplace_back([this] { ioc_.run(); });
  }
  ~TestServer() {
    if (!stopped_)
      shutdown();
    other_.reset();  // its last answers still find the io_context running
    ioc_.stop();
    for (auto& t : threads_)
      t.join();
  }
  // Graceful shutdown; returns once every connection closed.
  void shutdown() {
    stopped_ = true;
    std::promise<void> done;
    server_->shutdown([&] { done.set_value(); });
    EXPECT_EQ(done.get_future().wait_for(std::chrono::seconds(20)), std::future_status::ready);
  }

  Reply request(http::verb method, const std::string& target, const std::string& body = {},
                const std::vector<std::pair<std::string, std::string>>& headers = {}) {
    net::io_context ioc;
    tcp::socket s(ioc);
    s.connect(tcp::endpoint(net::ip::make_address("127.0.0.1"), port_));
    http::request<http::string_body> req{method, target, 11};
    req.set(http::field::host, "localhost");
    for (const auto& [k, v] : headers)
      req.set(k, v);
    if (!body.empty() || method == http::verb::post) {
      req.set(http::field::content_type, "application/json");
      req.body() = body;
      req.prepare_payload();
    }
    http::write(s, req);
    boost::beast::flat_buffer buf;
    Reply r;
    http::response_parser<http::string_body> parser;
    parser.body_limit(64u << 20);
    http::read(s, buf, parser);
    r.raw = parser.release();
    r.status = static_cast<int>(r.raw.result_int());
    return r;
  }
  Reply post(const std::string& target, const std::string& body,
             const std::vector<std::pair<std::string, std::string>>& headers = {}) {
    return request(http::verb::post, target, body, headers);
  }
  std::uint16_t port() const { return port_; }
  const Server& server() const { return *server_; }

  test::FakeBackend backend;

 private:
  net::io_context ioc_;
  std::unique_ptr<engine::Backend> other_;
  std::unique_ptr<Server> server_;
  std::vector<std::thread> threads_;
  std::uint16_t port_ = 0;
  bool stopped_ = false;
};

// Sends a POST with `body` on a socket of its own and returns the socket, its answer unread.
inline tcp::socket send_raw(net::io_context& ioc, std::uint16_t port, const std::string& body,
                            const char* target = "/v1/chat/completions") {
  tcp::socket s(ioc);
  s.connect(tcp::endpoint(net::ip::make_address("127.0.0.1"), port));
  http::request<http::string_body> req{http::verb::post, target, 11};
  req.set(http::field::host, "localhost");
  req.body() = body;
  req.prepare_payload();
  http::write(s, req);
  return s;
}

// Reads into `got` until it holds `what`, with the socket's own timeout (asio's reads would
// wait forever): a server that sends nothing fails the test instead of hanging it.
inline void read_until_or_fail(tcp::socket& s, std::string_view what, std::string& got) {
  const timeval guard{10, 0};
  ASSERT_EQ(setsockopt(s.native_handle(), SOL_SOCKET, SO_RCVTIMEO, &guard, sizeof guard), 0);
  char buf[4096];
  while (got.find(what) == std::string::npos) {
    const ssize_t n = ::recv(s.native_handle(), buf, sizeof buf, 0);
    ASSERT_GT(n, 0) << "nothing more within 10 s after: " << got;
    got.append(buf, static_cast<std::size_t>(n));
  }
}

// The real engine on the tiny generated model ("tiny"), 1 thread, `n_parallel` slots of
// `n_ctx` cells in all; `adjust` may change the options first. Loaded, or null after a failed
// expectation.
inline std::unique_ptr<engine::Backend> tiny_engine(
    std::int32_t n_parallel, std::int32_t n_ctx,
    const std::function<void(engine::EngineOptions&)>& adjust = {}) {
  engine::EngineOptions o;
  o.model_path = troupe::test::generated_model("tiny");
  o.model_id = "tiny";
  o.engine.n_threads = 1;
  o.engine.n_parallel = n_parallel;
  o.engine.n_ctx = n_ctx;
  if (adjust)
    adjust(o);
  auto backend = std::make_unique<engine::Coordinator>(std::move(o));
  const engine::Health h = backend->wait_loaded();
  EXPECT_EQ(h.state, engine::HealthState::ready) << h.message;
  if (h.state != engine::HealthState::ready)
    return nullptr;
  return backend;
}

}  // namespace troupe::server::test
