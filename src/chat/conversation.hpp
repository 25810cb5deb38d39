#pragma once
// Conversation: what the chat sends with every request (model, system prompt, sampling
// options, tools, the turns so far), as a client::ChatRequest, and as the JSON file `/save`
// writes. It keeps an assistant's tool calls and the results given for them, so the next
// request renders the exchange the way the model produced it.
//
// Thread-safety: a plain value; not synchronised. The chat owns one on its event-loop thread.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "client/types.hpp"
#include "util/result.hpp"

namespace troupe::chat {

// Sampling options; unset ones are left to the server's defaults.
using Sampling = client::Sampling;

struct Turn {
  std::string role;  // "user", "assistant" or "tool"
  std::string content;
  std::vector<client::ToolCall> tool_calls;  // assistant: the calls it made
  std::string tool_call_id;                  // tool: the call this result answers
  friend bool operator==(const Turn&, const Turn&) = default;
};

class Conversation {
 public:
  Conversation() = default;
  Conversation(std::string model, std::string system, Sampling sampling)
      : model_(std::move(model)), system_(std::move(system)), sampling_(std::move(sampling)) {}

  const std::string& model() const noexcept { return model_; }
  const std::string& system() const noexcept { return system_; }
  const Sampling& sampling() const noexcept { return sampling_; }
  const std::vector<Turn>& turns() const noexcept { return turns_; }
  const boost::json::array& tools() const noexcept { return tools_; }

  void set_model(std::string model) { model_ = std::move(model); }
  void set_system(std::string system) { system_ = std::move(system); }
  // The OpenAI tools array sent with every request (empty: none). Not checked here (see
  // client::parse_tools).
  void set_tools(boost::json::array tools) { tools_ = std::move(tools); }

  // Sets one sampling option from text: temperature in [0, 2], top_p in (0, 1],
  // max_tokens >= 1, seed an integer >= 0. Errors (invalid_request, param = name) leave
  // the options unchanged.
  Result<void> set_parameter(std::string_view name, std::string_view value);

  void add_user(std::string text) { turns_.push_back({"user", std::move(text)}); }
  // An answer, with the calls it made. A call the server gave no id gets "call_<turn>_<k>",
  // so that its result can name it.
  void add_assistant(std::string text, std::vector<client::ToolCall> calls = {});

  // The calls of the last assistant turn that have no result yet, in order (empty unless the
  // conversation ends with an answer that made calls, or with some of their results).
  std::vector<client::ToolCall> pending_tool_calls() const;
  // Adds `result` as the tool message answering the first pending call, and returns that
  // call. Errors: invalid_request when no call is pending.
  Result<client::ToolCall> add_tool_result(std::string result);

  // Drops the last turn if it is a user turn or a tool result: the answer to it was stopped
  // or failed (a dropped result makes its call pending again).
  void drop_unanswered();
  // Forgets the oldest exchange: the first user turn and everything up to the next user turn
  // (its answer, tool calls and results). Returns the turns dropped; 0 when the conversation
  // has fewer than two user turns (nothing older than the last one).
  std::size_t drop_oldest_exchange();
  // Forgets every turn; model, system prompt and sampling stay.
  void clear() noexcept { turns_.clear(); }

  // The chat completion request for the turns so far: model (empty: the server's default),
  // messages (the system prompt first when set, tool calls and results included), the
  // sampling options set and the tools.
  client::ChatRequest request() const;

  // The conversation as a pretty-printed JSON document: {"model", "system", "sampling",
  // "messages"}, and "tools" when there are any; messages in the OpenAI wire shape.
  std::string to_json() const;

 private:
  std::string model_;
  std::string system_;
  Sampling sampling_;
  boost::json::array tools_;
  std::vector<Turn> turns_;
};

// Writes `text` to `path` (replacing it). Errors: invalid_request with the OS reason.
Result<void> write_file(const std::string& path, std::string_view text);

}  // namespace troupe::chat
