#pragma once
// Conversation: what the chat sends with every request (model, system prompt, sampling
// options, the turns so far), as a client::ChatRequest, and as the JSON file `/save` writes.
//
// Thread-safety: a plain value; not synchronised. The chat owns one on its event-loop thread.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "client/types.hpp"
#include "util/result.hpp"

namespace troupe::chat {

// Sampling options; unset ones are left to the server's defaults.
using Sampling = client::Sampling;

struct Turn {
  std::string role;  // "user" or "assistant"
  std::string content;
  friend bool operator==(const Turn&, const Turn&) = default;
};

class Conversation {
 public:
  Conversation() = default;
  Conversation(std::string model, std::string system, Sampling sampling)
      : model_(std::move(model)), system_(std::move(system)), sampling_(sampling) {}

  const std::string& model() const noexcept { return model_; }
  const std::string& system() const noexcept { return system_; }
  const Sampling& sampling() const noexcept { return sampling_; }
  const std::vector<Turn>& turns() const noexcept { return turns_; }

  void set_model(std::string model) { model_ = std::move(model); }
  void set_system(std::string system) { system_ = std::move(system); }

  // Sets one sampling option from text: temperature in [0, 2], top_p in (0, 1],
  // max_tokens >= 1, seed an integer >= 0. Errors (invalid_request, param = name) leave
  // the options unchanged.
  Result<void> set_parameter(std::string_view name, std::string_view value);

  void add_user(std::string text) { turns_.push_back({"user", std::move(text)}); }
  void add_assistant(std::string text) { turns_.push_back({"assistant", std::move(text)}); }
  // Drops the last turn if it is a user turn (its answer was stopped or failed).
  void drop_unanswered();
  // Forgets every turn; model, system prompt and sampling stay.
  void clear() noexcept { turns_.clear(); }

  // The chat completion request for the turns so far: model (empty: the server's default),
  // messages (the system prompt first when set) and the sampling options set.
  client::ChatRequest request() const;

  // The conversation as a pretty-printed JSON document: {"model", "system", "sampling",
  // "messages"}.
  std::string to_json() const;

 private:
  std::string model_;
  std::string system_;
  Sampling sampling_;
  std::vector<Turn> turns_;
};

// Writes `text` to `path` (replacing it). Errors: invalid_request with the OS reason.
Result<void> write_file(const std::string& path, std::string_view text);

}  // namespace troupe::chat
