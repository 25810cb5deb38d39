#pragma once
// The plain types of a chat conversation as troupe passes it around: what a request asks the
// chat template to render (messages, tools, options) and what a model's output parses into.
// No llama.cpp types: these travel in an engine::Task, over the cluster wire, and through api/.

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace troupe::chatfmt {

struct ToolCall {
  std::string id;
  std::string name;
  std::string arguments;  // JSON text of the arguments object
  friend bool operator==(const ToolCall&, const ToolCall&) = default;
};

struct Message {
  std::string role;  // "system" | "user" | "assistant" | "tool"
  std::string content;
  std::string reasoning_content;     // an assistant's reasoning (thinking families)
  std::vector<ToolCall> tool_calls;  // an assistant's calls
  std::string tool_call_id;          // role "tool": the call this message answers
  std::string name;                  // role "tool": the function's name (optional)
  friend bool operator==(const Message&, const Message&) = default;
};

// A function the model may call. `parameters` is the JSON text of its JSON-schema parameters
// (empty: takes no arguments).
struct Tool {
  std::string name;
  std::string description;
  std::string parameters;
  friend bool operator==(const Tool&, const Tool&) = default;
};

enum class ToolChoice : std::uint8_t {
  automatic,  // "auto": the model decides
  none,       // "none": the tools are shown but no call is parsed or forced
  required,   // "required": a call is forced by a grammar
  function,   // {"type":"function","function":{"name":...}}: that function is forced
};

enum class ReasoningFormat : std::uint8_t {
  none,             // reasoning stays in `content`
  automatic,        // "auto": split into `reasoning_content` (the default)
  deepseek,         // "deepseek": the same, also when streaming
  deepseek_legacy,  // "deepseek-legacy": split when not streaming, inline <think> when streaming
};

// How a conversation is rendered besides its messages.
struct ChatOptions {
  std::vector<Tool> tools;
  ToolChoice tool_choice = ToolChoice::automatic;
  std::string tool_choice_function;  // with ToolChoice::function
  // Unset: what the template supports.
  std::optional<bool> parallel_tool_calls;
  // Extra template variables, name -> JSON text of the value (e.g. {"enable_thinking","false"}).
  std::vector<std::pair<std::string, std::string>> template_kwargs;
  ReasoningFormat reasoning_format = ReasoningFormat::automatic;
  // Unset: none given. "none" turns thinking off; others pass to the template as a kwarg.
  std::optional<std::string> reasoning_effort;
  // A conversation ending with an assistant message continues that message (prefill) and gets
  // no generation prompt; otherwise the template's assistant prefix is appended when true.
  bool add_generation_prompt = true;
  bool stream = false;  // deepseek_legacy keeps <think> inline when streaming
  // JSON text of a JSON schema the answer must follow (response_format); empty: free text.
  // The template builds the grammar, so that a thinking family still thinks first.
  std::string json_schema;
  friend bool operator==(const ChatOptions&, const ChatOptions&) = default;
};

// A change of the parsed assistant message since the previous parse. Tool-call deltas follow
// OpenAI's streaming shape: the first one of a call carries its id and name (arguments may
// follow in the same delta), later ones only argument fragments.
struct ToolCallDelta {
  std::size_t index = 0;
  std::string id;
  std::string name;
  std::string arguments;
  friend bool operator==(const ToolCallDelta&, const ToolCallDelta&) = default;
};

struct MessageDelta {
  std::string content;
  std::string reasoning;
  std::vector<ToolCallDelta> tool_calls;
  bool empty() const noexcept { return content.empty() && reasoning.empty() && tool_calls.empty(); }
  friend bool operator==(const MessageDelta&, const MessageDelta&) = default;
};

}  // namespace troupe::chatfmt
