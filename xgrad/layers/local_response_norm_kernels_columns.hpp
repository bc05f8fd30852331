// Internal to xgrad (not installed): the column kernels of LocalResponseNorm, across channels
// with windows up to kMaxDirect = 8 (AlexNet's 5 and every size in common use).
//
// A column of adjacent positions (two or four SIMD vectors) walks down the C channels, keeping
// the last n squares (backward: also the last n terms t and the pending u) in registers, so
// each window sum costs about n/2 register adds in a fixed order and each input is loaded from
// memory once; software prefetches fetch the next columns of the same channels. The backward
// runs its three stages (s_j, then t_j and u_j, then dx_c) in the same walk, a few channels
// apart. With the float fast paths for s^(-beta) (NegPow, FastThreeQuarters) most of the
// forward's arithmetic hides under its memory accesses: a variant without the power runs no
// faster. What is left is mostly the access pattern, short runs from C planes in turn, which
// the hardware prefetchers follow less well than one stream (bench/README.md has the
// measurements).
//
// Versions, each instantiated per window size N (a compile-time constant, so the register
// rings have fixed length) and per column width V:
// - forward_column: any scalar type and BetaKind, s^(-beta) through NegPow.
// - forward_column_fast (through forward_column_three_quarters): float with beta = 3/4, the
//   usual case, with fewer operations per vector than NegPow; a column with any s outside the
//   estimates' range is redone by forward_column.
// - backward_column: any scalar type and BetaKind.
// - forward_columns / backward_columns: the OpenMP drivers. Each block is walked in the widest
//   columns (four vectors forward for n <= 5, else two; two backward), then single vectors,
//   then one ragged vector of the remaining positions (Full = false: partial loads and stores);
//   forward_block_columns walks one block (the band walks redo a chunk with it).
// - fast_three_quarters: one output vector of the fast form, shared with the band walks.
#pragma once

#include <xgrad/layers/local_response_norm_kernels_common.hpp>

#include <cstddef>
#include <type_traits>
#include <utility>

namespace xgrad {
namespace {

// The longest window the columns take (longer ones go to the row stacks).
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

// Column loads and stores: load_column / store_column (simd_kernels.hpp). Register rings:
// arrays of Reg indexed only by compile-time constants.

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
// 14-bit estimates, below 4e-6 from 12-bit ones). The estimates hold for normal finite u. The
// float kernels run with k normal (k = 0 goes to the double kernels, and k in (0, FLT_MIN) is
// refused: validate_lrn_options), and u >= c k > k, so u is never 0 or subnormal; instead of a
// test and branch per vector, the largest bit pattern of u is tracked, and a column with any u
// that is not finite (also NaN, as its pattern exceeds inf's) is redone by forward_column
// (NegPow per vector). The choice depends on the column's data alone, so results stay
// bit-identical at any thread count (y does not alias x, so the redo can reread x). Should k
// ever not be normal (`usable` false), the columns take NegPow's forms throughout.
struct FastThreeQuarters {
  float u_scale;  // c alpha / n
  float u_k;      // c k
  bool usable;    // k is normal, so every finite u is
};

// One output vector of the fast form: x_c s^(-3/4) from the window sum of squares `sum`, with
// u's bit pattern folded into `highest`. The column walks and the band walks
// (local_response_norm_kernels_bands.hpp) share it, so both give the same bits.
inline Batch<float> fast_three_quarters(const Batch<float>& sum, const Batch<float>& xc,
                                        const Batch<float>& scale, const Batch<float>& k,
                                        const Batch<float>& seven_thirds, Batch<std::uint32_t>& highest) {
  using B = Batch<float>;
  using U = Batch<std::uint32_t>;
  const B u = xsimd::fma(scale, sum, k);
  highest = xsimd::max(highest, xsimd::bitwise_cast<U>(u));
  const B r = rsqrt_estimate(u);
  const B z = r * rsqrt_estimate(r);
  const B z2 = z * z;
  const B w = fnma_float(u, z2 * z2, seven_thirds);
  return xc * (z2 * z) * w;
}

// Whether the u of a walk, folded into highest, were all finite.
inline bool fast_three_quarters_held(const Batch<std::uint32_t>& highest) {
  using U = Batch<std::uint32_t>;
  return !xsimd::any(highest >= U(std::uint32_t(0x7f800000u)));  // inf or NaN
}

template <int N, int V, bool Full>
XGRAD_FLATTEN bool forward_column_fast(const float* x, float* y, Index channels, Index stride,
                                       Index count,
                         const FastThreeQuarters fast) {
  using B = Batch<float>;
  using U = Batch<std::uint32_t>;
  constexpr Index kL = kLanes<float>;
  constexpr int kHi = (N - 1) / 2;  // the window of c is [c - N/2, c + kHi]
  const B scale(fast.u_scale), k(fast.u_k), zero(0.0f), seven_thirds(7.0f / 3.0f);
  U highest(std::uint32_t(0));
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
    const Index at = c * stride + v * kL;
    const B out = fast_three_quarters(squares[v].sum(), load_column<Full>(x + at, count), scale, k,
                                      seven_thirds, highest);
    store_column<Full>(out, y + at, count);
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
  return fast_three_quarters_held(highest);
}

template <int N, int V, bool Full>
void forward_column_three_quarters(const float* x, float* y, Index channels, Index stride,
                                   Index count, const Coefficients<float>& co,
                                   const NegPow<float, BetaKind::ThreeQuarters>& pow,
                                   const FastThreeQuarters& fast) {
  const bool ok = fast.usable && forward_column_fast<N, V, Full>(x, y, channels, stride, count, fast);
  if (!ok) forward_column<float, BetaKind::ThreeQuarters, N, V, Full>(x, y, channels, stride, count, co, pow);
}

template <class T, BetaKind K, int N, int V, bool Full>
void backward_column(const T* x, const T* dy, T* dx, Index channels, Index stride, Index count,
                     const Coefficients<T>& co, const NegPow<T, K>& pow, bool accumulate) {
  constexpr int kLo = N / 2, kHi = (N - 1) / 2;
  const Batch<T> scale(co.scale), k(co.k), grad_scale(co.grad_scale), zero(T(0));
  RegisterWindow<T, N> squares[V];  // x^2 of channels i-N+1 .. i
  RegisterWindow<T, N> terms[V];    // t = u x grad_scale / s of channels j-N+1 .. j
  Reg<T> direct[V][kLo + 1];        // u = dy s^(-beta) of channels j-kLo .. j
  for_each_vector<V>([&](auto v) {
    for (auto& u : direct[v]) u = zero;
  });
  // Three stages in step, each lagging the previous: i enters the squares; j = i - kHi has its
  // whole window, so s_j, t_j and u_j are formed; c = j - kLo has all t of its mirrored window
  // [c - kHi, c + kLo], so dx_c = u_c - x_c sum(t) is written. grad_scale is in t, as
  // t = u (x grad_scale / s), which keeps the intermediates near the size of dx (see NegPow).
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
        Batch<T> p, r;
        pow(s, grad_scale, p, r);
        u = load_column<Full>(dy + j * stride + offset, count) * p;
        t = u * (load_column<Full>(x + j * stride + offset, count) * r);
      }
      terms[v].push(t);
      if constexpr (kLo > 0) {
        shift_in<T>(direct[v], u);
      } else {
        direct[v][0] = u;
      }
      if (c < 0) return;
      const Batch<T> xc = load_column<Full>(x + c * stride + offset, count);
      Batch<T> g = xsimd::fnma(xc, terms[v].sum(), Batch<T>(direct[v][0]));
      if (accumulate) g += load_column<Full>(dx + c * stride + offset, count);
      store_column<Full>(g, dx + c * stride + offset, count);
    });
  }
}

// (4/3)^(4/3) folded into the coefficients: see FastThreeQuarters.
template <class T>
FastThreeQuarters fast_three_quarters_of(const Coefficients<T>& co, bool k_is_normal) {
  const double c = std::pow(4.0 / 3.0, 4.0 / 3.0);
  return {static_cast<float>(c * static_cast<double>(co.scale)),
          static_cast<float>(c * static_cast<double>(co.k)), k_is_normal};
}

// Positions [begin, end) of one sample (x, y at its first value) in column walks: full
// columns, single vectors, the ragged end.
template <class T, BetaKind K, int N>
void forward_block_columns(const T* x, T* y, Index begin, Index end, Index channels, Index inner,
                           const Coefficients<T>& co, const NegPow<T, K>& pow,
                           const FastThreeQuarters& fast) {
  constexpr int kV = kForwardColumnVectors<N>;
  constexpr Index kWide = kV * kLanes<T>;
  Index p = begin;
  if constexpr (std::is_same<T, float>::value && K == BetaKind::ThreeQuarters) {
    for (; p + kWide <= end; p += kWide) {
      forward_column_three_quarters<N, kV, true>(x + p, y + p, channels, inner, kLanes<T>, co, pow,
                                                 fast);
    }
    for (; p + kLanes<T> <= end; p += kLanes<T>) {
      forward_column_three_quarters<N, 1, true>(x + p, y + p, channels, inner, kLanes<T>, co, pow,
                                                fast);
    }
    if (p < end) {
      forward_column_three_quarters<N, 1, false>(x + p, y + p, channels, inner, end - p, co, pow,
                                                 fast);
    }
  } else {
    (void)fast;  // used by the float, beta = 3/4 instantiations only
    for (; p + kWide <= end; p += kWide) {
      forward_column<T, K, N, kV, true>(x + p, y + p, channels, inner, kLanes<T>, co, pow);
    }
    for (; p + kLanes<T> <= end; p += kLanes<T>) {
      forward_column<T, K, N, 1, true>(x + p, y + p, channels, inner, kLanes<T>, co, pow);
    }
    if (p < end) {
      forward_column<T, K, N, 1, false>(x + p, y + p, channels, inner, end - p, co, pow);
    }
  }
}

// Items are (sample, block of kBlock positions), cut by the shape alone; each thread writes
// only its items' outputs.
template <class T, BetaKind K, int N>
void forward_columns(const T* x, T* y, Index samples, Index channels, Index inner,
                     const Coefficients<T>& co, const NegPow<T, K>& pow) {
  const Index blocks = blocks_per_sample(inner);
  const Index items = samples * blocks;
  const FastThreeQuarters fast = fast_three_quarters_of(co, pow.k_is_normal);
#pragma omp parallel for schedule(static)
  for (Index item = 0; item < items; ++item) {
    const BlockItem b = block_item(item, blocks, channels, inner);
    forward_block_columns<T, K, N>(x + b.sample_offset, y + b.sample_offset, b.begin, b.end,
                                   channels, inner, co, pow, fast);
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

}  // namespace
}  // namespace xgrad
