#include "client/sse_parser.hpp"

#include <algorithm>
#include <cstring>

namespace troupe::client {

SseParser::SseParser(std::size_t initial_capacity, std::size_t max_event_bytes)
    : max_event_bytes_(max_event_bytes) {
  buf_.resize(std::max<std::size_t>(initial_capacity, 64));
}

void SseParser::compact() {
  // Everything before pos_ is parsed and no longer referenced (the current event's fields
  // were copied out), so it can be dropped.
  if (pos_ == 0)
    return;
  std::memmove(buf_.data(), buf_.data() + pos_, end_ - pos_);
  end_ -= pos_;
  pos_ = 0;
}

std::span<char> SseParser::prepare(std::size_t min_size) {
  if (buf_.size() - end_ < min_size)
    compact();
  if (buf_.size() - end_ < min_size)
    buf_.resize(std::max(buf_.size() * 2, end_ + min_size));
  return {buf_.data() + end_, buf_.size() - end_};
}

void SseParser::commit(std::size_t n) {
  end_ = std::min(end_ + n, buf_.size());
}

void SseParser::feed(std::string_view bytes) {
  auto span = prepare(bytes.size());
  std::memcpy(span.data(), bytes.data(), bytes.size());
  commit(bytes.size());
}

// Takes the next complete line from [pos_, end_) without its terminator. A CR at the very end
// of the input completes its line; skip_lf_ then drops an LF that may start the next read.
bool SseParser::take_line(std::string_view& line) {
  if (skip_lf_ && pos_ < end_) {
    skip_lf_ = false;
    if (buf_[pos_] == '\n')
      ++pos_;
  }
  const char* begin = buf_.data() + pos_;
  const char* stop = buf_.data() + end_;
  const char* p = begin;
  while (p != stop && *p != '\n' && *p != '\r')
    ++p;
  if (p == stop)
    return false;
  line = std::string_view(begin, static_cast<std::size_t>(p - begin));
  pos_ = static_cast<std::size_t>(p - buf_.data()) + 1;
  if (*p == '\r') {
    if (pos_ < end_) {
      if (buf_[pos_] == '\n')
        ++pos_;
    } else {
      skip_lf_ = true;
    }
  }
  return true;
}

void SseParser::handle_line(std::string_view line) {
  if (line.front() == ':')
    return;  // comment (keep-alive pings)
  auto colon = line.find(':');
  std::string_view field = line.substr(0, colon);
  std::string_view value;
  if (colon != std::string_view::npos) {
    value = line.substr(colon + 1);
    if (!value.empty() && value.front() == ' ')
      value.remove_prefix(1);
  }
  if (field == "data") {
    if (in_event_) {
      data_.push_back('\n');
    } else {
      data_.clear();
      in_event_ = true;
    }
    data_.append(value);
  } else if (field == "event") {
    type_.assign(value);
  } else if (field == "id") {
    if (value.find('\0') == std::string_view::npos)
      id_.assign(value);
  }
}

SseStatus SseParser::next(SseEvent& out) {
  std::string_view line;
  while (take_line(line)) {
    if (!line.empty()) {
      handle_line(line);
      continue;
    }
    if (!in_event_) {
      type_.clear();  // a block without data lines dispatches nothing
      continue;
    }
    in_event_ = false;
    last_data_.swap(data_);
    last_type_.swap(type_);
    data_.clear();
    type_.clear();
    out = SseEvent{last_type_, last_data_, id_};
    return SseStatus::event;
  }
  std::size_t pending = (end_ - pos_) + (in_event_ ? data_.size() : 0);
  if (pending > max_event_bytes_)
    return SseStatus::too_large;
  return SseStatus::need_more;
}

bool SseParser::mid_event() const noexcept {
  if (in_event_ || !type_.empty())
    return true;
  return end_ > pos_;
}

}  // namespace troupe::client
