#pragma once
// Helpers for the engine suites: running a Backend's awaitables from a test thread, and
// collecting a stream's events.

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>
#include <filesystem>
#include <fstream>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "actor/actor.hpp"
#include "engine/admission_protocol.hpp"
#include "engine/backend.hpp"
#include "support/test_models.hpp"

namespace troupe::engine::testing {

// Runs an awaitable to completion on a private io_context and returns its result.
template <class T>
T run_sync(boost::asio::awaitable<T> a) {
  boost::asio::io_context io;
  auto guard = boost::asio::make_work_guard(io);
  auto fut = boost::asio::co_spawn(io, std::move(a), boost::asio::use_future);
  std::thread t([&] { io.run(); });
  T result = fut.get();
  guard.reset();
  t.join();
  return result;
}

struct Collected {
  std::optional<Started> started;
  std::string text;
  std::vector<Token> tokens;
  std::vector<Delta> deltas;
  std::optional<Finished> finished;
  std::optional<Error> error;
};

// Reads a stream to its end (blocking).
// The names of this process's threads, one entry per thread.
inline std::multiset<std::string> thread_names() {
  std::multiset<std::string> names;
  for (const auto& e : std::filesystem::directory_iterator("/proc/self/task")) {
    std::string n;
    std::ifstream(e.path() / "comm") >> n;
    names.insert(n);
  }
  return names;
}

inline Collected collect(TokenStream& s) {
  Collected c;
  while (auto ev = s.next_blocking()) {
    if (auto* st = std::get_if<Started>(&*ev))
      c.started = *st;
    if (auto* d = std::get_if<Delta>(&*ev)) {
      c.text += d->text;
      c.tokens.insert(c.tokens.end(), d->tokens.begin(), d->tokens.end());
      c.deltas.push_back(std::move(*d));
    }
    if (auto* f = std::get_if<Finished>(&*ev))
      c.finished = *f;
    if (auto* f = std::get_if<Failed>(&*ev))
      c.error = f->error;
  }
  return c;
}

// Stands in for the Admission in front of an engine under test: calls `on_released` (on the
// actor's thread) for each SequenceReleased; the other messages need nothing here.
class ReleaseListener final : public actor::Actor<AdmissionMessage> {
 public:
  explicit ReleaseListener(std::function<void(std::uint64_t)> on_released)
      : on_released_(std::move(on_released)) {}
  void on_message(AdmissionMessage& msg) override {
    std::visit(
        actor::Overloaded{[](EngineReady&) {}, [](SubmitSequence&) {}, [](CancelSubmission&) {},
                          [this](SequenceReleased& m) { on_released_(m.ticket); },
                          [](SequenceParked&) {}, [](EngineFailed&) {}},
        msg);
  }

 private:
  std::function<void(std::uint64_t)> on_released_;
};

// The model the engine suites run on: the generated random-weight tiny model.
inline std::string tiny_model() {
  return troupe::test::generated_model("tiny");
}

}  // namespace troupe::engine::testing
