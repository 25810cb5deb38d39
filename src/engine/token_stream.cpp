#include "engine/token_stream.hpp"

#include <condition_variable>
#include <deque>
#include <mutex>

namespace troupe::engine {
namespace detail {

// Shared state of one stream. Every member is guarded by mu_.
class StreamChannel : public std::enable_shared_from_this<StreamChannel> {
 public:
  bool push(StreamEvent ev) {
    std::unique_lock lock(mu_);
    if (cancelled_ || final_pushed_)
      return false;
    final_pushed_ = is_final(ev);
    if (waiter_) {
      auto h = std::move(*waiter_);
      waiter_.reset();
      delivered_final_ = final_pushed_;  // handed straight to the waiter: delivered
      lock.unlock();
      deliver(std::move(h), std::move(ev));
      return true;
    }
    queue_.push_back(std::move(ev));
    lock.unlock();
    cv_.notify_one();
    return true;
  }

  void wait(NextHandler h, boost::asio::cancellation_slot slot) {
    std::unique_lock lock(mu_);
    if (auto ev = pop_locked(); ev || drained_locked()) {
      lock.unlock();
      deliver(std::move(h), std::move(ev));
      return;
    }
    waiter_.emplace(std::move(h));
    if (slot.is_connected()) {
      slot.assign(
          [self = shared_from_this()](boost::asio::cancellation_type) { self->abort_wait(); });
    }
  }

  std::optional<StreamEvent> wait_blocking() {
    std::unique_lock lock(mu_);
    cv_.wait(lock, [&] { return !queue_.empty() || drained_locked(); });
    return pop_locked();
  }

  std::optional<StreamEvent> try_pop() {
    std::lock_guard lock(mu_);
    return pop_locked();
  }

  void cancel() {
    std::unique_lock lock(mu_);
    if (cancelled_)
      return;
    cancelled_ = true;
    queue_.clear();
    // After the final event there is nothing left to stop: the producer is not told.
    auto fn = final_pushed_ ? std::function<void()>{} : std::move(on_cancel_);
    on_cancel_ = nullptr;
    auto waiter = std::move(waiter_);
    waiter_.reset();
    lock.unlock();
    cv_.notify_all();
    if (waiter)
      deliver(std::move(*waiter), std::nullopt);
    if (fn)
      fn();
  }

  void set_on_cancel(std::function<void()> fn) {
    std::unique_lock lock(mu_);
    if (!cancelled_) {
      on_cancel_ = std::move(fn);
      return;
    }
    lock.unlock();
    fn();
  }

  bool cancelled() const {
    std::lock_guard lock(mu_);
    return cancelled_;
  }

  // The producer went away: make sure the consumer sees an end.
  void writer_gone() {
    if (!final_pushed_unlocked()) {
      push(Failed{Error{Errc::internal, "the generation ended without a result"}});
    }
  }

 private:
  static void deliver(NextHandler h, std::optional<StreamEvent> ev) { std::move(h)(std::move(ev)); }

  void abort_wait() {
    std::unique_lock lock(mu_);
    if (!waiter_)
      return;
    auto h = std::move(*waiter_);
    waiter_.reset();
    lock.unlock();
    deliver(std::move(h), std::nullopt);
  }

  bool final_pushed_unlocked() {
    std::lock_guard lock(mu_);
    return final_pushed_ || cancelled_;
  }

  std::optional<StreamEvent> pop_locked() {
    if (queue_.empty())
      return std::nullopt;
    StreamEvent ev = std::move(queue_.front());
    queue_.pop_front();
    delivered_final_ = is_final(ev);
    return ev;
  }

  bool drained_locked() const { return cancelled_ || (delivered_final_ && queue_.empty()); }

  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<StreamEvent> queue_;
  std::optional<NextHandler> waiter_;
  std::function<void()> on_cancel_;
  bool cancelled_ = false;
  bool final_pushed_ = false;
  bool delivered_final_ = false;
};

void async_next_impl(const std::shared_ptr<StreamChannel>& ch, NextHandler deliver,
                     boost::asio::cancellation_slot slot) {
  if (!ch) {
    std::move(deliver)(std::nullopt);
    return;
  }
  ch->wait(std::move(deliver), slot);
}

}  // namespace detail

StreamWriter& StreamWriter::operator=(StreamWriter&& other) noexcept {
  if (this != &other) {
    if (ch_)
      ch_->writer_gone();
    ch_ = std::move(other.ch_);
  }
  return *this;
}

StreamWriter::~StreamWriter() {
  if (ch_)
    ch_->writer_gone();
}

bool StreamWriter::push(StreamEvent event) {
  return ch_ && ch_->push(std::move(event));
}
bool StreamWriter::cancelled() const {
  return !ch_ || ch_->cancelled();
}
void StreamWriter::on_cancel(std::function<void()> fn) {
  if (ch_)
    ch_->set_on_cancel(std::move(fn));
}

TokenStream& TokenStream::operator=(TokenStream&& other) noexcept {
  if (this != &other) {
    cancel();
    attached_.clear();  // after the cancel (see attach)
    ch_ = std::move(other.ch_);
    attached_ = std::move(other.attached_);
  }
  return *this;
}

TokenStream::~TokenStream() {
  cancel();
}

std::optional<StreamEvent> TokenStream::next_blocking() {
  return ch_ ? ch_->wait_blocking() : std::nullopt;
}

std::optional<StreamEvent> TokenStream::try_next() {
  return ch_ ? ch_->try_pop() : std::nullopt;
}

void TokenStream::cancel() {
  if (ch_)
    ch_->cancel();
}

void TokenStream::attach(std::shared_ptr<void> resource) {
  attached_.push_back(std::move(resource));
}

std::pair<StreamWriter, TokenStream> make_stream() {
  auto ch = std::make_shared<detail::StreamChannel>();
  return {StreamWriter(ch), TokenStream(ch)};
}

TokenStream failed_stream(Error error) {
  auto [writer, stream] = make_stream();
  writer.push(Failed{std::move(error)});
  return std::move(stream);
}

}  // namespace troupe::engine
