#pragma once
// Helpers shared by the chatfmt tests: the release's test templates and tools, and a driver
// that feeds a model's raw output to an OutputParser the way a sequence does.

#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "chatfmt/chat_format.hpp"

namespace troupe::chatfmt::testing {

inline std::filesystem::path templates_dir() {
  return std::filesystem::path(TROUPE_LLAMA_TESTDATA) / "templates";
}

inline std::string read_template(const std::string& name) {
  std::ifstream in(templates_dir() / name, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

inline std::unique_ptr<ChatTemplate> load(const std::string& name, std::string bos = "",
                                          std::string eos = "") {
  auto t = ChatTemplate::create(read_template(name), std::move(bos), std::move(eos));
  if (!t) {
    ADD_FAILURE() << name << ": " << t.error().message;
    return nullptr;
  }
  return std::move(t.value());
}

// The release's test tools (tests/test-chat.cpp: special_function_tool, ...).
inline Tool special_function() {
  return {
      "special_function", "I'm special",
      R"({"type": "object", "properties": {"arg1": {"type": "integer", "description": "The arg."}}, "required": ["arg1"]})"};
}
inline Tool special_function_with_opt() {
  return {
      "special_function_with_opt", "I'm special but have optional stuff",
      R"({"type": "object", "properties": {"arg1": {"type": "integer", "description": "The arg."}, "arg2": {"type": "integer", "description": "The optional arg."}}, "required": ["arg1"]})"};
}
inline Tool get_time() {
  return {
      "get_time", "Get the current time in a city",
      R"({"type": "object", "properties": {"city": {"type": "string", "description": "City name"}}, "required": ["city"]})"};
}

// JSON text in one canonical form, for comparing arguments.
inline std::string canonical(const std::string& json) {
  boost::system::error_code ec;
  auto v = boost::json::parse(json, ec);
  return ec ? "<not JSON: " + json + ">" : boost::json::serialize(v);
}

// What a client rebuilds from the deltas.
struct Accumulated {
  Message message;
  int deltas_with_name = 0;  // tool-call deltas that carried a name
};

inline void apply(const MessageDelta& d, Accumulated& acc) {
  acc.message.content += d.content;
  acc.message.reasoning_content += d.reasoning;
  for (const auto& c : d.tool_calls) {
    if (acc.message.tool_calls.size() <= c.index)
      acc.message.tool_calls.resize(c.index + 1);
    auto& call = acc.message.tool_calls[c.index];
    if (!c.name.empty()) {
      EXPECT_TRUE(call.name.empty()) << "a tool call's name was sent twice";
      EXPECT_FALSE(c.id.empty()) << "the first delta of a call carries its id";
      call.name = c.name;
      call.id = c.id;
      ++acc.deltas_with_name;
    } else {
      EXPECT_FALSE(call.name.empty()) << "arguments arrived before the call's name";
    }
    call.arguments += c.arguments;
  }
}

// Bytes in the UTF-8 character that starts with `lead`.
inline std::size_t utf8_length(unsigned char lead) {
  return lead < 0x80 ? 1 : lead >= 0xF0 ? 4 : lead >= 0xE0 ? 3 : lead >= 0xC0 ? 2 : 1;
}

// Feeds `output` one character at a time (a sequence feeds one token's complete characters at
// a time; single characters are the harder case) and returns what the deltas add up to; checks that
// it equals the parser's own final message.
inline Accumulated feed_bytewise(const Rendered& r, const std::string& output) {
  Accumulated acc;
  auto parser = OutputParser::create(r.parser);
  EXPECT_TRUE(parser) << (parser ? "" : parser.error().message);
  if (!parser)
    return acc;
  acc.message = (*parser)->message();  // a continued message starts with what it holds
  for (std::size_t i = 0; i < output.size();) {
    const std::size_t n = utf8_length(static_cast<unsigned char>(output[i]));
    apply((*parser)->feed(std::string_view(output).substr(i, n), false), acc);
    i += n;
  }
  apply((*parser)->feed("", true), acc);
  const Message& final = (*parser)->message();
  EXPECT_EQ(acc.message.content, final.content);
  EXPECT_EQ(acc.message.reasoning_content, final.reasoning_content);
  EXPECT_EQ(acc.message.tool_calls.size(), final.tool_calls.size());
  return acc;
}

}  // namespace troupe::chatfmt::testing
