#include "engine/admission.hpp"

#include <algorithm>

namespace troupe::engine {

Error overloaded_error() {
  return Error{Errc::overloaded, "the server is busy: the request queue is full"};
}

void AdmissionGauges::set_failure(const Error& e) {
  std::lock_guard lock(mu_);
  if (!failure_)
    failure_ = e;
}

std::optional<Error> AdmissionGauges::failure() const {
  std::lock_guard lock(mu_);
  return failure_;
}

Admission::Admission(AdmissionLimits limits, std::shared_ptr<AdmissionGauges> gauges)
    : limits_(limits), gauges_(std::move(gauges)) {}

void Admission::on_message(AdmissionMessage& msg) {
  std::visit(actor::Overloaded{[this](EngineReady& m) { engine_ = std::move(m.engine); },
                               [this](SubmitSequence& m) { submit(m); },
                               [this](CancelSubmission& m) { cancel(m.ticket); },
                               [this](SequenceReleased& m) { released(m); },
                               [this](SequenceParked& m) { parked(m.ticket); },
                               [this](EngineFailed& m) { failed(m.error); }},
             msg);
  publish();
}

void Admission::submit(SubmitSequence& s) {
  const std::int64_t running = this->running();
  const std::int64_t queued = waiting();
  if (failed_) {
    s.actor.tell(SequenceFailed{Error{Errc::engine_failed, failed_->message}});
  } else if (running < limits_.n_parallel) {
    admit({std::move(s.admit), std::move(s.actor)});
  } else if (!limits_.full(running, queued)) {
    queue_.push_back({std::move(s.admit), std::move(s.actor)});
  } else {
    s.actor.tell(SequenceFailed{overloaded_error()});
  }
}

void Admission::admit(Waiting w) {
  admitted_.emplace(w.admit.ticket, std::move(w.actor));
  engine_.tell(std::move(w.admit));
}

void Admission::released(const SequenceReleased& r) {
  admitted_.erase(r.ticket);
  parked_.erase(r.ticket);
  if (r.successor != 0)
    parked_.erase(r.successor);  // it runs in the freed slot, in the released one's place
  fill();
}

// Beyond the queue's bound a parked admission keeps its place (it waits as a queued one would
// have), so the engine never holds more than max_queue of them without one.
void Admission::parked(std::uint64_t ticket) {
  if (admitted_.contains(ticket) && waiting() < limits_.max_queue)
    parked_.insert(ticket);
  fill();
}

void Admission::fill() {
  while (running() < limits_.n_parallel && !queue_.empty()) {
    Waiting w = std::move(queue_.front());
    queue_.pop_front();
    admit(std::move(w));
  }
}

// Submissions are told before the stream reaches its consumer, so a cancellation always finds
// its request queued, admitted, or already released (then there is nothing to do).
void Admission::cancel(std::uint64_t ticket) {
  const auto it = std::find_if(queue_.begin(), queue_.end(),
                               [&](const Waiting& w) { return w.admit.ticket == ticket; });
  const auto a = admitted_.find(ticket);
  if (it == queue_.end() && a == admitted_.end())
    return;  // already released: nothing to stop
  gauges_->cancelled_total.fetch_add(1, std::memory_order_relaxed);
  if (a != admitted_.end()) {
    a->second.tell(CancelSequence{/*release=*/true});
    return;
  }
  it->actor.tell(CancelSequence{/*release=*/false});  // never admitted: nothing to release
  queue_.erase(it);
}

void Admission::failed(const Error& error) {
  if (failed_)
    return;
  failed_ = error;
  gauges_->set_failure(error);
  for (auto& w : queue_)
    w.actor.tell(SequenceFailed{error});
  queue_.clear();
}

void Admission::publish() {
  gauges_->queued.store(waiting(), std::memory_order_relaxed);
  gauges_->running.store(running(), std::memory_order_relaxed);
}

actor::ActorRef<AdmissionMessage> spawn_admission(actor::ActorSystem& system,
                                                  AdmissionLimits limits,
                                                  const std::shared_ptr<AdmissionGauges>& gauges) {
  actor::SpawnOptions opts;
  opts.name = "admission";
  return system.spawn<Admission>(std::move(opts), limits, gauges);
}

actor::ActorRef<SequenceMessage> spawn_sequence(actor::ActorSystem& system, const TokenText& text,
                                                SequenceConfig config, StreamWriter writer,
                                                std::uint64_t ticket,
                                                actor::ActorRef<EngineMessage> engine,
                                                actor::ActorRef<AdmissionMessage> admission) {
  SequenceActor::Release release = [engine = std::move(engine), ticket](bool cancelled) {
    engine.tell(ReleaseSequence{ticket, cancelled});
  };
  writer.on_cancel(
      [admission = std::move(admission), ticket] { admission.tell(CancelSubmission{ticket}); });
  actor::SpawnOptions opts;
  opts.name = "sequence";
  return system.spawn<SequenceActor>(std::move(opts), std::move(config), std::cref(text),
                                     std::move(writer), std::move(release));
}

}  // namespace troupe::engine
