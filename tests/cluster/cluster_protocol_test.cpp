#include "cluster/cluster_protocol.hpp"

#include <gtest/gtest.h>

#include <limits>

namespace troupe::cluster {
namespace {

template <class T>
T round_trip(const T& m) {
  auto bytes = encode_message(m);
  auto back = decode_message<T>(bytes);
  EXPECT_TRUE(back.ok());
  return back.ok() ? std::move(back.value()) : T{};
}

engine::Task sample_task() {
  engine::Task t;
  t.model = "tiny";
  t.prompt = std::vector<engine::ChatMessage>{{"system", "be brief"}, {"user", "héllo"}};
  t.sampling.temperature = 0.25f;
  t.sampling.top_k = 40;
  t.sampling.top_p = 0.9f;
  t.sampling.min_p = 0.1f;
  t.sampling.repeat_penalty = 1.2f;
  t.sampling.repeat_last_n = -1;
  t.sampling.presence_penalty = 0.5f;
  t.sampling.frequency_penalty = -0.5f;
  t.sampling.typical_p = 0.7f;
  t.sampling.top_n_sigma = 1.5f;
  t.sampling.dynatemp_range = 0.4f;
  t.sampling.dynatemp_exponent = 1.3f;
  t.sampling.dry_multiplier = 0.8f;
  t.sampling.dry_base = 2.5f;
  t.sampling.dry_allowed_length = 4;
  t.sampling.dry_penalty_last_n = 256;
  t.sampling.dry_sequence_breakers = {"\n", "é", "END"};
  t.sampling.xtc_probability = 0.6f;
  t.sampling.xtc_threshold = 0.2f;
  t.sampling.mirostat = 2;
  t.sampling.mirostat_tau = 3.5f;
  t.sampling.mirostat_eta = 0.25f;
  t.sampling.seed = 7;
  t.sampling.logit_bias = {{3, -1.5f}, {9, -std::numeric_limits<float>::infinity()}};
  t.sampling.logit_bias_text = {{"Hello", -2.0f}, {" wörld", 1.0f}};
  t.sampling.logprobs = true;
  t.sampling.top_logprobs = 3;
  t.sampling.grammar =
      engine::GrammarSpec{"root ::= \"yes\" | \"no\"", true, {"^.*<tool>", "x+"}, {11, 12}};
  t.stop.max_tokens = 99;
  t.stop.stop = {"\n\n", "END"};
  t.stop.ignore_eos = true;
  t.stop.min_tokens = 2;
  t.sampling.samplers = {engine::SamplerStage::top_k, engine::SamplerStage::top_p,
                         engine::SamplerStage::infill};
  t.stop.n_indent = 4;
  t.stop.max_predict_ms = 1500;
  t.request_id = "req-1";
  t.prediction = "def f(x):\n    return x";
  t.lora = engine::LoraRequest{{0, 0.5f}, {2, -1.0f}};
  t.n_cache_reuse = 256;
  t.reasoning_budget = 64;
  t.reasoning_budget_message = "Time to answer.";
  t.infill = engine::InfillParams{
      "def f(x):\n", "\n    return y\n", {{"a.py", "x = 1\n"}, {"", "b"}}, true};
  return t;
}

TEST(ClusterProtocol, GenerateRequestRoundTrips) {
  GenerateRequest g{42, remote::ActorAddress{5, "10.0.0.1:7946", 77}, sample_task()};
  auto back = round_trip(g);
  EXPECT_EQ(back.request_id, 42u);
  EXPECT_EQ(back.reply_to, g.reply_to);
  EXPECT_EQ(back.task.model, "tiny");
  EXPECT_EQ(std::get<std::vector<engine::ChatMessage>>(back.task.prompt),
            std::get<std::vector<engine::ChatMessage>>(g.task.prompt));
  const auto& s = back.task.sampling;
  const auto& want = g.task.sampling;
  EXPECT_EQ(s.temperature, 0.25f);
  EXPECT_EQ(s.top_k, 40);
  EXPECT_EQ(s.top_p, 0.9f);
  EXPECT_EQ(s.min_p, 0.1f);
  EXPECT_EQ(s.repeat_penalty, 1.2f);
  EXPECT_EQ(s.repeat_last_n, -1);
  EXPECT_EQ(s.presence_penalty, 0.5f);
  EXPECT_EQ(s.frequency_penalty, -0.5f);
  EXPECT_EQ(s.typical_p, want.typical_p);
  EXPECT_EQ(s.top_n_sigma, want.top_n_sigma);
  EXPECT_EQ(s.dynatemp_range, want.dynatemp_range);
  EXPECT_EQ(s.dynatemp_exponent, want.dynatemp_exponent);
  EXPECT_EQ(s.dry_multiplier, want.dry_multiplier);
  EXPECT_EQ(s.dry_base, want.dry_base);
  EXPECT_EQ(s.dry_allowed_length, 4);
  EXPECT_EQ(s.dry_penalty_last_n, 256);
  EXPECT_EQ(s.dry_sequence_breakers, want.dry_sequence_breakers);
  EXPECT_EQ(s.xtc_probability, want.xtc_probability);
  EXPECT_EQ(s.xtc_threshold, want.xtc_threshold);
  EXPECT_EQ(s.mirostat, 2);
  EXPECT_EQ(s.mirostat_tau, want.mirostat_tau);
  EXPECT_EQ(s.mirostat_eta, want.mirostat_eta);
  EXPECT_EQ(back.task.sampling.seed, std::optional<std::uint32_t>(7));
  EXPECT_EQ(back.task.sampling.logit_bias, g.task.sampling.logit_bias);
  EXPECT_EQ(s.logit_bias_text, want.logit_bias_text);
  EXPECT_TRUE(back.task.sampling.logprobs);
  EXPECT_EQ(back.task.sampling.top_logprobs, 3);
  EXPECT_EQ(back.task.sampling.grammar, g.task.sampling.grammar);
  EXPECT_EQ(back.task.sampling.samplers, g.task.sampling.samplers);
  EXPECT_EQ(back.task.stop.max_tokens, 99);
  EXPECT_EQ(back.task.stop.stop, g.task.stop.stop);
  EXPECT_TRUE(back.task.stop.ignore_eos);
  EXPECT_EQ(back.task.stop.min_tokens, 2);
  EXPECT_EQ(back.task.stop.n_indent, 4);
  EXPECT_EQ(back.task.stop.max_predict_ms, 1500);
  EXPECT_EQ(back.task.request_id, "req-1");
  EXPECT_EQ(back.task.prediction, g.task.prediction);
  EXPECT_EQ(back.task.infill, g.task.infill);
  EXPECT_EQ(back.task.lora, g.task.lora);
  EXPECT_EQ(back.task.n_cache_reuse, 256);
  EXPECT_EQ(back.task.reasoning_budget, 64);
  EXPECT_EQ(back.task.reasoning_budget_message, "Time to answer.");
  g.task.infill.reset();
  g.task.lora.reset();
  g.task.n_cache_reuse.reset();
  g.task.reasoning_budget_message.reset();
  EXPECT_FALSE(round_trip(g).task.infill.has_value());
  EXPECT_FALSE(round_trip(g).task.reasoning_budget_message.has_value());
  EXPECT_FALSE(round_trip(g).task.n_cache_reuse.has_value());
  EXPECT_FALSE(round_trip(g).task.lora.has_value());
  g.task.lora = engine::LoraRequest{};  // an empty list (every adapter at 0) is not "unset"
  ASSERT_TRUE(round_trip(g).task.lora.has_value());
  EXPECT_TRUE(round_trip(g).task.lora->empty());
}

TEST(ClusterProtocol, UnsetSamplingFieldsStayUnsetForTheWorkersDefaults) {
  engine::Task t = sample_task();
  t.sampling.temperature.reset();
  t.sampling.top_k.reset();
  t.sampling.top_p.reset();
  t.sampling.min_p.reset();
  t.sampling.repeat_penalty.reset();
  t.stop.max_tokens.reset();
  const auto back = round_trip(GenerateRequest{1, {}, t}).task;
  EXPECT_FALSE(back.sampling.temperature || back.sampling.top_k || back.sampling.top_p ||
               back.sampling.min_p || back.sampling.repeat_penalty);
  EXPECT_FALSE(back.stop.max_tokens.has_value());
  EXPECT_EQ(back.sampling.typical_p, 0.7f) << "the fields after them still line up";
  EXPECT_EQ(back.sampling.grammar, t.sampling.grammar);
  EXPECT_EQ(back.stop.stop, t.stop.stop);
  // 0 is a value, not "unset".
  t.sampling.temperature = 0.0f;
  t.sampling.top_k = 0;
  EXPECT_EQ(round_trip(GenerateRequest{1, {}, t}).task.sampling.temperature, 0.0f);
  EXPECT_EQ(round_trip(GenerateRequest{1, {}, t}).task.sampling.top_k, 0);
}

TEST(ClusterProtocol, TheVersionIsInEveryTypeId) {
  EXPECT_EQ(remote::Codec<GenerateRequest>::type_id & 0xffu, kProtocolVersion);
}

TEST(ClusterProtocol, PromptKindsRoundTrip) {
  engine::Task t;
  t.prompt = std::string("plain text");
  EXPECT_EQ(std::get<std::string>(round_trip(GenerateRequest{1, {}, t}).task.prompt), "plain text");
  t.prompt = std::vector<engine::Token>{1, 2, -3};
  EXPECT_EQ(std::get<std::vector<engine::Token>>(round_trip(GenerateRequest{1, {}, t}).task.prompt),
            (std::vector<engine::Token>{1, 2, -3}));
  t.sampling.seed.reset();
  EXPECT_FALSE(round_trip(GenerateRequest{1, {}, t}).task.sampling.seed.has_value());
  EXPECT_FALSE(round_trip(GenerateRequest{1, {}, t}).task.sampling.grammar.has_value());
  t.sampling.grammar = engine::GrammarSpec{"root ::= [a-z]+", false, {}, {}};
  EXPECT_EQ(round_trip(GenerateRequest{1, {}, t}).task.sampling.grammar, t.sampling.grammar);
}

TEST(ClusterProtocol, EveryEventRoundTrips) {
  auto started = round_trip(StreamUpdate{1, engine::Started{12, 4}});
  EXPECT_EQ(std::get<engine::Started>(started.event).prompt_tokens, 12);
  EXPECT_EQ(std::get<engine::Started>(started.event).cached_tokens, 4);
  EXPECT_FALSE(std::get<engine::Started>(started.event).truncated);
  auto cut = round_trip(StreamUpdate{1, engine::Started{12, 4, true}});
  EXPECT_TRUE(std::get<engine::Started>(cut.event).truncated);

  engine::Delta d;
  d.text = "wörld";
  d.tokens = {5, 6};
  d.logprobs = {{5, "w", -0.5f}, {6, "örld", -1.0f}};
  d.top = {{{5, "w", -0.5f}, {8, "x", -2.0f}}, {}};
  auto delta = std::get<engine::Delta>(round_trip(StreamUpdate{2, d}).event);
  EXPECT_EQ(delta.text, d.text);
  EXPECT_EQ(delta.tokens, d.tokens);
  ASSERT_EQ(delta.logprobs.size(), 2u);
  EXPECT_EQ(delta.logprobs[1].text, "örld");
  ASSERT_EQ(delta.top.size(), 2u);
  EXPECT_EQ(delta.top[0][1].token, 8);

  engine::Finished f{engine::FinishReason::length, {10, 20, 3, 7, 12, 4}, "END"};
  auto fin = std::get<engine::Finished>(round_trip(StreamUpdate{3, f}).event);
  EXPECT_EQ(fin.reason, engine::FinishReason::length);
  EXPECT_EQ(fin.usage.completion_tokens, 20);
  EXPECT_EQ(fin.usage.reasoning_tokens, 7);
  EXPECT_EQ(fin.usage.accepted_prediction_tokens, 12);
  EXPECT_EQ(fin.usage.rejected_prediction_tokens, 4);
  EXPECT_EQ(fin.stop_string, "END");

  auto failed = round_trip(StreamUpdate{4, engine::Failed{Error{Errc::overloaded, "full", "x"}}});
  EXPECT_EQ(std::get<engine::Failed>(failed.event).error, (Error{Errc::overloaded, "full", "x"}));
}

TEST(ClusterProtocol, MalformedInputIsRefused) {
  auto bytes = encode_message(GenerateRequest{9, {}, sample_task()});
  for (std::size_t cut = 0; cut < bytes.size(); cut += 7) {
    auto r = decode_message<GenerateRequest>(std::span(bytes).first(cut));
    EXPECT_FALSE(r.ok()) << "cut at " << cut;
  }
  bytes.push_back(std::byte{0});
  EXPECT_FALSE(decode_message<GenerateRequest>(bytes).ok());  // trailing bytes
  // A huge element count must not allocate: it is refused against the bytes left.
  std::vector<std::byte> hostile(4 + 8);
  remote::WireWriter w(hostile);
  w.u32(0xffffffffu);
  EXPECT_FALSE(decode_message<TokenizeReply>(hostile).ok());
}

TEST(ClusterProtocol, TypeIdsAreDistinctAndVersioned) {
  const std::uint32_t ids[] = {
      remote::Codec<GenerateRequest>::type_id, remote::Codec<CancelRequest>::type_id,
      remote::Codec<StreamUpdate>::type_id,    remote::Codec<TokenizeRequest>::type_id,
      remote::Codec<TokenizeReply>::type_id,   remote::Codec<DetokenizeRequest>::type_id,
      remote::Codec<DetokenizeReply>::type_id};
  for (std::size_t i = 0; i < std::size(ids); ++i) {
    EXPECT_EQ(ids[i] & 0xffu, kProtocolVersion);
    for (std::size_t j = i + 1; j < std::size(ids); ++j)
      EXPECT_NE(ids[i], ids[j]);
  }
}

}  // namespace
}  // namespace troupe::cluster

namespace troupe::cluster {
namespace {

TEST(ClusterProtocol, EmbeddingMessagesRoundTrip) {
  EmbeddingRequest r{7, {1, "127.0.0.1:9", 3}, {}};
  r.task.model = "bert";
  r.task.prompt = std::vector<engine::Token>{101, 7592, 102};
  r.task.embedding = engine::EmbeddingParams{};
  r.task.embedding->norm = -1;
  r.task.embedding->truncate = true;
  r.task.embedding->rerank = std::pair{std::string("q"), std::string("d")};
  const auto back = round_trip(r);
  EXPECT_EQ(back.request_id, 7u);
  EXPECT_EQ(back.reply_to.address, "127.0.0.1:9");
  EXPECT_EQ(back.task.prompt, r.task.prompt);
  ASSERT_TRUE(back.task.embedding);
  EXPECT_EQ(*back.task.embedding, *r.task.embedding);
  r.task.embedding = engine::EmbeddingParams{};
  EXPECT_EQ(*round_trip(r).task.embedding, engine::EmbeddingParams{});
  r.task.embedding->norm = 3;
  r.task.embedding->per_token = true;  // llama-server's /embedding
  EXPECT_EQ(*round_trip(r).task.embedding, *r.task.embedding);
  r.task.embedding.reset();  // an embedding request must carry its parameters
  EXPECT_FALSE(decode_message<EmbeddingRequest>(encode_message(r)).ok());

  EmbeddingResult e{9, {}};
  e.finished.usage.prompt_tokens = 12;
  e.finished.embedding = {0.5f, -1.25f, 3.0e-8f};
  const auto eb = round_trip(e);
  EXPECT_EQ(eb.request_id, 9u);
  EXPECT_EQ(eb.finished.usage.prompt_tokens, 12);
  EXPECT_EQ(eb.finished.embedding, e.finished.embedding);
  EXPECT_EQ(eb.finished.embedding_rows, 1);
  e.finished.embedding = {1.0f, 2.0f, 3.0f, 4.0f};  // pooling none: two tokens' vectors
  e.finished.embedding_rows = 2;
  EXPECT_EQ(round_trip(e).finished.embedding_rows, 2);
  e.finished.embedding_rows = 3;  // rows that do not divide the floats: malformed
  EXPECT_FALSE(decode_message<EmbeddingResult>(encode_message(e)).ok());
  e.finished.embedding_rows = 2;
  auto bytes = encode_message(e);
  bytes.resize(bytes.size() - 2);
  EXPECT_FALSE(decode_message<EmbeddingResult>(bytes).ok());
}

}  // namespace
}  // namespace troupe::cluster

namespace troupe::cluster {
namespace {

TEST(ClusterProtocol, PropsMessagesRoundTrip) {
  EXPECT_EQ(round_trip(PropsRequest{"tiny"}).model, "tiny");
  PropsReply r;
  r.props.id = "tiny";
  r.props.n_ctx = 2048;
  r.props.total_slots = 4;
  r.props.model_path = "/models/tiny.gguf";
  r.props.chat_template = "{% for m in messages %}{{ m.content }}{% endfor %}";
  r.props.bos_token = "<s>";
  r.props.eos_token = "</s>";
  r.props.defaults.temperature = 0.7f;
  r.props.defaults.top_k = 20;
  r.props.defaults.top_p = 0.8f;
  r.props.defaults.min_p = 0.0f;
  r.props.defaults.repeat_penalty = 1.1f;
  r.props.defaults.seed = 4000000000u;
  r.props.defaults.n_predict = 256;
  r.props.embeddings = true;
  const auto back = round_trip(r).props;
  EXPECT_EQ(back.id, "tiny");
  EXPECT_EQ(back.n_ctx, 2048);
  EXPECT_EQ(back.total_slots, 4);
  EXPECT_EQ(back.model_path, r.props.model_path);
  EXPECT_EQ(back.chat_template, r.props.chat_template);
  EXPECT_EQ(back.bos_token, "<s>");
  EXPECT_EQ(back.eos_token, "</s>");
  EXPECT_EQ(back.defaults.temperature, 0.7f);
  EXPECT_EQ(back.defaults.top_k, 20);
  EXPECT_EQ(back.defaults.top_p, 0.8f);
  EXPECT_EQ(back.defaults.repeat_penalty, 1.1f);
  EXPECT_EQ(back.defaults.seed, 4000000000u);
  EXPECT_EQ(back.defaults.n_predict, 256);
  EXPECT_TRUE(back.embeddings);
  r.props.defaults.seed.reset();
  r.props.defaults.n_predict.reset();
  const auto unset = round_trip(r).props;
  EXPECT_FALSE(unset.defaults.seed);
  EXPECT_FALSE(unset.defaults.n_predict);
  EXPECT_NE(remote::Codec<PropsRequest>::type_id, remote::Codec<PropsReply>::type_id);
  EXPECT_EQ(remote::Codec<PropsReply>::type_id & 0xffu, kProtocolVersion);
  auto bytes = encode_message(r);
  bytes.resize(bytes.size() - 1);
  EXPECT_FALSE(decode_message<PropsReply>(bytes).ok());
}

}  // namespace
}  // namespace troupe::cluster
