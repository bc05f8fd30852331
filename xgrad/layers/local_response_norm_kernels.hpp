// Internal to xgrad (not installed): the LocalResponseNorm kernels, shared by
// local_response_norm_forward.cpp and local_response_norm_backward.cpp so that the two halves,
// each a few minutes of compiling, build in parallel. Everything stays in an unnamed namespace,
// as it was when the kernels lived in one file: each of the two translation units has its own
// internal copy of what it uses, which GCC is free to clone and specialise.
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

// Dimension key: N = batch, C = channels, S = inner size (product of the trailing dims),
// H, W = height, width (within channel), n = window size.
//
// Two kernel families, each a forward and an analytic backward side by side:
//
// - Columns (across channels, n <= kMaxDirect = 8: AlexNet's 5 and every size in common use).
//   A column of adjacent positions (two or four SIMD vectors) walks down the C channels,
//   keeping the last n squares (backward: also the last n terms t and the pending u) in
//   registers, so each window sum costs about n/2 register adds in a fixed order and each
//   input is loaded from memory once; software prefetches fetch the next columns of the same
//   channels. The backward runs its three stages (s_j, then t_j and u_j, then dx_c) in the
//   same walk, a few channels apart. With the float fast paths for s^(-beta) (NegPow,
//   FastThreeQuarters) most of the forward's arithmetic hides under its memory accesses: a
//   variant without the power runs no faster. What is left is mostly the access pattern,
//   short runs from C planes in turn, which the hardware prefetchers follow less well than
//   one stream (README, Performance, has the measurements).
// - Row stacks (across channels with longer windows, and the within-channel mode). A stack of
//   rows of contiguous values (the C channels of a block of positions, or the H rows of one
//   image plane) is walked once; RowWindowSum forms window sums over neighbouring rows with
//   a block prefix/suffix scheme (O(1) adds per value for any window, no subtraction) and the
//   arithmetic is vectorised across each row. Within channel, each row is first summed along
//   W (the 2-D window is separable).
//
// Neither family keeps a running sum with subtraction: in float a large square passing
// through the window would leave its rounding error in every later sum (and could drive a
// sum of squares negative), so a 1e-3 channel next to a 1e3 one would come out wrong.
//
// Threading: work items (a sample and a block of kBlock positions; or a sample and channel
// plane) are cut by the shape alone, never by the thread count, and an OpenMP static loop
// hands whole items to threads: each output element is written by one thread with the same
// arithmetic at any thread count, so results are bit-identical.

namespace xgrad {
namespace {

// Positions per across-channel work item: a few hundred keeps items balanced over threads
// and, for row stacks, long contiguous runs per channel while the live rows fit in L1/L2.
constexpr Index kBlock = 512;

// Across-channel work items: (sample, block of kBlock positions), numbered sample-major and
// cut by the shape alone. `blocks` is the number of blocks per sample.
inline Index blocks_per_sample(Index inner) { return (inner + kBlock - 1) / kBlock; }

struct BlockItem {
  Index sample_offset;  // of the sample's first value
  Index begin, end;     // positions [begin, end) within each channel
};

inline BlockItem block_item(Index item, Index blocks, Index channels, Index inner) {
  const Index begin = (item % blocks) * kBlock;
  return {(item / blocks) * channels * inner, begin, std::min(begin + kBlock, inner)};
}

inline Index round_up(Index value, Index multiple) { return (value + multiple - 1) / multiple * multiple; }

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

// p = s^(-beta) and p1 = s^(-beta-1), with fast forms for the common betas.
enum class BetaKind { ThreeQuarters, Half, One, Generic };

template <class T, BetaKind K>
struct NegPow {
  Batch<T> neg_beta;      // -beta, for Generic
  bool k_is_normal;       // k >= the smallest normal T, so s >= k is never 0 or subnormal

  // Exactly rounded operations (and xsimd's pow) only.
  static void exact(const Batch<T>& s, const Batch<T>& neg_beta, Batch<T>& p, Batch<T>& p1) {
    const Batch<T> one(T(1));
    if constexpr (K == BetaKind::ThreeQuarters) {
      const Batch<T> root = xsimd::sqrt(s);
      p = one / (root * xsimd::sqrt(root));
      p1 = p / s;
    } else if constexpr (K == BetaKind::Half) {
      p = one / xsimd::sqrt(s);
      p1 = p / s;
    } else if constexpr (K == BetaKind::One) {
      p = one / s;
      p1 = p * p;
    } else {
      p = xsimd::pow(s, neg_beta);
      p1 = p / s;
    }
  }

  void operator()(const Batch<T>& s, Batch<T>& p, Batch<T>& p1) const {
    if constexpr (std::is_same<T, float>::value &&
                  (K == BetaKind::ThreeQuarters || K == BetaKind::Half)) {
      // Float fast path: refined reciprocal-root estimates instead of square roots and a
      // division (the divider would otherwise bound the kernel). They hold for normal finite
      // s; elsewhere (s = 0 or subnormal when k is, s = inf when x^2 overflows, NaN) the exact
      // form gives PyTorch's results. One compare per vector in the usual case k >= 1e-38.
      const Batch<float> highest(std::numeric_limits<float>::max());
      const Batch<float> lowest(std::numeric_limits<float>::min());
      const bool in_range =
          k_is_normal ? xsimd::all(s <= highest) : xsimd::all((s >= lowest) & (s <= highest));
      if (in_range) {
        if constexpr (K == BetaKind::ThreeQuarters) {
          const Batch<float> z = rsqrt4_refined(s);  // s^(-1/4)
          const Batch<float> z2 = z * z;
          p = z2 * z;
          p1 = p * (z2 * z2);
        } else {
          p = rsqrt_refined(s);
          p1 = p * p * p;
        }
        return;
      }
    }
    exact(s, neg_beta, p, p1);
  }

  Batch<T> operator()(const Batch<T>& s) const {
    Batch<T> p, p1;
    (*this)(s, p, p1);
    return p;
  }
};

// Everything a kernel needs about the options, in T.
template <class T>
struct Coefficients {
  T scale;      // alpha / n (across channels) or alpha / n^2 (within channel)
  T k;
  T grad_scale; // 2 alpha beta / n or 2 alpha beta / n^2
};

// ---- Columns -------------------------------------------------------------------------------

// Across channels with windows up to kMaxDirect (see the top of the file).
constexpr int kMaxDirect = 8;
// SIMD vectors per full column of the backward, which keeps three register rings per vector.
constexpr int kColumnVectors = 2;
// SIMD vectors per full column of the forward: four (256 contiguous bytes of float per channel
// visited) while the window ring of every vector still fits in the registers, which measured
// 10-20% faster than two on both AlexNet shapes; two for longer windows.
template <int N>
constexpr int kForwardColumnVectors = N <= 5 ? 4 : 2;
// How far ahead (in values) a column walk of V vectors prefetches: the same channels, two
// columns on.
template <class T, int V = kColumnVectors>
constexpr Index kPrefetchDistance = 2 * V * kLanes<T>;

// Column loads and stores: Full columns have all lanes; the ragged last column of a row has
// `count` and goes through a stack copy (a separate instantiation, so the full path has no
// calls that would force the register windows out to memory).
template <bool Full, class T>
Batch<T> load_column(const T* src, Index count) {
  if constexpr (Full) {
    return Batch<T>::load_unaligned(src);
  } else {
    return load_part(src, count);
  }
}

template <bool Full, class T>
void store_column(const Batch<T>& value, T* dst, Index count) {
  if constexpr (Full) {
    value.store_unaligned(dst);
  } else {
    store_part(value, dst, count);
  }
}

// Register rings: arrays of raw SIMD registers (not of xsimd::batch, which GCC keeps in
// memory) indexed only by compile-time constants (index_sequence folds, not loops), so the
// compiler keeps them in registers.
template <class T>
using Reg = typename Batch<T>::register_type;

// Shifts a ring one step: the oldest value leaves, `value` enters last.
template <class T, std::size_t L, std::size_t... I>
void shift_in(Reg<T> (&ring)[L], const Batch<T>& value, std::index_sequence<I...>) {
  ((ring[I] = ring[I + 1]), ...);
  ring[L - 1] = value;
}

template <class T, std::size_t L>
void shift_in(Reg<T> (&ring)[L], const Batch<T>& value) {
  shift_in<T>(ring, value, std::make_index_sequence<L - 1>());
}

// Sum of the last N values pushed (zeros before the first push), in registers. Consecutive
// values are added in pairs once, P_e = v_{e-1} + v_e, and a window is the sum of
// ceil(N/2) - 1 earlier pairs plus the newest pair (even N) or value (odd N): ceil(N/2) adds
// per push instead of N - 1, always in the same order.
template <class T, int N>
class RegisterWindow {
 public:
  RegisterWindow() {
    last_ = Batch<T>(T(0));
    for (auto& v : pairs_) v = Batch<T>(T(0));
  }

  void push(const Batch<T>& value) {
    if constexpr (N > 1) shift_in<T>(pairs_, Batch<T>(last_) + value);
    last_ = value;
  }

  Batch<T> sum() const {
    if constexpr (N == 1) {
      return last_;
    } else {
      // pairs_ holds P_{e-N+2} .. P_e; the window [e-N+1, e] is P at ring indices 0, 2, ...
      // up to N-2, plus v_e when N is odd.
      Batch<T> total = sum_pairs(std::make_index_sequence<(N - 2) / 2>());
      if constexpr (N % 2 == 1) total += Batch<T>(last_);
      return total;
    }
  }

 private:
  template <std::size_t... I>
  Batch<T> sum_pairs(std::index_sequence<I...>) const {
    Batch<T> total = pairs_[0];
    ((total += Batch<T>(pairs_[2 * (I + 1)])), ...);
    return total;
  }

  Reg<T> pairs_[N > 1 ? N - 1 : 1];  // P_{e-N+2} .. P_e, oldest first
  Reg<T> last_;                      // v_e
};

// Column walks inline everything they call (the per-vector lambdas above all): one call left
// out of line forces the register rings out to memory, which GCC's inliner does for wider
// columns otherwise. Not under AddressSanitizer, where the fully inlined, instrumented walks
// take GCC many times longer to compile and speed does not matter.
#if defined(__SANITIZE_ADDRESS__)
#define XGRAD_FLATTEN
#else
#define XGRAD_FLATTEN __attribute__((flatten))
#endif

// Calls f(std::integral_constant<int, I>()) for I = 0 .. V-1: a loop over the vectors of a
// column whose index is a compile-time constant, so per-vector state stays in registers.
template <class F, int... I>
void for_each_vector(std::integer_sequence<int, I...>, F&& f) {
  (f(std::integral_constant<int, I>()), ...);
}
template <int V, class F>
void for_each_vector(F&& f) {
  for_each_vector(std::make_integer_sequence<int, V>(), f);
}

// A column is V full vectors of adjacent positions (or, at the ragged end of a block, one
// vector of `count` positions), walked down the channels x[c * stride], c = 0 .. C-1. Wider
// columns load and store more contiguous bytes per channel visited.
template <class T, BetaKind K, int N, int V, bool Full>
XGRAD_FLATTEN void forward_column(const T* x, T* y, Index channels, Index stride, Index count,
                    const Coefficients<T>& co, const NegPow<T, K>& pow) {
  constexpr int kHi = (N - 1) / 2;  // the window of c is [c - N/2, c + kHi]
  const Batch<T> scale(co.scale), k(co.k), zero(T(0));
  RegisterWindow<T, N> squares[V];  // x^2 of channels e-N+1 .. e (zero outside [0, C))
  for (Index e = 0; e < channels + kHi; ++e) {  // e: the channel entering the window
    const T* xe = x + e * stride;
    if (e < channels) {
      for_each_vector<V>([&](auto v) {
        const Batch<T> xv = load_column<Full>(xe + v * kLanes<T>, count);
        __builtin_prefetch(xe + v * kLanes<T> + kPrefetchDistance<T, V>);
        __builtin_prefetch(y + e * stride + v * kLanes<T> + kPrefetchDistance<T, V>, 1);
        squares[v].push(xv * xv);
      });
    } else {
      for_each_vector<V>([&](auto v) { squares[v].push(zero); });
    }
    const Index c = e - kHi;
    if (c < 0) continue;
    for_each_vector<V>([&](auto v) {
      const Batch<T> s = xsimd::fma(scale, squares[v].sum(), k);
      const Index at = c * stride + v * kLanes<T>;
      store_column<Full>(load_column<Full>(x + at, count) * pow(s), y + at, count);
    });
  }
}

// Float forward with beta = 3/4 (the usual case): fewer operations per vector than NegPow.
// With u = c s, c = (4/3)^(4/3) (folded into the scale and k of the fma forming s), and z an
// estimate of u^(-1/4) with relative error d, s^(-3/4) = (4/3) u^(-3/4) is formed as
//   z^3 (7/3 - u z^4) = (4/3) z^3 (7/4 - 3/4 u z^4),
// one linearised Newton step for u^(-3/4): relative error about 10.5 d^2 (below 1e-7 from the
// 14-bit estimates, below 4e-6 from 12-bit ones). The estimates hold for normal finite u;
// instead of a test and branch per vector, the largest (and, when k may be subnormal or 0,
// the smallest) bit pattern of u is tracked, and a column with any u that is not normal and
// finite (also NaN, as its pattern exceeds inf's) is redone by forward_column (NegPow per
// vector). The choice depends on the column's data alone, so results stay bit-identical at
// any thread count (y does not alias x, so the redo can reread x).
struct FastThreeQuarters {
  float u_scale;  // c alpha / n
  float u_k;      // c k
  bool check_low; // k may be subnormal or 0, so u may be too
};

template <int N, int V, bool Full, bool CheckLow>
XGRAD_FLATTEN bool forward_column_fast(const float* x, float* y, Index channels, Index stride,
                                       Index count,
                         const FastThreeQuarters fast) {
  using B = Batch<float>;
  using U = Batch<std::uint32_t>;
  constexpr Index kL = kLanes<float>;
  constexpr int kHi = (N - 1) / 2;  // the window of c is [c - N/2, c + kHi]
  const B scale(fast.u_scale), k(fast.u_k), zero(0.0f), seven_thirds(7.0f / 3.0f);
  U highest(std::uint32_t(0)), lowest(~std::uint32_t(0));
  RegisterWindow<float, N> squares[V];
  // Vector v of channel e enters its window and (from e = kHi on) channel c = e - kHi leaves
  // as output, one vector after another, so only one vector's temporaries are live at a time.
  auto enter = [&](auto v, Index e) {
    const float* xe = x + e * stride + v * kL;
    const B xv = load_column<Full>(xe, count);
    __builtin_prefetch(xe + kPrefetchDistance<float, V>);
    // y for writing, one column on (measured about 5% faster than none or two columns on)
    __builtin_prefetch(y + e * stride + v * kL + kPrefetchDistance<float, V> / 2, 1);
    squares[v].push(xv * xv);
  };
  auto emit = [&](auto v, Index c) {
    const B u = xsimd::fma(scale, squares[v].sum(), k);
    const U bits = xsimd::bitwise_cast<U>(u);
    highest = xsimd::max(highest, bits);
    if constexpr (CheckLow) lowest = xsimd::min(lowest, bits);
    const B r = rsqrt_estimate(u);
    const B z = r * rsqrt_estimate(r);
    const B z2 = z * z;
    const B w = fnma_float(u, z2 * z2, seven_thirds);
    const Index at = c * stride + v * kL;
    store_column<Full>(load_column<Full>(x + at, count) * (z2 * z) * w, y + at, count);
  };
  Index e = 0;
  for (; e < channels && e < kHi; ++e) {
    for_each_vector<V>([&](auto v) { enter(v, e); });
  }
  for (; e < channels; ++e) {
    for_each_vector<V>([&](auto v) {
      enter(v, e);
      emit(v, e - kHi);
    });
  }
  for (; e < channels + kHi; ++e) {
    for_each_vector<V>([&](auto v) {
      squares[v].push(zero);
      if (e >= kHi) emit(v, e - kHi);
    });
  }
  bool ok = !xsimd::any(highest >= U(std::uint32_t(0x7f800000u)));  // inf or NaN
  if constexpr (CheckLow) ok = ok && !xsimd::any(lowest < U(std::uint32_t(0x00800000u)));
  return ok;
}

template <int N, int V, bool Full>
void forward_column_three_quarters(const float* x, float* y, Index channels, Index stride,
                                   Index count, const Coefficients<float>& co,
                                   const NegPow<float, BetaKind::ThreeQuarters>& pow,
                                   const FastThreeQuarters& fast) {
  const bool ok = fast.check_low
                      ? forward_column_fast<N, V, Full, true>(x, y, channels, stride, count, fast)
                      : forward_column_fast<N, V, Full, false>(x, y, channels, stride, count, fast);
  if (!ok) forward_column<float, BetaKind::ThreeQuarters, N, V, Full>(x, y, channels, stride, count, co, pow);
}

template <class T, BetaKind K, int N, int V, bool Full>
void backward_column(const T* x, const T* dy, T* dx, Index channels, Index stride, Index count,
                     const Coefficients<T>& co, const NegPow<T, K>& pow, bool accumulate) {
  constexpr int kLo = N / 2, kHi = (N - 1) / 2;
  const Batch<T> scale(co.scale), k(co.k), grad_scale(co.grad_scale), zero(T(0));
  RegisterWindow<T, N> squares[V];  // x^2 of channels i-N+1 .. i
  RegisterWindow<T, N> terms[V];    // t = dy x s^(-beta-1) of channels j-N+1 .. j
  Reg<T> direct[V][kLo + 1];        // u = dy s^(-beta) of channels j-kLo .. j
  for_each_vector<V>([&](auto v) {
    for (auto& u : direct[v]) u = zero;
  });
  // Three stages in step, each lagging the previous: i enters the squares; j = i - kHi has its
  // whole window, so s_j, t_j and u_j are formed; c = j - kLo has all t of its mirrored window
  // [c - kHi, c + kLo], so dx_c = u_c - grad_scale x_c sum(t) is written.
  for (Index i = 0; i < channels + N - 1; ++i) {
    const Index j = i - kHi, c = j - kLo;
    for_each_vector<V>([&](auto v) {
      const Index offset = v * kLanes<T>;
      Batch<T> xv = zero;
      if (i < channels) {
        xv = load_column<Full>(x + i * stride + offset, count);
        __builtin_prefetch(x + i * stride + offset + kPrefetchDistance<T>);
        __builtin_prefetch(dy + i * stride + offset + kPrefetchDistance<T>);
        __builtin_prefetch(dx + i * stride + offset + kPrefetchDistance<T>, 1);
      }
      squares[v].push(xv * xv);
      Batch<T> t = zero, u = zero;
      if (j >= 0 && j < channels) {
        const Batch<T> s = xsimd::fma(scale, squares[v].sum(), k);
        Batch<T> p, p1;
        pow(s, p, p1);
        const Batch<T> g = load_column<Full>(dy + j * stride + offset, count);
        u = g * p;
        t = g * load_column<Full>(x + j * stride + offset, count) * p1;
      }
      terms[v].push(t);
      if constexpr (kLo > 0) {
        shift_in<T>(direct[v], u);
      } else {
        direct[v][0] = u;
      }
      if (c < 0) return;
      const Batch<T> xc = load_column<Full>(x + c * stride + offset, count);
      Batch<T> g = xsimd::fnma(grad_scale * xc, terms[v].sum(), Batch<T>(direct[v][0]));
      if (accumulate) g += load_column<Full>(dx + c * stride + offset, count);
      store_column<Full>(g, dx + c * stride + offset, count);
    });
  }
}

// Items are (sample, block of kBlock positions), cut by the shape alone; each thread writes
// only its items' outputs. Within an item: full columns, single vectors, the ragged end.
template <class T, BetaKind K, int N>
void forward_columns(const T* x, T* y, Index samples, Index channels, Index inner,
                     const Coefficients<T>& co, const NegPow<T, K>& pow) {
  constexpr int kV = kForwardColumnVectors<N>;
  constexpr Index kWide = kV * kLanes<T>;
  const Index blocks = blocks_per_sample(inner);
  const Index items = samples * blocks;
  // (4/3)^(4/3): see FastThreeQuarters.
  const double c = std::pow(4.0 / 3.0, 4.0 / 3.0);
  const FastThreeQuarters fast{static_cast<float>(c * static_cast<double>(co.scale)),
                               static_cast<float>(c * static_cast<double>(co.k)),
                               !pow.k_is_normal};
  (void)fast;  // unused by the other instantiations
#pragma omp parallel for schedule(static)
  for (Index item = 0; item < items; ++item) {
    const BlockItem b = block_item(item, blocks, channels, inner);
    const T* xi = x + b.sample_offset;
    T* yi = y + b.sample_offset;
    Index p = b.begin;
    if constexpr (std::is_same<T, float>::value && K == BetaKind::ThreeQuarters) {
      for (; p + kWide <= b.end; p += kWide) {
        forward_column_three_quarters<N, kV, true>(xi + p, yi + p, channels, inner, kLanes<T>,
                                                   co, pow, fast);
      }
      for (; p + kLanes<T> <= b.end; p += kLanes<T>) {
        forward_column_three_quarters<N, 1, true>(xi + p, yi + p, channels, inner, kLanes<T>, co,
                                                  pow, fast);
      }
      if (p < b.end) {
        forward_column_three_quarters<N, 1, false>(xi + p, yi + p, channels, inner, b.end - p, co,
                                                   pow, fast);
      }
    } else {
      for (; p + kWide <= b.end; p += kWide) {
        forward_column<T, K, N, kV, true>(xi + p, yi + p, channels, inner, kLanes<T>, co, pow);
      }
      for (; p + kLanes<T> <= b.end; p += kLanes<T>) {
        forward_column<T, K, N, 1, true>(xi + p, yi + p, channels, inner, kLanes<T>, co, pow);
      }
      if (p < b.end) {
        forward_column<T, K, N, 1, false>(xi + p, yi + p, channels, inner, b.end - p, co, pow);
      }
    }
  }
}

template <class T, BetaKind K, int N>
void backward_columns(const T* x, const T* dy, T* dx, Index samples, Index channels, Index inner,
                      const Coefficients<T>& co, const NegPow<T, K>& pow, bool accumulate) {
  constexpr Index kWide = kColumnVectors * kLanes<T>;
  const Index blocks = blocks_per_sample(inner);
  const Index items = samples * blocks;
#pragma omp parallel for schedule(static)
  for (Index item = 0; item < items; ++item) {
    const BlockItem b = block_item(item, blocks, channels, inner);
    const T* xi = x + b.sample_offset;
    const T* dyi = dy + b.sample_offset;
    T* dxi = dx + b.sample_offset;
    Index p = b.begin;
    for (; p + kWide <= b.end; p += kWide) {
      backward_column<T, K, N, kColumnVectors, true>(xi + p, dyi + p, dxi + p, channels, inner,
                                                     kLanes<T>, co, pow, accumulate);
    }
    for (; p + kLanes<T> <= b.end; p += kLanes<T>) {
      backward_column<T, K, N, 1, true>(xi + p, dyi + p, dxi + p, channels, inner, kLanes<T>, co,
                                        pow, accumulate);
    }
    if (p < b.end) {
      backward_column<T, K, N, 1, false>(xi + p, dyi + p, dxi + p, channels, inner, b.end - p, co,
                                         pow, accumulate);
    }
  }
}

// ---- Row stacks ------------------------------------------------------------------------------

// out = a + b over `stride` values (a multiple of the lane count; aligned buffers).
template <class T>
void add_rows(const T* a, const T* b, T* out, Index stride) {
  for (Index i = 0; i < stride; i += kLanes<T>) {
    (Batch<T>::load_aligned(a + i) + Batch<T>::load_aligned(b + i)).store_aligned(out + i);
  }
}

// The window of position c is [c - lo, c + hi], clipped to [0, extent - 1]. Clipping lo and
// hi themselves to extent - 1 changes no window sum and bounds the work when size >> extent.
struct Window {
  Index lo;
  Index hi;
  Index len() const { return lo + hi + 1; }
};

// PyTorch's window: [c - floor(n/2), c + floor((n-1)/2)].
inline Window forward_window(Index size, Index extent) {
  return {std::min(size / 2, extent - 1), std::min((size - 1) / 2, extent - 1)};
}

// The positions whose window contains c: [c - floor((n-1)/2), c + floor(n/2)].
inline Window mirrored_window(Index size, Index extent) {
  return {std::min((size - 1) / 2, extent - 1), std::min(size / 2, extent - 1)};
}

// Window sums over a stack of rows v_0 .. v_{R-1} (zero outside [0, R)), streamed: the c-th
// call of next() returns the row W_c = sum_{j = c-lo}^{c+hi} v_j.
//
// No sliding sum (see the top of the file). Instead, with the padded index p = j + lo the window of c is [c, c + len - 1]; cut the
// padded stack into blocks of len rows. A window is the suffix (from c) of its first block
// plus the prefix (up to c + len - 1) of the next one, or exactly one block when c starts a
// block. Suffix sums are formed once per block when its last row arrives, the prefix is a
// running sum restarted at each block: O(1) adds per value whatever the window length, no
// subtraction, and each sum adds at most len terms (non-negative terms stay non-negative).
// Rows are pulled from the producer in order, only len - 1 rows ahead of the output.
template <class T>
class RowWindowSum {
 public:
  // Starts a stack of `rows` rows, each stored in `stride` values (a multiple of the lanes).
  void reset(Index rows, Window window, Index stride) {
    rows_ = rows;
    lo_ = window.lo;
    len_ = window.len();
    stride_ = stride;
    storage_.resize(static_cast<std::size_t>((2 * len_ + 1) * stride_));  // (2 len + 1, stride)
    suffix_.assign(static_cast<std::size_t>(len_), nullptr);
    prefix_ = nullptr;
    next_in_ = 0;
    next_out_ = 0;
  }

  // Returns W_c for c = 0, 1, ... in turn (valid until the next call). produce(j, row) must
  // write v_j into row (`stride` values); it is called for j = 0, 1, ... in order.
  template <class Produce>
  const T* next(Produce&& produce) {
    const Index c = next_out_++;
    while (next_in_ < c + len_) push(produce);
    const Index i = c % len_;
    if (i == 0) return suffix_[0];  // the window is exactly one block
    T* out = row(2 * len_);
    add_rows(suffix_[static_cast<std::size_t>(i)], prefix_, out, stride_);
    return out;
  }

 private:
  // Buffer rows: [0, len) the current block's values, [len, 2 len - 1) suffix sums,
  // 2 len - 1 the running prefix, 2 len the output.
  T* row(Index r) { return storage_.data() + r * stride_; }

  template <class Produce>
  void push(Produce& produce) {
    const Index p = next_in_++;
    const Index i = p % len_;
    T* value = row(i);
    const Index j = p - lo_;
    if (j >= 0 && j < rows_) {
      produce(j, value);
    } else {
      std::fill(value, value + stride_, T(0));
    }
    if (i == 0) {
      prefix_ = value;
    } else {
      add_rows(prefix_, value, row(2 * len_ - 1), stride_);
      prefix_ = row(2 * len_ - 1);
    }
    if (i == len_ - 1) {  // block complete: its suffix sums
      suffix_[static_cast<std::size_t>(i)] = value;
      for (Index r = len_ - 2; r >= 0; --r) {
        add_rows(suffix_[static_cast<std::size_t>(r + 1)], row(r), row(len_ + r), stride_);
        suffix_[static_cast<std::size_t>(r)] = row(len_ + r);
      }
    }
  }

  Index rows_ = 0, lo_ = 0, len_ = 1, stride_ = 0;
  Index next_in_ = 0, next_out_ = 0;
  AlignedVector<T> storage_;   // (2 len + 1, stride)
  std::vector<T*> suffix_;     // (len) suffix-sum rows of the last complete block
  T* prefix_ = nullptr;        // running prefix of the block being filled
};

// Row filters applied to each produced row before the row window sums. Across channels there
// is none; within channel it is the window sum along W, which makes the sums two-dimensional
// (separable: along W here, then along H by RowWindowSum).
template <class T>
struct NoFilter {
  void operator()(T* /*row*/) {}
};

template <class T>
class WidthWindowSum {
 public:
  WidthWindowSum(Index width, Window window) : width_(width), window_(window) {
    // (lo zeros, width values, zeros up to the last vector read)
    padded_.assign(static_cast<std::size_t>(round_up(width, kLanes<T>) + window.len() + kLanes<T>), T(0));
  }

  // row[w] <- sum_{v = w-lo}^{w+hi} row[v] (zero outside [0, width)), directly: the
  // window is short along one image row, and direct sums cannot drift.
  void operator()(T* row) {
    std::copy(row, row + width_, padded_.begin() + window_.lo);
    const Index len = window_.len();
    for (Index w = 0; w < width_; w += kLanes<T>) {
      Batch<T> acc = Batch<T>::load_unaligned(padded_.data() + w);
      for (Index d = 1; d < len; ++d) acc += Batch<T>::load_unaligned(padded_.data() + w + d);
      acc.store_aligned(row + w);
    }
  }

 private:
  Index width_;
  Window window_;
  AlignedVector<T> padded_;
};

// q[i] = x[i]^2 for the `width` values of one row (q aligned, padded to whole vectors with 0).
template <class T>
void store_squares(const T* x, Index width, T* q) {
  for (Index i = 0; i < width; i += kLanes<T>) {
    const Batch<T> v = load_part(x + i, std::min(kLanes<T>, width - i));
    (v * v).store_aligned(q + i);
  }
}

// Forward over one row stack: `rows` rows of `width` values, row r at x + r * row_stride.
template <class T, class Pow, class Filter>
void forward_rows(const T* x, T* y, Index rows, Index row_stride, Index width, Window window,
                  const Coefficients<T>& co, const Pow& pow, Filter& filter, RowWindowSum<T>& sums) {
  const Index stride = round_up(width, kLanes<T>);
  sums.reset(rows, window, stride);
  auto squares = [&](Index j, T* q) {
    store_squares(x + j * row_stride, width, q);
    filter(q);
  };
  const Batch<T> scale(co.scale), k(co.k);
  for (Index c = 0; c < rows; ++c) {
    const T* sum = sums.next(squares);
    const T* xc = x + c * row_stride;
    T* yc = y + c * row_stride;
    for (Index i = 0; i < width; i += kLanes<T>) {
      const Index count = std::min(kLanes<T>, width - i);
      const Batch<T> s = xsimd::fma(scale, Batch<T>::load_aligned(sum + i), k);
      store_part(load_part(xc + i, count) * pow(s), yc + i, count);
    }
  }
}

// Backward over one row stack, one pass over the rows with three streams in step:
//   sums_s gives s_j (window sums of x^2, as in the forward);
//   the producer of sums_t turns s_j into t_j = dy_j x_j s_j^(-beta-1) and u_j = dy_j s_j^(-beta),
//   keeping u_j in a small ring;
//   sums_t gives T_c = the mirrored window sum of t, and dx_c = u_c - grad_scale x_c T_c.
template <class T, class Pow, class FilterS, class FilterT>
void backward_rows(const T* x, const T* dy, T* dx, Index rows, Index row_stride, Index width,
                   Window window, Window mirrored, const Coefficients<T>& co, const Pow& pow,
                   FilterS& filter_s, FilterT& filter_t, RowWindowSum<T>& sums_s,
                   RowWindowSum<T>& sums_t, AlignedVector<T>& ring, bool accumulate) {
  const Index stride = round_up(width, kLanes<T>);
  sums_s.reset(rows, window, stride);
  sums_t.reset(rows, mirrored, stride);
  // sums_t pulls t_j (and so u_j) at most mirrored.hi rows ahead of the dx row it finishes.
  const Index ring_rows = mirrored.hi + 1;
  ring.resize(static_cast<std::size_t>(ring_rows * stride));  // (ring_rows, stride)
  auto squares = [&](Index j, T* q) {
    store_squares(x + j * row_stride, width, q);
    filter_s(q);
  };
  const Batch<T> scale(co.scale), k(co.k);
  auto terms = [&](Index j, T* t) {
    const T* sum = sums_s.next(squares);  // s_j: rows are requested in order
    const T* xj = x + j * row_stride;
    const T* dyj = dy + j * row_stride;
    T* u = ring.data() + (j % ring_rows) * stride;
    for (Index i = 0; i < width; i += kLanes<T>) {
      const Index count = std::min(kLanes<T>, width - i);
      const Batch<T> s = xsimd::fma(scale, Batch<T>::load_aligned(sum + i), k);
      Batch<T> p, p1;
      pow(s, p, p1);
      const Batch<T> g = load_part(dyj + i, count);
      (g * p).store_aligned(u + i);
      (g * load_part(xj + i, count) * p1).store_aligned(t + i);
    }
    filter_t(t);
  };
  const Batch<T> grad_scale(co.grad_scale);
  for (Index c = 0; c < rows; ++c) {
    const T* tsum = sums_t.next(terms);
    const T* u = ring.data() + (c % ring_rows) * stride;
    const T* xc = x + c * row_stride;
    T* dxc = dx + c * row_stride;
    for (Index i = 0; i < width; i += kLanes<T>) {
      const Index count = std::min(kLanes<T>, width - i);
      const Batch<T> xv = load_part(xc + i, count);
      Batch<T> g = xsimd::fnma(grad_scale * xv, Batch<T>::load_aligned(tsum + i),
                               Batch<T>::load_aligned(u + i));
      if (accumulate) g += load_part(dxc + i, count);
      store_part(g, dxc + i, count);
    }
  }
}

// The view of a valid input as work items.
struct Geometry {
  Index n = 0, c = 0, inner = 0;  // (N, C, S)
  Index h = 0, w = 0;             // within channel: S = H * W
};

inline Geometry geometry_of(const std::vector<std::size_t>& shape) {
  Geometry g;
  g.n = static_cast<Index>(shape[0]);
  g.c = static_cast<Index>(shape[1]);
  g.inner = 1;
  for (std::size_t d = 2; d < shape.size(); ++d) g.inner *= static_cast<Index>(shape[d]);
  if (shape.size() == 4) {
    g.h = static_cast<Index>(shape[2]);
    g.w = static_cast<Index>(shape[3]);
  }
  return g;
}

template <class T>
Coefficients<T> coefficients_of(const LrnOptions& o) {
  const double divisor = o.mode() == LrnMode::WithinChannel
                             ? static_cast<double>(o.size()) * static_cast<double>(o.size())
                             : static_cast<double>(o.size());
  return {static_cast<T>(o.alpha() / divisor), static_cast<T>(o.k()),
          static_cast<T>(2.0 * o.alpha() * o.beta() / divisor)};
}

template <class T, BetaKind K>
void forward_impl(const T* x, T* y, const Geometry& g, const LrnOptions& o) {
  const Coefficients<T> co = coefficients_of<T>(o);
  const NegPow<T, K> pow{Batch<T>(static_cast<T>(-o.beta())),
                         o.k() >= static_cast<double>(std::numeric_limits<T>::min())};
  if (o.mode() == LrnMode::AcrossChannels && o.size() <= kMaxDirect) {
    switch (o.size()) {
      case 1: forward_columns<T, K, 1>(x, y, g.n, g.c, g.inner, co, pow); break;
      case 2: forward_columns<T, K, 2>(x, y, g.n, g.c, g.inner, co, pow); break;
      case 3: forward_columns<T, K, 3>(x, y, g.n, g.c, g.inner, co, pow); break;
      case 4: forward_columns<T, K, 4>(x, y, g.n, g.c, g.inner, co, pow); break;
      case 5: forward_columns<T, K, 5>(x, y, g.n, g.c, g.inner, co, pow); break;
      case 6: forward_columns<T, K, 6>(x, y, g.n, g.c, g.inner, co, pow); break;
      case 7: forward_columns<T, K, 7>(x, y, g.n, g.c, g.inner, co, pow); break;
      default: forward_columns<T, K, 8>(x, y, g.n, g.c, g.inner, co, pow); break;
    }
  } else if (o.mode() == LrnMode::AcrossChannels) {
    const Index blocks = blocks_per_sample(g.inner);
    const Index items = g.n * blocks;
    const Window window = forward_window(o.size(), g.c);
#pragma omp parallel
    {
      RowWindowSum<T> sums;
      NoFilter<T> filter;
      // Items are (sample, block of positions); each thread writes only its items' outputs.
#pragma omp for schedule(static)
      for (Index item = 0; item < items; ++item) {
        const BlockItem b = block_item(item, blocks, g.c, g.inner);
        const Index offset = b.sample_offset + b.begin;
        forward_rows(x + offset, y + offset, g.c, g.inner, b.end - b.begin, window, co, pow,
                     filter, sums);
      }
    }
  } else {
    const Index items = g.n * g.c;
    const Window window_h = forward_window(o.size(), g.h);
    const Window window_w = forward_window(o.size(), g.w);
#pragma omp parallel
    {
      RowWindowSum<T> sums;
      WidthWindowSum<T> filter(g.w, window_w);
      // Items are (sample, channel) planes; each thread writes only its planes.
#pragma omp for schedule(static)
      for (Index item = 0; item < items; ++item) {
        const Index offset = item * g.inner;
        forward_rows(x + offset, y + offset, g.h, g.w, g.w, window_h, co, pow, filter, sums);
      }
    }
  }
}

template <class T, BetaKind K>
void backward_impl(const T* x, const T* dy, T* dx, const Geometry& g, const LrnOptions& o,
                   bool accumulate) {
  const Coefficients<T> co = coefficients_of<T>(o);
  const NegPow<T, K> pow{Batch<T>(static_cast<T>(-o.beta())),
                         o.k() >= static_cast<double>(std::numeric_limits<T>::min())};
  if (o.mode() == LrnMode::AcrossChannels && o.size() <= kMaxDirect) {
    const Index n = g.n, c = g.c, s = g.inner;
    switch (o.size()) {
      case 1: backward_columns<T, K, 1>(x, dy, dx, n, c, s, co, pow, accumulate); break;
      case 2: backward_columns<T, K, 2>(x, dy, dx, n, c, s, co, pow, accumulate); break;
      case 3: backward_columns<T, K, 3>(x, dy, dx, n, c, s, co, pow, accumulate); break;
      case 4: backward_columns<T, K, 4>(x, dy, dx, n, c, s, co, pow, accumulate); break;
      case 5: backward_columns<T, K, 5>(x, dy, dx, n, c, s, co, pow, accumulate); break;
      case 6: backward_columns<T, K, 6>(x, dy, dx, n, c, s, co, pow, accumulate); break;
      case 7: backward_columns<T, K, 7>(x, dy, dx, n, c, s, co, pow, accumulate); break;
      default: backward_columns<T, K, 8>(x, dy, dx, n, c, s, co, pow, accumulate); break;
    }
  } else if (o.mode() == LrnMode::AcrossChannels) {
    const Index blocks = blocks_per_sample(g.inner);
    const Index items = g.n * blocks;
    const Window window = forward_window(o.size(), g.c);
    const Window mirrored = mirrored_window(o.size(), g.c);
#pragma omp parallel
    {
      RowWindowSum<T> sums_s, sums_t;
      AlignedVector<T> ring;
      NoFilter<T> filter_s, filter_t;
      // Items are (sample, block of positions); each thread writes only its items' outputs.
#pragma omp for schedule(static)
      for (Index item = 0; item < items; ++item) {
        const BlockItem b = block_item(item, blocks, g.c, g.inner);
        const Index offset = b.sample_offset + b.begin;
        backward_rows(x + offset, dy + offset, dx + offset, g.c, g.inner, b.end - b.begin,
                      window, mirrored, co, pow, filter_s, filter_t, sums_s, sums_t, ring,
                      accumulate);
      }
    }
  } else {
    const Index items = g.n * g.c;
    const Window window_h = forward_window(o.size(), g.h);
    const Window mirrored_h = mirrored_window(o.size(), g.h);
#pragma omp parallel
    {
      RowWindowSum<T> sums_s, sums_t;
      AlignedVector<T> ring;
      WidthWindowSum<T> filter_s(g.w, forward_window(o.size(), g.w));
      WidthWindowSum<T> filter_t(g.w, mirrored_window(o.size(), g.w));
      // Items are (sample, channel) planes; each thread writes only its planes.
#pragma omp for schedule(static)
      for (Index item = 0; item < items; ++item) {
        const Index offset = item * g.inner;
        backward_rows(x + offset, dy + offset, dx + offset, g.h, g.w, g.w, window_h, mirrored_h,
                      co, pow, filter_s, filter_t, sums_s, sums_t, ring, accumulate);
      }
    }
  }
}

inline BetaKind beta_kind(double beta) {
  if (beta == 0.75) return BetaKind::ThreeQuarters;
  if (beta == 0.5) return BetaKind::Half;
  if (beta == 1.0) return BetaKind::One;
  return BetaKind::Generic;
}

inline bool is_empty(const std::vector<std::size_t>& shape) {
  return std::any_of(shape.begin(), shape.end(), [](std::size_t d) { return d == 0; });
}

}  // namespace

}  // namespace xgrad
