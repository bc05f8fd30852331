// Internal to xgrad (not installed): what both LocalResponseNorm kernel families use (see
// local_response_norm_kernels.hpp for the families and the dispatch between them).
//
// - Across-channel work items: (sample, block of kBlock positions), cut by the shape alone.
// - NegPow: p = s^(-beta) and r = grad_scale / s for a vector of s, one instantiation per
//   BetaKind. exact() uses correctly rounded operations only (square roots and a division for
//   beta = 3/4, 1/2 and 1; xsimd's pow otherwise), which give PyTorch's results everywhere.
//   Float with beta = 3/4 or 1/2 (AlexNet's) has a fast path: reciprocal-root estimates refined
//   by Newton steps (rsqrt_refined, rsqrt4_refined), as the divider would otherwise bound the
//   kernels; it holds for normal finite s and falls back to exact() per vector elsewhere.
// - Coefficients: the options in the kernel's scalar type.
#pragma once

// GCC 12's AVX-512 intrinsic headers start some intrinsics from _mm512_undefined_ps(), which
// -Wuninitialized then reports at every inlined use (a known GCC bug, fixed in GCC 13). The
// pragmas come first so that they cover those headers.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif

#include <xgrad/layers/local_response_norm.hpp>

#include <algorithm>
#include <cmath>
#include <limits>
#include <type_traits>
#include <utility>
#include <vector>

#include <xsimd/xsimd.hpp>

#include <xgrad/core/error.hpp>
#include <xgrad/core/simd_kernels.hpp>
#include <xgrad/core/tensor.hpp>

namespace xgrad {
namespace {

// Positions per across-channel work item: a few hundred keeps items balanced over threads
// and, for row stacks, long contiguous runs per channel while the live rows fit in L1/L2.
constexpr Index kBlock = 512;

// Across-channel work items: (sample, block of kBlock positions), numbered sample-major and
// cut by the shape alone. `blocks` is the number of blocks per sample.
inline Index blocks_per_sample(Index inner) { return ceil_div(inner, kBlock); }

struct BlockItem {
  Index sample_offset;  // of the sample's first value
  Index begin, end;     // positions [begin, end) within each channel
};

inline BlockItem block_item(Index item, Index blocks, Index channels, Index inner) {
  const Index begin = (item % blocks) * kBlock;
  return {(item / blocks) * channels * inner, begin, std::min(begin + kBlock, inner)};
}

inline Index round_up(Index value, Index multiple) { return ceil_div(value, multiple) * multiple; }

// Estimates of 1/sqrt(s) for float vectors: 14 bits with AVX-512 (vrsqrt14ps), 12 bits
// otherwise. (xsimd 8.1's AVX-512 rsqrt names an intrinsic that GCC lacks, hence the direct
// call there.)
template <class A>
xsimd::batch<float, A> rsqrt_estimate(const xsimd::batch<float, A>& s) {
#if XSIMD_WITH_AVX512F
  if constexpr (std::is_base_of<xsimd::avx512f, A>::value) {
    return _mm512_rsqrt14_ps(s);
  } else
#endif
  {
    return xsimd::rsqrt(s);
  }
}
// c - a b with one rounding, as one instruction (xsimd 8.1 has no AVX-512 fnma and negates a
// first).
template <class A>
xsimd::batch<float, A> fnma_float(const xsimd::batch<float, A>& a, const xsimd::batch<float, A>& b,
                                  const xsimd::batch<float, A>& c) {
#if XSIMD_WITH_AVX512F
  if constexpr (std::is_base_of<xsimd::avx512f, A>::value) {
    return _mm512_fnmadd_ps(a, b, c);
  } else
#endif
  {
    return xsimd::fnma(a, b, c);
  }
}
constexpr bool kRsqrtEstimateIs14Bits = XSIMD_WITH_AVX512F != 0;

// 1/sqrt(s) refined by one Newton step r <- r (1.5 - 0.5 s r^2): relative error below 1e-8
// (from 14 bits) or 3e-7 (from 12 bits), for normal finite s.
inline Batch<float> rsqrt_refined(const Batch<float>& s) {
  const Batch<float> r = rsqrt_estimate(s);
  const Batch<float> half_s = Batch<float>(0.5f) * s;
  return r * xsimd::fnma(half_s * r, r, Batch<float>(1.5f));
}

// s^(-1/4): the estimate rsqrt(s) * rsqrt(rsqrt(s)) refined by one Newton step for the root
// of z^-4 = s, z <- z (1.25 - 0.25 s z^4); relative error below 1e-7 (from 14-bit estimates;
// from 12-bit ones the first estimate is refined first, giving below 1e-6).
inline Batch<float> rsqrt4_refined(const Batch<float>& s) {
  Batch<float> a;
  if constexpr (kRsqrtEstimateIs14Bits) {
    a = rsqrt_estimate(s);
  } else {
    a = rsqrt_refined(s);
  }
  const Batch<float> z = a * rsqrt_estimate(a);
  const Batch<float> z2 = z * z;
  return z * xsimd::fnma(Batch<float>(0.25f) * s, z2 * z2, Batch<float>(1.25f));
}

// p = s^(-beta) and r = grad_scale / s, with fast forms for the common betas.
//
// The backward takes r rather than p1 = s^(-beta-1): its terms are formed as
// t_j = u_j (x_j r_j) with u_j = dy_j p_j (see backward_column), never through s^(-beta-1),
// which overflows float for s below about 1e-22 (beta = 3/4) where the gradient is finite,
// nor through grad_scale x_c, which overflows for large alpha and inputs. For normal s,
// s^(-beta) is finite for |beta| <= 1 and 1/s is at most 8.5e37; x_j r_j is at most
// beta sqrt(alpha / (n k)), and x_c x_j r_j at most beta (c is in the window of j).
enum class BetaKind { ThreeQuarters, Half, One, Generic };

template <class T, BetaKind K>
struct NegPow {
  Batch<T> neg_beta;      // -beta, for Generic
  bool k_is_normal;       // k >= the smallest normal T, so s >= k is never 0 or subnormal

  // p = s^(-beta) and r = grad_scale / s (the backward).
  void operator()(const Batch<T>& s, const Batch<T>& grad_scale, Batch<T>& p, Batch<T>& r) const {
    eval<true>(s, grad_scale, p, r);
  }

  // p = s^(-beta) alone (the forward).
  Batch<T> operator()(const Batch<T>& s) const {
    Batch<T> p, r;
    eval<false>(s, s, p, r);
    return p;
  }

 private:
  // Exactly rounded operations (and xsimd's pow) only.
  template <bool WithR>
  void exact(const Batch<T>& s, const Batch<T>& grad_scale, Batch<T>& p, Batch<T>& r) const {
    const Batch<T> one(T(1));
    if constexpr (K == BetaKind::ThreeQuarters) {
      const Batch<T> root = xsimd::sqrt(s);
      p = one / (root * xsimd::sqrt(root));
    } else if constexpr (K == BetaKind::Half) {
      p = one / xsimd::sqrt(s);
    } else if constexpr (K == BetaKind::One) {
      p = one / s;
    } else {
      p = xsimd::pow(s, neg_beta);
    }
    if constexpr (WithR) {
      if constexpr (K == BetaKind::One) {
        r = grad_scale * p;
      } else {
        r = grad_scale / s;
      }
    }
  }

  template <bool WithR>
  void eval(const Batch<T>& s, const Batch<T>& grad_scale, Batch<T>& p, Batch<T>& r) const {
    if constexpr (std::is_same<T, float>::value &&
                  (K == BetaKind::ThreeQuarters || K == BetaKind::Half)) {
      // Float fast path: refined reciprocal-root estimates instead of square roots and a
      // division (the divider would otherwise bound the kernel). They hold for normal finite
      // s, where p and 1/s are finite; elsewhere (s = 0 or subnormal when k is 0, s = inf when
      // x^2 overflows, NaN) the exact form gives PyTorch's results. One compare per vector
      // when k is normal.
      const Batch<float> highest(std::numeric_limits<float>::max());
      const Batch<float> lowest(std::numeric_limits<float>::min());
      const bool in_range =
          k_is_normal ? xsimd::all(s <= highest) : xsimd::all((s >= lowest) & (s <= highest));
      if (in_range) {
        if constexpr (K == BetaKind::ThreeQuarters) {
          const Batch<float> z = rsqrt4_refined(s);  // s^(-1/4)
          const Batch<float> z2 = z * z;
          p = z2 * z;
          if constexpr (WithR) r = grad_scale * (z2 * z2);
        } else {
          p = rsqrt_refined(s);
          if constexpr (WithR) r = grad_scale * (p * p);
        }
        return;
      }
    }
    exact<WithR>(s, grad_scale, p, r);
  }
};

// Everything a kernel needs about the options, in T.
template <class T>
struct Coefficients {
  T scale;      // alpha / n (across channels) or alpha / n^2 (within channel)
  T k;
  T grad_scale; // 2 alpha beta / n or 2 alpha beta / n^2
};

}  // namespace
}  // namespace xgrad
