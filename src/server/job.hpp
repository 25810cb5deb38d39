#pragma once
// GenerationJob: an API request turned into the engine's Task plus what the HTTP layer needs to
// answer it. The conversion is pure (no I/O) and checks what only the model can tell: that
// the model exists, token ids fit its vocabulary.
//
// Thread-safety: free functions, safe from any thread.

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
enum class Dialect { openai, anthropic, responses, llama };

struct GenerationJob {
  engine::Task task;
  api::CompletionKind kind = api::CompletionKind::chat;
  Dialect dialect = Dialect::openai;
  std::string model;  // the model's name as responses report it
  bool stream = false;
  bool include_usage = false;
  bool logprobs = false;     // the response carries logprobs
  std::int32_t choices = 1;  // OpenAI's n: each choice is a task of its own (server/choices.hpp)
  // Responses API: what the response echoes and what a stored response keeps (the conversation
  // without this request's instructions, for a later previous_response_id).
  std::string instructions;
  std::string previous_response_id;
  bool store = false;
  api::ResponsesTools tools;
  std::vector<chatfmt::Message> conversation;
  // llama-server's answer shape (Dialect::llama): the fields its whole answer keeps.
  std::vector<std::string> response_fields;
};

// Errors: not_found (param "model") for an unknown model, unavailable when no model is
// served, invalid_request for token ids outside the vocabulary.
Result<GenerationJob> make_chat_job(api::ChatRequest request,
                                    const std::vector<engine::ModelInfo>& models);
Result<GenerationJob> make_completion_job(api::CompletionRequest request,
                                          const std::vector<engine::ModelInfo>& models);
// llama-server's /infill: a text completion that fills in the middle, its parts cut to
// llama-server's budget, answered in llama-server's shapes. Errors as make_completion_job's,
// and invalid_request for what those shapes cannot carry (n > 1, logprobs).
Result<GenerationJob> make_infill_job(api::InfillRequest request,
                                      const std::vector<engine::ModelInfo>& models);

// The served model `name` refers to (empty: the default one).
Result<engine::ModelInfo> find_model(const std::string& name,
                                     const std::vector<engine::ModelInfo>& models);

}  // namespace troupe::server
