#include "api/response.hpp"

#include <gtest/gtest.h>

#include <boost/json/parse.hpp>

#include "api/error.hpp"
#include "api/native.hpp"

namespace troupe::api {
namespace {
namespace json = boost::json;

const ResponseHead head{"chatcmpl-1", "tiny", 1700000000};

TEST(Response, ChatCompletionHasOpenAiShape) {
  CompletionResult r{"hi \"there\"\n", "stop", {3, 2, 1}, std::nullopt};
  auto v = json::parse(chat_completion_json(head, r));
  EXPECT_EQ(v.at("object"), "chat.completion");
  EXPECT_EQ(v.at("id"), "chatcmpl-1");
  EXPECT_EQ(v.at("created"), 1700000000);
  const auto& choice = v.at("choices").at(0);
  EXPECT_EQ(choice.at("message").at("content"), "hi \"there\"\n");
  EXPECT_EQ(choice.at("message").at("role"), "assistant");
  EXPECT_EQ(choice.at("finish_reason"), "stop");
  EXPECT_TRUE(choice.at("logprobs").is_null());
  EXPECT_EQ(v.at("usage").at("total_tokens"), 5);
  EXPECT_EQ(v.at("usage").at("prompt_tokens_details").at("cached_tokens"), 1);
  EXPECT_EQ(v.at("usage").at("completion_tokens_details").at("reasoning_tokens"), 0);
  r.usage.reasoning_tokens = 2;
  r.usage.accepted_prediction_tokens = 1;
  r.usage.rejected_prediction_tokens = 3;
  const auto details =
      json::parse(chat_completion_json(head, r)).at("usage").at("completion_tokens_details");
  EXPECT_EQ(details.at("reasoning_tokens"), 2);
  EXPECT_EQ(details.at("accepted_prediction_tokens"), 1);
  EXPECT_EQ(details.at("rejected_prediction_tokens"), 3);
}

TEST(Response, ChatCompletionWithToolCallsAndReasoning) {
  CompletionResult r{"", "tool_calls", {3, 2, 0}, std::nullopt};
  r.reasoning_content = "think";
  r.tool_calls = {{"abc123XYZ", "get_weather", R"({"city":"Paris"})"}};
  auto v = json::parse(chat_completion_json(head, r));
  const auto& choice = v.at("choices").at(0);
  const auto& msg = choice.at("message");
  EXPECT_TRUE(msg.at("content").is_null());
  EXPECT_EQ(msg.at("reasoning_content"), "think");
  const auto& call = msg.at("tool_calls").at(0);
  EXPECT_EQ(call.at("id"), "abc123XYZ");
  EXPECT_EQ(call.at("type"), "function");
  EXPECT_EQ(call.at("function").at("name"), "get_weather");
  EXPECT_EQ(call.at("function").at("arguments"), R"({"city":"Paris"})");
  EXPECT_EQ(choice.at("finish_reason"), "tool_calls");
}

TEST(Response, ChatToolCallChunksInOpenAIsShape) {
  ChunkWriter w(CompletionKind::chat, head, false);
  auto first =
      json::parse(w.chat_delta_chunk("", "", {{0, "abc123XYZ", "get_weather", "{\"ci"}}, nullptr));
  const auto& d = first.at("choices").at(0).at("delta");
  EXPECT_FALSE(d.as_object().contains("content"));
  const auto& c = d.at("tool_calls").at(0);
  EXPECT_EQ(c.at("index"), 0);
  EXPECT_EQ(c.at("id"), "abc123XYZ");
  EXPECT_EQ(c.at("type"), "function");
  EXPECT_EQ(c.at("function").at("name"), "get_weather");
  EXPECT_EQ(c.at("function").at("arguments"), "{\"ci");
  auto more = json::parse(w.chat_delta_chunk("", "", {{0, "", "", "ty\":1}"}}, nullptr));
  const auto& c2 = more.at("choices").at(0).at("delta").at("tool_calls").at(0);
  EXPECT_EQ(c2.at("index"), 0);
  EXPECT_FALSE(c2.as_object().contains("id"));
  EXPECT_FALSE(c2.at("function").as_object().contains("name"));
  EXPECT_EQ(c2.at("function").at("arguments"), "ty\":1}");
  auto reasoning = json::parse(w.chat_delta_chunk("", "hmm", {}, nullptr));
  EXPECT_EQ(reasoning.at("choices").at(0).at("delta").at("reasoning_content"), "hmm");
  EXPECT_FALSE(reasoning.at("choices").at(0).at("delta").as_object().contains("content"));
  EXPECT_EQ(json::parse(apply_template_json("<s>hi")).at("prompt"), "<s>hi");
}

TEST(Response, TextCompletionWithLogprobs) {
  std::vector<TokenLogprob> lps = {{"a", -0.5f, {{"a", -0.5f}, {"b", -1.0f}}}, {"\xe2", -1.f, {}}};
  CompletionResult r{"a", "length", {1, 2, 0}, lps};
  auto v = json::parse(text_completion_json({"cmpl-1", "m", 1}, r));
  EXPECT_EQ(v.at("object"), "text_completion");
  const auto& lp = v.at("choices").at(0).at("logprobs");
  EXPECT_EQ(lp.at("tokens").at(0), "a");
  EXPECT_EQ(lp.at("tokens").at(1), "\xef\xbf\xbd");
  EXPECT_EQ(lp.at("text_offset").at(1), 1);
  EXPECT_EQ(lp.at("top_logprobs").at(0).at("b"), -1.0);
}

TEST(Response, ChatChunksInOrder) {
  ChunkWriter w(CompletionKind::chat, head, /*include_usage=*/true);
  auto role = json::parse(w.role_chunk());
  EXPECT_EQ(role.at("object"), "chat.completion.chunk");
  EXPECT_EQ(role.at("choices").at(0).at("delta").at("role"), "assistant");
  EXPECT_TRUE(role.at("usage").is_null());
  auto delta = json::parse(w.delta_chunk("x\u00e9", nullptr));
  EXPECT_EQ(delta.at("choices").at(0).at("delta").at("content"), "x\u00e9");
  EXPECT_TRUE(delta.at("choices").at(0).at("finish_reason").is_null());
  auto fin = json::parse(w.finish_chunk("length"));
  EXPECT_EQ(fin.at("choices").at(0).at("finish_reason"), "length");
  EXPECT_TRUE(fin.at("choices").at(0).at("delta").as_object().empty());
  auto usage = json::parse(w.usage_chunk({4, 2, 0}));
  EXPECT_TRUE(usage.at("choices").as_array().empty());
  EXPECT_EQ(usage.at("usage").at("completion_tokens"), 2);
}

TEST(Response, TextChunksWithLogprobs) {
  ChunkWriter w(CompletionKind::text, {"cmpl-2", "m", 5}, false);
  std::vector<TokenLogprob> lps = {{"ab", -0.25f, {}}};
  auto c = json::parse(w.delta_chunk("ab", &lps));
  EXPECT_EQ(c.at("choices").at(0).at("text"), "ab");
  EXPECT_EQ(c.at("choices").at(0).at("logprobs").at("token_logprobs").at(0), -0.25);
  EXPECT_FALSE(c.as_object().contains("usage"));
  auto c2 = json::parse(w.delta_chunk("c", &lps));
  EXPECT_EQ(c2.at("choices").at(0).at("logprobs").at("text_offset").at(0), 2);
}

TEST(Response, ChoicesCarryTheirIndexAndShareOneUsage) {
  const std::vector<CompletionResult> rs = {{"a", "stop", {}, std::nullopt},
                                            {"b", "length", {}, std::nullopt}};
  auto chat = json::parse(completions_json(CompletionKind::chat, head, rs, {3, 7, 0}));
  ASSERT_EQ(chat.at("choices").as_array().size(), 2u);
  EXPECT_EQ(chat.at("choices").at(1).at("index"), 1);
  EXPECT_EQ(chat.at("choices").at(1).at("message").at("content"), "b");
  EXPECT_EQ(chat.at("choices").at(1).at("finish_reason"), "length");
  EXPECT_EQ(chat.at("usage").at("total_tokens"), 10);
  auto text = json::parse(completions_json(CompletionKind::text, head, rs, {3, 7, 0}));
  EXPECT_EQ(text.at("choices").at(1).at("index"), 1);
  EXPECT_EQ(text.at("choices").at(1).at("text"), "b");

  ChunkWriter second(CompletionKind::chat, head, false, 2);
  EXPECT_EQ(json::parse(second.role_chunk()).at("choices").at(0).at("index"), 2);
  EXPECT_EQ(json::parse(second.delta_chunk("x", nullptr)).at("choices").at(0).at("index"), 2);
  EXPECT_EQ(json::parse(second.finish_chunk("stop")).at("choices").at(0).at("index"), 2);
  ChunkWriter text_second(CompletionKind::text, head, false, 1);
  EXPECT_EQ(json::parse(text_second.delta_chunk("x", nullptr)).at("choices").at(0).at("index"), 1);
  EXPECT_EQ(json::parse(text_second.finish_chunk("stop")).at("choices").at(0).at("index"), 1);
}

TEST(Response, ModelsAndTokenize) {
  auto m = json::parse(models_json({{"tiny", 1, "troupe", 256}}));
  EXPECT_EQ(m.at("object"), "list");
  EXPECT_EQ(m.at("data").at(0).at("id"), "tiny");
  EXPECT_EQ(m.at("data").at(0).at("object"), "model");
  auto t = json::parse(tokenize_json({1, 2}, nullptr));
  EXPECT_EQ(t.at("tokens").at(1), 2);
  std::vector<std::string> pieces = {"a", "\xff"};
  auto tp = json::parse(tokenize_json({1, 2}, &pieces));
  EXPECT_EQ(tp.at("tokens").at(0).at("piece"), "a");
  EXPECT_EQ(tp.at("tokens").at(1).at("piece").at(0), 255);
  EXPECT_EQ(json::parse(detokenize_json("hi")).at("content"), "hi");
}

TEST(ErrorJson, HasOpenAiShapeAndStatus) {
  auto e = to_http_error(Error{Errc::not_found, "no such model", "model"});
  EXPECT_EQ(e.status, 404);
  auto v = json::parse(to_json(e));
  EXPECT_EQ(v.at("error").at("code"), "model_not_found");
  EXPECT_EQ(v.at("error").at("param"), "model");
  EXPECT_EQ(v.at("error").at("message"), "no such model");
  auto bad = json::parse(to_json(invalid_request("x\x01", "")));
  EXPECT_TRUE(bad.at("error").at("param").is_null());
  EXPECT_EQ(to_http_error(Error{Errc::overloaded, "full"}).retry_after_seconds, 1);
  EXPECT_EQ(to_http_error(Error{Errc::prompt_too_long, "long"}).status, 400);
  EXPECT_EQ(to_http_error(Error{Errc::unauthorized, "key"}).status, 401);
  EXPECT_EQ(to_http_error(Error{Errc::engine_failed, "boom"}).status, 500);
}

TEST(Utf8, SanitizeReplacesBrokenSequences) {
  EXPECT_EQ(sanitize_utf8("ok \xc3\xa9"), "ok \xc3\xa9");
  EXPECT_EQ(sanitize_utf8("\xc3"), "\xef\xbf\xbd");
  EXPECT_EQ(sanitize_utf8("\xed\xa0\x80"), "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd");
}

// llama-server's own shapes (/infill): the whole answer and a streamed piece.
TEST(Response, NativeCompletionHasLlamaServersFields) {
  NativeCompletion c;
  c.content = "x = \"1\"\n";
  c.model = "tiny";
  c.tokens_predicted = 4;
  c.tokens_evaluated = 10;
  c.tokens_cached = 2;
  c.has_new_line = true;
  c.truncated = true;
  c.stop_type = "word";
  c.stopping_word = "\n\n";
  c.timings = {2, 8, 40.0, 4, 20.0};
  auto v = json::parse(native_completion_json(c));
  EXPECT_EQ(v.at("content"), "x = \"1\"\n");
  EXPECT_EQ(v.at("stop"), true);
  EXPECT_EQ(v.at("index"), 0);
  EXPECT_EQ(v.at("model"), "tiny");
  EXPECT_EQ(v.at("tokens_predicted"), 4);
  EXPECT_EQ(v.at("tokens_evaluated"), 10);
  EXPECT_EQ(v.at("tokens_cached"), 2);
  EXPECT_EQ(v.at("has_new_line"), true);
  EXPECT_EQ(v.at("truncated"), true);
  EXPECT_EQ(v.at("stop_type"), "word");
  EXPECT_EQ(v.at("stopping_word"), "\n\n");
  const auto& t = v.at("timings");
  EXPECT_EQ(t.at("cache_n"), 2);
  EXPECT_EQ(t.at("prompt_n"), 8);
  EXPECT_DOUBLE_EQ(t.at("prompt_per_token_ms").to_number<double>(), 5.0);
  EXPECT_DOUBLE_EQ(t.at("prompt_per_second").to_number<double>(), 200.0);
  EXPECT_DOUBLE_EQ(t.at("predicted_per_second").to_number<double>(), 200.0);
  // No tokens, no time: rates of 0, not a division by zero.
  c.timings = {};
  auto none = json::parse(native_completion_json(c));
  EXPECT_DOUBLE_EQ(none.at("timings").at("predicted_per_second").to_number<double>(), 0.0);

  // llama-server's response_fields: only those, keyed by their paths; a missing one left out.
  const std::vector<std::string> fields{"content", "timings/prompt_n", "timings/nope", "stop"};
  auto picked = json::parse(native_completion_json(c, fields)).as_object();
  EXPECT_EQ(picked.size(), 3u);
  EXPECT_EQ(picked.at("content"), "x = \"1\"\n");
  EXPECT_EQ(picked.at("timings/prompt_n"), 0);
  EXPECT_EQ(picked.at("stop"), true);

  auto piece = json::parse(native_chunk_json({0, "a\tb", {}, {}, 3, 10, nullptr}));
  EXPECT_EQ(piece.at("content"), "a\tb");
  EXPECT_EQ(piece.at("stop"), false);
  EXPECT_EQ(piece.at("tokens_predicted"), 3);
  EXPECT_EQ(piece.at("tokens_evaluated"), 10);
  EXPECT_EQ(piece.at("tokens"), json::array());
  EXPECT_FALSE(piece.as_object().contains("timings"));
  EXPECT_FALSE(piece.as_object().contains("completion_probabilities"));
}

// llama-server's completion_probabilities, token ids, an answer's index, timings per piece.
TEST(NativeShapes, CarryProbabilitiesTokensAndIndex) {
  const std::vector<NativeProb> probs{
      {{7, "\xe2\x82", -0.25f}, {{7, "\xe2\x82", -0.25f}, {9, "b", -2.0f}}}};
  const std::vector<std::int32_t> tokens{7};
  const NativeTimings timings{0, 3, 10.0, 1, 0.0};
  auto piece = json::parse(native_chunk_json({2, "", tokens, probs, 1, 3, &timings}));
  EXPECT_EQ(piece.at("index"), 2);
  EXPECT_EQ(piece.at("tokens"), json::array({7}));
  EXPECT_EQ(piece.at("timings").at("prompt_n"), 3);
  const auto& p = piece.at("completion_probabilities").as_array();
  ASSERT_EQ(p.size(), 1u);
  EXPECT_EQ(p[0].at("id"), 7);
  EXPECT_EQ(p[0].at("bytes"), json::array({0xe2, 0x82}));   // the piece's own bytes
  EXPECT_EQ(p[0].at("token"), "\xef\xbf\xbd\xef\xbf\xbd");  // as valid UTF-8
  EXPECT_DOUBLE_EQ(p[0].at("logprob").to_number<double>(), -0.25);
  const auto& top = p[0].at("top_logprobs").as_array();
  ASSERT_EQ(top.size(), 2u);
  EXPECT_EQ(top[1].at("id"), 9);
  EXPECT_EQ(top[1].at("token"), "b");
  EXPECT_DOUBLE_EQ(top[1].at("logprob").to_number<double>(), -2.0);

  NativeCompletion c;
  c.index = 3;
  c.tokens = {7, 9};
  c.probs = probs;
  auto whole = json::parse(native_completion_json(c));
  EXPECT_EQ(whole.at("index"), 3);
  EXPECT_EQ(whole.at("tokens"), json::array({7, 9}));
  EXPECT_EQ(whole.at("completion_probabilities").as_array().size(), 1u);
  c.probs.clear();
  EXPECT_FALSE(
      json::parse(native_completion_json(c)).as_object().contains("completion_probabilities"));
}

}  // namespace
}  // namespace troupe::api

namespace troupe::api {
namespace {

TEST(NativeShapes, LoraAdaptersListAndSet) {
  const std::vector<NativeLoraAdapter> adapters{{"/m/a.gguf", 0.5f, "chat", ""},
                                                {"/m/\"b\".gguf", 0.0f, "", "<x>"}};
  auto v = json::parse(lora_adapters_json(adapters));
  ASSERT_TRUE(v.is_array());
  ASSERT_EQ(v.as_array().size(), 2u);
  const auto& b = v.as_array()[1].as_object();
  EXPECT_EQ(b.at("id").to_number<int>(), 1);
  EXPECT_EQ(b.at("path").as_string(), "/m/\"b\".gguf");
  EXPECT_EQ(b.at("scale").to_number<double>(), 0.0);
  EXPECT_EQ(b.at("prompt_prefix").as_string(), "<x>");
  EXPECT_EQ(v.as_array()[0].as_object().at("task_name").as_string(), "chat");
  EXPECT_EQ(lora_adapters_json({}), "[]");

  auto set = parse_lora_adapters_request(R"([{"id":1,"scale":0.25}])");
  ASSERT_TRUE(set) << set.error().message;
  EXPECT_EQ(*set, (std::vector<std::pair<std::int32_t, float>>{{1, 0.25f}}));
  for (const char* bad : {"{", R"({"id":1,"scale":1})", R"([{"id":"1","scale":1}])"}) {
    auto e = parse_lora_adapters_request(bad);
    ASSERT_FALSE(e) << bad;
    EXPECT_EQ(e.error().code, Errc::invalid_request) << bad;
  }
}

}  // namespace
}  // namespace troupe::api

namespace troupe::api {
namespace {

// GET /slots: an idle slot has llama-server's four fields; a busy one its task and counts, with
// n_remain -1 when only the context limits it and has_next_token false at its limit.
TEST(NativeShapes, SlotsShowIdleAndBusySlots) {
  const std::vector<NativeSlot> slots{{0, false},
                                      {1, true, true, 42, 10, 10, 4, 3, -1},
                                      {2, true, true, 43, 5, 5, 0, 8, 8},
                                      {3, true, false, 44, 900, 256, 0, 0, 32}};
  auto v = json::parse(slots_json(slots, 512, true));
  const auto& a = v.as_array();
  ASSERT_EQ(a.size(), 4u);
  EXPECT_EQ(a[0].as_object().size(), 4u);
  EXPECT_EQ(a[0].at("n_ctx").as_int64(), 512);
  EXPECT_EQ(a[0].at("speculative").as_bool(), true);
  EXPECT_EQ(a[0].at("is_processing").as_bool(), false);
  EXPECT_EQ(a[1].at("id_task").as_int64(), 42);
  EXPECT_EQ(a[1].at("n_prompt_tokens_cache").as_int64(), 4);
  EXPECT_EQ(a[1].at("next_token").at(0).at("n_remain").as_int64(), -1);
  EXPECT_EQ(a[1].at("next_token").at(0).at("has_next_token").as_bool(), true);
  EXPECT_EQ(a[2].at("next_token").at(0).at("n_remain").as_int64(), 0);
  EXPECT_EQ(a[2].at("next_token").at(0).at("has_next_token").as_bool(), false);
  EXPECT_EQ(a[3].at("n_prompt_tokens").as_int64(), 900);
  EXPECT_EQ(a[3].at("n_prompt_tokens_processed").as_int64(), 256);
  EXPECT_EQ(a[3].at("next_token").at(0).at("n_decoded").as_int64(), 0);
  EXPECT_EQ(slots_json({}, 512, false), "[]");
}

}  // namespace
}  // namespace troupe::api
