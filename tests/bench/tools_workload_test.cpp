// The tools workload of `troupe bench`: --tools / --tool-choice parsing, the built-in
// functions (schemas troupe serve accepts, rendered by a real template), requests carrying
// each point's tool set, answers that are tool calls, and what results.json records.

#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include "bench/options.hpp"
#include "bench/results.hpp"
#include "bench/runner.hpp"
#include "bench/tool_sets.hpp"
#include "chatfmt/chat_format.hpp"
#include "client/tools.hpp"
#include "server_thread.hpp"

namespace troupe::bench {
namespace {

namespace asio = boost::asio;
namespace json = boost::json;

std::filesystem::path temp_file(const std::string& name, const std::string& text) {
  auto path = std::filesystem::path(TROUPE_BINARY_DIR) / name;
  std::ofstream(path) << text;
  return path;
}

std::string config_error(BenchFlags f) {
  auto c = make_config(f);
  EXPECT_FALSE(c.ok());
  return c.ok() ? std::string() : c.error().message;
}

TEST(ToolsOptions, CountsAndFilesMakeOneSetEach) {
  auto file = temp_file(
      "bench_tools_test.json",
      R"([{"type":"function","function":{"name":"lookup","parameters":{"type":"object"}}}])");
  BenchFlags f;
  f.tools = "0,5," + file.string();
  f.tool_choice = "required";
  auto c = make_config(f);
  std::filesystem::remove(file);
  ASSERT_TRUE(c.ok()) << c.error().message;
  ASSERT_EQ(c->tool_sets.size(), 3u);
  EXPECT_EQ(c->tool_sets[0].name, "0");
  EXPECT_TRUE(c->tool_sets[0].tools.empty());
  EXPECT_EQ(c->tool_sets[1].name, "5");
  EXPECT_EQ(c->tool_sets[1].tools.size(), 5u);
  EXPECT_EQ(c->tool_sets[2].name, "bench_tools_test.json");
  EXPECT_EQ(client::tool_names(c->tool_sets[2].tools), std::vector<std::string>{"lookup"});
  EXPECT_EQ(c->tool_choice, "required");
  EXPECT_TRUE(make_config(BenchFlags{}).value().tool_sets.empty());  // no --tools: no sweep
}

TEST(ToolsOptions, InvalidValuesAreClearErrors) {
  BenchFlags f;
  f.tools = "9";
  EXPECT_EQ(config_error(f), "--tools: 9 built-in tools: there are 8");
  f.tools = "0,,5";
  EXPECT_NE(config_error(f).find("comma-separated list"), std::string::npos);
  f.tools = "/nonexistent-dir/tools.json";
  EXPECT_NE(config_error(f).find("/nonexistent-dir/tools.json"), std::string::npos);
  auto bad = temp_file("bench_tools_bad.json", R"([{"type":"function","function":{}}])");
  f.tools = bad.string();
  auto message = config_error(f);
  std::filesystem::remove(bad);
  EXPECT_NE(message.find("tools[0]: needs \"function.name\""), std::string::npos) << message;
  f = {};
  f.tools = "2";
  f.endpoint = "completions";
  EXPECT_EQ(config_error(f), "--tools: tools need --endpoint chat, messages or responses");
  f = {};
  f.tool_choice = "auto";
  EXPECT_EQ(config_error(f), "--tool-choice: needs --tools");
  f.tools = "1";
  f.tool_choice = "sometimes";
  EXPECT_EQ(config_error(f), "--tool-choice: expected auto, required or none, not 'sometimes'");
}

// Each built-in function has typed, required parameters that troupe serve accepts (the check
// its /v1/chat/completions applies), and a real template renders all of them.
TEST(BuiltinTools, AreTypedSchemasTheServerAcceptsAndATemplateRenders) {
  auto tools = builtin_tools(kBuiltinTools);
  ASSERT_EQ(tools.size(), kBuiltinTools);
  EXPECT_EQ(builtin_tools(3).size(), 3u);
  EXPECT_TRUE(client::parse_tools(json::serialize(tools)).ok());
  std::set<std::string> types;
  std::vector<chatfmt::Tool> for_template;
  for (const auto& t : tools) {
    const auto& fn = t.at("function").as_object();
    const std::string name(fn.at("name").as_string());
    const auto& params = fn.at("parameters").as_object();
    EXPECT_FALSE(params.at("required").as_array().empty()) << name;
    for (const auto& [key, schema] : params.at("properties").as_object())
      types.insert(std::string(schema.at("type").as_string()));
    const std::string schema = json::serialize(params);
    // Accepted as forced tools too (`--tool-choice required`): only keywords a grammar
    // enforces.
    EXPECT_EQ(chatfmt::check_tool_schema(schema, /*forced=*/true), std::nullopt) << name;
    for_template.push_back({name, std::string(fn.at("description").as_string()), schema});
  }
  EXPECT_EQ(types, (std::set<std::string>{"string", "integer", "number", "boolean", "array"}));

  std::ifstream in(std::filesystem::path(TROUPE_LLAMA_TESTDATA) / "templates" /
                   "Qwen-Qwen2.5-7B-Instruct.jinja");
  std::stringstream source;
  source << in.rdbuf();
  auto tmpl = chatfmt::ChatTemplate::create(source.str(), "", "<|im_end|>");
  ASSERT_TRUE(tmpl.ok()) << tmpl.error().message;
  chatfmt::ChatOptions options;
  options.tools = for_template;
  auto rendered = tmpl.value()->render({{"user", "Book a table for two tonight."}}, options);
  ASSERT_TRUE(rendered.ok()) << rendered.error().message;
  for (const auto& t : for_template)
    EXPECT_NE(rendered->prompt.find(t.name), std::string::npos) << t.name;
}

BenchConfig config(const std::string& url, BenchFlags f) {
  f.url = url;
  f.progress = "off";
  auto c = make_config(f);
  EXPECT_TRUE(c.ok()) << c.error().message;
  return c.value();
}

std::vector<json::object> chat_bodies(testing::ServerThread& server) {
  std::vector<json::object> out;
  for (const auto& r : server.requests()) {
    if (r.target == "/v1/chat/completions")
      out.push_back(json::parse(r.body).as_object());
  }
  return out;
}

TEST(ToolsWorkload, EveryRequestOfAPointCarriesItsToolSet) {
  testing::ServerThread server(test::openai_handler());
  BenchFlags f;
  f.scenarios = {"D(8,3)"};
  f.concurrency = "2";
  f.max_requests = 4;
  f.tools = "0,3";
  f.tool_choice = "required";
  auto run = run_benchmark(config(server.url(), f), nullptr);
  ASSERT_TRUE(run.ok()) << run.error().message;
  ASSERT_EQ(run->points.size(), 2u);
  EXPECT_EQ(run->points[0].spec.label(), "c=2 D(8,3) tools=0");
  EXPECT_EQ(run->points[1].spec.label(), "c=2 D(8,3) tools=3");
  for (const auto& p : run->points) {
    EXPECT_EQ(p.stats.completed, 4u);
    EXPECT_EQ(p.tool_call_answers, 0);
  }
  auto bodies = chat_bodies(server);
  ASSERT_EQ(bodies.size(), 8u);  // points run one after the other
  for (std::size_t i = 0; i < 4; ++i) {
    EXPECT_FALSE(bodies[i].contains("tools")) << i;
    EXPECT_FALSE(bodies[i].contains("tool_choice")) << i;
  }
  for (std::size_t i = 4; i < 8; ++i) {
    ASSERT_TRUE(bodies[i].contains("tools")) << i;
    EXPECT_EQ(bodies[i].at("tools").as_array(), builtin_tools(3));
    EXPECT_EQ(bodies[i].at("tool_choice").as_string(), "required");
  }

  auto results = results_json(run.value()).as_object();
  const auto& cfg = results.at("config").as_object();
  EXPECT_EQ(cfg.at("tool_choice").as_string(), "required");
  const auto& sets = cfg.at("tool_sets").as_array();
  ASSERT_EQ(sets.size(), 2u);
  EXPECT_EQ(sets[1].at("name").as_string(), "3");
  EXPECT_EQ(sets[1].at("functions").as_array(),
            (json::array{"get_current_weather", "search_web", "get_stock_quote"}));
  const auto& points = results.at("points").as_array();
  EXPECT_EQ(points[0].at("tools").as_string(), "0");
  EXPECT_EQ(points[1].at("tools").as_string(), "3");
  EXPECT_EQ(points[1].at("tool_count").to_number<int>(), 3);
}

TEST(ExtraBody, ItsMembersGoIntoEveryRequestOverTheBenchsOwn) {
  auto file = temp_file("bench_extra_body_test.json",
                        R"({"response_format":{"type":"json_object"},"ignore_eos":false})");
  testing::ServerThread server(test::openai_handler());
  BenchFlags f;
  f.scenarios = {"D(8,3)"};
  f.concurrency = "1";
  f.max_requests = 2;
  f.extra_body = file.string();
  auto run = run_benchmark(config(server.url(), f), nullptr);
  std::filesystem::remove(file);
  ASSERT_TRUE(run.ok()) << run.error().message;
  auto bodies = chat_bodies(server);
  ASSERT_EQ(bodies.size(), 2u);
  for (const auto& b : bodies) {
    EXPECT_EQ(b.at("response_format").at("type").as_string(), "json_object");
    EXPECT_FALSE(b.at("ignore_eos").as_bool());  // the file wins over the bench's default
    EXPECT_EQ(b.at("min_tokens").to_number<int>(), 3);
  }
  BenchFlags bad;
  bad.extra_body = "/nonexistent/extra.json";
  EXPECT_NE(config_error(bad).find("--extra-body"), std::string::npos);
  auto list = temp_file("bench_extra_body_list.json", "[1,2]");
  bad.extra_body = list.string();
  EXPECT_NE(config_error(bad).find("one JSON object"), std::string::npos);
  std::filesystem::remove(list);
}

// A server whose answers are tool calls: a call's first piece, then one argument fragment per
// further token, finish_reason tool_calls, usage.
asio::awaitable<bool> tool_call_answer(const test::FakeRequest& req, asio::ip::tcp::socket& s) {
  auto body = json::parse(req.body).as_object();
  const int n = static_cast<int>(body.at("max_tokens").to_number<double>());
  co_await test::write_all(s, test::sse_head_chunked());
  auto piece = [](const std::string& delta) {
    return test::http_chunk(
        R"(data: {"object":"chat.completion.chunk","choices":[{"index":0,"delta":)" + delta +
        R"(,"finish_reason":null}]})"
        "\n\n");
  };
  co_await test::write_all(
      s,
      piece(
          R"({"tool_calls":[{"index":0,"id":"c1","type":"function","function":{"name":"get_current_weather","arguments":"{"}}]})"));
  for (int i = 1; i < n; ++i)
    co_await test::write_all(s,
                             piece(R"({"tool_calls":[{"index":0,"function":{"arguments":"x"}}]})"));
  co_await test::write_all(s, test::http_chunk(test::chat_chunk("", "tool_calls") +
                                               test::usage_chunk(5, n) + "data: [DONE]\n\n") +
                                  test::http_chunk(""));
  co_return true;
}

TEST(ToolsWorkload, AnswersThatAreToolCallsAreCountedAsTokensAndAsToolCalls) {
  auto fallback = test::openai_handler();
  testing::ServerThread server(
      [fallback](const test::FakeRequest& req, asio::ip::tcp::socket& s) -> asio::awaitable<bool> {
        if (req.target == "/v1/chat/completions")
          co_return co_await tool_call_answer(req, s);
        co_return co_await fallback(req, s);
      });
  BenchFlags f;
  f.scenarios = {"D(8,4)"};
  f.max_requests = 3;
  f.tools = "5";
  auto run = run_benchmark(config(server.url(), f), nullptr);
  ASSERT_TRUE(run.ok()) << run.error().message;
  const auto& p = run->points.at(0);
  EXPECT_EQ(p.stats.completed, 3u);
  EXPECT_EQ(p.tool_call_answers, 3);
  EXPECT_EQ(p.output_len_mismatch, 0);
  for (const auto& r : p.records) {
    EXPECT_TRUE(r.tool_call);
    EXPECT_EQ(r.deltas, 4);  // tool-call pieces are deltas: TTFT and ITL count them
    EXPECT_EQ(r.output_tokens, 4);
  }
  EXPECT_EQ(results_json(run.value()).at("points").at(0).at("tool_call_answers").to_number<int>(),
            3);
  const auto csv = requests_csv(p);
  EXPECT_NE(csv.find(",usage,tool_call,error,"), std::string::npos);
}

}  // namespace
}  // namespace troupe::bench
