#pragma once
// A FakeServer (tests/client) on its own thread, for tests that call the blocking
// run_benchmark(), which runs its own io_context on the test thread.

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <future>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "fake_server.hpp"

namespace troupe::bench::testing {

class ServerThread {
 public:
  explicit ServerThread(test::FakeHandler handler)
      : work_(boost::asio::make_work_guard(io_)), server_(io_, std::move(handler)) {
    thread_ = std::thread([this] { io_.run(); });
  }
  ServerThread(const ServerThread&) = delete;
  ServerThread& operator=(const ServerThread&) = delete;
  ~ServerThread() {
    boost::asio::post(io_, [this] {
      server_.stop();
      io_.stop();
    });
    thread_.join();
  }
  std::string url() const { return server_.url(); }
  // The requests received so far (copied on the server's thread).
  std::vector<test::FakeRequest> requests() {
    std::promise<std::vector<test::FakeRequest>> copy;
    boost::asio::post(io_, [&] { copy.set_value(server_.requests()); });
    return copy.get_future().get();
  }

 private:
  boost::asio::io_context io_;
  boost::asio::executor_work_guard<boost::asio::io_context::executor_type> work_;
  test::FakeServer server_;
  std::thread thread_;
};

}  // namespace troupe::bench::testing
