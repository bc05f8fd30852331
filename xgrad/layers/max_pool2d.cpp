#include <xgrad/layers/max_pool2d.hpp>

#include <algorithm>
#include <cmath>
#include <limits>
#include <type_traits>

#include <immintrin.h>

#include <xgrad/autograd/tape.hpp>
#include <xgrad/core/error.hpp>
#include <xgrad/core/simd_kernels.hpp>
#include <xgrad/core/threading.hpp>

// Dimension key: N = batch, C = channels, H, W = input height, width, K = kernel size,
// S = stride, P = padding, OH, OW = output height, width.
//
// The forward's window rule, as PyTorch's: going through a window in (ih, iw) order from its
// first element, a strictly greater value or a NaN replaces the maximum, so the index is that of
// the first maximum, or of the last NaN (and the value NaN). Float planes without padding and
// with stride 1 or 2 (every pooling of the AlexNet presets) take a vector path (AVX-512 or AVX2
// builds) that applies this rule to 16 or 8 windows of an output row at once; other cases take a scalar path. Both give the
// same values and indices.
//
// Both kernels give each (n, c) plane to one OpenMP thread: the backward's scatter through
// argmax only touches its own plane of dx, so no two threads add into the same element and the
// order of the additions into each element is fixed (results do not depend on the thread count).

namespace xgrad {
namespace {

using Index = std::int64_t;

}  // namespace

MaxPool2dGeometry MaxPool2dGeometry::make(const char* who, const Shape& input, std::size_t kernel_size,
                                          std::size_t stride, std::size_t padding) {
  XGRAD_CHECK(kernel_size >= 1, who, ": kernel_size must be >= 1, got ", kernel_size);
  XGRAD_CHECK(stride >= 1, who, ": stride must be >= 1, got ", stride);
  XGRAD_CHECK(padding <= kernel_size / 2, who, ": padding (", padding, ") must be at most half of kernel_size (",
        kernel_size, ")");
  XGRAD_CHECK(input.size() == 4, who, ": expected input (N, C, H, W) of rank 4, got ", shape_str(input));
  // An empty batch is an empty output, as in PyTorch; the other sizes must be >= 1.
  XGRAD_CHECK(input[1] >= 1 && input[2] >= 1 && input[3] >= 1, who, ": input sizes other than the batch must be >= 1, got ",
        shape_str(input));
  // Checked, never wrapped: the padded input, the output, and the work count (in Index).
  const std::size_t Hp = detail::checked_sum(who, "the padded height H + 2 * padding", {input[2], padding, padding});
  const std::size_t Wp = detail::checked_sum(who, "the padded width W + 2 * padding", {input[3], padding, padding});
  XGRAD_CHECK(kernel_size <= Hp && kernel_size <= Wp, who, ": kernel_size ",
        kernel_size, " is larger than the padded input (input ", shape_str(input), ", padding ", padding, ")");
  detail::checked_product(who, "stride", {stride});
  XGRAD_CHECK(input[2] * input[3] <= static_cast<std::size_t>(std::numeric_limits<std::int32_t>::max()), who,
        ": an input plane of ", shape_str(input), " is too large for int32 argmax indices");
  MaxPool2dGeometry g;
  g.N = input[0];
  g.C = input[1];
  g.H = input[2];
  g.W = input[3];
  g.K = kernel_size;
  g.S = stride;
  g.P = padding;
  g.OH = (Hp - g.K) / g.S + 1;  // K <= Hp: no underflow
  g.OW = (Wp - g.K) / g.S + 1;
  detail::checked_product(who, "the output N x C x OH x OW", {g.N, g.C, g.OH, g.OW});
  detail::checked_product(who, "the window reads N x C x OH x OW x K x K", {g.N, g.C, g.OH, g.OW, g.K, g.K},
                          static_cast<std::size_t>(INT64_MAX));
  return g;
}

namespace {

// The scalar path for one plane: xp (H, W) -> yp, ap (OH, OW).
template <class T>
void pool_plane(const T* xp, T* yp, std::int32_t* ap, const MaxPool2dGeometry& g) {
  const Index H = g.H, W = g.W, K = g.K, S = g.S, P = g.P, OH = g.OH, OW = g.OW;
  for (Index oh = 0; oh < OH; ++oh) {
    // Padding <= K / 2 keeps every window at least one element inside the image.
    const Index h0 = std::max<Index>(oh * S - P, 0), h1 = std::min<Index>(oh * S - P + K, H);
    for (Index ow = 0; ow < OW; ++ow) {
      const Index w0 = std::max<Index>(ow * S - P, 0), w1 = std::min<Index>(ow * S - P + K, W);
      T best = xp[h0 * W + w0];
      Index at = h0 * W + w0;
      for (Index ih = h0; ih < h1; ++ih) {
        for (Index iw = w0; iw < w1; ++iw) {
          const T v = xp[ih * W + iw];
          if (v > best || v != v) {
            best = v;
            at = ih * W + iw;
          }
        }
      }
      yp[oh * OW + ow] = best;
      ap[oh * OW + ow] = static_cast<std::int32_t>(at);
    }
  }
}

#if defined(__AVX512F__) || defined(__AVX2__)
#define XGRAD_POOL_VECTOR 1
// The vectors of the vector path: 16 floats (and int32 indices) on AVX-512, 8 on AVX2.
#if defined(__AVX512F__)
struct Vec {
  static constexpr Index width = 16;
  using V = __m512;
  using I = __m512i;
  using Mask = __mmask16;
  static Mask first(Index count) { return first_lanes16(count); }  // the first `count` lanes
  static V load(const float* p, Mask m) { return _mm512_maskz_loadu_ps(m, p); }  // zero elsewhere
  static V even(V lo, V hi) { return _mm512_permutex2var_ps(lo, even_lanes(), hi); }  // lo's, then hi's
  static I iota(Index step) {  // 0, step, 2 step, ...
    return _mm512_mullo_epi32(_mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
                              _mm512_set1_epi32(static_cast<int>(step)));
  }
  static I add(I a, Index b) { return _mm512_add_epi32(a, _mm512_set1_epi32(static_cast<int>(b))); }
  static Mask replaces(V v, V best) {  // greater, or NaN
    return _mm512_cmp_ps_mask(v, best, _CMP_GT_OQ) | _mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q);
  }
  static V select(Mask m, V a, V b) { return _mm512_mask_mov_ps(b, m, a); }  // a in m, b elsewhere
  static I select(Mask m, I a, I b) { return _mm512_mask_mov_epi32(b, m, a); }
  static void store(float* p, Mask m, V v) { _mm512_mask_storeu_ps(p, m, v); }
  static void store(std::int32_t* p, Mask m, I v) { _mm512_mask_storeu_epi32(p, m, v); }
};
#else
struct Vec {
  static constexpr Index width = 8;
  using V = __m256;
  using I = __m256i;
  // Full vectors take plain loads and stores, partial ones masked loads and store_first
  // (AVX2's masked stores are slow on AMD's cores).
  struct Mask {
    __m256i bits;
    Index count;  // 0..8
    bool full;
  };
  static Mask first(Index count) {
    const Index n = std::clamp<Index>(count, 0, 8);
    return {_mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<int>(n)), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7)), n,
            n == 8};
  }
  static V load(const float* p, Mask m) { return m.full ? _mm256_loadu_ps(p) : _mm256_maskload_ps(p, m.bits); }
  static V even(V lo, V hi) {  // (lo0 lo2 hi0 hi2 | lo4 lo6 hi4 hi6), then its 64-bit pairs 0, 2, 1, 3
    const __m256 pairs = _mm256_shuffle_ps(lo, hi, _MM_SHUFFLE(2, 0, 2, 0));
    return _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(pairs), _MM_SHUFFLE(3, 1, 2, 0)));
  }
  static I iota(Index step) {
    return _mm256_mullo_epi32(_mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7), _mm256_set1_epi32(static_cast<int>(step)));
  }
  static I add(I a, Index b) { return _mm256_add_epi32(a, _mm256_set1_epi32(static_cast<int>(b))); }
  static __m256 replaces(V v, V best) {
    return _mm256_or_ps(_mm256_cmp_ps(v, best, _CMP_GT_OQ), _mm256_cmp_ps(v, v, _CMP_UNORD_Q));
  }
  static V select(__m256 m, V a, V b) { return _mm256_blendv_ps(b, a, m); }
  static I select(__m256 m, I a, I b) {
    return _mm256_castps_si256(_mm256_blendv_ps(_mm256_castsi256_ps(b), _mm256_castsi256_ps(a), m));
  }
  static void store(float* p, Mask m, V v) { store_first(p, v, m.count); }
  static void store(std::int32_t* p, Mask m, I v) {  // the indices' bits, moved as floats
    store_first(reinterpret_cast<float*>(p), _mm256_castsi256_ps(v), m.count);
  }
};
#endif

// Whether a float plane takes the vector path.
bool vector_path(const MaxPool2dGeometry& g) { return g.P == 0 && (g.S == 1 || g.S == 2); }

// The vector path for one float plane (P = 0, S = 1 or 2): output row oh, Vec::width columns at
// a time. Lane j of a window tap (kh, kw) reads x[oh*S + kh][(ow0 + j)*S + kw]; with S = 2 two
// loads and a permute pick the even elements. Masked loads touch nothing past the row's end.
void pool_plane_vector(const float* xp, float* yp, std::int32_t* ap, const MaxPool2dGeometry& g) {
  const Index W = g.W, K = g.K, S = g.S, OH = g.OH, OW = g.OW;
  const Vec::I lane_offset = Vec::iota(S);
  for (Index oh = 0; oh < OH; ++oh) {
    for (Index ow0 = 0; ow0 < OW; ow0 += Vec::width) {
      const Vec::Mask out_mask = Vec::first(OW - ow0);
      Vec::V best{};
      Vec::I at{};
      for (Index kh = 0; kh < K; ++kh) {
        const Index row = (oh * S + kh) * W;
        for (Index kw = 0; kw < K; ++kw) {
          const Index start = ow0 * S + kw;  // the first lane's column
          const float* src = xp + row + start;
          const Vec::V v = S == 1 ? Vec::load(src, Vec::first(W - start))
                                  : Vec::even(Vec::load(src, Vec::first(W - start)),
                                              Vec::load(src + Vec::width, Vec::first(W - start - Vec::width)));
          const Vec::I index = Vec::add(lane_offset, row + start);
          if (kh == 0 && kw == 0) {
            best = v;
            at = index;
          } else {
            const auto replace = Vec::replaces(v, best);
            best = Vec::select(replace, v, best);
            at = Vec::select(replace, index, at);
          }
        }
      }
      Vec::store(yp + oh * OW + ow0, out_mask, best);
      Vec::store(ap + oh * OW + ow0, out_mask, at);
    }
  }
}
#endif

}  // namespace

namespace kernels {

template <class T>
void maxpool2d_forward(const T* x, T* y, std::int32_t* argmax, const MaxPool2dGeometry& g) {
  const Index planes = g.N * g.C, HW = g.H * g.W, OHW = g.OH * g.OW;
#if defined(XGRAD_POOL_VECTOR)
  if (std::is_same<T, float>::value && vector_path(g)) {
    const float* xf = reinterpret_cast<const float*>(x);
    float* yf = reinterpret_cast<float*>(y);
#pragma omp parallel for schedule(static) if (planes * OHW * g.K * g.K >= kParallelElements)
    for (Index plane = 0; plane < planes; ++plane) {
      pool_plane_vector(xf + plane * HW, yf + plane * OHW, argmax + plane * OHW, g);
    }
    return;
  }
#endif
#pragma omp parallel for schedule(static) if (planes * OHW * g.K * g.K >= kParallelElements)
  for (Index plane = 0; plane < planes; ++plane) pool_plane(x + plane * HW, y + plane * OHW, argmax + plane * OHW, g);
}

template <class T>
void maxpool2d_backward(const T* dy, const std::int32_t* argmax, T* dx, const MaxPool2dGeometry& g, bool overwrite) {
  const Index planes = g.N * g.C, HW = g.H * g.W, OHW = g.OH * g.OW;
#pragma omp parallel for schedule(static) if (planes * (OHW + HW) >= kParallelElements)
  for (Index plane = 0; plane < planes; ++plane) {
    const T* dyp = dy + plane * OHW;                  // (OH, OW)
    const std::int32_t* ap = argmax + plane * OHW;    // (OH, OW)
    T* dxp = dx + plane * HW;                         // (H, W)
    if (overwrite) std::fill(dxp, dxp + HW, T(0));
    for (Index i = 0; i < OHW; ++i) dxp[ap[i]] += dyp[i];
  }
}

template void maxpool2d_forward<float>(const float*, float*, std::int32_t*, const MaxPool2dGeometry&);
template void maxpool2d_forward<double>(const double*, double*, std::int32_t*, const MaxPool2dGeometry&);
template void maxpool2d_backward<float>(const float*, const std::int32_t*, float*, const MaxPool2dGeometry&, bool);
template void maxpool2d_backward<double>(const double*, const std::int32_t*, double*, const MaxPool2dGeometry&, bool);

}  // namespace kernels

namespace functional {

Variable max_pool2d(const Variable& x, const MaxPool2dOptions& options, MaxPool2dWorkspace* workspace) {
  XGRAD_CHECK(x.defined(), "MaxPool2d: undefined input");
  const MaxPool2dGeometry g =
      MaxPool2dGeometry::make("MaxPool2d", x.shape(), options.kernel_size(), options.stride(), options.padding());
  MaxPool2dWorkspace fresh;
  MaxPool2dWorkspace& argmax = workspace != nullptr ? *workspace : fresh;
  // A pending backward still holds the previous indices: leave them to it.
  if (argmax == nullptr || argmax.use_count() > 1) argmax = std::make_shared<xt::xarray<std::int32_t>>();
  const Shape out_shape = g.output_shape();
  if (!std::equal(out_shape.begin(), out_shape.end(), argmax->shape().begin(), argmax->shape().end())) {
    detail::naming_allocation_failure("MaxPool2d", [&] { argmax->resize(out_shape); });
  }
  Tensor y = empty(out_shape, "MaxPool2d");
  kernels::maxpool2d_forward<float>(x.value().data(), y.data(), argmax->data(), g);
  return record_op("MaxPool2d", std::move(y), {x}, /*saved=*/{}, [x, argmax = argmax, g](const Tensor& dy) mutable {
    bool overwrite = false;
    float* dx = x.grad_buffer(overwrite).data();
    kernels::maxpool2d_backward<float>(dy.data(), argmax->data(), dx, g, overwrite);
  });
}

}  // namespace functional

MaxPool2d::MaxPool2d(const MaxPool2dOptions& options) : options_(options) {
  const std::size_t k = options.kernel_size();
  XGRAD_CHECK(k >= 1, repr(), ": kernel_size must be >= 1, got ", k);
  XGRAD_CHECK(options.padding() <= k / 2, repr(), ": padding (", options.padding(),
              ") must be at most half of kernel_size (", k, ")");
}

Variable MaxPool2d::forward(const Variable& x) {
  try {
    return functional::max_pool2d(x, options_, &argmax_);
  } catch (const Error& e) {
    rethrow_naming_layer(e, "MaxPool2d");
  }
}

std::string MaxPool2d::repr() const {
  return cat("MaxPool2d(kernel_size=", options_.kernel_size(), ", stride=", options_.stride(), ", padding=",
             options_.padding(), ")");
}

}  // namespace xgrad
