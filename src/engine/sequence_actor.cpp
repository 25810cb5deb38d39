#include "engine/sequence_actor.hpp"

#include <algorithm>
#include <utility>

namespace troupe::engine {

SequenceActor::SequenceActor(SequenceConfig config, const TokenText& text, StreamWriter writer,
                             Release release)
    : config_(std::move(config)),
      text_(text),
      writer_(std::move(writer)),
      release_(std::move(release)),
      stops_(config_.stop.stop),
      indent_(config_.stop.n_indent) {}

void SequenceActor::handle(SequenceMessage msg) {
  if (done_)
    return;
  std::visit(actor::Overloaded{[this](SequenceStarted& m) { on_started(m); },
                               [this](SampledToken& m) { on_token(m); },
                               [this](SequenceFailed& m) { on_failed(m); },
                               [this](CancelSequence& m) { cancel(m.release); },
                               [this](SequenceEmbedded& m) { on_embedded(m); }},
             msg);
}

void SequenceActor::on_message(SequenceMessage& msg) {
  handle(std::move(msg));
  if (done_)
    quit();
}

void SequenceActor::cancel(bool release) {
  if (done_)
    return;
  done_ = true;
  if (!release)
    release_ = nullptr;
  if (release_)
    std::exchange(release_, nullptr)(true);
}

void SequenceActor::on_started(const SequenceStarted& s) {
  config_.prompt_tokens = s.prompt_tokens;
  cached_tokens_ = s.cached_tokens;
  writer_.push(Started{s.prompt_tokens, s.cached_tokens, config_.prompt_truncated});
}

void SequenceActor::on_embedded(SequenceEmbedded& e) {
  done_ = true;
  Finished f;
  f.usage = {config_.prompt_tokens, 0, cached_tokens_, 0};
  f.embedding = std::move(e.values);
  f.embedding_rows = e.rows;
  writer_.push(std::move(f));
  release_ = nullptr;  // the engine ended the sequence itself
}

void SequenceActor::on_failed(const SequenceFailed& f) {
  done_ = true;
  writer_.push(Failed{f.error});
}

std::optional<FinishReason> SequenceActor::limit_reason(const SampledToken& t) {
  switch (t.end) {
    case EngineEnd::none:
      return std::nullopt;
    case EngineEnd::eog:
      return FinishReason::stop;
    case EngineEnd::max_tokens:
    case EngineEnd::context_full:
      return FinishReason::length;
  }
  return std::nullopt;
}

Delta SequenceActor::make_delta(const SampledToken& t) const {
  Delta d;
  d.tokens.push_back(t.token);
  if (!config_.logprobs)
    return d;
  std::string piece;
  text_.append_piece(t.token, piece);
  d.logprobs.push_back({t.token, std::move(piece), t.logprob});
  if (config_.top_logprobs > 0) {
    auto& alts = d.top.emplace_back();
    for (const auto& a : t.top) {
      std::string p;
      text_.append_piece(a.token, p);
      alts.push_back({a.token, std::move(p), a.logprob});
    }
  }
  return d;
}

void SequenceActor::on_token(const SampledToken& t) {
  if (generated_++ == 0)
    first_token_at_ = std::chrono::steady_clock::now();
  prediction_kept_ += t.prediction_kept;
  prediction_rejected_ += t.prediction_rejected;
  Delta d = make_delta(t);
  const auto limit = limit_reason(t);
  const bool eog = limit == FinishReason::stop;
  if (!eog)
    append_text(t.token, d.text);
  if (!matched_ && !cut_ && (limit || out_of_time())) {
    flush_text(d.text);
    cut_ = cut_ || (!matched_ && !limit);  // out of time
  }
  const bool ended = matched_ || cut_ || limit;
  if (config_.parser)
    parse_output(d, ended);
  writer_.push(std::move(d));
  if (matched_) {
    finish(FinishReason::stop, t.end != EngineEnd::none);
  } else if (cut_) {
    finish(FinishReason::length, t.end != EngineEnd::none);
  } else if (limit) {
    finish(*limit, t.end != EngineEnd::none);
  }
}

bool SequenceActor::out_of_time() {
  if (config_.stop.max_predict_ms <= 0 || complete_.find('\n') == std::string::npos)
    return false;
  return std::chrono::steady_clock::now() - first_token_at_ >
         std::chrono::milliseconds(config_.stop.max_predict_ms);
}

void SequenceActor::append_text(Token token, std::string& out) {
  piece_.clear();
  complete_.clear();
  if (std::binary_search(config_.shown.begin(), config_.shown.end(), token))
    text_.append_special(token, piece_);
  else
    text_.append_piece(token, piece_);
  utf8_.append(piece_, complete_);
  auto r = stops_.feed(complete_);
  emit(r.emit, out);
  if (r.matched && !cut_) {
    matched_ = std::move(r.matched);
    out += indent_.flush();  // the indentation before the stop string
  }
}

void SequenceActor::emit(std::string_view text, std::string& out) {
  if (config_.stop.n_indent <= 0) {  // the common case: no copy through the limit
    out += text;
    return;
  }
  if (cut_ || text.empty())
    return;
  auto r = indent_.feed(text);
  out += r.emit;
  cut_ = r.ended;
}

void SequenceActor::flush_text(std::string& out) {
  complete_.clear();
  utf8_.flush(complete_);
  auto r = stops_.feed(complete_);
  emit(r.emit, out);
  if (cut_)
    return;
  if (r.matched) {
    matched_ = std::move(r.matched);
  } else {
    emit(stops_.flush(), out);
    if (cut_)
      return;
  }
  out += indent_.flush();
}

void SequenceActor::parse_output(Delta& d, bool final) {
  unparsed_tokens_ += static_cast<std::int32_t>(d.tokens.size());
  if (d.text.empty() && !final)
    return;  // nothing new: no re-parse
  chatfmt::MessageDelta m = config_.parser->feed(d.text, final);
  d.text = std::move(m.content);
  d.reasoning = std::move(m.reasoning);
  d.tool_calls = std::move(m.tool_calls);
  // The tokens since the last parsed text made what this parse added.
  std::size_t other = d.text.size();
  for (const auto& c : d.tool_calls)
    other += c.name.size() + c.arguments.size();
  const std::size_t all = other + d.reasoning.size();
  if (all == 0 && !final)
    return;  // held back by the parser (e.g. a partial tag): count with what follows
  if (all > 0) {
    reasoning_tokens_ +=
        static_cast<std::int32_t>((static_cast<std::int64_t>(unparsed_tokens_) *
                                       static_cast<std::int64_t>(d.reasoning.size()) +
                                   static_cast<std::int64_t>(all) / 2) /
                                  static_cast<std::int64_t>(all));
  }
  unparsed_tokens_ = 0;
}

void SequenceActor::finish(FinishReason reason, bool engine_ended) {
  done_ = true;
  Finished f;
  f.reason = reason;
  if (reason == FinishReason::stop && config_.parser &&
      !config_.parser->message().tool_calls.empty()) {
    f.reason = FinishReason::tool_calls;
  }
  f.usage = {config_.prompt_tokens,
             generated_,
             cached_tokens_,
             std::min(reasoning_tokens_, generated_),
             std::min(prediction_kept_, generated_),
             prediction_rejected_};
  if (matched_)
    f.stop_string = *matched_;
  writer_.push(std::move(f));
  if (!engine_ended && release_)
    std::exchange(release_, nullptr)(false);
}

SequenceSink actor_sink(actor::ActorRef<SequenceMessage> ref) {
  return [ref = std::move(ref)](SequenceMessage m) { ref.tell(std::move(m)); };
}

}  // namespace troupe::engine
