#include "engine/sampler.hpp"

#include <algorithm>
#include <array>
#include <cmath>
#include <limits>

#if defined(__SSE2__)
#include <immintrin.h>
#endif

namespace troupe::engine {
namespace {

constexpr float neg_inf = -std::numeric_limits<float>::infinity();

void add_filters(llama_sampler* chain, const SamplingParams& p, std::int32_t n_vocab,
                 std::int32_t last_n) {
  if (!p.logit_bias.empty()) {
    std::vector<llama_logit_bias> bias;
    for (const auto& [tok, b] : p.logit_bias) {
      if (tok >= 0 && tok < n_vocab)
        bias.push_back({tok, b});
    }
    llama_sampler_chain_add(chain, llama_sampler_init_logit_bias(
                                       n_vocab, static_cast<int32_t>(bias.size()), bias.data()));
  }
  if (p.repeat_penalty != 1.0f || p.frequency_penalty != 0.0f || p.presence_penalty != 0.0f) {
    llama_sampler_chain_add(
        chain, llama_sampler_init_penalties(n_vocab, last_n, p.repeat_penalty, p.frequency_penalty,
                                            p.presence_penalty));
  }
  if (p.temperature <= 0.0f) {
    llama_sampler_chain_add(chain, llama_sampler_init_greedy());
    return;
  }
  if (p.top_k > 0)
    llama_sampler_chain_add(chain, llama_sampler_init_top_k(p.top_k));
  if (p.top_p < 1.0f)
    llama_sampler_chain_add(chain, llama_sampler_init_top_p(p.top_p, 1));
  if (p.min_p > 0.0f)
    llama_sampler_chain_add(chain, llama_sampler_init_min_p(p.min_p, 1));
  llama_sampler_chain_add(chain, llama_sampler_init_temp(p.temperature));
  llama_sampler_chain_add(chain, llama_sampler_init_dist(p.seed ? *p.seed : LLAMA_DEFAULT_SEED));
}

}  // namespace

Sampler::Sampler(const SamplingParams& params, std::int32_t n_vocab,
                 const std::vector<Token>& prompt, std::int32_t n_ctx)
    : n_vocab_(n_vocab),
      logprobs_(params.logprobs || params.top_logprobs > 0),
      top_n_(std::clamp(params.top_logprobs, 0, 20)) {
  plain_greedy_ = params.temperature <= 0.0f && params.logit_bias.empty() &&
                  params.repeat_penalty == 1.0f && params.frequency_penalty == 0.0f &&
                  params.presence_penalty == 0.0f;
  if (plain_greedy_)
    return;
  auto cp = llama_sampler_chain_default_params();
  cp.no_perf = true;
  chain_.reset(llama_sampler_chain_init(cp));
  const std::int32_t last_n = params.repeat_last_n < 0 ? n_ctx : params.repeat_last_n;
  add_filters(chain_.get(), params, n_vocab, last_n);
  // Only the last `last_n` prompt tokens can still be in the penalties' window.
  const auto n = static_cast<std::ptrdiff_t>(prompt.size());
  for (auto i = std::max<std::ptrdiff_t>(0, n - last_n); i < n; ++i)
    llama_sampler_accept(chain_.get(), prompt[static_cast<std::size_t>(i)]);
}

void Sampler::sample(const float* logits, const std::vector<Token>* suppress,
                     std::vector<llama_token_data>& scratch, SampledToken& out) {
  out.token = plain_greedy_ ? argmax(logits, suppress) : sample_chain(logits, suppress, scratch);
  if (logprobs_)
    fill_logprobs(logits, out);
}

// The largest logit's first index: the greedy path, once per sequence per step. Two passes
// over the logits (n_vocab floats, still in cache from the decode): the maximum with SSE
// (NaNs are skipped: maxps keeps its second operand when either is NaN), then the first index
// holding it. About 4x faster than a branchy scalar loop (~50 us for 32k logits).
static Token first_argmax(const float* logits, Token n) {
#if defined(__SSE2__)
  Token i = 0;
  __m128 m0 = _mm_set1_ps(neg_inf), m1 = m0, m2 = m0, m3 = m0;
  for (; i + 16 <= n; i += 16) {
    m0 = _mm_max_ps(_mm_loadu_ps(logits + i), m0);
    m1 = _mm_max_ps(_mm_loadu_ps(logits + i + 4), m1);
    m2 = _mm_max_ps(_mm_loadu_ps(logits + i + 8), m2);
    m3 = _mm_max_ps(_mm_loadu_ps(logits + i + 12), m3);
  }
  alignas(16) float lanes[4];
  _mm_store_ps(lanes, _mm_max_ps(_mm_max_ps(m0, m1), _mm_max_ps(m2, m3)));
  float best_v = std::max({lanes[0], lanes[1], lanes[2], lanes[3]});
  for (Token k = i; k < n; ++k)
    best_v = logits[k] > best_v ? logits[k] : best_v;
  if (best_v == neg_inf)
    return 0;  // every logit -inf or NaN: as the scalar loop, token 0
  const __m128 target = _mm_set1_ps(best_v);
  Token k = 0;
  for (; k + 4 <= n; k += 4) {
    if (const int hit = _mm_movemask_ps(_mm_cmpeq_ps(_mm_loadu_ps(logits + k), target)))
      return k + __builtin_ctz(static_cast<unsigned>(hit));
  }
  for (; k < n; ++k) {
    if (logits[k] == best_v)
      return k;
  }
  return 0;
#else
  Token best = 0;
  float best_v = neg_inf;
  for (Token i = 0; i < n; ++i) {
    if (logits[i] > best_v) {
      best_v = logits[i];
      best = i;
    }
  }
  return best;
#endif
}

Token Sampler::argmax(const float* logits, const std::vector<Token>* suppress) const {
  Token best = first_argmax(logits, n_vocab_);
  if (!suppress || std::find(suppress->begin(), suppress->end(), best) == suppress->end()) {
    return best;
  }
  float best_v = neg_inf;  // rare: the best was suppressed, scan again without the suppressed ones
  best = 0;
  for (Token i = 0; i < n_vocab_; ++i) {
    if (logits[i] > best_v && std::find(suppress->begin(), suppress->end(), i) == suppress->end()) {
      best_v = logits[i];
      best = i;
    }
  }
  return best;
}

Token Sampler::sample_chain(const float* logits, const std::vector<Token>* suppress,
                            std::vector<llama_token_data>& scratch) {
  scratch.resize(static_cast<std::size_t>(n_vocab_));
  for (Token i = 0; i < n_vocab_; ++i)
    scratch[static_cast<std::size_t>(i)] = {i, logits[i], 0.0f};
  if (suppress) {
    for (Token t : *suppress)
      scratch[static_cast<std::size_t>(t)].logit = neg_inf;
  }
  llama_token_data_array arr{scratch.data(), scratch.size(), -1, false};
  llama_sampler_apply(chain_.get(), &arr);
  const Token tok = arr.data[arr.selected].id;
  llama_sampler_accept(chain_.get(), tok);
  return tok;
}

void Sampler::fill_logprobs(const float* logits, SampledToken& out) const {
  float max_v = neg_inf;
  for (Token i = 0; i < n_vocab_; ++i)
    max_v = std::max(max_v, logits[i]);
  double sum = 0.0;
  for (Token i = 0; i < n_vocab_; ++i)
    sum += std::exp(static_cast<double>(logits[i] - max_v));
  const float lse = max_v + static_cast<float>(std::log(sum));
  out.logprob = logits[out.token] - lse;
  out.top.clear();
  if (top_n_ == 0)
    return;
  // A min-heap of the best top_n_ (logit, token) pairs: one pass, no allocation.
  std::array<std::pair<float, Token>, 20> heap{};
  std::size_t n = 0;
  const auto greater = [](const auto& a, const auto& b) { return a.first > b.first; };
  for (Token i = 0; i < n_vocab_; ++i) {
    if (n < static_cast<std::size_t>(top_n_)) {
      heap[n++] = {logits[i], i};
      std::push_heap(heap.begin(), heap.begin() + n, greater);
    } else if (logits[i] > heap[0].first) {
      std::pop_heap(heap.begin(), heap.begin() + n, greater);
      heap[n - 1] = {logits[i], i};
      std::push_heap(heap.begin(), heap.begin() + n, greater);
    }
  }
  std::sort_heap(heap.begin(), heap.begin() + n, greater);
  for (std::size_t k = 0; k < n; ++k)
    out.top.push_back({heap[k].second, heap[k].first - lse});
}

}  // namespace troupe::engine
