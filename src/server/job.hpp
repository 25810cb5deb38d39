#pragma once
// GenerationJob: an API request turned into the engine's Task plus what the HTTP layer needs to
// answer it. The conversion is pure (no I/O) and checks what only the model can tell: that
// the model exists, token ids fit its vocabulary.
//
// Thread-safety: free functions, safe from any thread.

#include <algorithm>
#include <optional>
#include <string>
#include <vector>

#include "api/request.hpp"
#include "api/response.hpp"
#include "api/responses.hpp"
#include "engine/backend.hpp"
#include "engine/task.hpp"
#include "util/result.hpp"

namespace troupe::server {

// The API whose shapes the answer takes: OpenAI's chat or text completions (`kind`),
// Anthropic's Messages (a chat task), OpenAI's Responses, or llama-server's own (/infill).
enum class Dialect { openai, anthropic, responses, llama, ollama };

// One prompt of a request with several (OpenAI's list of prompts): its part of the task.
struct JobPrompt {
  engine::Prompt prompt;
  std::optional<engine::InfillParams> infill;  // with `suffix`: the text around the insertion
  void apply(engine::Task& task) const;        // sets task.prompt and task.infill
};

struct GenerationJob {
  engine::Task task;
  api::CompletionKind kind = api::CompletionKind::chat;
  Dialect dialect = Dialect::openai;
  std::string model;  // the model's name as responses report it
  bool stream = false;
  bool include_usage = false;
  bool logprobs = false;     // the response carries logprobs
  std::int32_t choices = 1;  // OpenAI's n per prompt: each answer is a task of its own
  // A request with several prompts: each prompt's part of the task (answer i takes prompt
  // i / choices). Empty: `task` holds the one prompt.
  std::vector<JobPrompt> prompts;
  // Responses API: what the response echoes and what a stored response keeps (the conversation
  // without this request's instructions, for a later previous_response_id).
  std::string instructions;
  std::string previous_response_id;
  bool store = false;
  api::ResponsesTools tools;
  std::vector<chatfmt::Message> conversation;
  // llama-server's answer shape (Dialect::llama): what it carries beyond OpenAI's.
  api::NativeOptions native;
  // Dialect::ollama: /api/generate's shape ("response") rather than /api/chat's ("message").
  bool ollama_generate = false;
  // llama-server's sse_ping_interval (seconds; 0 or -1: no pings); unset: the server's.
  std::optional<std::int32_t> sse_ping_interval;

  // The answers the request asks for: its prompts times n.
  std::size_t answers() const {
    return std::max<std::size_t>(prompts.size(), 1) * static_cast<std::size_t>(choices);
  }
  // The task of answer i: its prompt's; an answer j > 0 of one prompt samples with the
  // request's seed + j, or a random seed when the request gives none, so that they differ.
  engine::Task task_for(std::size_t answer) const;
};

// Errors: not_found (param "model") for an unknown model, unavailable when no model is
// served, invalid_request for token ids outside the vocabulary.
Result<GenerationJob> make_chat_job(api::ChatRequest request,
                                    const std::vector<engine::ModelInfo>& models);
Result<GenerationJob> make_completion_job(api::CompletionRequest request,
                                          const std::vector<engine::ModelInfo>& models);
// llama-server's /completion: a text completion answered in llama-server's shapes.
Result<GenerationJob> make_native_completion_job(api::NativeCompletionRequest request,
                                                 const std::vector<engine::ModelInfo>& models);
// llama-server's /infill: a text completion that fills in the middle, its parts cut to
// llama-server's budget, answered in llama-server's shapes. Errors as make_completion_job's,
// and invalid_request for n > 1.
Result<GenerationJob> make_infill_job(api::InfillRequest request,
                                      const std::vector<engine::ModelInfo>& models);

// The served model `name` refers to (empty: the default one).
Result<engine::ModelInfo> find_model(const std::string& name,
                                     const std::vector<engine::ModelInfo>& models);

}  // namespace troupe::server
