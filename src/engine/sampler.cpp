#include "engine/sampler.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <array>
#include <bit>
#include <cmath>
#include <functional>
#include <limits>
#include <random>
#include <span>

#include "engine/sampler_simd.hpp"

namespace troupe::engine {

// Which tokens the grammar's verdict on the one-byte tokens leaves as candidates: those whose
// FirstByteIndex group passed.
struct FirstBytePass {
  const std::uint16_t* groups = nullptr;  // null: every token
  const std::uint8_t* pass = nullptr;     // by group: whether its tokens can be allowed
  bool operator()(int i) const { return groups == nullptr || pass[groups[i]] != 0; }
};

namespace {

using simd::neg_inf;
constexpr float pos_inf = std::numeric_limits<float>::infinity();

bool is_suppressed(const std::vector<Token>* suppress, Token t) {
  return suppress && std::find(suppress->begin(), suppress->end(), t) != suppress->end();
}

std::span<const Token> tokens_of(const std::vector<Token>* suppress) {
  return suppress ? std::span<const Token>(*suppress) : std::span<const Token>();
}

// The largest logit of a token that is not suppressed (-inf when there is none).
float max_allowed(const float* logits, std::int32_t n, const std::vector<Token>* suppress) {
  const float m = simd::max_value(logits, n);
  bool hit = false;
  for (Token t : tokens_of(suppress))
    hit = hit || (t >= 0 && t < n && logits[t] >= m);
  if (!hit)
    return m;
  float best = neg_inf;  // rare: a suppressed token holds the maximum
  for (Token i = 0; i < n; ++i) {
    if (logits[i] > best && !is_suppressed(suppress, i))
      best = logits[i];
  }
  return best;
}

// The first index of the largest logit that is not suppressed (0 when every logit is NaN).
Token argmax_allowed(const float* logits, std::int32_t n, const std::vector<Token>* suppress) {
  const float m = max_allowed(logits, n, suppress);
  for (Token i = simd::first_index_of(logits, n, m); i < n; ++i) {
    if (logits[i] == m && !is_suppressed(suppress, i))
      return i;
  }
  return 0;
}

// Block sums of a full-vocabulary pass with the suppressed tokens taken out again.
double block_sums_allowed(const float* logits, std::int32_t n, const std::vector<Token>* suppress,
                          float m, float inv_t, float* sums) {
  double total = simd::block_sums(logits, n, m, inv_t, sums);
  if (!suppress || suppress->empty())
    return total;
  std::array<float, simd::block> w;
  for (Token t : *suppress) {
    if (t < 0 || t >= n)
      continue;
    const Token first = t / simd::block * simd::block;
    const int len = std::min<int>(simd::block, n - first);
    simd::exp_values(logits + first, len, m, inv_t, w.data());
    float s = 0.0f;
    for (int j = 0; j < len; ++j)
      s += is_suppressed(suppress, first + j) ? 0.0f : w[static_cast<std::size_t>(j)];
    sums[t / simd::block] = s;
  }
  total = 0.0;
  for (std::int32_t b = 0; b * simd::block < n; ++b)
    total += sums[b];
  return total;
}

// No key is above this one: a bound that keeps every candidate.
constexpr std::uint64_t any_key = ~std::uint64_t{0};

// Keys of every allowed token with logit >= threshold (and key < below), in index order.
std::int32_t collect(const float* logits, std::int32_t n, const std::vector<Token>* suppress,
                     float threshold, std::uint64_t* keys, std::uint64_t below = any_key,
                     const FirstBytePass* first = nullptr) {
  std::int32_t c = 0;
  simd::for_each_at_least(logits, n, threshold, [&](int i) {
    if (is_suppressed(suppress, i) || (first && !(*first)(i)))
      return;
    const std::uint64_t key = candidate_key(logits[i], i);
    if (key < below)
      keys[c++] = key;
  });
  return c;
}

// The k allowed tokens with the largest logits (fewer when fewer are not NaN), unordered: a
// scan that only looks at logits at or above the k-th best seen so far, kept in a buffer that
// is cut back to k with nth_element whenever it fills.
std::int32_t top_k_select(const float* logits, std::int32_t n, const std::vector<Token>* suppress,
                          std::int32_t k, std::uint64_t* keys) {
  const std::int32_t cap = std::min(n, std::max(4 * k, 256));
  float threshold = neg_inf;
  std::int32_t c = 0;
  const auto cut = [&] {
    std::nth_element(keys, keys + (k - 1), keys + c, std::greater<>());
    c = k;
    threshold = key_logit(keys[k - 1]);
  };
  simd::for_each_at_least(logits, n, threshold, [&](int i) {
    if (is_suppressed(suppress, i))
      return;
    keys[c++] = candidate_key(logits[i], i);
    if (c == cap)
      cut();
  });
  if (c > k)
    cut();
  return c;
}

// Sorted keys[0..c), m their maximum: the length of the shortest prefix holding `p` of their
// mass at temperature 1 (llama.cpp's top_p).
std::int32_t top_p_sorted(const std::uint64_t* keys, std::int32_t c, float m, float p, float* w) {
  double total = 0.0;
  for (std::int32_t j = 0; j < c; ++j) {
    w[j] = simd::exp_scalar(key_logit(keys[j]) - m);
    total += w[j];
  }
  const double target = static_cast<double>(p) * total;
  double cum = 0.0;
  for (std::int32_t j = 0; j < c; ++j) {
    cum += w[j];
    if (cum >= target)
      return j + 1;
  }
  return c;
}

// Logit thresholds that cut the finite logits, from the top, into chunks of about 64, 256,
// 1024 and 4096 tokens (then the rest): quantiles of every (n / 512)-th logit, sorted in
// `sample` (room for 512 + 1). Returns how many thresholds it wrote, descending, to `out`.
int chunk_thresholds(const float* logits, std::int32_t n, float* sample,
                     std::array<float, 4>& out) {
  const std::int32_t stride = std::max<std::int32_t>(1, n / 512);
  std::int32_t s = 0;
  for (std::int32_t i = stride / 2; i < n; i += stride) {
    if (logits[i] >= std::numeric_limits<float>::lowest())  // not -inf, not NaN
      sample[s++] = logits[i];
  }
  std::sort(sample, sample + s, std::greater<>());
  int t = 0;
  for (const std::int64_t top : {64, 64 + 256, 64 + 256 + 1024, 64 + 256 + 1024 + 4096}) {
    const std::int64_t at = top * s / n;
    if (at >= s)
      break;
    out[static_cast<std::size_t>(t++)] = sample[at];
  }
  return t;
}

// The length of the shortest prefix of sorted keys[0..c) (m their maximum) whose weight at
// temperature 1, summed as top_p_sorted() sums it, reaches `target`; c + 1 when none does.
std::int32_t top_p_cut(const std::uint64_t* keys, std::int32_t c, float m, double target) {
  double cum = 0.0;
  for (std::int32_t j = 0; j < c; ++j) {
    cum += simd::exp_scalar(key_logit(keys[j]) - m);
    if (cum >= target)
      return j + 1;
  }
  return c + 1;
}

// top_p, then min_p, on the top-k set keys[0..c) sorted in descending order (c > 0), as
// llama.cpp's chain applies them after top_k; returns how many of the keys are kept.
std::int32_t after_top_k(std::uint64_t* keys, std::int32_t c, const FilterSpec& f, float* w) {
  const float m = key_logit(keys[0]);
  if (f.top_p < 1.0f)
    c = top_p_sorted(keys, c, m, f.top_p, w);
  if (f.min_p > 0.0f) {
    const float floor = m + std::log(f.min_p);
    c = static_cast<std::int32_t>(
        std::remove_if(keys, keys + c, [&](auto k) { return key_logit(k) < floor; }) - keys);
  }
  return c;
}

// Rearranges keys[0..c) (their weights exp(logit - m) summing to at least `need`) so that the
// first L hold the shortest prefix of the descending order whose weight reaches `need`;
// returns L. Expected O(c): partitions around median-of-three pivots, then sorts the last
// small range.
std::int32_t weighted_prefix(std::uint64_t* keys, std::int32_t c, float m, double need) {
  std::int32_t lo = 0, hi = c;  // keys[0..lo) are in; the boundary lies within [lo, hi]
  const auto weight = [m](std::uint64_t k) { return simd::exp_scalar(key_logit(k) - m); };
  while (hi - lo > 2048) {
    const std::uint64_t a = keys[lo], b = keys[lo + (hi - lo) / 2], d = keys[hi - 1];
    const std::uint64_t pivot = std::max(std::min(a, b), std::min(std::max(a, b), d));
    std::uint64_t* mid = std::partition(keys + lo, keys + hi, [&](auto k) { return k > pivot; });
    const auto m_idx = static_cast<std::int32_t>(mid - keys);
    double mass = 0.0;
    for (std::int32_t j = lo; j < m_idx; ++j)
      mass += weight(keys[j]);
    if (m_idx > lo && mass >= need) {
      hi = m_idx;
    } else if (m_idx > lo) {
      need -= mass;
      lo = m_idx;
    } else {  // the pivot is the range's largest: take it alone
      std::iter_swap(keys + lo, std::find(keys + lo, keys + hi, pivot));
      need -= weight(keys[lo]);
      if (need <= 0.0)
        return lo + 1;
      ++lo;
    }
  }
  std::sort(keys + lo, keys + hi, std::greater<>());
  double cum = 0.0;
  for (std::int32_t j = lo; j < hi; ++j) {
    cum += weight(keys[j]);
    if (cum >= need)
      return j + 1;
  }
  return hi;
}

// top_p (then min_p's floor) over the whole vocabulary: the mass at temperature 1 from one
// vector pass, then the tokens above thresholds lowered step by step until they hold p of it
// (or reach the floor), then the shortest prefix among them.
std::int32_t top_p_full(const float* logits, std::int32_t n, const std::vector<Token>* suppress,
                        float m, float floor, float p, SamplerScratch& s) {
  const double target = static_cast<double>(p) *
                        block_sums_allowed(logits, n, suppress, m, 1.0f, s.block_sums.data());
  std::uint64_t* keys = s.keys.data();
  std::int32_t c = 0;
  double mass = 0.0;
  for (const float step : {2.0f, 5.0f, 10.0f, 20.0f, pos_inf}) {
    const float threshold = std::max(m - step, floor);
    c = collect(logits, n, suppress, threshold, keys);
    mass = 0.0;
    for (std::int32_t j = 0; j < c; ++j)
      mass += simd::exp_scalar(key_logit(keys[j]) - m);
    if (mass >= target || threshold <= floor)
      break;
  }
  if (mass < target)
    return c;  // min_p cuts before top_p does
  return weighted_prefix(keys, c, m, target);
}

}  // namespace

std::uint64_t candidate_key(float logit, Token token) {
  auto u = std::bit_cast<std::uint32_t>(logit);
  u = (u & 0x80000000u) ? ~u : (u | 0x80000000u);
  return (static_cast<std::uint64_t>(u) << 32) | static_cast<std::uint32_t>(~token);
}

Token key_token(std::uint64_t key) {
  return static_cast<Token>(~static_cast<std::uint32_t>(key));
}

float key_logit(std::uint64_t key) {
  auto u = static_cast<std::uint32_t>(key >> 32);
  u = (u & 0x80000000u) ? (u & 0x7fffffffu) : ~u;
  return std::bit_cast<float>(u);
}

SamplerScratch::SamplerScratch(std::int32_t n_vocab)
    : keys(static_cast<std::size_t>(n_vocab)),
      weights(static_cast<std::size_t>(n_vocab)),
      block_sums(static_cast<std::size_t>((n_vocab + simd::block - 1) / simd::block)),
      masked(static_cast<std::size_t>(n_vocab)),
      data(static_cast<std::size_t>(n_vocab)),
      allowed(static_cast<std::size_t>(n_vocab)),
      group_pass(static_cast<std::size_t>(n_vocab) + FirstByteIndex::kGroups),
      bits((static_cast<std::size_t>(n_vocab) + 63) / 64) {
  state_key.reserve(1024);
}

std::span<const std::uint64_t> filter_candidates(const float* logits, std::int32_t n,
                                                 const std::vector<Token>* suppress,
                                                 const FilterSpec& f, SamplerScratch& s) {
  std::uint64_t* keys = s.keys.data();
  std::int32_t c = 0;
  if (f.top_k > 0 && f.top_k < n) {
    c = top_k_select(logits, n, suppress, f.top_k, keys);
    if (c == 0)
      return {};
    std::sort(keys, keys + c, std::greater<>());
    c = after_top_k(keys, c, f, s.weights.data());
    return {keys, static_cast<std::size_t>(c)};
  }
  const float m = max_allowed(logits, n, suppress);
  if (std::isnan(m) || m == neg_inf)
    return {};
  const float floor = f.min_p > 0.0f ? m + std::log(f.min_p) : neg_inf;
  c = f.top_p < 1.0f ? top_p_full(logits, n, suppress, m, floor, f.top_p, s)
                     : collect(logits, n, suppress, floor, keys);
  return {keys, static_cast<std::size_t>(c)};
}

Token draw_candidates(std::span<const std::uint64_t> keys, float temperature, double u,
                      SamplerScratch& s) {
  if (keys.empty())
    return 0;
  const std::uint64_t best = *std::max_element(keys.begin(), keys.end());
  const float m = key_logit(best);
  const float inv_t = 1.0f / temperature;
  float* w = s.weights.data();
  double total = 0.0;
  for (std::size_t j = 0; j < keys.size(); ++j) {
    w[j] = simd::exp_scalar((key_logit(keys[j]) - m) * inv_t);
    total += w[j];
  }
  if (!(total > 0.0) || !std::isfinite(total))
    return key_token(best);  // +inf logits: certainty
  const double target = u * total;
  double run = 0.0;
  std::size_t last = 0;
  for (std::size_t j = 0; j < keys.size(); ++j) {
    if (w[j] <= 0.0f)
      continue;
    last = j;
    run += w[j];
    if (run > target)
      return key_token(keys[j]);
  }
  return key_token(keys[last]);  // rounding: the last token with weight
}

Token draw_full(const float* logits, std::int32_t n, const std::vector<Token>* suppress,
                float temperature, double u, SamplerScratch& s) {
  const float m = max_allowed(logits, n, suppress);
  if (!(m > neg_inf && m < pos_inf))
    return argmax_allowed(logits, n, suppress);
  const float inv_t = 1.0f / temperature;
  float* sums = s.block_sums.data();
  const double total = block_sums_allowed(logits, n, suppress, m, inv_t, sums);
  if (!(total > 0.0) || !std::isfinite(total))
    return argmax_allowed(logits, n, suppress);
  const double target = u * total;
  const std::int32_t n_blocks = (n + simd::block - 1) / simd::block;
  double run = 0.0, run_last = 0.0;
  std::int32_t b = 0, last = -1;
  for (; b < n_blocks; ++b) {
    if (sums[b] <= 0.0f)
      continue;
    last = b;
    run_last = run;
    if (run + sums[b] > target)
      break;
    run += sums[b];
  }
  if (b == n_blocks) {  // rounding: the last block with weight
    b = last;
    run = run_last;
  }
  const Token first = b * simd::block;
  const int len = std::min<int>(simd::block, n - first);
  std::array<float, simd::block> w;
  simd::exp_values(logits + first, len, m, inv_t, w.data());
  Token pick = -1;
  for (int j = 0; j < len; ++j) {
    if (w[static_cast<std::size_t>(j)] <= 0.0f || is_suppressed(suppress, first + j))
      continue;
    pick = first + j;
    run += w[static_cast<std::size_t>(j)];
    if (run > target)
      break;
  }
  return pick >= 0 ? pick : argmax_allowed(logits, n, suppress);
}

SamplerRng::SamplerRng(std::uint64_t seed) {
  for (auto& word : s_) {  // splitmix64
    seed += 0x9e3779b97f4a7c15ull;
    std::uint64_t z = seed;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    word = z ^ (z >> 31);
  }
}

std::uint64_t SamplerRng::next() noexcept {
  const std::uint64_t result = std::rotl(s_[1] * 5, 7) * 9;
  const std::uint64_t t = s_[1] << 17;
  s_[2] ^= s_[0];
  s_[3] ^= s_[1];
  s_[1] ^= s_[2];
  s_[0] ^= s_[3];
  s_[2] ^= t;
  s_[3] = std::rotl(s_[3], 45);
  return result;
}

namespace {

// The fields a request may leave unset, with SamplingDefaults{}'s values for those.
struct Knobs {
  float temperature;
  std::int32_t top_k;
  float top_p;
  float min_p;
  float repeat_penalty;
};

Knobs knobs_of(const SamplingParams& p) {
  const SamplingDefaults d;
  return {p.temperature.value_or(d.temperature), p.top_k.value_or(d.top_k),
          p.top_p.value_or(d.top_p), p.min_p.value_or(d.min_p),
          p.repeat_penalty.value_or(d.repeat_penalty)};
}

bool uses_penalties(const SamplingParams& p, const Knobs& k) {
  return k.repeat_penalty != 1.0f || p.frequency_penalty != 0.0f || p.presence_penalty != 0.0f;
}

bool uses_xtc(const SamplingParams& p) {
  return p.xtc_probability > 0.0f && p.xtc_threshold <= 0.5f;
}

// Anything beyond temperature, top_k, top_p and min_p: only llama.cpp's chain samples that.
bool needs_chain(const SamplingParams& p, const Knobs& k) {
  return !p.logit_bias.empty() || uses_penalties(p, k) || p.mirostat != 0 || uses_dry(p) ||
         p.typical_p < 1.0f || p.top_n_sigma >= 0.0f || p.dynatemp_range > 0.0f || uses_xtc(p) ||
         !p.samplers.empty();
}

void add_logit_bias(llama_sampler* chain, const SamplingParams& p, std::int32_t n_vocab) {
  std::vector<llama_logit_bias> bias;
  for (const auto& [tok, b] : p.logit_bias) {
    if (tok >= 0 && tok < n_vocab)
      bias.push_back({tok, b});
  }
  if (!bias.empty()) {
    llama_sampler_chain_add(chain, llama_sampler_init_logit_bias(
                                       n_vocab, static_cast<int32_t>(bias.size()), bias.data()));
  }
}

// Mirostat takes the place of every penalty and filter, as in llama-server.
void add_mirostat(llama_sampler* chain, const SamplingParams& p, const Knobs& k,
                  std::int32_t n_vocab, std::uint32_t seed) {
  if (k.temperature <= 0.0f) {
    llama_sampler_chain_add(chain, llama_sampler_init_greedy());
    return;
  }
  llama_sampler_chain_add(chain, llama_sampler_init_temp(k.temperature));
  llama_sampler_chain_add(
      chain, p.mirostat == 1
                 ? llama_sampler_init_mirostat(n_vocab, seed, p.mirostat_tau, p.mirostat_eta, 100)
                 : llama_sampler_init_mirostat_v2(seed, p.mirostat_tau, p.mirostat_eta));
}

// llama-server's default order of the chain's stages.
constexpr SamplerStage kServerOrder[] = {
    SamplerStage::penalties, SamplerStage::dry,       SamplerStage::top_n_sigma,
    SamplerStage::top_k,     SamplerStage::typical_p, SamplerStage::top_p,
    SamplerStage::min_p,     SamplerStage::xtc,       SamplerStage::temperature};

// The stages of `order` (llama-server's default, or a request's own), each where its
// parameters make it do something, then the draw. Temperature 0 (without dynatemp_range)
// ends the chain in greedy: the best of what the stages before it left.
void add_stages(llama_sampler* chain, const SamplingParams& p, const Knobs& k, std::int32_t n_vocab,
                std::int32_t last_n, std::uint32_t seed, SamplerPtr dry,
                std::span<const SamplerStage> order, const llama_vocab* vocab) {
  for (const SamplerStage stage : order) {
    llama_sampler* s = nullptr;
    switch (stage) {
      case SamplerStage::penalties:
        if (uses_penalties(p, k)) {
          s = llama_sampler_init_penalties(n_vocab, last_n, k.repeat_penalty, p.frequency_penalty,
                                           p.presence_penalty);
        }
        break;
      case SamplerStage::dry:
        s = dry.release();
        break;
      case SamplerStage::top_n_sigma:
        if (p.top_n_sigma >= 0.0f)
          s = llama_sampler_init_top_n_sigma(p.top_n_sigma);
        break;
      case SamplerStage::top_k:
        if (k.top_k > 0)
          s = llama_sampler_init_top_k(k.top_k);
        break;
      case SamplerStage::typical_p:
        if (p.typical_p < 1.0f)
          s = llama_sampler_init_typical(p.typical_p, 1);
        break;
      case SamplerStage::top_p:
        if (k.top_p < 1.0f)
          s = llama_sampler_init_top_p(k.top_p, 1);
        break;
      case SamplerStage::min_p:
        if (k.min_p > 0.0f)
          s = llama_sampler_init_min_p(k.min_p, 1);
        break;
      case SamplerStage::xtc:
        if (uses_xtc(p))
          s = llama_sampler_init_xtc(p.xtc_probability, p.xtc_threshold, 1, seed);
        break;
      case SamplerStage::temperature:
        if (k.temperature <= 0.0f && p.dynatemp_range <= 0.0f) {
          llama_sampler_chain_add(chain, llama_sampler_init_greedy());
          return;
        }
        s = llama_sampler_init_temp_ext(k.temperature, p.dynatemp_range, p.dynatemp_exponent);
        break;
      case SamplerStage::infill:
        s = vocab ? llama_sampler_init_infill(vocab) : nullptr;
        break;
    }
    if (s != nullptr)
      llama_sampler_chain_add(chain, s);
  }
  llama_sampler_chain_add(chain, llama_sampler_init_dist(seed));
}

std::uint64_t seed_of(const SamplingParams& p) {
  if (p.seed)
    return *p.seed;
  std::random_device rd;
  return (static_cast<std::uint64_t>(rd()) << 32) | rd();
}

// A token window: -1 is the whole context.
std::int32_t window(std::int32_t n, std::int32_t n_ctx) {
  return n < 0 ? n_ctx : n;
}

}  // namespace

bool uses_dry(const SamplingParams& p) {
  return p.mirostat == 0 && p.dry_multiplier > 0.0f && p.dry_base >= 1.0f &&
         p.dry_penalty_last_n != 0;
}

SamplerPtr make_dry_sampler(const llama_vocab* vocab, const SamplingParams& p, std::int32_t n_ctx) {
  if (!uses_dry(p))
    return {};
  std::vector<const char*> breakers;
  for (const auto& b : p.dry_sequence_breakers)
    breakers.push_back(b.c_str());
  return SamplerPtr(llama_sampler_init_dry(
      vocab, p.dry_multiplier, p.dry_base, p.dry_allowed_length,
      window(p.dry_penalty_last_n, n_ctx), breakers.data(), breakers.size()));
}

Sampler::Sampler(const SamplingParams& params, std::int32_t n_vocab,
                 const std::vector<Token>& prompt, std::int32_t n_ctx, SamplerPtr grammar,
                 SamplerPtr dry, SamplerPath path, const FirstByteIndex* first_bytes,
                 FirstByteCheck check, const llama_vocab* vocab)
    : grammar_(std::move(grammar)),
      rng_(seed_of(params)),
      n_vocab_(n_vocab),
      logprobs_(params.logprobs || params.top_logprobs > 0),
      top_n_(std::clamp(params.top_logprobs, 0, 20)) {
  const Knobs k = knobs_of(params);
  filter_ = {k.top_k, k.top_p, k.min_p};
  temperature_ = k.temperature;
  filtered_ = (k.top_k > 0 && k.top_k < n_vocab) || k.top_p < 1.0f || k.min_p > 0.0f;
  whole_vocabulary_ = path == SamplerPath::whole_vocabulary;
  if (!whole_vocabulary_)
    allowed_sets_ = allowed_sets_of(grammar_.get());
  if (grammar_ && !whole_vocabulary_ && check != FirstByteCheck::off && first_bytes &&
      first_bytes->n_vocab() == n_vocab) {
    first_bytes_ = first_bytes;
    non_ascii_by_byte_ = check == FirstByteCheck::all_bytes;
  }
  if (!needs_chain(params, k) && path != SamplerPath::chain) {
    mode_ = k.temperature <= 0.0f ? Mode::greedy : Mode::fast;
    return;
  }
  mode_ = Mode::chain;
  auto cp = llama_sampler_chain_default_params();
  cp.no_perf = true;
  chain_.reset(llama_sampler_chain_init(cp));
  const std::uint32_t seed = params.seed ? *params.seed : static_cast<std::uint32_t>(rng_.next());
  const std::int32_t last_n = window(params.repeat_last_n, n_ctx);
  add_logit_bias(chain_.get(), params, n_vocab);
  if (params.mirostat != 0)
    add_mirostat(chain_.get(), params, k, n_vocab, seed);
  else if (params.samplers.empty())
    add_stages(chain_.get(), params, k, n_vocab, last_n, seed, std::move(dry), kServerOrder, vocab);
  else
    add_stages(chain_.get(), params, k, n_vocab, last_n, seed, std::move(dry), params.samplers,
               vocab);
  // Only the last tokens of the prompt can still be in the penalties' and DRY's windows.
  const std::int32_t primed =
      std::max(last_n, uses_dry(params) ? window(params.dry_penalty_last_n, n_ctx) : 0);
  const auto n = static_cast<std::ptrdiff_t>(prompt.size());
  for (auto i = std::max<std::ptrdiff_t>(0, n - primed); i < n; ++i)
    llama_sampler_accept(chain_.get(), prompt[static_cast<std::size_t>(i)]);
}

SampleStatus Sampler::sample(const float* logits, const std::vector<Token>* suppress,
                             SamplerScratch& scratch, SampledToken& out) {
  const Token forced_token = block_ ? block_->forced() : Token{-1};
  const bool forced = forced_token >= 0;
  // A lazy grammar gated by the reasoning block is off while the block is open.
  const bool grammar_on = grammar_ && !(gates_grammar_ && block_->inside());
  Token token = forced ? forced_token : pick(logits, suppress, scratch);
  SampleStatus status = SampleStatus::ok;
  if (grammar_on && forced) {
    if (!grammar_allows(token))
      status = SampleStatus::grammar_failed;
  } else if (grammar_on) {
    // The state's allowed set when it was learned before (by any sequence of this grammar):
    // no grammar check at all. Otherwise the drawn token is checked alone, and only where the
    // grammar rejects it is the set learned (a whole pass, as constrain() would make).
    const bool keyed = allowed_sets_ && grammar_state_key(grammar_.get(), scratch.state_key);
    // With the store full, a state not in it is left to the top-k search.
    const AllowedSet* allowed = keyed ? allowed_sets_->find(scratch.state_key) : nullptr;
    if (allowed ? !allowed->contains(token) : !grammar_allows(token)) {
      if (keyed && !allowed && !allowed_sets_->full())
        allowed = learn_allowed(scratch);
      status = allowed ? constrain_to(*allowed, logits, suppress, scratch, token)
                       : constrain(logits, suppress, scratch, token);
    }
  }
  if (grammar_on && status == SampleStatus::ok)
    status = accept_into_grammar(std::span(&token, 1));
  if (chain_ && status == SampleStatus::ok)
    llama_sampler_accept(chain_.get(), token);
  if (block_ && status == SampleStatus::ok) {
    block_->accept(token);
    // The block closed with this token: the gated grammar reads the closing tag's tokens (a
    // trigger may begin with it).
    if (grammar_ && !grammar_on && !block_->inside())
      status = accept_into_grammar(block_->closing());
  }
  out.token = token;
  if (logprobs_)
    fill_logprobs(logits, scratch, out);
  return status;
}

// Accepts `tokens` into the grammar, in order; grammar_failed where it refuses one.
SampleStatus Sampler::accept_into_grammar(std::span<const Token> tokens) {
  for (const Token t : tokens) {
    try {
      llama_sampler_accept(grammar_.get(), t);
    } catch (const std::exception& e) {  // a lazy trigger's text that the grammar refuses
      spdlog::warn("the grammar refused token {}: {}", t, e.what());
      return SampleStatus::grammar_failed;
    }
  }
  return SampleStatus::ok;
}

Token Sampler::pick(const float* logits, const std::vector<Token>* suppress,
                    SamplerScratch& scratch) {
  switch (mode_) {
    case Mode::greedy: {
      // The common case first: the first maximum, when it is not suppressed.
      const Token best = argmax_allowed(logits, n_vocab_, nullptr);
      return is_suppressed(suppress, best) ? argmax_allowed(logits, n_vocab_, suppress) : best;
    }
    case Mode::fast:
      if (!filtered_)
        return draw_full(logits, n_vocab_, suppress, temperature_, rng_.uniform(), scratch);
      return draw_candidates(filter_candidates(logits, n_vocab_, suppress, filter_, scratch),
                             temperature_, rng_.uniform(), scratch);
    case Mode::chain:
      break;
  }
  return sample_chain(logits, suppress, scratch);
}

Token Sampler::sample_chain(const float* logits, const std::vector<Token>* suppress,
                            SamplerScratch& scratch) {
  auto& data = scratch.data;
  for (Token i = 0; i < n_vocab_; ++i)
    data[static_cast<std::size_t>(i)] = {i, logits[i], 0.0f};
  if (suppress) {
    for (Token t : *suppress)
      data[static_cast<std::size_t>(t)].logit = neg_inf;
  }
  llama_token_data_array arr{data.data(), data.size(), -1, false};
  llama_sampler_apply(chain_.get(), &arr);
  return arr.data[arr.selected].id;
}

bool Sampler::grammar_allows(Token token) {
  llama_token_data one{token, 1.0f, 0.0f};
  llama_token_data_array arr{&one, 1, -1, false};
  llama_sampler_apply(grammar_.get(), &arr);
  return one.logit != neg_inf;
}

// The grammar over the whole vocabulary; the token drawn again from what it allows. Where
// only the k best allowed tokens matter, constrain_top_k() finds the same token sooner.
SampleStatus Sampler::constrain(const float* logits, const std::vector<Token>* suppress,
                                SamplerScratch& scratch, Token& token) {
  const bool top_k = mode_ == Mode::greedy ||
                     (mode_ == Mode::fast && filter_.top_k > 0 && filter_.top_k < n_vocab_);
  // By first byte: only the tokens whose first byte passed are checked. The whole pass and,
  // where few pass (a digit, a quote), the search take them from a copy of their logits; the
  // search skips the others where many pass (a letter), cheaper than copying.
  FirstBytePass first;
  const std::size_t n_first = first_bytes_ ? probe_first_bytes(scratch, first) : 0;
  const bool gather =
      first_bytes_ && (!top_k || n_first <= static_cast<std::size_t>(n_vocab_ / 16));
  const std::size_t n = gather ? first_byte_candidates(logits, scratch, first) : 0;
  float* masked = scratch.masked.data();
  if (top_k && !whole_vocabulary_) {
    if (gather)
      return constrain_top_k(masked, suppress, scratch, token, nullptr);
    return constrain_top_k(logits, suppress, scratch, token, first_bytes_ ? &first : nullptr);
  }
  // The candidates (gathered, or the whole vocabulary), checked in one call; every token not
  // among them is -inf in `masked` already, or there is none.
  auto& data = scratch.data;
  std::size_t n_checked = n;
  if (!gather) {
    for (Token i = 0; i < n_vocab_; ++i)
      data[static_cast<std::size_t>(i)] = {i, logits[i], 0.0f};
    n_checked = static_cast<std::size_t>(n_vocab_);
  }
  llama_token_data_array arr{data.data(), n_checked, -1, false};
  llama_sampler_apply(grammar_.get(), &arr);  // sets the rejected tokens' logits to -inf
  for (std::size_t j = 0; j < n_checked; ++j)
    masked[data[j].id] = data[j].logit;
  return pick_unmasked(suppress, scratch, token);
}

// The draw from scratch.masked (the logits, -inf where the grammar rejects): what constrain()
// draws, less `suppress`; where nothing is left, the grammar's end (a suppressed token it
// allows) or its failure.
SampleStatus Sampler::pick_unmasked(const std::vector<Token>* suppress, SamplerScratch& scratch,
                                    Token& token) {
  float* masked = scratch.masked.data();
  Token held_back = -1;
  for (Token t : tokens_of(suppress)) {
    if (masked[t] != neg_inf)
      held_back = t;
    masked[t] = neg_inf;
  }
  bool allowed = false;
  for (Token i = 0; i < n_vocab_ && !allowed; ++i)
    allowed = masked[i] != neg_inf;
  if (!allowed) {
    token = held_back >= 0 ? held_back : token;
    return held_back >= 0 ? SampleStatus::grammar_end : SampleStatus::grammar_failed;
  }
  token = pick(masked, nullptr, scratch);
  return SampleStatus::ok;
}

// The grammar's allowed set in its present state (scratch.state_key): one pass over the
// tokens the first-byte rule leaves (or the whole vocabulary), stored for every sequence of
// this grammar. A view of scratch.bits when the store has no room left.
const AllowedSet* Sampler::learn_allowed(SamplerScratch& scratch) {
  auto& data = scratch.data;
  std::size_t n = static_cast<std::size_t>(n_vocab_);
  if (first_bytes_) {
    FirstBytePass first;
    probe_first_bytes(scratch, first);
    n = first_byte_tokens(scratch, first, nullptr);
  } else {
    for (Token i = 0; i < n_vocab_; ++i)
      data[static_cast<std::size_t>(i)] = {i, 0.0f, 0.0f};
  }
  llama_token_data_array arr{data.data(), n, -1, false};
  llama_sampler_apply(grammar_.get(), &arr);  // sets the rejected tokens' logits to -inf
  std::uint64_t* bits = scratch.bits.data();
  std::fill(scratch.bits.begin(), scratch.bits.end(), std::uint64_t{0});
  for (std::size_t j = 0; j < n; ++j) {
    const auto t = static_cast<std::uint32_t>(data[j].id);
    if (data[j].logit != neg_inf)
      bits[t >> 6] |= std::uint64_t{1} << (t & 63u);
  }
  if (const AllowedSet* stored = allowed_sets_->insert(scratch.state_key, bits))
    return stored;
  scratch.unstored.bits = bits;
  return &scratch.unstored;
}

// What constrain() draws over the whole vocabulary, from a state's known allowed set: the
// grammar is not asked at all. Where the draw keeps the k best (top_k) and the set is small,
// the candidates are the allowed tokens themselves: filter_candidates() over the masked
// logits would keep the same k best (the -inf fillers it adds when fewer are finite weigh
// nothing in top_p, min_p or the draw), but scans a vocabulary of -inf to find them.
SampleStatus Sampler::constrain_to(const AllowedSet& allowed, const float* logits,
                                   const std::vector<Token>* suppress, SamplerScratch& scratch,
                                   Token& token) {
  const auto n = static_cast<std::size_t>(n_vocab_);
  const std::size_t words = (n + 63) / 64;
  if (mode_ == Mode::fast && filter_.top_k > 0 && filter_.top_k < n_vocab_) {
    const auto most = static_cast<std::int32_t>(n / 8);  // more: the masked scan is as quick
    std::uint64_t* keys = scratch.keys.data();
    std::int32_t c = 0;
    const auto add = [&](Token t) {
      if (logits[t] > neg_inf && !is_suppressed(suppress, t))  // not -inf, not NaN
        keys[c++] = candidate_key(logits[t], t);
    };
    if (!allowed.bits) {
      for (Token t : allowed.tokens)
        add(t);
    }
    for (std::size_t w = 0; allowed.bits && w < words && c <= most; ++w) {
      for (std::uint64_t word = allowed.bits[w]; word != 0; word &= word - 1)
        add(static_cast<Token>(w * 64 + static_cast<std::size_t>(std::countr_zero(word))));
    }
    if (c <= most) {
      if (c > 0) {
        const std::int32_t k = filter_.top_k;
        if (c > k) {
          std::nth_element(keys, keys + (k - 1), keys + c, std::greater<>());
          c = k;
        }
        std::sort(keys, keys + c, std::greater<>());
        c = after_top_k(keys, c, filter_, scratch.weights.data());
        token = draw_candidates({keys, static_cast<std::size_t>(c)}, temperature_, rng_.uniform(),
                                scratch);
        return SampleStatus::ok;
      }
      // No finite candidate: the masked path below says whether the grammar ends or fails.
    }
  }
  float* masked = scratch.masked.data();
  if (!allowed.bits) {
    std::fill(masked, masked + n, neg_inf);
    for (Token t : allowed.tokens)
      masked[t] = logits[t];
    return pick_unmasked(suppress, scratch, token);
  }
  for (std::size_t w = 0; w < words; ++w) {
    const std::size_t begin = w * 64, end = std::min(n, begin + 64);
    const std::uint64_t word = allowed.bits[w];
    if (word == 0) {
      std::fill(masked + begin, masked + end, neg_inf);
      continue;
    }
    for (std::size_t i = begin; i < end; ++i)
      masked[i] = (word >> (i - begin)) & 1u ? logits[i] : neg_inf;
  }
  return pick_unmasked(suppress, scratch, token);
}

// What constrain() over the whole vocabulary would pick, when pick() keeps only the k best
// candidates (greedy: 1; fast: top_k): the grammar checks the candidates (not suppressed, a
// logit above -inf: the only ones the whole-vocabulary path can allow) in descending key
// order, chunk by chunk, until k pass, or until top_p and min_p have settled what the draw
// keeps (settled()). A chunk is every candidate with a logit at or above a threshold that
// has not been checked yet, so what is left is always below what was checked. The k best allowed
// keys are then the k best of those that passed, because every unchecked key is below every checked
// one; ties are no issue, as a key orders equal logits by token id, exactly as top_k_select() does.
// The filters and the draw that follow see the same sorted keys, less the -inf fillers the
// whole-vocabulary path adds when fewer than k are allowed, which weigh nothing in top_p, min_p or
// the draw.
SampleStatus Sampler::constrain_top_k(const float* logits, const std::vector<Token>* suppress,
                                      SamplerScratch& scratch, Token& token,
                                      const FirstBytePass* first) {
  const std::int32_t k = mode_ == Mode::greedy ? 1 : filter_.top_k;
  std::array<float, 4> cut{};
  const int n_cut = chunk_thresholds(logits, n_vocab_, scratch.weights.data(), cut);
  std::uint64_t* keys = scratch.keys.data();
  std::uint64_t below = any_key;  // every key not yet checked is below it
  std::int32_t n_allowed = 0;
  for (int i = 0; i <= n_cut && n_allowed < k; ++i) {
    // A chunk: the logits at or above the threshold not checked yet (the last: all the rest).
    const float t =
        i < n_cut ? cut[static_cast<std::size_t>(i)] : std::numeric_limits<float>::lowest();
    const std::int32_t c = collect(logits, n_vocab_, suppress, t, keys, below, first);
    if (c == 0)
      continue;
    n_allowed = check_chunk({keys, static_cast<std::size_t>(c)}, scratch, n_allowed);
    below = *std::min_element(keys, keys + c);
    if (mode_ == Mode::fast && n_allowed > 0 && n_allowed < k &&
        settled(scratch.allowed.data(), n_allowed, key_logit(below), k))
      break;
  }
  if (n_allowed == 0)
    return no_allowed_token(logits, suppress, token);
  std::uint64_t* allowed = scratch.allowed.data();
  if (mode_ == Mode::greedy) {
    token = greedy_allowed(logits, suppress, scratch, n_allowed, below, first);
    return SampleStatus::ok;
  }
  const std::int32_t c = std::min(n_allowed, k);
  std::partial_sort(allowed, allowed + c, allowed + n_allowed, std::greater<>());
  const std::int32_t kept = after_top_k(allowed, c, filter_, scratch.weights.data());
  token = draw_candidates({allowed, static_cast<std::size_t>(kept)}, temperature_, rng_.uniform(),
                          scratch);
  return SampleStatus::ok;
}

// The greedy choice among the allowed keys, as the whole-vocabulary argmax makes it: the
// largest logit, the lowest id among equal ones. Keys order -0 below +0, where the argmax
// sees a tie, so when the best is +0 the unchecked -0 tokens (keys below `below`) are
// checked too.
Token Sampler::greedy_allowed(const float* logits, const std::vector<Token>* suppress,
                              SamplerScratch& scratch, std::int32_t n_allowed, std::uint64_t below,
                              const FirstBytePass* first) {
  std::uint64_t* allowed = scratch.allowed.data();
  const std::uint64_t best = *std::max_element(allowed, allowed + n_allowed);
  if (std::bit_cast<std::uint32_t>(key_logit(best)) != 0u)
    return key_token(best);
  std::uint64_t* keys = scratch.keys.data();
  const std::int32_t c = collect(logits, n_vocab_, suppress, -0.0f, keys, below, first);
  if (c > 0)
    n_allowed = check_chunk({keys, static_cast<std::size_t>(c)}, scratch, n_allowed);
  Token out = key_token(best);
  for (std::int32_t j = 0; j < n_allowed; ++j) {
    if (key_logit(allowed[j]) == 0.0f)
      out = std::min(out, key_token(allowed[j]));
  }
  return out;
}

// Whether the fast path's draw is already fixed by the n (0 < n < k) allowed keys found so far
// (sorted here, in descending order), when every key not yet checked has a logit of at most
// `bound`. top_k would add up to k - n of those. min_p drops them all when `bound` is under
// its floor. top_p's cut lies between the cut with the known weights alone (the least total)
// and the cut with k - n more tokens at the bound's weight (the most; with margins for the
// exponential's error and the sum's rounding, so the claim errs only towards "not yet").
// Where both cuts agree within the known keys, or min_p drops the rest and the known keys
// are all within both cuts, after_top_k() on the known keys keeps what it keeps on all k.
bool Sampler::settled(std::uint64_t* allowed, std::int32_t n, float bound, std::int32_t k) const {
  if (filter_.top_p >= 1.0f && filter_.min_p <= 0.0f)
    return false;
  std::sort(allowed, allowed + n, std::greater<>());
  const float m = key_logit(allowed[0]);
  const bool under_floor = filter_.min_p > 0.0f && bound < m + std::log(filter_.min_p);
  if (filter_.top_p >= 1.0f)
    return under_floor;
  double known = 0.0;
  for (std::int32_t j = 0; j < n; ++j)
    known += simd::exp_scalar(key_logit(allowed[j]) - m);
  const double most = known + static_cast<double>(k - n) *
                                  (1.01 * static_cast<double>(simd::exp_scalar(bound - m)) + 1e-30);
  const auto p = static_cast<double>(filter_.top_p);
  const std::int32_t lo = top_p_cut(allowed, n, m, p * known);
  const std::int32_t hi = top_p_cut(allowed, n, m, p * most * (1.0 + 1e-9));
  return (lo == hi && hi <= n) || (under_floor && lo >= n);
}

// The grammar's verdict on the one-byte tokens (FirstByteIndex) into `first`, then on the pairs
// of the split bytes that passed: which groups of tokens can be allowed at all (nothing the
// grammar allows is left out); returns how many tokens those groups hold. Pairs cost a check
// each: where many split bytes pass (a letter: 26 of them, each with about 26 pairs, and most
// pass), probing them all costs more than the candidates they could rule out, so they are
// probed up to a budget, the largest groups first; a byte whose pairs were not probed keeps
// all of them.
std::size_t Sampler::probe_first_bytes(SamplerScratch& scratch, FirstBytePass& first) {
  constexpr std::size_t kPairBudget = 256;
  const FirstByteIndex& index = *first_bytes_;
  auto& data = scratch.data;
  std::uint8_t* pass = scratch.group_pass.data();
  std::fill_n(pass, index.n_groups(), std::uint8_t{0});
  const auto check = [&](std::size_t n) {
    llama_token_data_array arr{data.data(), n, -1, false};
    llama_sampler_apply(grammar_.get(), &arr);  // sets the rejected tokens' logits to -inf
  };
  const auto probes = index.probes();
  for (std::size_t i = 0; i < probes.size(); ++i)
    data[i] = {probes[i], 0.0f, 0.0f};
  check(probes.size());
  pass[FirstByteIndex::kAlways] = 1;
  std::size_t count = index.always_checked().size();
  for (std::size_t i = 0; i < probes.size(); ++i) {
    const unsigned char c = index.probe_byte(i);
    pass[c] = data[i].logit != neg_inf || (c >= 0x80 && !non_ascii_by_byte_);
    count += pass[c] ? index.starting_with(c).size() : 0;
  }
  std::array<unsigned char, 128> probed{};  // split bytes are ASCII
  std::size_t n_probed = 0;
  std::size_t n_pairs = 0;
  for (unsigned char c : index.split_bytes()) {
    if (!pass[c])
      continue;
    const auto pairs = index.pairs_of(c);
    if (n_pairs + pairs.size() <= kPairBudget) {
      probed[n_probed++] = c;
      for (const auto& p : pairs)
        data[n_pairs++] = {p.probe, 0.0f, 0.0f};
    } else {
      for (const auto& p : pairs) {
        pass[p.group] = 1;
        count += index.members(p.group).size();
      }
    }
  }
  if (n_pairs > 0)
    check(n_pairs);
  std::size_t j = 0;
  for (std::size_t i = 0; i < n_probed; ++i) {
    for (const auto& p : index.pairs_of(probed[i])) {
      pass[p.group] = data[j++].logit != neg_inf;
      count += pass[p.group] ? index.members(p.group).size() : 0;
    }
  }
  first.groups = index.groups();
  first.pass = pass;
  return count;
}

// The tokens `first` passes: scratch.masked gets their logits and -inf everywhere else,
// scratch.data the same tokens with their logits; returns how many.
std::size_t Sampler::first_byte_candidates(const float* logits, SamplerScratch& scratch,
                                           const FirstBytePass& first) {
  float* masked = scratch.masked.data();
  std::fill(masked, masked + n_vocab_, neg_inf);
  const std::size_t n = first_byte_tokens(scratch, first, logits);
  for (std::size_t j = 0; j < n; ++j)
    masked[scratch.data[j].id] = scratch.data[j].logit;
  return n;
}

// The tokens `first` passes into scratch.data, with their logits (0 where `logits` is null);
// returns how many.
std::size_t Sampler::first_byte_tokens(SamplerScratch& scratch, const FirstBytePass& first,
                                       const float* logits) {
  const FirstByteIndex& index = *first_bytes_;
  auto& data = scratch.data;
  std::size_t n = 0;
  const auto add = [&](std::span<const Token> tokens) {
    for (Token t : tokens)
      data[n++] = {t, logits ? logits[t] : 0.0f, 0.0f};
  };
  add(index.always_checked());
  for (unsigned c = 1; c < 256; ++c) {
    if (!first.pass[c])
      continue;
    add(index.starting_with(static_cast<unsigned char>(c)));
    for (const auto& p : index.pairs_of(static_cast<unsigned char>(c))) {
      if (first.pass[p.group])
        add(index.members(p.group));
    }
  }
  return n;
}

// Applies the grammar to `keys` in one call and appends those it allows to scratch.allowed
// after the first n_allowed; returns the new count.
std::int32_t Sampler::check_chunk(std::span<const std::uint64_t> keys, SamplerScratch& scratch,
                                  std::int32_t n_allowed) {
  auto& data = scratch.data;
  for (std::size_t j = 0; j < keys.size(); ++j)
    data[j] = {key_token(keys[j]), key_logit(keys[j]), 0.0f};
  llama_token_data_array arr{data.data(), keys.size(), -1, false};
  llama_sampler_apply(grammar_.get(), &arr);  // sets the rejected tokens' logits to -inf
  for (std::size_t j = 0; j < keys.size(); ++j) {
    if (data[j].logit != neg_inf)
      scratch.allowed[static_cast<std::size_t>(n_allowed++)] = keys[j];
  }
  return n_allowed;
}

// The grammar allows no candidate: the sequence ends on a suppressed token the grammar allows
// (the last of `suppress` that does, a repeat not counted again: the whole-vocabulary path's
// rule), or the grammar has failed.
SampleStatus Sampler::no_allowed_token(const float* logits, const std::vector<Token>* suppress,
                                       Token& token) {
  const auto list = tokens_of(suppress);
  Token held_back = -1;
  for (auto it = list.begin(); it != list.end(); ++it) {
    if (std::find(list.begin(), it, *it) == it && logits[*it] != neg_inf && grammar_allows(*it))
      held_back = *it;
  }
  token = held_back >= 0 ? held_back : token;
  return held_back >= 0 ? SampleStatus::grammar_end : SampleStatus::grammar_failed;
}

void Sampler::fill_logprobs(const float* logits, SamplerScratch& scratch, SampledToken& out) const {
  const float m = simd::max_value(logits, n_vocab_);
  const double sum = simd::block_sums(logits, n_vocab_, m, 1.0f, scratch.block_sums.data());
  const float lse = m + static_cast<float>(std::log(sum));
  out.logprob = logits[out.token] - lse;
  out.top.clear();
  if (top_n_ == 0)
    return;
  // A min-heap of the best top_n_ (logit, token) pairs; the scan looks only at logits at or
  // above the heap's smallest once it is full.
  std::array<std::pair<float, Token>, 20> heap{};
  std::size_t n = 0;
  const auto greater = [](const auto& a, const auto& b) { return a.first > b.first; };
  float threshold = neg_inf;
  simd::for_each_at_least(logits, n_vocab_, threshold, [&](int i) {
    if (n < static_cast<std::size_t>(top_n_)) {
      heap[n++] = {logits[i], i};
      std::push_heap(heap.begin(), heap.begin() + n, greater);
    } else if (logits[i] > heap[0].first) {
      std::pop_heap(heap.begin(), heap.begin() + n, greater);
      heap[n - 1] = {logits[i], i};
      std::push_heap(heap.begin(), heap.begin() + n, greater);
    }
    if (n == static_cast<std::size_t>(top_n_))
      threshold = std::nextafter(heap[0].first, pos_inf);
  });
  std::sort_heap(heap.begin(), heap.begin() + n, greater);
  for (std::size_t k = 0; k < n; ++k)
    out.top.push_back({heap[k].second, heap[k].first - lse});
}

}  // namespace troupe::engine
