#include "engine/sequence_actor.hpp"

#include <gtest/gtest.h>

#include <fstream>
#include <map>
#include <sstream>
#include <thread>

namespace troupe::engine {
namespace {

// A vocabulary where each token's piece is given by the test; token 0 ends generation.
class FakeText final : public TokenText {
 public:
  explicit FakeText(std::map<Token, std::string> pieces) : pieces_(std::move(pieces)) {}
  void append_piece(Token t, std::string& out) const override {
    if (auto it = pieces_.find(t); it != pieces_.end())
      out += it->second;
  }
  bool is_eog(Token t) const override { return t == 0; }

 private:
  std::map<Token, std::string> pieces_;
};

// Drives one SequenceActor as a fake engine would and records its events.
struct Harness {
  explicit Harness(StopParams stop, std::map<Token, std::string> pieces, bool logprobs = false)
      : text(std::move(pieces)), limits(stop) {
    auto [w, s] = make_stream();
    stream = std::move(s);
    SequenceConfig cfg{std::move(stop), logprobs, logprobs ? 2 : 0, 5};
    actor =
        std::make_unique<SequenceActor>(std::move(cfg), text, std::move(w), [this](bool cancelled) {
          ++releases;
          released_cancelled = cancelled;
        });
    actor->handle(SequenceStarted{5, 2});
  }
  // Each token ends the sequence where an engine would end it (sequence_end).
  void feed(std::initializer_list<Token> tokens) {
    for (Token t : tokens) {
      const bool eog = text.is_eog(t) && !eog_suppressed(limits, generated);
      ++generated;
      actor->handle(SampledToken{
          t, -0.5f, {{t, -0.5f}, {9, -1.5f}}, sequence_end(limits, generated, eog, false)});
    }
  }
  std::vector<StreamEvent> events() {
    std::vector<StreamEvent> out;
    while (auto e = stream.try_next())
      out.push_back(std::move(*e));
    return out;
  }
  // Concatenated Delta text, and the final event.
  std::pair<std::string, std::optional<Finished>> text_and_finish() {
    std::string all;
    std::optional<Finished> fin;
    for (auto& e : events()) {
      if (auto* d = std::get_if<Delta>(&e))
        all += d->text;
      if (auto* f = std::get_if<Finished>(&e))
        fin = *f;
    }
    return {all, fin};
  }

  FakeText text;
  StopParams limits;
  std::int32_t generated = 0;
  TokenStream stream;
  std::unique_ptr<SequenceActor> actor;
  int releases = 0;
  bool released_cancelled = false;
};

StopParams stops(std::vector<std::string> s, std::int32_t max_tokens = 100) {
  StopParams p;
  p.stop = std::move(s);
  p.max_tokens = max_tokens;
  return p;
}

TEST(SequenceActor, StartedThenDeltasThenFinishedWithUsage) {
  Harness h(stops({}, 3), {{1, "a"}, {2, "b"}, {3, "c"}});
  h.feed({1, 2, 3});
  auto ev = h.events();
  ASSERT_EQ(ev.size(), 5u);
  EXPECT_EQ(std::get<Started>(ev[0]).prompt_tokens, 5);
  EXPECT_EQ(std::get<Delta>(ev[1]).text, "a");
  EXPECT_EQ(std::get<Delta>(ev[3]).text, "c");
  const auto& f = std::get<Finished>(ev[4]);
  EXPECT_EQ(f.reason, FinishReason::length);
  EXPECT_EQ(f.usage.prompt_tokens, 5);
  EXPECT_EQ(f.usage.completion_tokens, 3);
  EXPECT_EQ(f.usage.cached_tokens, 2);
  EXPECT_EQ(h.releases, 0);  // the engine ended it at max_tokens: nothing to release
}

TEST(SequenceActor, StopStringSplitAcrossTokensIsNeverEmitted) {
  for (int split = 1; split <= 4; ++split) {
    std::map<Token, std::string> pieces{{1, "Hi "}};
    const std::string stop = "</s>";
    std::vector<Token> toks{1};
    // The stop string in `split` pieces, then more text in the last piece.
    std::size_t at = 0;
    for (int i = 0; i < split; ++i) {
      const std::size_t len = i + 1 == split ? stop.size() - at : 1;
      pieces[10 + i] = stop.substr(at, len) + (i + 1 == split ? "tail" : "");
      toks.push_back(10 + i);
      at += len;
    }
    Harness h(stops({stop}), pieces);
    for (Token t : toks)
      h.feed({t});
    auto [text, fin] = h.text_and_finish();
    EXPECT_EQ(text, "Hi ") << split;
    ASSERT_TRUE(fin);
    EXPECT_EQ(fin->reason, FinishReason::stop);
    EXPECT_EQ(fin->stop_string, stop);
    EXPECT_EQ(h.releases, 1);
  }
}

// llama-server's n_indent: the answer ends before the first line (after its first) indented
// less, keeping that line's indentation; what is dropped never reaches the stream.
TEST(SequenceActor, ALineIndentedLessThanNIndentEndsTheAnswer) {
  StopParams p = stops({});
  p.n_indent = 4;
  Harness h(p, {{1, "x = 1"}, {2, "\n    "}, {3, "y = 2\n  "}, {4, "z"}, {5, " = 3"}});
  h.feed({1, 2, 3});
  // The last line's two spaces are held until its first character shows its indentation.
  auto [first, none] = h.text_and_finish();
  EXPECT_EQ(first, "x = 1\n    y = 2\n");
  EXPECT_FALSE(none);
  h.feed({4, 5});
  auto [rest, fin] = h.text_and_finish();
  EXPECT_EQ(rest, "  ");
  ASSERT_TRUE(fin);
  EXPECT_EQ(fin->reason, FinishReason::length);
  EXPECT_EQ(fin->usage.completion_tokens, 4);
  EXPECT_EQ(h.releases, 1);  // the engine is told to stop
}

TEST(SequenceActor, IndentationHeldAtTheEndIsSentAndAStopStringStillEnds) {
  StopParams p = stops({"END"}, 2);
  p.n_indent = 2;
  Harness h(p, {{1, "a\n    "}, {2, "b\n\t"}});
  h.feed({1, 2});  // max_tokens: the held tab goes out
  auto [text, fin] = h.text_and_finish();
  EXPECT_EQ(text, "a\n    b\n\t");
  ASSERT_TRUE(fin);
  EXPECT_EQ(fin->reason, FinishReason::length);

  StopParams q = stops({"END"});
  q.n_indent = 2;
  Harness s(q, {{1, "a\n  "}, {2, "END"}});
  s.feed({1, 2});
  auto [stext, sfin] = s.text_and_finish();
  EXPECT_EQ(stext, "a\n  ");
  ASSERT_TRUE(sfin);
  EXPECT_EQ(sfin->stop_string, "END");
}

// llama-server's t_max_predict_ms: past the limit since the first token, the next token that
// breaks a line ends the answer (with it).
TEST(SequenceActor, PastTheTimeLimitALineBreakEndsTheAnswer) {
  StopParams p = stops({});
  p.max_predict_ms = 1;
  Harness h(p, {{1, "a"}, {2, "b"}, {3, "c\n"}, {4, "d"}});
  h.feed({1});
  std::this_thread::sleep_for(std::chrono::milliseconds(5));
  h.feed({2});  // no line break: goes on
  EXPECT_FALSE(h.text_and_finish().second);
  h.feed({3});
  auto [text, fin] = h.text_and_finish();
  EXPECT_EQ(text, "c\n");
  ASSERT_TRUE(fin);
  EXPECT_EQ(fin->reason, FinishReason::length);
  EXPECT_EQ(h.releases, 1);
  // Without a limit the same tokens go on.
  Harness free(stops({}), {{1, "a"}, {3, "c\n"}});
  free.feed({1, 3, 1});
  EXPECT_FALSE(free.text_and_finish().second);
}

TEST(SequenceActor, OverlappingStopCandidates) {
  Harness h(stops({"ab", "bcd"}), {{1, "x"}, {2, "b"}, {3, "c"}, {4, "a"}, {5, "b"}});
  h.feed({1, 2, 3, 4, 5});  // "xbca" then "b": "bcd" never completes, "ab" does
  auto [text, fin] = h.text_and_finish();
  EXPECT_EQ(text, "xbc");
  ASSERT_TRUE(fin);
  EXPECT_EQ(fin->stop_string, "ab");
}

TEST(SequenceActor, Utf8CharacterSplitAcrossTokens) {
  Harness h(stops({}), {{1, "\xE2"}, {2, "\x82"}, {3, "\xAC!"}});
  h.feed({1, 2, 3});
  auto ev = h.events();
  ASSERT_EQ(ev.size(), 4u);
  EXPECT_EQ(std::get<Delta>(ev[1]).text, "");  // held back, but the token is reported
  EXPECT_EQ(std::get<Delta>(ev[1]).tokens, std::vector<Token>{1});
  EXPECT_EQ(std::get<Delta>(ev[2]).text, "");
  EXPECT_EQ(std::get<Delta>(ev[3]).text, "\xE2\x82\xAC!");
}

TEST(SequenceActor, EndOfGenerationFinishesWithStopAndFlushesHeldText) {
  Harness h(stops({"STOP"}), {{1, "ok ST"}});
  h.feed({1, 0});
  auto [text, fin] = h.text_and_finish();
  EXPECT_EQ(text, "ok ST");
  ASSERT_TRUE(fin);
  EXPECT_EQ(fin->reason, FinishReason::stop);
  EXPECT_EQ(fin->stop_string, "");
  EXPECT_EQ(fin->usage.completion_tokens, 2);
}

TEST(SequenceActor, IgnoreEosKeepsGoing) {
  StopParams p = stops({}, 3);
  p.ignore_eos = true;
  Harness h(p, {{1, "a"}});
  h.feed({0, 1, 0});
  auto [text, fin] = h.text_and_finish();
  EXPECT_EQ(text, "a");
  EXPECT_EQ(fin->reason, FinishReason::length);
}

TEST(SequenceActor, EngineEndedSequenceIsNotReleasedAgain) {
  Harness h(stops({}), {{1, "a"}});
  h.actor->handle(SampledToken{1, 0.0f, {}, EngineEnd::context_full});
  auto [text, fin] = h.text_and_finish();
  EXPECT_EQ(fin->reason, FinishReason::length);
  EXPECT_EQ(h.releases, 0);
}

TEST(SequenceActor, IncompleteCharacterAtTheEndBecomesReplacement) {
  Harness h(stops({}, 1), {{1, "\xE2\x82"}});
  h.feed({1});
  auto [text, fin] = h.text_and_finish();
  EXPECT_EQ(text, "\xEF\xBF\xBD");
}

TEST(SequenceActor, LogprobsAndTopAlternatives) {
  Harness h(stops({}, 1), {{1, "a"}, {9, "z"}}, /*logprobs=*/true);
  h.feed({1});
  auto ev = h.events();
  const auto& d = std::get<Delta>(ev[1]);
  ASSERT_EQ(d.logprobs.size(), 1u);
  EXPECT_EQ(d.logprobs[0].text, "a");
  EXPECT_FLOAT_EQ(d.logprobs[0].logprob, -0.5f);
  ASSERT_EQ(d.top.size(), 1u);
  ASSERT_EQ(d.top[0].size(), 2u);
  EXPECT_EQ(d.top[0][1].text, "z");
}

TEST(SequenceActor, CancelReleasesOnceAndPushesNothing) {
  Harness h(stops({}), {{1, "a"}});
  h.actor->cancel();
  h.actor->cancel();
  h.feed({1});
  EXPECT_EQ(h.releases, 1);
  EXPECT_TRUE(h.released_cancelled);
  EXPECT_EQ(h.events().size(), 1u);  // only Started
}

TEST(SequenceActor, FailedEndsTheStream) {
  Harness h(stops({}), {});
  h.actor->handle(SequenceFailed{Error{Errc::engine_failed, "boom"}});
  auto ev = h.events();
  ASSERT_EQ(ev.size(), 2u);
  EXPECT_EQ(std::get<Failed>(ev[1]).error.code, Errc::engine_failed);
  EXPECT_EQ(h.releases, 0);
}

// ------------------------------------------------------------ chat output parsing

// Renders a one-tool conversation with Qwen 2.5's template (from the release's test data) and
// returns the parser its output needs.
std::unique_ptr<chatfmt::OutputParser> qwen_tool_parser() {
  std::ifstream in(std::string(TROUPE_LLAMA_TESTDATA) +
                   "/templates/Qwen-Qwen2.5-7B-Instruct.jinja");
  std::stringstream src;
  src << in.rdbuf();
  auto t = chatfmt::ChatTemplate::create(src.str(), "", "");
  EXPECT_TRUE(t);
  chatfmt::ChatOptions o;
  o.tools = {
      {"get_time", "the time", R"({"type":"object","properties":{"city":{"type":"string"}}})"}};
  auto r = (*t)->render({{"user", "time?"}}, o);
  EXPECT_TRUE(r);
  auto p = chatfmt::OutputParser::create(r->parser);
  EXPECT_TRUE(p);
  return std::move(p.value());
}

TEST(SequenceActor, ParsedToolCallsLeaveContentAndEndWithToolCalls) {
  FakeText text({{1, "Let me check."},
                 {2, "<tool_call>\n"},
                 {3, "{\"name\": \"get_time\", "},
                 {4, "\"arguments\": {\"city\": \"Paris\"}}"},
                 {5, "\n</tool_call>"}});
  auto [w, stream] = make_stream();
  SequenceConfig cfg{stops({}, 100), false, 0, 5, qwen_tool_parser()};
  SequenceActor actor(std::move(cfg), text, std::move(w), [](bool) {});
  actor.handle(SequenceStarted{5, 0});
  for (Token t : {1, 2, 3, 4, 5, 0})
    actor.handle(SampledToken{t, 0.0f, {}, t == 0 ? EngineEnd::eog : EngineEnd::none});
  std::string content, args, name;
  std::optional<Finished> fin;
  while (auto e = stream.try_next()) {
    if (auto* d = std::get_if<Delta>(&*e)) {
      content += d->text;
      for (const auto& c : d->tool_calls) {
        EXPECT_EQ(c.index, 0u);
        name += c.name;
        args += c.arguments;
      }
    }
    if (auto* f = std::get_if<Finished>(&*e))
      fin = *f;
  }
  EXPECT_EQ(content, "Let me check.");
  EXPECT_EQ(name, "get_time");
  EXPECT_NE(args.find("Paris"), std::string::npos) << args;
  ASSERT_TRUE(fin);
  EXPECT_EQ(fin->reason, FinishReason::tool_calls);
  EXPECT_EQ(fin->usage.completion_tokens, 6);
}

TEST(SequenceActor, WithoutAToolCallTheParsedAnswerStopsNormally) {
  FakeText text({{1, "Hello"}, {2, " there"}});
  auto [w, stream] = make_stream();
  SequenceConfig cfg{stops({}, 2), false, 0, 5, qwen_tool_parser()};
  SequenceActor actor(std::move(cfg), text, std::move(w), [](bool) {});
  actor.handle(SequenceStarted{5, 0});
  actor.handle(SampledToken{1, 0.0f, {}, EngineEnd::none});
  actor.handle(SampledToken{2, 0.0f, {}, EngineEnd::max_tokens});
  std::string content;
  std::optional<Finished> fin;
  while (auto e = stream.try_next()) {
    if (auto* d = std::get_if<Delta>(&*e)) {
      content += d->text;
      EXPECT_TRUE(d->tool_calls.empty());
    }
    if (auto* f = std::get_if<Finished>(&*e))
      fin = *f;
  }
  EXPECT_EQ(content, "Hello there");
  ASSERT_TRUE(fin);
  EXPECT_EQ(fin->reason, FinishReason::length);
}

}  // namespace
}  // namespace troupe::engine
