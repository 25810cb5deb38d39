// sse_client_bench: what the streaming client costs, measured against a forked "blaster"
// server that writes pre-rendered OpenAI chat chunks as fast as the socket takes them, so that
// the client process is the only thing measured.
//
//   sse_client_bench throughput --streams 64 --events 20000
//       SSE events/s consumed by the client's one io thread, per CPU second it used
//   sse_client_bench memory --streams 10000
//       opens that many streams (raising the fd limit), reads the first event of each and
//       reports the client's resident memory per open stream
//
// Numbers go to docs/BENCHMARKS.md (## troupe bench (issue 7)).

#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <boost/asio.hpp>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

#include "bench/runner.hpp"
#include "client/client.hpp"

namespace asio = boost::asio;
using asio::ip::tcp;

namespace {

struct Options {
  std::string mode = "throughput";
  int streams = 64;
  int events = 20000;
};

std::string chunk(std::string_view data) {
  char head[32];
  int n = std::snprintf(head, sizeof head, "%zx\r\n", data.size());
  return std::string(head, static_cast<std::size_t>(n)) + std::string(data) + "\r\n";
}

std::string event(int i) {
  return R"(data: {"id":"chatcmpl-1","object":"chat.completion.chunk","created":1,"model":"m",)"
         R"("choices":[{"index":0,"delta":{"content":"tok)" +
         std::to_string(i % 1000) + R"( "},"finish_reason":null}]})" + "\n\n";
}

// The server side of one connection: the response head, `events` events in ~64 KiB chunks
// (one HTTP chunk per event, as a streaming server writes them), then either the end of the
// stream or, with `hold`, nothing until the client goes away.
void serve_one(tcp::socket s, int events, bool hold) {
  asio::streambuf req;
  asio::read_until(s, req, "\r\n\r\n");
  std::string out =
      "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n";
  for (int i = 0; i < events; ++i) {
    out += chunk(event(i));
    if (out.size() > 65536) {
      asio::write(s, asio::buffer(out));
      out.clear();
    }
  }
  if (!hold) {
    out += chunk(R"(data: {"choices":[{"index":0,"delta":{},"finish_reason":"length"}]})"
                 "\n\ndata: [DONE]\n\n") +
           "0\r\n\r\n";
  }
  asio::write(s, asio::buffer(out));
  if (hold) {
    boost::system::error_code ec;
    char c;
    s.read_some(asio::buffer(&c, 1), ec);  // until the client closes
  }
}

// The blaster, in a child process: one thread per connection would not scale to 10,000, so
// connections are served by a small pool of threads each taking accepted sockets in turn.
[[noreturn]] void run_server(tcp::acceptor& acc, const Options& o) {
  bool hold = o.mode == "memory";
  int events = hold ? 1 : o.events;
  std::vector<std::thread> pool;
  if (hold) {
    // Connections stay open: serve each on the accept thread (each write is tiny).
    std::vector<tcp::socket> keep;
    for (int i = 0; i < o.streams; ++i) {
      tcp::socket s = acc.accept();
      asio::streambuf req;
      asio::read_until(s, req, "\r\n\r\n");
      std::string out =
          "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: "
          "chunked\r\n\r\n" +
          chunk(event(0));
      asio::write(s, asio::buffer(out));
      keep.push_back(std::move(s));
    }
    pause();
    std::_Exit(0);
  }
  for (int i = 0; i < o.streams; ++i) {
    pool.emplace_back(
        [s = acc.accept(), events, hold]() mutable { serve_one(std::move(s), events, hold); });
  }
  for (auto& t : pool)
    t.join();
  std::_Exit(0);
}

double thread_cpu_seconds() {
  rusage u{};
  getrusage(RUSAGE_THREAD, &u);
  return static_cast<double>(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
         static_cast<double>(u.ru_utime.tv_usec + u.ru_stime.tv_usec) * 1e-6;
}

long rss_kib() {
  std::ifstream f("/proc/self/status");
  std::string line;
  while (std::getline(f, line)) {
    if (line.rfind("VmRSS:", 0) == 0)
      return std::stol(line.substr(6));
  }
  return 0;
}

troupe::client::ChatRequest request() {
  troupe::client::ChatRequest r;
  r.messages = {{"user", "hi"}};
  return r;
}

asio::awaitable<void> consume(troupe::client::Client& c, long& events, long& failures) {
  auto s = co_await c.stream_chat(request());
  if (!s) {
    ++failures;
    co_return;
  }
  for (;;) {
    auto ev = co_await s->next();
    if (std::holds_alternative<troupe::client::Delta>(ev)) {
      ++events;
      continue;
    }
    failures += std::holds_alternative<troupe::client::Done>(ev) ? 0 : 1;
    co_return;
  }
}

int throughput(const std::string& url, const Options& o) {
  asio::io_context io(1);
  troupe::client::Client c(io.get_executor(), {.base_url = url});
  long events = 0, failures = 0;
  for (int i = 0; i < o.streams; ++i)
    asio::co_spawn(io, consume(c, events, failures), asio::detached);
  double cpu0 = thread_cpu_seconds();
  auto t0 = std::chrono::steady_clock::now();
  io.run();
  double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  double cpu = thread_cpu_seconds() - cpu0;
  std::printf("streams %d, events %ld, failures %ld\n", o.streams, events, failures);
  std::printf("wall %.3f s, client CPU %.3f s\n", wall, cpu);
  std::printf("events/s (wall) %.0f, events per client CPU second %.0f\n", events / wall,
              events / cpu);
  return failures == 0 ? 0 : 1;
}

asio::awaitable<void> open_one(troupe::client::Client& c, std::vector<troupe::client::Stream>& keep,
                               long& opened, long& failures) {
  auto s = co_await c.stream_chat(request());
  if (!s) {
    if (failures++ == 0)
      std::printf("first failure: %s\n", s.error().message.c_str());
    co_return;
  }
  auto ev = co_await s->next();
  if (!std::holds_alternative<troupe::client::Delta>(ev)) {
    ++failures;
    co_return;
  }
  ++opened;
  keep.push_back(std::move(s.value()));
}

int memory(const std::string& url, const Options& o) {
  asio::io_context io(1);
  troupe::client::Client c(io.get_executor(), {.base_url = url});
  std::vector<troupe::client::Stream> keep;
  keep.reserve(static_cast<std::size_t>(o.streams));
  long opened = 0, failures = 0;
  long before = rss_kib();
  for (int i = 0; i < o.streams; ++i) {
    asio::co_spawn(io, open_one(c, keep, opened, failures), asio::detached);
  }
  io.run();
  long after = rss_kib();
  std::printf("open streams %ld, failures %ld\n", opened, failures);
  std::printf("client RSS %ld KiB -> %ld KiB: %.2f KiB per open stream\n", before, after,
              opened ? static_cast<double>(after - before) / static_cast<double>(opened) : 0.0);
  return failures == 0 ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  CLI::App app{"streaming client cost: SSE events/s per core and memory per open stream"};
  app.add_option("mode", o.mode, "throughput | memory")
      ->check(CLI::IsMember({"throughput", "memory"}));
  app.add_option("--streams", o.streams, "concurrent streams");
  app.add_option("--events", o.events, "events per stream (throughput)");
  CLI11_PARSE(app, argc, argv);
  std::printf("fd limit %llu\n", static_cast<unsigned long long>(troupe::bench::raise_fd_limit()));
  asio::io_context setup;
  tcp::acceptor acc(setup, {asio::ip::make_address("127.0.0.1"), 0});
  acc.listen(asio::socket_base::max_listen_connections);
  std::string url = "http://127.0.0.1:" + std::to_string(acc.local_endpoint().port());
  pid_t child = fork();
  if (child == 0)
    run_server(acc, o);
  acc.close();
  int rc = o.mode == "throughput" ? throughput(url, o) : memory(url, o);
  kill(child, SIGTERM);
  waitpid(child, nullptr, 0);
  return rc;
}
