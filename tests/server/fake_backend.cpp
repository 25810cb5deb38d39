#include "fake_backend.hpp"

#include <fmt/format.h>

#include <chrono>

namespace troupe::server::test {
namespace {

std::string last_text(const engine::Prompt& p) {
  if (const auto* s = std::get_if<std::string>(&p))
    return *s;
  if (const auto* m = std::get_if<std::vector<engine::ChatMessage>>(&p)) {
    return m->empty() ? std::string() : m->back().content;
  }
  return "tokens";
}

std::int32_t word_count(const std::string& s) {
  std::int32_t n = 1;
  for (char c : s)
    n += c == ' ' ? 1 : 0;
  return n;
}

}  // namespace

boost::asio::awaitable<engine::TokenStream> FakeBackend::generate(engine::Task task) {
  const std::string text = last_text(task.prompt);
  {
    std::lock_guard lock(mu_);
    tasks_.push_back(task);
  }
  if (text.find("overloaded") != std::string::npos) {
    co_return engine::failed_stream(Error{Errc::overloaded, "The queue is full"});
  }
  if (text.find("too long") != std::string::npos) {
    co_return engine::failed_stream(
        Error{Errc::prompt_too_long, "The prompt is 999 tokens, the context 128"});
  }
  auto [writer, stream] = engine::make_stream();
  const auto count_cancel = [this] {
    std::lock_guard lock(mu_);
    --running_;
    ++cancelled_;
    cv_.notify_all();
  };
  if (text.find("one slot") != std::string::npos) {
    std::lock_guard lock(mu_);
    if (running_ > 0) {  // the slot is taken: queued, no event until cancelled
      writer.on_cancel(count_cancel);
      ++running_;
      held_.push_back(std::move(writer));
      cv_.notify_all();
      co_return std::move(stream);
    }
  }
  const std::int32_t prompt = word_count(text);
  const std::int32_t max_tokens = task.stop.max_tokens.value_or(128);  // as its context
  writer.push(engine::Started{prompt, 0});
  if (text.find("hold") != std::string::npos || text.find("flood") != std::string::npos ||
      text.find("one slot") != std::string::npos) {
    if (text.find("flood") != std::string::npos) {
      for (std::int32_t n = 0; n < max_tokens; ++n)
        writer.push(engine::Delta{fmt::format("t{} ", n), {n}, {}, {}});
    } else {
      writer.push(engine::Delta{"held", {1}, {}, {}});
    }
    writer.on_cancel(count_cancel);
    std::lock_guard lock(mu_);
    ++running_;
    held_.push_back(std::move(writer));
    cv_.notify_all();
    co_return std::move(stream);
  }
  if (text.find("toolcall") != std::string::npos) {
    // What a SequenceActor with an output parser sends for "Checking.<tool_call>...": content,
    // reasoning, then one call announced with id and name, then its argument fragments.
    engine::Delta think{"", {1}, {}, {}};
    think.reasoning = "hmm";
    writer.push(std::move(think));
    writer.push(engine::Delta{"Checking.", {2}, {}, {}});
    engine::Delta head{"", {3}, {}, {}};
    head.tool_calls = {{0, "abc123XYZ", "get_weather", "{\"city\""}};
    writer.push(std::move(head));
    engine::Delta args{"", {4}, {}, {}};
    args.tool_calls = {{0, "", "", ":\"Paris\"}"}};
    writer.push(std::move(args));
    writer.push(engine::Finished{engine::FinishReason::tool_calls, {prompt, 4, 0}, ""});
    co_return std::move(stream);
  }
  const bool stop_at_t1 = !task.stop.stop.empty() && task.stop.stop[0] == "t1";
  std::int32_t n = 0;
  for (; n < max_tokens; ++n) {
    if (stop_at_t1 && n == 1)
      break;
    engine::Delta d{fmt::format("t{} ", n), {n}, {}, {}};
    if (task.sampling.logprobs) {
      d.logprobs.push_back({n, d.text, -0.5f});
      std::vector<engine::TokenLogprob> top;
      for (std::int32_t k = 0; k < task.sampling.top_logprobs; ++k)
        top.push_back({500 + k, fmt::format("alt{}", k), -1.0f - static_cast<float>(k)});
      d.top.push_back(std::move(top));
    }
    writer.push(std::move(d));
  }
  const auto reason = stop_at_t1 ? engine::FinishReason::stop : engine::FinishReason::length;
  writer.push(engine::Finished{reason, {prompt, n, 0}, stop_at_t1 ? "t1" : ""});
  std::lock_guard lock(mu_);
  generated_ += n;
  co_return std::move(stream);
}

boost::asio::awaitable<Result<std::vector<engine::Token>>> FakeBackend::tokenize(std::string model,
                                                                                 std::string text,
                                                                                 bool, bool) {
  if (!model.empty() && model != "fake") {
    co_return Error{Errc::not_found, "no such model", "model"};
  }
  std::vector<engine::Token> out;
  engine::Token len = 0;
  for (char c : text + " ") {
    if (c == ' ') {
      if (len > 0)
        out.push_back(len);
      len = 0;
    } else {
      ++len;
    }
  }
  co_return out;
}

boost::asio::awaitable<Result<std::string>> FakeBackend::detokenize(
    std::string, std::vector<engine::Token> tokens) {
  std::string out;
  for (auto t : tokens)
    out += fmt::format("w{}", t);
  co_return out;
}

boost::asio::awaitable<Result<engine::SlotsInfo>> FakeBackend::slots(std::string model) {
  if (!model.empty() && model != "fake")
    co_return unknown_model_error(model);
  engine::SlotsInfo info;
  info.n_ctx = 128;
  std::lock_guard lock(mu_);
  for (std::int32_t i = 0; i < 2; ++i) {
    engine::SlotStatus s;
    s.id = i;
    s.busy = i < running_;
    if (s.busy) {
      s.generating = true;
      s.task = static_cast<std::uint64_t>(i) + 1;
      s.n_prompt = 3;
      s.n_processed = 3;
      s.n_decoded = 1;
      s.max_tokens = 16;
    }
    info.slots.push_back(s);
  }
  co_return info;
}

std::vector<engine::ModelInfo> FakeBackend::models() const {
  return {engine::ModelInfo{"fake", 128, 1000, "troupe", 1700000000}};
}

engine::Health FakeBackend::health() const {
  std::lock_guard lock(mu_);
  return {health_, health_ == engine::HealthState::loading ? "Loading model" : ""};
}

engine::BackendStats FakeBackend::stats() const {
  std::lock_guard lock(mu_);
  engine::BackendStats s;
  s.requests_running = running_;
  s.cancelled_total = cancelled_;
  s.generation_tokens_total = generated_;
  s.sequences_per_step = {0, 3, 2, 0, 1};
  s.kv_cache_usage_ratio = 0.25;
  return s;
}

void FakeBackend::set_health(engine::HealthState s) {
  std::lock_guard lock(mu_);
  health_ = s;
}

bool FakeBackend::wait_running(std::int64_t running) {
  std::unique_lock lock(mu_);
  return cv_.wait_for(lock, std::chrono::seconds(10), [&] { return running_ == running; });
}

std::int64_t FakeBackend::cancelled() const {
  std::lock_guard lock(mu_);
  return cancelled_;
}

std::vector<engine::Task> FakeBackend::tasks() const {
  std::lock_guard lock(mu_);
  return tasks_;
}

}  // namespace troupe::server::test
