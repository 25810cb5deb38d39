#pragma once
// The sampler's vector kernels (internal to sampler.cpp): a NaN-skipping maximum, sums of
// exp((x - m) * inv_t) per block of 64 logits, the same exponentials for one block, and a
// threshold scan that visits only the logits at or above a (rising) threshold.
//
// SSE2 on every x86-64 build; the two passes that read the whole vocabulary (max, exp sums)
// also have AVX2+FMA variants chosen at run time when the CPU has them (the build targets
// plain x86-64). Scalar code elsewhere. The exponential is Cephes' expf (range reduction by
// ln 2, a degree-5 polynomial; relative error about 2e-7), exactly 0 for arguments below
// -87.3 (that is, for -inf and NaN too), never inf.
//
// Thread-safety: pure functions.

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>

#if defined(__x86_64__) || defined(__i386__)
#define TROUPE_SAMPLER_X86 1
#include <immintrin.h>
#endif

namespace troupe::engine::simd {

inline constexpr int block = 64;
inline constexpr float neg_inf = -std::numeric_limits<float>::infinity();

namespace cephes {
inline constexpr float lo = -87.3365478515625f, hi = 88.0f;
inline constexpr float log2e = 1.44269504088896341f, c1 = 0.693359375f, c2 = -2.12194440e-4f;
inline constexpr float p0 = 1.9875691500e-4f, p1 = 1.3981999507e-3f, p2 = 8.3334519073e-3f,
                       p3 = 4.1665795894e-2f, p4 = 1.6666665459e-1f, p5 = 5.0000001201e-1f;
}  // namespace cephes

// The scalar form of the vector exponential (tails, non-x86).
inline float exp_scalar(float x) {
  using namespace cephes;
  if (!(x >= lo))
    return 0.0f;  // NaN, -inf, underflow
  x = std::min(x, hi);
  const float fx = std::floor(x * log2e + 0.5f);
  x = x - fx * c1 - fx * c2;
  float y = ((((p0 * x + p1) * x + p2) * x + p3) * x + p4) * x + p5;
  y = y * x * x + x + 1.0f;
  const auto e = static_cast<std::uint32_t>(static_cast<std::int32_t>(fx) + 127) << 23;
  return y * std::bit_cast<float>(e);
}

#if defined(TROUPE_SAMPLER_X86)

inline bool has_avx2() {
  static const bool yes = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  return yes;
}

inline __m128 exp128(__m128 x) {
  using namespace cephes;
  const __m128 valid = _mm_cmpge_ps(x, _mm_set1_ps(lo));  // false for NaN
  x = _mm_min_ps(_mm_max_ps(x, _mm_set1_ps(lo)), _mm_set1_ps(hi));
  __m128 fx = _mm_add_ps(_mm_mul_ps(x, _mm_set1_ps(log2e)), _mm_set1_ps(0.5f));
  const __m128 t = _mm_cvtepi32_ps(_mm_cvttps_epi32(fx));  // floor: truncate, then fix negatives
  fx = _mm_sub_ps(t, _mm_and_ps(_mm_cmpgt_ps(t, fx), _mm_set1_ps(1.0f)));
  x = _mm_sub_ps(x, _mm_mul_ps(fx, _mm_set1_ps(c1)));
  x = _mm_sub_ps(x, _mm_mul_ps(fx, _mm_set1_ps(c2)));
  __m128 y = _mm_set1_ps(p0);
  for (const float p : {p1, p2, p3, p4, p5})
    y = _mm_add_ps(_mm_mul_ps(y, x), _mm_set1_ps(p));
  y = _mm_add_ps(_mm_add_ps(_mm_mul_ps(y, _mm_mul_ps(x, x)), x), _mm_set1_ps(1.0f));
  const __m128i e = _mm_slli_epi32(_mm_add_epi32(_mm_cvttps_epi32(fx), _mm_set1_epi32(127)), 23);
  return _mm_and_ps(_mm_mul_ps(y, _mm_castsi128_ps(e)), valid);
}

__attribute__((target("avx2,fma"))) inline __m256 exp256(__m256 x) {
  using namespace cephes;
  const __m256 valid = _mm256_cmp_ps(x, _mm256_set1_ps(lo), _CMP_GE_OQ);
  x = _mm256_min_ps(_mm256_max_ps(x, _mm256_set1_ps(lo)), _mm256_set1_ps(hi));
  __m256 fx = _mm256_floor_ps(_mm256_fmadd_ps(x, _mm256_set1_ps(log2e), _mm256_set1_ps(0.5f)));
  x = _mm256_fnmadd_ps(fx, _mm256_set1_ps(c1), x);
  x = _mm256_fnmadd_ps(fx, _mm256_set1_ps(c2), x);
  __m256 y = _mm256_set1_ps(p0);
  for (const float p : {p1, p2, p3, p4, p5})
    y = _mm256_fmadd_ps(y, x, _mm256_set1_ps(p));
  y = _mm256_fmadd_ps(y, _mm256_mul_ps(x, x), _mm256_add_ps(x, _mm256_set1_ps(1.0f)));
  const __m256i e =
      _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvttps_epi32(fx), _mm256_set1_epi32(127)), 23);
  return _mm256_and_ps(_mm256_mul_ps(y, _mm256_castsi256_ps(e)), valid);
}

inline float hsum128(__m128 v) {
  v = _mm_add_ps(v, _mm_movehl_ps(v, v));
  v = _mm_add_ss(v, _mm_shuffle_ps(v, v, 1));
  return _mm_cvtss_f32(v);
}

inline float hmax128(__m128 v) {
  v = _mm_max_ps(v, _mm_movehl_ps(v, v));
  v = _mm_max_ss(v, _mm_shuffle_ps(v, v, 1));
  return _mm_cvtss_f32(v);
}

// maxps keeps its second operand when either is NaN: NaNs never win.
inline float max_sse2(const float* x, int n, int& i) {
  __m128 m0 = _mm_set1_ps(neg_inf), m1 = m0, m2 = m0, m3 = m0;
  for (; i + 16 <= n; i += 16) {
    m0 = _mm_max_ps(_mm_loadu_ps(x + i), m0);
    m1 = _mm_max_ps(_mm_loadu_ps(x + i + 4), m1);
    m2 = _mm_max_ps(_mm_loadu_ps(x + i + 8), m2);
    m3 = _mm_max_ps(_mm_loadu_ps(x + i + 12), m3);
  }
  return hmax128(_mm_max_ps(_mm_max_ps(m0, m1), _mm_max_ps(m2, m3)));
}

__attribute__((target("avx2,fma"))) inline float max_avx2(const float* x, int n, int& i) {
  __m256 m0 = _mm256_set1_ps(neg_inf), m1 = m0, m2 = m0, m3 = m0;
  for (; i + 32 <= n; i += 32) {
    m0 = _mm256_max_ps(_mm256_loadu_ps(x + i), m0);
    m1 = _mm256_max_ps(_mm256_loadu_ps(x + i + 8), m1);
    m2 = _mm256_max_ps(_mm256_loadu_ps(x + i + 16), m2);
    m3 = _mm256_max_ps(_mm256_loadu_ps(x + i + 24), m3);
  }
  const __m256 m = _mm256_max_ps(_mm256_max_ps(m0, m1), _mm256_max_ps(m2, m3));
  return hmax128(_mm_max_ps(_mm256_castps256_ps128(m), _mm256_extractf128_ps(m, 1)));
}

// One full block's 64 exponentials, summed as a tree.
inline float block_sum_sse2(const float* x, __m128 m, __m128 inv_t) {
  __m128 acc = _mm_setzero_ps();
  for (int j = 0; j < block; j += 4)
    acc = _mm_add_ps(acc, exp128(_mm_mul_ps(_mm_sub_ps(_mm_loadu_ps(x + j), m), inv_t)));
  return hsum128(acc);
}

__attribute__((target("avx2,fma"))) inline double block_sums_avx2(const float* x, int n_full,
                                                                  float m, float inv_t,
                                                                  float* sums) {
  const __m256 vm = _mm256_set1_ps(m), vt = _mm256_set1_ps(inv_t);
  double total = 0.0;
  for (int b = 0; b < n_full; ++b) {
    const float* p = x + static_cast<std::ptrdiff_t>(b) * block;
    __m256 a0 = _mm256_setzero_ps(), a1 = a0;
    for (int j = 0; j < block; j += 16) {
      a0 = _mm256_add_ps(a0, exp256(_mm256_mul_ps(_mm256_sub_ps(_mm256_loadu_ps(p + j), vm), vt)));
      a1 = _mm256_add_ps(a1,
                         exp256(_mm256_mul_ps(_mm256_sub_ps(_mm256_loadu_ps(p + j + 8), vm), vt)));
    }
    const __m256 a = _mm256_add_ps(a0, a1);
    const float s = hsum128(_mm_add_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps(a, 1)));
    sums[b] = s;
    total += s;
  }
  return total;
}

__attribute__((target("avx2,fma"))) inline void exp_values_avx2(const float* x, int len, float m,
                                                                float inv_t, float* out, int& i) {
  const __m256 vm = _mm256_set1_ps(m), vt = _mm256_set1_ps(inv_t);
  for (; i + 8 <= len; i += 8)
    _mm256_storeu_ps(out + i, exp256(_mm256_mul_ps(_mm256_sub_ps(_mm256_loadu_ps(x + i), vm), vt)));
}

#endif  // TROUPE_SAMPLER_X86

// The largest non-NaN value of x[0..n); -inf when there is none.
inline float max_value(const float* x, int n) {
  int i = 0;
  float best = neg_inf;
#if defined(TROUPE_SAMPLER_X86)
  best = has_avx2() ? max_avx2(x, n, i) : max_sse2(x, n, i);
#endif
  for (; i < n; ++i)
    best = x[i] > best ? x[i] : best;
  return best;
}

// The first i with x[i] == v, or n.
inline int first_index_of(const float* x, int n, float v) {
  int k = 0;
#if defined(TROUPE_SAMPLER_X86)
  const __m128 target = _mm_set1_ps(v);
  for (; k + 4 <= n; k += 4) {
    if (const int hit = _mm_movemask_ps(_mm_cmpeq_ps(_mm_loadu_ps(x + k), target)))
      return k + __builtin_ctz(static_cast<unsigned>(hit));
  }
#endif
  for (; k < n; ++k) {
    if (x[k] == v)
      return k;
  }
  return n;
}

// out[i] = exp((x[i] - m) * inv_t) for i < len: the same arithmetic as block_sums().
inline void exp_values(const float* x, int len, float m, float inv_t, float* out) {
  int i = 0;
#if defined(TROUPE_SAMPLER_X86)
  if (has_avx2()) {
    exp_values_avx2(x, len, m, inv_t, out, i);
  } else {
    const __m128 vm = _mm_set1_ps(m), vt = _mm_set1_ps(inv_t);
    for (; i + 4 <= len; i += 4)
      _mm_storeu_ps(out + i, exp128(_mm_mul_ps(_mm_sub_ps(_mm_loadu_ps(x + i), vm), vt)));
  }
#endif
  for (; i < len; ++i)
    out[i] = exp_scalar((x[i] - m) * inv_t);
}

// sums[b] = sum of exp((x[i] - m) * inv_t) over block b (64 values; the last may be shorter),
// for (n + 63) / 64 blocks. Returns their total.
inline double block_sums(const float* x, int n, float m, float inv_t, float* sums) {
  const int n_full = n / block;
  double total = 0.0;
  int b = 0;
#if defined(TROUPE_SAMPLER_X86)
  if (has_avx2()) {
    total = block_sums_avx2(x, n_full, m, inv_t, sums);
    b = n_full;
  } else {
    const __m128 vm = _mm_set1_ps(m), vt = _mm_set1_ps(inv_t);
    for (; b < n_full; ++b) {
      sums[b] = block_sum_sse2(x + static_cast<std::ptrdiff_t>(b) * block, vm, vt);
      total += sums[b];
    }
  }
#endif
  float buf[block];
  for (; b * block < n; ++b) {
    const int len = std::min(block, n - b * block);
    exp_values(x + static_cast<std::ptrdiff_t>(b) * block, len, m, inv_t, buf);
    float s = 0.0f;
    for (int j = 0; j < len; ++j)
      s += buf[j];
    sums[b] = s;
    total += s;
  }
  return total;
}

// Calls hit(i) for every i in index order with x[i] >= threshold (NaNs never). `threshold` is
// re-read after every hit, so the callback may raise it (a running top-k).
template <class Hit>
void for_each_at_least(const float* x, int n, const float& threshold, Hit&& hit) {
  int i = 0;
#if defined(TROUPE_SAMPLER_X86)
  for (; i + 16 <= n; i += 16) {
    const __m128 t = _mm_set1_ps(threshold);
    const int mask = _mm_movemask_ps(_mm_cmpge_ps(_mm_loadu_ps(x + i), t)) |
                     _mm_movemask_ps(_mm_cmpge_ps(_mm_loadu_ps(x + i + 4), t)) << 4 |
                     _mm_movemask_ps(_mm_cmpge_ps(_mm_loadu_ps(x + i + 8), t)) << 8 |
                     _mm_movemask_ps(_mm_cmpge_ps(_mm_loadu_ps(x + i + 12), t)) << 12;
    for (unsigned bits = static_cast<unsigned>(mask); bits != 0; bits &= bits - 1) {
      const int k = i + __builtin_ctz(bits);
      if (x[k] >= threshold)  // the threshold may have risen within these 16
        hit(k);
    }
  }
#endif
  for (; i < n; ++i) {
    if (x[i] >= threshold)
      hit(i);
  }
}

}  // namespace troupe::engine::simd
