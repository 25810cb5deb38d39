#pragma once
// Cell<Protocol>: a local actor's typed mailbox and behavior on top of CellBase. Internal.
//
// Thread-safety: enqueue() from any thread; everything else on the actor's context (see
// CellBase), except construction and destruction, which happen with no concurrent use.

#include <exception>
#include <functional>
#include <memory>
#include <string>
#include <typeinfo>
#include <utility>

#include "actor/detail/cell_base.hpp"
#include "actor/mailbox.hpp"
#include "actor/reply.hpp"

namespace troupe::actor {

template <class Protocol>
class Actor;

namespace detail {

template <class Protocol>
class Cell final : public CellBase {
 public:
  using Behavior = Actor<Protocol>;
  // Builds a fresh behavior for a restart; empty when the actor cannot be restarted.
  using Factory = std::function<std::unique_ptr<Behavior>()>;

  Cell(std::shared_ptr<SystemCore> core, ActorId id, CellConfig config, std::size_t capacity,
       std::unique_ptr<Behavior> first, Factory factory)
      : CellBase(std::move(core), id, std::move(config)),
        mailbox_(capacity),
        factory_(std::move(factory)),
        behavior_(std::move(first)) {
    attach();
  }

  // Messages left behind by tells that raced with the stop are dropped and counted here.
  ~Cell() override { count_dropped(drop_all()); }

  const std::type_info& protocol_type() const noexcept override { return typeid(Protocol); }

  // Enqueues a message built from args. Never blocks. Any thread.
  template <class... Args>
  SendStatus enqueue(Args&&... args) {
    if (closed()) {
      count_rejected();
      return SendStatus::stopped;
    }
    if (!mailbox_.push(std::forward<Args>(args)...)) {
      count_rejected();
      return SendStatus::mailbox_full;
    }
    notify_consumer();
    return SendStatus::ok;
  }

 private:
  void attach() noexcept {
    if (behavior_)
      behavior_->cell_ = this;
  }

  std::size_t process_batch(std::size_t max) override {
    std::size_t n = 0;
    std::string failure;
    bool failed = false;
    auto handle = [&](Protocol& msg) {
      try {
        behavior_->on_message(msg);
      } catch (const std::exception& e) {
        failed = true;
        failure = e.what();
      } catch (...) {
        failed = true;
        failure = "unknown exception";
      }
      if (failed)
        fail_reply(msg, Error{Errc::internal, "actor failed: " + failure});
    };
    while (n < max && !stop_pending() && !signals_pending() && mailbox_.try_consume(handle)) {
      ++n;
      if (failed) {
        failed = false;
        on_failure(std::exchange(failure, {}));
      }
    }
    add_processed(n);
    return n;
  }

  std::size_t drop_all() noexcept override {
    std::size_t n = 0;
    auto drop = [](Protocol& msg) noexcept {
      fail_reply(msg, Error{Errc::unavailable, "actor stopped"});
    };
    while (mailbox_.try_consume(drop))
      ++n;
    return n;
  }

  bool mailbox_empty() const noexcept override { return mailbox_.empty(); }
  bool mailbox_pending() const noexcept override { return mailbox_.has_pending(); }

  bool rebuild_behavior() override {
    if (!factory_)
      return false;
    behavior_ = factory_();
    attach();
    return behavior_ != nullptr;
  }
  void start_behavior() override { behavior_->on_start(); }
  void stop_behavior(const ExitReason& reason) noexcept override {
    if (!behavior_)
      return;
    try {
      behavior_->on_stop(reason);
    } catch (...) {
      // on_stop must not throw; the actor is going away either way.
    }
    behavior_.reset();
  }
  void deliver(const Down& d) override { behavior_->on_down(d); }
  void deliver(const ChildFailed& f) override { behavior_->on_child_failed(f); }
  bool has_work() override { return behavior_->has_work(); }
  void do_work() override { behavior_->do_work(); }
  void idle() override { behavior_->on_idle(); }

  Mailbox<Protocol> mailbox_;
  Factory factory_;
  std::unique_ptr<Behavior> behavior_;
};

}  // namespace detail
}  // namespace troupe::actor
