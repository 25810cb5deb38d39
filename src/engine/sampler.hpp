#pragma once
// Sampler: one sequence's sampling policy, built from SamplingParams as a llama.cpp sampler
// chain (logit bias, penalties, top_k, top_p, min_p, temperature, seeded distribution, or
// greedy), applied in place to the logits of the engine's last decode. Greedy requests with
// no filters take a plain argmax over the logits. As in llama-server, the chain accepts the
// prompt first: repetition, presence and frequency penalties see the prompt's last
// `repeat_last_n` tokens (-1: the whole context), not only the generated ones. Logprobs are those
// of the model's own distribution (softmax of the raw logits), as OpenAI reports them.
//
// Thread-safety: none; a Sampler lives in one BatchEngine slot and is used on the engine thread.
// Nothing here allocates per token (llama.cpp's own samplers may, inside the chain).

#include <vector>

#include "engine/llama_handles.hpp"
#include "engine/sequence_protocol.hpp"
#include "engine/task.hpp"

namespace troupe::engine {

class Sampler {
 public:
  // `prompt` primes the chain's penalties; `n_ctx` is the sequence's context size.
  Sampler(const SamplingParams& params, std::int32_t n_vocab, const std::vector<Token>& prompt,
          std::int32_t n_ctx);

  // Samples one token from `logits` (n_vocab floats) into `out` (token, logprob, top).
  // `suppress` lists tokens that must not be chosen (EOG before min_tokens, or ignore_eos);
  // `scratch` is the engine's candidate buffer, resized to n_vocab once.
  void sample(const float* logits, const std::vector<Token>* suppress,
              std::vector<llama_token_data>& scratch, SampledToken& out);

 private:
  Token argmax(const float* logits, const std::vector<Token>* suppress) const;
  Token sample_chain(const float* logits, const std::vector<Token>* suppress,
                     std::vector<llama_token_data>& scratch);
  void fill_logprobs(const float* logits, SampledToken& out) const;

  SamplerPtr chain_;
  std::int32_t n_vocab_;
  bool plain_greedy_ = false;
  bool logprobs_ = false;
  std::int32_t top_n_ = 0;
};

}  // namespace troupe::engine
