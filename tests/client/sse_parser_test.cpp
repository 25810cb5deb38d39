#include "client/sse_parser.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace troupe::client {
namespace {

struct Ev {
  std::string type, data, id;
  friend bool operator==(const Ev&, const Ev&) = default;
};

std::ostream& operator<<(std::ostream& o, const Ev& e) {
  return o << "{type=" << e.type << " data=" << e.data << " id=" << e.id << "}";
}

// Drains every complete event.
void drain(SseParser& p, std::vector<Ev>& out) {
  SseEvent ev;
  while (p.next(ev) == SseStatus::event) {
    out.push_back({std::string(ev.type), std::string(ev.data), std::string(ev.id)});
  }
}

std::vector<Ev> parse_pieces(const std::vector<std::string>& pieces, std::size_t cap = 64) {
  SseParser p(cap);
  std::vector<Ev> out;
  for (const auto& piece : pieces) {
    p.feed(piece);
    drain(p, out);
  }
  return out;
}

std::vector<Ev> parse(const std::string& s) {
  return parse_pieces({s});
}

TEST(SseParser, SingleEventLf) {
  EXPECT_EQ(parse("data: hello\n\n"), (std::vector<Ev>{{"", "hello", ""}}));
}

TEST(SseParser, CrLfAndCrLineEndings) {
  EXPECT_EQ(parse("data: a\r\n\r\ndata: b\r\rdata: c\n\r\n"),
            (std::vector<Ev>{{"", "a", ""}, {"", "b", ""}, {"", "c", ""}}));
}

TEST(SseParser, CommentLinesAreIgnored) {
  EXPECT_EQ(parse(": keep-alive\n\n: ping\ndata: x\n: mid\n\n"), (std::vector<Ev>{{"", "x", ""}}));
}

TEST(SseParser, MultiLineDataIsJoinedWithNewlines) {
  EXPECT_EQ(parse("data: one\ndata: two\ndata:\ndata:  three\n\n"),
            (std::vector<Ev>{{"", "one\ntwo\n\n three", ""}}));
}

TEST(SseParser, EmptyFirstDataLineKeepsItsNewline) {
  EXPECT_EQ(parse("data:\ndata: x\n\n"), (std::vector<Ev>{{"", "\nx", ""}}));
}

TEST(SseParser, FieldWithoutColonAndNoSpace) {
  EXPECT_EQ(parse("data\n\ndata:x\n\n"), (std::vector<Ev>{{"", "", ""}, {"", "x", ""}}));
}

TEST(SseParser, EventTypeAndIdAndUnknownFields) {
  EXPECT_EQ(parse("event: error\nid: 7\nretry: 10\nfoo: bar\ndata: {}\n\ndata: y\n\n"),
            (std::vector<Ev>{{"error", "{}", "7"}, {"", "y", "7"}}));
}

TEST(SseParser, BlocksWithoutDataDispatchNothing) {
  EXPECT_EQ(parse("event: x\n\n\n\nid: 1\n\ndata: z\n\n"), (std::vector<Ev>{{"", "z", "1"}}));
}

TEST(SseParser, DoneIsAnOrdinaryEvent) {
  EXPECT_EQ(parse("data: [DONE]\n\n"), (std::vector<Ev>{{"", "[DONE]", ""}}));
}

TEST(SseParser, ErrorBody) {
  std::string s = "data: {\"error\":{\"message\":\"bad\",\"type\":\"x\"}}\n\n";
  EXPECT_EQ(parse(s), (std::vector<Ev>{{"", R"({"error":{"message":"bad","type":"x"}})", ""}}));
}

const std::string kStream =
    ": comment\r\n"
    "data: {\"choices\":[{\"delta\":{\"content\":\"Hel\"}}]}\r\n\r\n"
    "event: message\n"
    "data: line1\n"
    "data: line2\n\n"
    "id: 42\r"
    "data: cr-only\r\r"
    "data: {\"choices\":[{\"delta\":{\"content\":\"lo \\u00e9\"}}]}\n\n"
    "data: [DONE]\r\n\r\n";

TEST(SseParser, SplitAtEveryByteBoundaryGivesTheSameEvents) {
  const auto whole = parse(kStream);
  ASSERT_EQ(whole.size(), 5u);
  for (std::size_t i = 0; i <= kStream.size(); ++i) {
    SCOPED_TRACE(i);
    EXPECT_EQ(parse_pieces({kStream.substr(0, i), kStream.substr(i)}), whole);
  }
}

TEST(SseParser, SplitAtEveryPairOfBoundaries) {
  const auto whole = parse(kStream);
  for (std::size_t i = 0; i <= kStream.size(); i += 3) {
    for (std::size_t j = i; j <= kStream.size(); ++j) {
      SCOPED_TRACE(std::to_string(i) + "," + std::to_string(j));
      ASSERT_EQ(parse_pieces({kStream.substr(0, i), kStream.substr(i, j - i), kStream.substr(j)}),
                whole);
    }
  }
}

TEST(SseParser, OneByteAtATime) {
  std::vector<std::string> bytes;
  for (char c : kStream)
    bytes.emplace_back(1, c);
  EXPECT_EQ(parse_pieces(bytes, 64), parse(kStream));
}

TEST(SseParser, EventDeliveredAsSoonAsItsBlankLineArrives) {
  SseParser p;
  std::vector<Ev> out;
  p.feed("data: a\n");
  drain(p, out);
  EXPECT_TRUE(out.empty());
  p.feed("\n");
  drain(p, out);
  EXPECT_EQ(out, (std::vector<Ev>{{"", "a", ""}}));
}

TEST(SseParser, MidEventReportsAnUnfinishedEvent) {
  SseParser p;
  SseEvent ev;
  EXPECT_FALSE(p.mid_event());
  p.feed("data: complete\n\ndata: cut");
  ASSERT_EQ(p.next(ev), SseStatus::event);
  ASSERT_EQ(p.next(ev), SseStatus::need_more);
  EXPECT_TRUE(p.mid_event());  // the server closing now cuts "cut" short

  SseParser q;
  q.feed("data: x\n");  // a full line but no blank line yet
  ASSERT_EQ(q.next(ev), SseStatus::need_more);
  EXPECT_TRUE(q.mid_event());

  SseParser r;
  r.feed("data: x\n\n: trailing comment\n");
  ASSERT_EQ(r.next(ev), SseStatus::event);
  ASSERT_EQ(r.next(ev), SseStatus::need_more);
  EXPECT_FALSE(r.mid_event());
}

TEST(SseParser, EventLargerThanTheLimitIsAnError) {
  SseParser p(64, 100);
  p.feed("data: " + std::string(200, 'x'));
  SseEvent ev;
  EXPECT_EQ(p.next(ev), SseStatus::too_large);
  SseParser q(64, 100);
  q.feed("data: " + std::string(60, 'x') + "\ndata: " + std::string(60, 'y') + "\n");
  EXPECT_EQ(q.next(ev), SseStatus::too_large);
}

TEST(SseParser, LargeEventGrowsTheBuffer) {
  std::string big(100000, 'q');
  EXPECT_EQ(parse_pieces({"data: " + big.substr(0, 5000), big.substr(5000) + "\n\n"}),
            (std::vector<Ev>{{"", big, ""}}));
}

TEST(SseParser, PrepareCommitReadsInPlaceAndCompacts) {
  SseParser p(64);
  std::vector<Ev> out;
  std::string ev = "data: 0123456789\n\n";
  for (int i = 0; i < 1000; ++i) {
    auto span = p.prepare(ev.size());
    std::copy(ev.begin(), ev.end(), span.begin());
    p.commit(ev.size());
    drain(p, out);
  }
  EXPECT_EQ(out.size(), 1000u);
  EXPECT_LE(p.capacity(), 128u);  // consumed input is reclaimed, the buffer does not grow
}

}  // namespace
}  // namespace troupe::client
