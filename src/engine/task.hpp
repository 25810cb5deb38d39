#pragma once
// Task: one generation request as the engine sees it. Plain structs, no JSON, no HTTP: the
// server turns a wire request into a Task at once, the remote layer serializes it as it is.

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include "chatfmt/types.hpp"

namespace troupe::engine {

using Token = std::int32_t;

// A message of a conversation: role system, user, assistant (content, reasoning_content,
// tool_calls) or tool (content, tool_call_id). The chat-format layer's plain type.
using ChatMessage = chatfmt::Message;

// What to condition on: raw text (tokenized with the model's BOS rules), token ids, or a
// conversation rendered with the model's chat template (Task::chat says how).
using Prompt = std::variant<std::string, std::vector<Token>, std::vector<ChatMessage>>;

// A GBNF grammar that constrains sampling (llama.cpp's grammar sampler). A lazy grammar stays
// inactive until the generated text matches one of `trigger_patterns` (regular expressions
// over the whole output, llama.cpp's "pattern" triggers) or a token in `trigger_tokens` is
// sampled; from then on it constrains every token (how forced tool calls work: free text, then
// a well-formed call). Built by the chat-format layer or from a JSON schema.
//
// `prefill`: text the prompt already ends with that the grammar must read before the first
// generated token (a template's generation prompt, e.g. "<|im_start|>assistant\n", which the
// grammars llama.cpp's chat library builds start with). Only for grammars built by the chat
// template and never lazy ones; a user's grammar starts at the first generated token.
struct GrammarSpec {
  std::string gbnf;  // root rule "root"
  bool lazy = false;
  std::vector<std::string> trigger_patterns;
  std::vector<Token> trigger_tokens;
  std::string prefill;
  friend bool operator==(const GrammarSpec&, const GrammarSpec&) = default;
};

// Sampling policy; defaults are "off" for every filter. temperature == 0 means greedy.
struct SamplingParams {
  float temperature = 1.0f;
  std::int32_t top_k = 0;  // 0 = off
  float top_p = 1.0f;      // 1 = off
  float min_p = 0.0f;      // 0 = off
  float repeat_penalty = 1.0f;
  std::int32_t repeat_last_n = 64;
  float presence_penalty = 0.0f;
  float frequency_penalty = 0.0f;
  std::optional<std::uint32_t> seed;                // unset = random
  std::vector<std::pair<Token, float>> logit_bias;  // added to the logit of each token
  bool logprobs = false;                            // report the chosen token's logprob
  std::int32_t top_logprobs = 0;                    // and this many alternatives (0..20)
  std::optional<GrammarSpec> grammar;               // unset = unconstrained
};

// When to stop. Generation ends at the first of: an end-of-generation token (unless
// ignore_eos), a stop string, max_tokens, or a full context.
struct StopParams {
  std::int32_t max_tokens = 256;
  std::vector<std::string> stop;  // never emitted, not even partly
  bool ignore_eos = false;
  std::int32_t min_tokens = 0;  // EOG tokens are suppressed until this many were generated
};

struct Task {
  std::string model;  // empty = the backend's default model
  Prompt prompt;
  // With a conversation: tools, tool_choice, template kwargs, reasoning format. The rendered
  // template may add a grammar (a forced tool call) and stop strings; the output is then
  // parsed into content, reasoning and tool calls. Ignored for text and token prompts.
  chatfmt::ChatOptions chat;
  SamplingParams sampling;
  StopParams stop;
  std::string request_id;  // for logs and tracing only
};

}  // namespace troupe::engine
