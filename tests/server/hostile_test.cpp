// The server under hostile load, on loopback: floods of idle and header-only connections from
// one address while a client on another address keeps being answered, refusals that arrive
// whole, idle connections reclaimed at the limit, and a client that stops reading. No timing
// assertions: every wait is bounded only as a guard against a hanging test, and latencies
// are written to the log.

#include <arpa/inet.h>
#include <dirent.h>
#include <netinet/in.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "engine/sim_backend.hpp"
#include "support/raw_socket.hpp"
#include "test_server.hpp"

namespace troupe::server {
namespace {

using namespace std::chrono_literals;
using test::TestServer;
using troupe::test::connect_from;
using troupe::test::read_all;
using troupe::test::send_all;
using troupe::test::status_of;
using Clock = std::chrono::steady_clock;

// Raises the soft descriptor limit to the hard one (at most 65536); returns the soft limit.
std::size_t raise_fd_limit() {
  rlimit r{};
  ::getrlimit(RLIMIT_NOFILE, &r);
  const rlim_t want = std::min<rlim_t>(r.rlim_max, 65536);
  if (r.rlim_cur < want) {
    r.rlim_cur = want;
    ::setrlimit(RLIMIT_NOFILE, &r);
    ::getrlimit(RLIMIT_NOFILE, &r);
  }
  return static_cast<std::size_t>(r.rlim_cur);
}

std::size_t open_fds() {
  std::size_t n = 0;
  if (DIR* d = ::opendir("/proc/self/fd")) {
    while (const dirent* e = ::readdir(d))
      n += e->d_name[0] != '.' ? 1 : 0;
    ::closedir(d);
  }
  return n - 1;  // the directory's own descriptor
}

std::string post_request(const std::string& body, bool close = true) {
  return troupe::test::post_request("/v1/chat/completions", body, close);
}

// One request from `source` on a fresh connection; its status (0: no answer) and latency.
struct Answer {
  int status = 0;
  double ms = 0;
};
Answer ask(std::uint16_t port, const char* source, const std::string& body) {
  const auto t0 = Clock::now();
  Answer a;
  const int fd = connect_from(port, source);
  if (fd < 0)
    return a;
  int error = 0;
  if (send_all(fd, post_request(body)))
    a.status = status_of(read_all(fd, error));
  ::close(fd);
  a.ms = std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
  return a;
}

// Waits (bounded, as a guard) until `done()` holds; returns whether it did.
template <class F>
bool eventually(F done, std::chrono::seconds guard = 60s) {
  const auto until = Clock::now() + guard;
  while (!done()) {
    if (Clock::now() > until)
      return false;
    std::this_thread::sleep_for(20ms);
  }
  return true;
}

const std::string kSimChat =
    R"({"messages":[{"role":"user","content":"hi"}],"max_tokens":2,"ignore_eos":true})";

// A well-behaved client on 127.0.0.2 asking again and again until stopped.
class GoodClient {
 public:
  explicit GoodClient(std::uint16_t port)
      : thread_([this, port] {
          while (!stop_) {
            const Answer a = ask(port, "127.0.0.2", kSimChat);
            std::lock_guard lock(mu_);
            answers_.push_back(a);
          }
        }) {}
  ~GoodClient() { finish(); }
  void finish() {
    stop_ = true;
    if (thread_.joinable())
      thread_.join();
  }
  std::size_t count() const {
    std::lock_guard lock(mu_);
    return answers_.size();
  }
  // Waits for `n` more answers than now.
  bool wait_more(std::size_t n) {
    const std::size_t target = count() + n;
    return eventually([&] { return count() >= target; });
  }
  // Writes the latencies of answers [from, to) to the log; returns the statuses seen.
  std::vector<int> report(const char* phase, std::size_t from, std::size_t to) const {
    std::lock_guard lock(mu_);
    std::vector<double> ms;
    std::vector<int> statuses;
    for (std::size_t i = from; i < to && i < answers_.size(); ++i) {
      ms.push_back(answers_[i].ms);
      statuses.push_back(answers_[i].status);
    }
    std::sort(ms.begin(), ms.end());
    if (!ms.empty()) {
      std::printf(
          "good client (127.0.0.2) during %s: %zu answers, latency ms min %.2f median %.2f "
          "max %.2f\n",
          phase, ms.size(), ms.front(), ms[ms.size() / 2], ms.back());
    }
    return statuses;
  }

 private:
  mutable std::mutex mu_;
  std::vector<Answer> answers_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

void close_all(std::vector<int>& fds) {
  for (int fd : fds)
    ::close(fd);
  fds.clear();
}

TEST(Hostile, FloodsFromOneAddressDoNotLockOutAnother) {
  const std::size_t limit = raise_fd_limit();
  engine::SimOptions so;
  so.decode_tokens_per_s = 2000;
  auto sim = engine::make_sim_backend(so);
  TestServer t({}, std::move(sim));
  ASSERT_EQ(ask(t.port(), "127.0.0.2", kSimChat).status, 200);  // what a first answer opens
  const std::size_t baseline = open_fds();
  // Each flood connection costs this process two descriptors (both ends); keep a margin.
  const std::size_t per_flood = std::clamp<std::size_t>((limit - baseline - 256) / 5, 200, 2000);
  std::printf("descriptor limit %zu, baseline %zu: floods of %zu connections each\n", limit,
              baseline, per_flood);

  GoodClient good(t.port());
  ASSERT_TRUE(good.wait_more(3));
  const std::size_t before = good.count();

  std::vector<int> idle, header_only;
  for (std::size_t i = 0; i < per_flood; ++i) {
    const int fd = connect_from(t.port(), "127.0.0.1");
    ASSERT_GE(fd, 0) << "connect " << i << ": " << std::strerror(errno);
    idle.push_back(fd);
  }
  ASSERT_TRUE(good.wait_more(3));
  const std::size_t after_idle = good.count();
  const std::string headers =
      "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n";
  for (std::size_t i = 0; i < per_flood; ++i) {
    const int fd = connect_from(t.port(), "127.0.0.1");
    ASSERT_GE(fd, 0) << "connect " << i << ": " << std::strerror(errno);
    send_all(fd, headers);  // a refused one may be closed already: that is fine
    header_only.push_back(fd);
  }
  ASSERT_TRUE(good.wait_more(3));
  const std::size_t after_headers = good.count();
  close_all(idle);
  close_all(header_only);
  good.finish();

  const auto& m = t.server().metrics();
  std::printf("refused: pending_per_ip %lld, per_ip_limit %lld\n",
              static_cast<long long>(m.refusals(RefusalCause::pending_per_ip)),
              static_cast<long long>(m.refusals(RefusalCause::per_ip_limit)));
  for (const auto& [phase, from, to] :
       {std::tuple{"no flood", std::size_t{0}, before},
        std::tuple{"the idle flood", before, after_idle},
        std::tuple{"the header-only flood", after_idle, after_headers}}) {
    for (int status : good.report(phase, from, to))
      EXPECT_EQ(status, 200) << phase;
  }
  EXPECT_GT(m.refusals(RefusalCause::pending_per_ip) + m.refusals(RefusalCause::per_ip_limit), 0);
  EXPECT_TRUE(eventually([&] { return m.connections() == 0; })) << m.connections();
  EXPECT_TRUE(eventually([&] { return open_fds() <= baseline; }))
      << open_fds() << " descriptors open, " << baseline << " before the floods";
  for (std::size_t i = 0; i < kConnStates; ++i)
    EXPECT_EQ(m.connections_in(static_cast<ConnState>(i)), 0) << kConnStateNames[i];
}

// At the connection limit with every connection busy, new ones are refused with a 503 the
// client reads whole, though it sent a body the server never reads.
TEST(Hostile, RefusalsArriveWithTheirAnswer) {
  ServerConfig cfg;
  cfg.max_connections = 1;
  TestServer t(cfg);
  const int held = connect_from(t.port(), "127.0.0.1");
  ASSERT_GE(held, 0);
  ASSERT_TRUE(send_all(
      held,
      post_request(R"({"model":"fake","messages":[{"role":"user","content":"hold"}]})", false)));
  ASSERT_TRUE(t.backend.wait_running(1));
  const std::string body(32 * 1024, ' ');  // more than a refusal would read by chance
  int arrived = 0;
  for (int i = 0; i < 100; ++i) {
    const int fd = connect_from(t.port(), "127.0.0.1");
    ASSERT_GE(fd, 0);
    send_all(fd, post_request(body));
    int error = 0;
    const std::string answer = read_all(fd, error);
    ::close(fd);
    EXPECT_EQ(error, 0) << "try " << i << ": " << std::strerror(error);
    EXPECT_EQ(status_of(answer), 503) << answer;
    EXPECT_NE(answer.find("Retry-After: "), std::string::npos) << answer;
    const auto json_at = answer.find("\r\n\r\n");
    ASSERT_NE(json_at, std::string::npos) << answer;
    const auto v = boost::json::parse(answer.substr(json_at + 4));
    EXPECT_EQ(v.at("error").at("code"), "overloaded") << answer;
    arrived += error == 0 && status_of(answer) == 503 ? 1 : 0;
  }
  EXPECT_EQ(arrived, 100);
  EXPECT_EQ(t.server().metrics().refusals(RefusalCause::connection_limit), 100);
  ::close(held);
  EXPECT_TRUE(t.backend.wait_running(0));
}

// At the limit, the oldest idle connection (no byte sent) makes room for a new client.
TEST(Hostile, IdleConnectionsAreReclaimedAtTheLimit) {
  ServerConfig cfg;
  cfg.max_connections = 8;
  cfg.max_connections_per_ip = 0;
  cfg.max_pending_per_ip = 0;
  engine::SimOptions so;
  so.decode_tokens_per_s = 2000;
  auto sim = engine::make_sim_backend(so);
  TestServer t(cfg, std::move(sim));
  std::vector<int> idle;
  for (int i = 0; i < 8; ++i)
    idle.push_back(connect_from(t.port(), "127.0.0.1"));
  const auto& m = t.server().metrics();
  ASSERT_TRUE(eventually([&] { return m.connections_in(ConnState::idle) == 8; }));
  EXPECT_EQ(ask(t.port(), "127.0.0.2", kSimChat).status, 200);
  EXPECT_EQ(m.reclaims(ReclaimCause::connection_limit), 1);
  EXPECT_EQ(m.refusals(RefusalCause::connection_limit), 0);
  // The oldest was closed by the server (EOF); the others are still open (nothing to read).
  for (std::size_t i = 0; i < idle.size(); ++i) {
    timeval tv{0, i == 0 ? 0 : 100'000};
    ::setsockopt(idle[i], SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    char c;
    const ssize_t n = ::recv(idle[i], &c, 1, 0);
    EXPECT_EQ(n, i == 0 ? 0 : -1) << "connection " << i;
  }
  close_all(idle);
}

// A client that stops reading a stream: the write that cannot complete times out, the
// request ends and its generation is cancelled; the running gauge returns to 0.
TEST(Hostile, ASlowReadersStreamIsCancelledAfterTheSendTimeout) {
  ServerConfig cfg;
  cfg.write_timeout = 300ms;
  TestServer t(cfg);
  // "flood": 200000 events queued at once, far more than the socket buffers hold.
  const int fd = connect_from(t.port(), "127.0.0.1", 4096);
  ASSERT_GE(fd, 0);
  ASSERT_TRUE(
      send_all(fd, post_request(R"({"model":"fake","messages":[{"role":"user","content":"flood"}],)"
                                R"("max_tokens":200000,"stream":true})")));
  ASSERT_TRUE(t.backend.wait_running(1));
  ASSERT_TRUE(t.backend.wait_running(0)) << "the stream was not cancelled";
  EXPECT_EQ(t.backend.cancelled(), 1);
  // The watch on the closed socket may cancel the stream before the write's own completion.
  EXPECT_TRUE(eventually([&] { return t.server().metrics().count_send_timeouts() == 1; }));
  const auto metrics = t.request(test::http::verb::get, "/metrics");
  EXPECT_NE(metrics.raw.body().find("\ntroupe_requests_running 0\n"), std::string::npos);
  ::close(fd);
}

}  // namespace
}  // namespace troupe::server
