// Internal to xgrad (not installed: the install leaves out "*_kernels*.hpp"): the SIMD load
// and store helpers the kernels share (layers/conv2d.cpp, the LocalResponseNorm kernels), over
// xsimd batches of the build's widest vectors. Like the kernel headers, everything is in an
// unnamed namespace: each translation unit gets its own internal copy, which GCC inlines and
// specialises into its loops as if it had been written there.
//
// Versions, and why:
// - load_part / store_part: one vector with only `count` lanes valid, so the ragged end of a
//   row goes through the same vector arithmetic as the rest. AVX-512 builds use masked moves;
//   other targets go through an aligned stack copy.
// - copy_run / add_run: dst = src and dst += src over a short run (a row of an image plane),
//   where a library call per run would cost more than the copy: whole vectors, then the end.
//   The float versions on AVX2 (and AVX-512) targets move 8 values at a time, and the ragged
//   end (fewer than 8, e.g. a whole 7-wide row) in one mask-register move with AVX-512VL, or
//   in two overlapping plain moves of 4 or 2 floats with AVX2 alone; the generic ones finish
//   with a scalar loop. The float versions require src and dst not to overlap.
#pragma once

#include <algorithm>
#include <cstdint>
#include <type_traits>
#include <utility>
#include <vector>

#include <xsimd/xsimd.hpp>
#if defined(__AVX2__)
#include <immintrin.h>
#endif

// Before a scalar loop that must not be unrolled (the ragged end of a run): GCC spells it
// "GCC unroll 0", which clang refuses (it wants a positive count), clang "loop unroll(disable)".
#if defined(__clang__)
#define XGRAD_NO_UNROLL _Pragma("clang loop unroll(disable)")
#else
#define XGRAD_NO_UNROLL _Pragma("GCC unroll 0")
#endif

// On a kernel: inline everything it calls (per-vector lambdas above all). One call left out of
// line forces arrays of registers out to memory, which GCC's inliner does for wider register
// blocks otherwise. Not under AddressSanitizer, where the fully inlined, instrumented kernels
// take GCC many times longer to compile and speed does not matter.
#if defined(__SANITIZE_ADDRESS__)
#define XGRAD_FLATTEN
#else
#define XGRAD_FLATTEN __attribute__((flatten))
#endif

namespace xgrad {
namespace {

// The kernels' signed index and size type.
using Index = std::int64_t;

template <class T>
using Batch = xsimd::batch<T>;
template <class T>
constexpr Index kLanes = static_cast<Index>(Batch<T>::size);
template <class T>
using AlignedVector = std::vector<T, xsimd::aligned_allocator<T>>;

// a / b rounded up, for positive a and b.
inline Index ceil_div(Index a, Index b) { return (a + b - 1) / b; }

// Raw SIMD registers: arrays of them (not of xsimd::batch, which GCC keeps in memory) indexed
// only by compile-time constants (for_each_vector, index_sequence folds) stay in registers.
template <class T>
using Reg = typename Batch<T>::register_type;

// Calls f(std::integral_constant<int, I>()) for I = 0 .. V-1: a loop whose index is a
// compile-time constant, so per-vector state (arrays of Reg) stays in registers.
template <class F, int... I>
void for_each_vector(std::integer_sequence<int, I...>, F&& f) {
  (f(std::integral_constant<int, I>()), ...);
}
template <int V, class F>
void for_each_vector(F&& f) {
  for_each_vector(std::make_integer_sequence<int, V>(), f);
}

// Loads `count` (1..lanes) values and zero-fills the other lanes.
template <class T>
Batch<T> load_part(const T* src, Index count) {
  if (count == kLanes<T>) return Batch<T>::load_unaligned(src);
#if XSIMD_WITH_AVX512F
  if constexpr (std::is_base_of<xsimd::avx512f, typename Batch<T>::arch_type>::value) {
    // Masked load: the lanes past `count` read as zero (and are not accessed).
    const auto mask = static_cast<std::uint32_t>((std::uint64_t(1) << count) - 1);
    if constexpr (std::is_same<T, float>::value) {
      return _mm512_maskz_loadu_ps(static_cast<__mmask16>(mask), src);
    } else if constexpr (std::is_same<T, double>::value) {
      return _mm512_maskz_loadu_pd(static_cast<__mmask8>(mask), src);
    }
  }
#endif
  alignas(Batch<T>) T tmp[kLanes<T>] = {};
  std::copy(src, src + count, tmp);
  return Batch<T>::load_aligned(tmp);
}

// Stores the first `count` (1..lanes) lanes of `value`; dst[count, lanes) is not accessed.
template <class T>
void store_part(const Batch<T>& value, T* dst, Index count) {
  if (count == kLanes<T>) {
    value.store_unaligned(dst);
    return;
  }
#if XSIMD_WITH_AVX512F
  if constexpr (std::is_base_of<xsimd::avx512f, typename Batch<T>::arch_type>::value) {
    const auto mask = static_cast<std::uint32_t>((std::uint64_t(1) << count) - 1);
    if constexpr (std::is_same<T, float>::value) {
      _mm512_mask_storeu_ps(dst, static_cast<__mmask16>(mask), value);
      return;
    } else if constexpr (std::is_same<T, double>::value) {
      _mm512_mask_storeu_pd(dst, static_cast<__mmask8>(mask), value);
      return;
    }
  }
#endif
  alignas(Batch<T>) T tmp[kLanes<T>];
  value.store_aligned(tmp);
  std::copy(tmp, tmp + count, dst);
}

// Loads and stores of one vector that has all lanes (Full) or the first `count`: the two are
// separate instantiations, so the full path has no calls that would force arrays of registers
// out to memory.
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

// dst[0, n) = src[0, n).
template <class T>
inline void copy_run(const T* src, T* dst, Index n) {
  Index i = 0;
  for (; i + kLanes<T> <= n; i += kLanes<T>) Batch<T>::load_unaligned(src + i).store_unaligned(dst + i);
  XGRAD_NO_UNROLL
  for (; i < n; ++i) dst[i] = src[i];
}

// dst[0, n) = src[0], src[2], ..., src[2n - 2]: a stride-2 run (reads src[0, 2n - 1) only).
template <class T>
inline void copy_run_stride2(const T* src, T* dst, Index n) {
  for (Index i = 0; i < n; ++i) dst[i] = src[2 * i];
}

#if defined(__AVX512F__)
// The first `count` of 16 lanes (none for count <= 0, all for count >= 16).
inline __mmask16 first_lanes16(Index count) {
  return static_cast<__mmask16>(count >= 16 ? 0xFFFFu : count <= 0 ? 0u : (1u << count) - 1u);
}

// The indices 0, 2, ..., 30: _mm512_permutex2var_ps(lo, even_lanes(), hi) keeps the even
// elements of the 32 in lo and hi (a stride-2 row).
inline __m512i even_lanes() { return _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30); }

// 16 values at a time: two loads of 16 and the even-lane permute; masked loads and stores at
// the end, so nothing past src[2n - 2] or dst[n - 1] is touched.
template <>
inline void copy_run_stride2<float>(const float* src, float* dst, Index n) {
  const __m512i even = even_lanes();
  for (Index i = 0; i < n; i += 16) {
    const Index readable = 2 * (n - i) - 1;  // src[2i, 2n - 1)
    const __m512 lo = _mm512_maskz_loadu_ps(first_lanes16(readable), src + 2 * i);
    const __m512 hi = _mm512_maskz_loadu_ps(first_lanes16(readable - 16), src + 2 * i + 16);
    _mm512_mask_storeu_ps(dst + i, first_lanes16(n - i), _mm512_permutex2var_ps(lo, even, hi));
  }
}
#endif

// The sum of src[0, n) in double, in 16 running sums (element i goes to sum i % 16), added
// together in a fixed order at the end: independent chains that the compiler turns into vector
// adds, where one running sum would wait on each add's latency (a 50,000-element bias-gradient
// row took ~80 us). The order depends on n alone, so the result does too.
template <class T>
inline double sum_in_double(const T* src, Index n) {
  constexpr Index kSums = 16;
  double sums[kSums] = {};
  Index i = 0;
  for (; i + kSums <= n; i += kSums) {
    for (Index j = 0; j < kSums; ++j) sums[j] += static_cast<double>(src[i + j]);
  }
  for (Index j = 0; i + j < n; ++j) sums[j] += static_cast<double>(src[i + j]);
  for (Index width = kSums / 2; width >= 1; width /= 2) {
    for (Index j = 0; j < width; ++j) sums[j] += sums[j + width];
  }
  return sums[0];
}

// dst[0, n) += src[0, n).
template <class T>
inline void add_run(const T* src, T* dst, Index n) {
  Index i = 0;
  for (; i + kLanes<T> <= n; i += kLanes<T>) {
    (Batch<T>::load_unaligned(dst + i) + Batch<T>::load_unaligned(src + i)).store_unaligned(dst + i);
  }
  XGRAD_NO_UNROLL
  for (; i < n; ++i) dst[i] += src[i];
}

#if defined(__AVX2__)
#if defined(__AVX512F__) && defined(__AVX512VL__)
// The first `count` (1..7) of 8 floats: loaded (the others read as zero and are not accessed)
// and stored (the others are not written), each with one mask-register move. (AVX2's
// vmaskmovps store is several times slower on AMD's cores, and a 7-wide plane row is nothing
// but a ragged end.)
inline __mmask8 first_lanes_mask(Index count) { return static_cast<__mmask8>((1u << count) - 1u); }
inline __m256 load_first(const float* src, Index count) { return _mm256_maskz_loadu_ps(first_lanes_mask(count), src); }
inline void store_first(float* dst, __m256 value, Index count) {
  _mm256_mask_storeu_ps(dst, first_lanes_mask(count), value);
}

template <>
inline void copy_run<float>(const float* src, float* dst, Index n) {
  Index i = 0;
  for (; i + 8 <= n; i += 8) _mm256_storeu_ps(dst + i, _mm256_loadu_ps(src + i));
  if (i < n) store_first(dst + i, load_first(src + i, n - i), n - i);
}

template <>
inline void add_run<float>(const float* src, float* dst, Index n) {
  Index i = 0;
  for (; i + 8 <= n; i += 8) {
    _mm256_storeu_ps(dst + i, _mm256_add_ps(_mm256_loadu_ps(dst + i), _mm256_loadu_ps(src + i)));
  }
  if (i < n) store_first(dst + i, _mm256_add_ps(load_first(dst + i, n - i), load_first(src + i, n - i)), n - i);
}
#else
// The first `count` (1..8) of the 8 floats in `value` stored at dst, the others not written,
// without a vmaskmovps store (microcoded, and several times slower than plain moves on AMD's
// cores): two overlapping plain stores of 4 or 2 floats, the second from a lane permute (its
// overlap holds the same values), or one float.
inline void store_first(float* dst, __m256 value, Index count) {
  if (count >= 8) {
    _mm256_storeu_ps(dst, value);
    return;
  }
  const __m128 lo = _mm256_castps256_ps128(value);
  const Index b = count >= 4 ? count - 4 : count >= 2 ? count - 2 : 0;  // the second piece's start
  const __m256i from_b = _mm256_add_epi32(_mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7), _mm256_set1_epi32(static_cast<int>(b)));
  const __m128 hi = _mm256_castps256_ps128(_mm256_permutevar8x32_ps(value, from_b));
  if (count >= 4) {
    _mm_storeu_ps(dst, lo);
    _mm_storeu_ps(dst + b, hi);
  } else if (count >= 2) {
    _mm_storel_epi64(reinterpret_cast<__m128i*>(dst), _mm_castps_si128(lo));
    _mm_storel_epi64(reinterpret_cast<__m128i*>(dst + b), _mm_castps_si128(hi));
  } else if (count == 1) {
    _mm_storeu_si32(dst, _mm_castps_si128(lo));  // a bit move (callers store int32 lanes too)
  }
}

// Without AVX-512VL the ragged end (1..7 floats) is not a vmaskmovps store (microcoded and
// several times slower than plain moves on AMD's cores): `count` floats are moved as two
// overlapping pieces of 4 (count 4..7) or of 2 (count 2..3), or one float. Both pieces are
// loaded before either is stored, so the overlap gets the same value twice.
// requires: src and dst do not overlap.
template <bool kAdd>
inline void move_ragged_end(const float* src, float* dst, Index count) {
  if (count >= 4) {
    const Index b = count - 4;
    __m128 lo = _mm_loadu_ps(src), hi = _mm_loadu_ps(src + b);
    if (kAdd) {
      lo = _mm_add_ps(lo, _mm_loadu_ps(dst));
      hi = _mm_add_ps(hi, _mm_loadu_ps(dst + b));
    }
    _mm_storeu_ps(dst, lo);
    _mm_storeu_ps(dst + b, hi);
  } else if (count >= 2) {
    const Index b = count - 2;
    __m128 lo = _mm_castsi128_ps(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(src)));
    __m128 hi = _mm_castsi128_ps(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(src + b)));
    if (kAdd) {
      lo = _mm_add_ps(lo, _mm_castsi128_ps(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(dst))));
      hi = _mm_add_ps(hi, _mm_castsi128_ps(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(dst + b))));
    }
    _mm_storel_epi64(reinterpret_cast<__m128i*>(dst), _mm_castps_si128(lo));
    _mm_storel_epi64(reinterpret_cast<__m128i*>(dst + b), _mm_castps_si128(hi));
  } else if (count == 1) {
    dst[0] = kAdd ? dst[0] + src[0] : src[0];
  }
}

template <>
inline void copy_run<float>(const float* src, float* dst, Index n) {
  Index i = 0;
  for (; i + 8 <= n; i += 8) _mm256_storeu_ps(dst + i, _mm256_loadu_ps(src + i));
  move_ragged_end<false>(src + i, dst + i, n - i);
}

template <>
inline void add_run<float>(const float* src, float* dst, Index n) {
  Index i = 0;
  for (; i + 8 <= n; i += 8) {
    _mm256_storeu_ps(dst + i, _mm256_add_ps(_mm256_loadu_ps(dst + i), _mm256_loadu_ps(src + i)));
  }
  move_ragged_end<true>(src + i, dst + i, n - i);
}
#endif
#endif

}  // namespace
}  // namespace xgrad
