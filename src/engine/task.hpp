#pragma once
// Task: one generation request as the engine sees it. Plain structs, no JSON, no HTTP: the
// server turns a wire request into a Task at once, the remote layer serializes it as it is.

#include <chrono>
#include <cstddef>
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

// The most DRY sequence breakers a request may give: building DRY's sampler scans the whole
// vocabulary once per breaker.
inline constexpr std::size_t max_dry_sequence_breakers = 32;

// A stage of llama.cpp's sampler chain as llama-server's `samplers` names it: a request may
// list the stages it wants, in its order (the others are left out).
enum class SamplerStage : std::uint8_t {
  penalties,
  dry,
  top_n_sigma,
  top_k,
  typical_p,
  top_p,
  min_p,
  xtc,
  temperature,
  infill,  // llama.cpp's fill-in-the-middle sampler (after top_k and top_p)
};

// Sampling policy. The fields a request may leave unset (std::nullopt) take the serving
// engine's default (SamplingDefaults: `troupe serve`/`worker` flags); the others default to
// "off". The samplers, their meaning and their order are llama-server's (llama.cpp's chain:
// logit bias, penalties, DRY, top_n_sigma, top_k, typical_p, top_p, min_p, XTC, temperature
// with dynamic range); mirostat replaces everything after the logit bias with temperature and
// mirostat, as in llama-server. temperature 0 (and no dynatemp_range) is greedy.
struct SamplingParams {
  std::optional<float> temperature;
  std::optional<std::int32_t> top_k;  // 0 = off
  std::optional<float> top_p;         // 1 = off
  std::optional<float> min_p;         // 0 = off
  std::optional<float> repeat_penalty;
  std::int32_t repeat_last_n = 64;  // -1 = the context
  float presence_penalty = 0.0f;
  float frequency_penalty = 0.0f;
  float typical_p = 1.0f;          // 1 = off
  float top_n_sigma = -1.0f;       // < 0 = off
  float dynatemp_range = 0.0f;     // 0 = off; temperature in [t - range, t + range] by entropy
  float dynatemp_exponent = 1.0f;  // how the normalized entropy maps into that range
  float dry_multiplier = 0.0f;     // 0 = off
  float dry_base = 1.75f;          // >= 1
  std::int32_t dry_allowed_length = 2;
  std::int32_t dry_penalty_last_n = 64;  // -1 = the context, 0 = off
  std::vector<std::string> dry_sequence_breakers = {"\n", ":", "\"", "*"};
  float xtc_probability = 0.0f;  // 0 = off
  float xtc_threshold = 0.1f;    // > 0.5 = off
  std::int32_t mirostat = 0;     // 0 = off, 1 = Mirostat, 2 = Mirostat 2.0
  float mirostat_tau = 5.0f;
  float mirostat_eta = 0.1f;
  std::optional<std::uint32_t> seed;                // unset = the engine's default, else random
  std::vector<std::pair<Token, float>> logit_bias;  // added to each token's logit; -inf: never
  // Biases for every token of a text (llama-server's string keys). The engine tokenizes them
  // (no special tokens) where the model is and moves them into logit_bias.
  std::vector<std::pair<std::string, float>> logit_bias_text;
  bool logprobs = false;               // report the chosen token's logprob
  std::int32_t top_logprobs = 0;       // and this many alternatives (0..20)
  std::optional<GrammarSpec> grammar;  // unset = unconstrained
  // llama-server's `samplers`: the chain's stages in this order, then the draw; a stage not
  // listed is not applied (no `temperature`: the logits as they are). Empty: llama-server's
  // default order (above). Ignored with mirostat, as in llama-server.
  std::vector<SamplerStage> samplers;
};

// When to stop. Generation ends at the first of: an end-of-generation token (unless
// ignore_eos), a stop string, max_tokens, or a full context.
struct StopParams {
  std::optional<std::int32_t> max_tokens;  // unset = the engine's default (n_predict)
  std::vector<std::string> stop;           // never emitted, not even partly
  bool ignore_eos = false;
  std::int32_t min_tokens = 0;  // EOG tokens are suppressed until this many were generated
  // llama-server's code-completion limits (0: off). n_indent: the answer ends before the first
  // character of a line (after its first) indented by fewer spaces or tabs. max_predict_ms:
  // once this long has passed since the first token, the answer ends at a token whose text
  // holds a line break. Both end it as max_tokens does (FinishReason::length).
  std::int32_t n_indent = 0;
  std::int32_t max_predict_ms = 0;
};

// An embedding request (POST /v1/embeddings, /v1/rerank): the prompt is computed in one
// decode and the sequence's pooled vector comes back in Finished::embedding; nothing is
// sampled. Text prompts are tokenized with special tokens (BOS/CLS, EOS/SEP as the model
// adds them); conversations are refused.
struct EmbeddingParams {
  // How the pooled vector is scaled: llama-server's `embd_normalize` (normalize_embedding;
  // 2, Euclidean, by default; rank scores are never scaled).
  std::int32_t norm = 2;
  bool truncate = false;  // cut a prompt longer than the limit instead of refusing it
  // The answer may be a vector per token (llama-server's /embedding): a server with pooling
  // none answers so; without this such a server refuses the request (OpenAI's shape has one
  // vector per input).
  bool per_token = false;
  // Rerank: score (query, document) with a reranker (pooling rank); the prompt is built from
  // the pair the way llama-server does and Task::prompt is ignored.
  std::optional<std::pair<std::string, std::string>> rerank;
  friend bool operator==(const EmbeddingParams&, const EmbeddingParams&) = default;
};

// Fill in the middle (llama-server's /infill, OpenAI's `suffix`): the model writes what goes
// between `prefix` and `suffix` of a file, after Task::prompt (a text: the middle's start,
// llama-server's `prompt`, usually empty). `extra`: other files as repository context, put
// before them (filename, text). The prompt is built with the model's FIM tokens
// (engine/infill.hpp); texts are tokenized as plain text, special tokens not parsed.
// `trim`: cut the prefix, the suffix and the extra context to llama-server's budget (its
// /infill's rule) instead of refusing a prompt longer than the context.
struct InfillParams {
  std::string prefix;
  std::string suffix;
  std::vector<std::pair<std::string, std::string>> extra;
  bool trim = false;
  friend bool operator==(const InfillParams&, const InfillParams&) = default;
};

// A request's LoRA adapters (llama-server's `lora`: [{"id": 0, "scale": 0.5}]): (adapter id,
// scale) pairs; the served model's adapters it leaves out get scale 0 (engine/lora.hpp).
using LoraRequest = std::vector<std::pair<std::int32_t, float>>;

struct Task {
  std::string model;  // empty = the backend's default model
  Prompt prompt;
  std::optional<InfillParams> infill;  // set: fill in the middle; `prompt` is then a text
  // With a conversation: tools, tool_choice, template kwargs, reasoning format. The rendered
  // template may add a grammar (a forced tool call) and stop strings; the output is then
  // parsed into content, reasoning and tool calls. Ignored for text and token prompts.
  chatfmt::ChatOptions chat;
  SamplingParams sampling;
  StopParams stop;
  std::string request_id;                    // for logs and tracing only
  std::optional<EmbeddingParams> embedding;  // set: an embedding request (sampling unused)
  // Ollama's keep_alive: how long the model stays loaded once this request and the others
  // using it are done (0: unload at once; negative: never unload). Unset: the server's
  // --idle-unload. Only a backend that loads and unloads models (models::ModelSet) acts on
  // it; a server with one fixed model keeps it loaded whatever this says.
  std::optional<std::chrono::milliseconds> keep_alive;
  // OpenAI's prediction.content: text the answer is expected to repeat (a file being edited).
  // Speed only: the engine drafts from it (engine/ngram_draft.hpp) and keeps the drafted tokens
  // the sampler draws itself, so the answer is the one without it. Empty: none.
  std::string prediction;
  // The LoRA adapters' scales for this request; unset: the server-wide scales.
  std::optional<LoraRequest> lora;
  // llama-server's id_slot: the sequence slot this request runs in (waiting for it while it is
  // busy: a slot saved or restored with POST /slots/ID is then the request's), 0 to
  // --parallel - 1; unset: any free one.
  std::optional<std::int32_t> id_slot;
  // llama-server's n_cache_reuse: the shortest run of a slot's cached tokens, after the prefix
  // it shares with this prompt, reused by moving its cells into place (AdmitSequence::
  // cache_reuse); 0: only the prefix; unset: the server's --cache-reuse. Speed only: the cells
  // are those a fresh computation gives, up to float rounding.
  std::optional<std::int32_t> n_cache_reuse;
  // A conversation's reasoning budget (llama-server's reasoning_budget_tokens, Anthropic's
  // thinking.budget_tokens): once the answer has this many tokens inside the template's
  // reasoning block, the block is closed for it (reasoning_budget_message, then the closing
  // tag, forced), and the answer goes on. -1: none; unset: the server's --reasoning-budget.
  // Nothing for a template without a reasoning block, or a prompt not rendered by one.
  std::optional<std::int32_t> reasoning_budget;
  std::optional<std::string> reasoning_budget_message;  // unset: the server's
};

// POST /slots/ID?action=... (engine/engine_protocol.hpp's SlotAction) and what it did.
enum class SlotActionKind : std::uint8_t { save, restore, erase };

struct SlotActionDone {
  std::int32_t n_tokens = 0;  // tokens saved, restored or erased
  std::size_t n_bytes = 0;    // save: bytes written; restore: bytes read; erase: 0
  double ms = 0.0;            // the action's time on the engine thread
};

// What a request's unset sampling and stop fields mean on the engine that serves it (flags of
// `troupe serve` and `troupe worker`, so a gateway's requests get the worker's defaults).
// The values are llama-server's: they give small models far better text than temperature 1
// with no filters.
struct SamplingDefaults {
  float temperature = 0.8f;
  std::int32_t top_k = 40;
  float top_p = 0.95f;
  float min_p = 0.05f;
  float repeat_penalty = 1.0f;
  std::optional<std::uint32_t> seed;      // unset: a random seed per request
  std::optional<std::int32_t> n_predict;  // max_tokens; unset: up to the context
};

// Fills what `task` leaves unset from `d`; max_tokens without d.n_predict becomes `n_ctx`
// (the context per sequence: generation then ends when the context is full).
inline void apply_defaults(Task& task, const SamplingDefaults& d, std::int32_t n_ctx) {
  auto& s = task.sampling;
  s.temperature = s.temperature.value_or(d.temperature);
  s.top_k = s.top_k.value_or(d.top_k);
  s.top_p = s.top_p.value_or(d.top_p);
  s.min_p = s.min_p.value_or(d.min_p);
  s.repeat_penalty = s.repeat_penalty.value_or(d.repeat_penalty);
  if (!s.seed)
    s.seed = d.seed;
  if (!task.stop.max_tokens)
    task.stop.max_tokens = d.n_predict.value_or(n_ctx);
}

}  // namespace troupe::engine
