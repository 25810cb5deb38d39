#pragma once
// FakeBackend: a deterministic engine::Backend for server tests. No model, no threads, no
// sleeps. What it does is chosen by the prompt's last text:
//   contains "overloaded"  -> refused with Errc::overloaded
//   contains "too long"    -> refused with Errc::prompt_too_long
//   contains "hold"        -> Started, one Delta "held", then nothing until cancelled
//   contains "one slot"    -> as "hold" while no request is running; otherwise queued:
//                             no event at all until cancelled
//   contains "flood"       -> Started, max_tokens Deltas "t0 ", "t1 ", ..., all queued at
//                             once, then nothing until cancelled
//   contains "toolcall"    -> Started, a reasoning Delta, a content Delta, a tool call
//                             (get_weather, id, name, then arguments), Finished(tool_calls)
//   otherwise              -> Started, max_tokens Deltas "t0 ", "t1 ", ..., Finished(length)
//                             (or Finished(stop) after the first delta when stop has "t1");
//                             with logprobs, token n's is -0.5 and its top_logprobs
//                             alternatives are tokens 500 + k, "alt<k>", -1 - k
// Thread-safety: all members may be called from any thread.

#include <condition_variable>
#include <mutex>
#include <vector>

#include "engine/backend.hpp"

namespace troupe::server::test {

class FakeBackend : public engine::Backend {
 public:
  boost::asio::awaitable<engine::TokenStream> generate(engine::Task task) override;
  boost::asio::awaitable<Result<std::vector<engine::Token>>> tokenize(std::string model,
                                                                      std::string text,
                                                                      bool add_special,
                                                                      bool parse_special) override;
  boost::asio::awaitable<Result<std::string>> detokenize(
      std::string model, std::vector<engine::Token> tokens) override;
  // Two slots of 128 tokens; the first running requests (held ones included) hold them, each
  // shown with a 3-token prompt, 1 token decoded of 16.
  boost::asio::awaitable<Result<engine::SlotsInfo>> slots(std::string model) override;
  std::vector<engine::ModelInfo> models() const override;
  engine::Health health() const override;
  engine::BackendStats stats() const override;

  void set_health(engine::HealthState s);
  // Waits (up to 10 s, as a guard against a hanging test) until `running` held (or queued)
  // requests exist. Returns whether they did.
  bool wait_running(std::int64_t running);
  std::int64_t cancelled() const;
  std::vector<engine::Task> tasks() const;

 private:
  mutable std::mutex mu_;
  std::condition_variable cv_;
  engine::HealthState health_ = engine::HealthState::ready;
  std::int64_t running_ = 0;
  std::int64_t cancelled_ = 0;
  std::int64_t generated_ = 0;
  std::vector<engine::StreamWriter> held_;
  std::vector<engine::Task> tasks_;
};

}  // namespace troupe::server::test
