#pragma once
// SseParser: an incremental, pull-style parser of `text/event-stream` bodies (the WHATWG
// server-sent events format that OpenAI-compatible servers stream completions in).
//
// Bytes go in through prepare()/commit() (read straight into the parser's buffer, no copy) or
// feed(); complete events come out one at a time from next(). Events may be split at any byte
// boundary across reads. Lines end in LF, CRLF or CR; lines starting with ':' are comments;
// `data:` lines of one event are joined with '\n'; one space after the colon is dropped;
// `event:` sets the event type, `id:` the last event id, other fields are ignored. An event is
// dispatched at its blank line; a block without data (only comments or `event:`) is not an event.
// The parser does not interpret `[DONE]`: that is the OpenAI layer's business.
//
// Memory: the buffer holds at most one unfinished event plus one read; it grows only for events
// larger than the initial capacity and is compacted, never shrunk. Events larger than
// `max_event_bytes` are an error (a misbehaving server must not exhaust memory).
//
// Thread-safety: none; one owner. Not copyable (views into the buffer would dangle); movable.

#include <cstddef>
#include <span>
#include <string>
#include <string_view>

namespace troupe::client {

// One dispatched event. The views stay valid until the next non-const call on the parser.
struct SseEvent {
  std::string_view type;  // the `event:` field; empty means the default type "message"
  std::string_view data;  // the `data:` lines joined with '\n' (no trailing '\n')
  std::string_view id;    // the last `id:` seen on this stream (persists across events)
};

enum class SseStatus {
  event,      // next() filled in an event
  need_more,  // no complete event buffered: read more bytes
  too_large,  // the unfinished event exceeds max_event_bytes; the stream is unusable
};

class SseParser {
 public:
  explicit SseParser(std::size_t initial_capacity = 2048, std::size_t max_event_bytes = 1 << 22);
  SseParser(SseParser&&) noexcept = default;
  SseParser& operator=(SseParser&&) noexcept = default;
  SseParser(const SseParser&) = delete;
  SseParser& operator=(const SseParser&) = delete;

  // Writable space of at least `min_size` bytes (more when the buffer has it) at the end of
  // the unparsed input. Invalidates the views of the last event. Follow with commit().
  std::span<char> prepare(std::size_t min_size = 512);
  // Marks the first `n` bytes of the last prepare() span as received. Precondition: n is at
  // most that span's size.
  void commit(std::size_t n);
  // prepare() + copy + commit().
  void feed(std::string_view bytes);

  // Parses buffered bytes up to and including the next complete event.
  SseStatus next(SseEvent& out);

  // True when bytes of an unfinished event are buffered or pending, i.e. the stream ending now
  // would cut an event short (a server that closed mid-event). Call after next() == need_more.
  bool mid_event() const noexcept;

  // Bytes of buffer currently allocated (for memory accounting).
  std::size_t capacity() const noexcept { return buf_.capacity(); }

 private:
  bool take_line(std::string_view& line);
  void handle_line(std::string_view line);
  void compact();

  std::string buf_;      // raw input; [pos_, end_) is unparsed
  std::size_t pos_ = 0;  // first unparsed byte
  std::size_t end_ = 0;  // end of received bytes (buf_.size() is the allocated extent)
  std::size_t max_event_bytes_;
  bool skip_lf_ = false;   // the last line ended in CR: a following LF belongs to it
  bool in_event_ = false;  // a field line of the current event was seen
  std::string data_;       // joined data of the current event
  std::string type_;
  std::string id_;
  std::string last_type_;  // type/data of the dispatched event, kept alive for its views
  std::string last_data_;
};

}  // namespace troupe::client
