#pragma once
// Helpers shared by the actor tests: a visitor builder and a one-shot event to wait on
// (tests synchronise on events, never on sleeps).

#include <chrono>
#include <future>
#include <memory>

namespace troupe::actor::test {

template <class... Fs>
struct Overloaded : Fs... {
  using Fs::operator()...;
};
template <class... Fs>
Overloaded(Fs...) -> Overloaded<Fs...>;

// A value set once from any thread and awaited by the test thread.
template <class T>
class Event {
 public:
  Event() : future_(promise_->get_future().share()) {}
  void set(T v) const {
    try {
      promise_->set_value(std::move(v));
    } catch (const std::future_error&) {
      // set twice: keep the first
    }
  }
  // Waits (bounded, so a bug fails the test instead of hanging it) and returns the value.
  T get() const {
    if (future_.wait_for(std::chrono::seconds(60)) != std::future_status::ready) {
      throw std::runtime_error("event never happened");
    }
    return future_.get();
  }
  bool ready() const {
    return future_.wait_for(std::chrono::seconds(0)) == std::future_status::ready;
  }

 private:
  std::shared_ptr<std::promise<T>> promise_ = std::make_shared<std::promise<T>>();
  std::shared_future<T> future_;
};

}  // namespace troupe::actor::test
