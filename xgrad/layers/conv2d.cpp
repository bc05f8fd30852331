#include <xgrad/layers/conv2d.hpp>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <type_traits>
#include <vector>

#include <xtensor/xadapt.hpp>

#include <xgrad/autograd/tape.hpp>
#include <xgrad/core/blas.hpp>
#include <xgrad/core/error.hpp>
#include <xgrad/core/simd_kernels.hpp>
#include <xgrad/core/threading.hpp>
#include <xgrad/layers/conv2d_winograd_kernels.hpp>

// The direct float kernels (below) need AVX-512, or AVX2 with FMA.
#if defined(__AVX512F__) || (defined(__AVX2__) && defined(__FMA__))
#define XGRAD_CONV_DIRECT 1
#include <immintrin.h>
#endif

// Dimension key (as in conv2d.hpp): N = batch, C = in channels, O = out channels, G = groups,
// Cg = C / G, Og = O / G, K = kernel size, S = stride, P = padding, H, W = input height, width,
// OH, OW = output height, width, L = N * OH * OW, R = Cg * K * K.
//
// The batch goes through GEMMs per group over panels of whole images (never one small GEMM per
// image), each fused with its im2col while the columns are in cache:
//   forward:  cols_g (R, panel) = im2col(x);  out (Og, panel) = w_g (Og, R) x cols_g;
//             y (N, O, OH*OW) = out regrouped, plus bias
//   backward: dycm (O, L) = dy regrouped by channel;  db (O) += row sums of dycm;
//             dw_g (Og, R) += sum over chunks of dycm_g (Og, chunk) x cols_g (R, chunk)^T,
//             the columns rebuilt from x per chunk;  dcols_g (R, panel) = w_g^T x dycm_g;
//             dx += col2im(dcols_g)
// No column matrix of the whole batch (C*K*K times the size of x) is ever kept: the backward
// holds x and rebuilds what it needs, which costs one more im2col pass, in cache.
//
// Threading: one pool. Each GEMM is cut into pieces fixed by its shape (column panels of the
// output, or chunks of a long inner dimension) that OpenMP threads compute with gemm_serial
// (OpenBLAS held single-threaded, see core/threading.hpp), instead of handing each GEMM to
// OpenBLAS's own threads: on a small machine the hand-over between the two pools (libgomp's
// threads keep spinning for a while after every parallel region, taking the cores OpenBLAS's
// threads need) costs more than im2col itself. Every loop writes disjoint memory (cols rows of
// one image per (n, c) plane, y and dx planes, GEMM panels), and since the pieces do not depend
// on the thread count, neither do the results (bit-identical at any thread count).

namespace xgrad {
namespace {

// Chunks of whole images for the weight gradient, whose inner dimension is L = N * OH * OW:
// about one per 512 of L, an even number from 2 to 8 (or 1 for a short L), at most N. Fixed by
// the shape alone, so the partial sums and their order do not depend on the thread count.
Index images_per_chunk(const Conv2dGeometry& g) {
  const Index L = static_cast<Index>(g.L()), N = static_cast<Index>(g.N);
  Index chunks = std::clamp<Index>(L / 512, 1, 8);
  chunks = std::min(chunks >= 2 ? chunks / 2 * 2 : 1, N);
  return (N + chunks - 1) / chunks;
}

// A per-thread buffer of at least `size` elements that lives as long as the thread (OpenMP keeps
// its threads), so steps do not allocate and fault in fresh pages. Contents are unspecified.
// Each use has its own Tag type, so buffers in use at the same time are distinct.
struct PartialTag {};  // the weight gradient's partial products, one per (group, chunk)
struct PlaneTag {};    // a zero-padded (image, channel) plane
struct PanelTag {};    // a GEMM output panel (forward) or column-gradient panel (backward)
struct ColsTag {};     // the columns of one panel (forward) or chunk (weight gradient)
struct DirectTag {};   // the direct kernels' padded planes of one (image, group)
struct TapsTag {};     // the direct forward's tap offsets (the calling thread's)
struct FlippedTag {};  // the direct input gradient's flipped weights (the calling thread's)
struct StepsTag {};    // the direct weight gradient's position vectors of one chunk
struct PositionsTag {};  // the wide weight gradient's positions of one chunk
struct WideWeightsTag {};  // the wide forward's transposed weights and biases (the calling thread's)
struct WideTileTag {};     // the wide forward's tile of sums
// Runs inside OpenMP regions: call it through a ParallelErrors (it throws an AllocationError
// when the memory cannot be had).
template <class T, class Tag>
T* thread_buffer(std::size_t size) {
  thread_local std::vector<T> buffer;
  if (buffer.size() < size) {
    try {
      buffer.resize(size);
    } catch (const std::exception& e) {
      throw AllocationError(cat("Conv2d: out of memory: cannot allocate a per-thread buffer of ", size,
                                " elements (", e.what(), ")"));
    }
  }
  return buffer.data();
}

void check_args(const char* who, std::size_t in, std::size_t out, std::size_t k, std::size_t s, std::size_t g) {
  XGRAD_CHECK(in >= 1, who, ": in_channels must be >= 1, got ", in);
  XGRAD_CHECK(out >= 1, who, ": out_channels must be >= 1, got ", out);
  XGRAD_CHECK(k >= 1, who, ": kernel_size must be >= 1, got ", k);
  XGRAD_CHECK(s >= 1, who, ": stride must be >= 1, got ", s);
  XGRAD_CHECK(g >= 1, who, ": groups must be >= 1, got ", g);
  XGRAD_CHECK(in % g == 0, who, ": groups (", g, ") must divide in_channels (", in, ")");
  XGRAD_CHECK(out % g == 0, who, ": groups (", g, ") must divide out_channels (", out, ")");
}

// Resizes a reused buffer only when its size changes.
void ensure_size(Tensor& t, std::size_t size) {
  if (t.size() != size || t.dimension() != 1) t.resize({size});
}

}  // namespace

Conv2dGeometry Conv2dGeometry::make(const char* who, const Shape& input, std::size_t in_channels,
                                    std::size_t out_channels, std::size_t kernel_size, std::size_t stride,
                                    std::size_t padding, std::size_t groups) {
  check_args(who, in_channels, out_channels, kernel_size, stride, groups);
  XGRAD_CHECK(input.size() == 4, who, ": expected input (N, C, H, W) of rank 4, got ", shape_str(input));
  XGRAD_CHECK(input[1] == in_channels, who, ": input has ", input[1], " channels, expected in_channels = ",
        in_channels, " (input ", shape_str(input), ")");
  // An empty batch is an empty output, as in PyTorch; the other sizes must be >= 1.
  XGRAD_CHECK(input[2] >= 1 && input[3] >= 1, who, ": input sizes other than the batch must be >= 1, got ",
              shape_str(input));
  // Every size below is checked, never wrapped: the padded input, the output and the buffers
  // the kernels index in Index (int64), and the GEMM sizes (int).
  const std::size_t Hp = detail::checked_sum(who, "the padded height H + 2 * padding", {input[2], padding, padding});
  const std::size_t Wp = detail::checked_sum(who, "the padded width W + 2 * padding", {input[3], padding, padding});
  XGRAD_CHECK(kernel_size <= Hp && kernel_size <= Wp, who,
        ": kernel_size ", kernel_size, " is larger than the padded input (input ", shape_str(input),
        ", padding ", padding, ")");
  detail::checked_product(who, "stride", {stride});
  detail::checked_product(who, "the padded plane (H + 2P) x (W + 2P)", {Hp, Wp});
  Conv2dGeometry g;
  g.N = input[0];
  g.C = input[1];
  g.H = input[2];
  g.W = input[3];
  g.O = out_channels;
  g.K = kernel_size;
  g.S = stride;
  g.P = padding;
  g.G = groups;
  g.OH = (Hp - g.K) / g.S + 1;  // K <= Hp: no underflow
  g.OW = (Wp - g.K) / g.S + 1;
  detail::checked_product(who, "the output N x O x OH x OW", {g.N, g.O, g.OH, g.OW});
  detail::checked_product(who, "the column count N x OH x OW", {g.N, g.OH, g.OW}, kMaxGemmSize);
  detail::checked_product(who, "a group's column rows C/G x K x K", {g.Cg(), g.K, g.K}, kMaxGemmSize);
  detail::checked_product(who, "out_channels / groups", {g.Og()}, kMaxGemmSize);
  detail::checked_product(who, "the column matrix C x K x K x N x OH x OW", {g.C, g.K, g.K, g.N, g.OH, g.OW});
  detail::checked_product(who, "the weight gradient's partial sums 8 x O x C/G x K x K", {8, g.O, g.Cg(), g.K, g.K});
  // The kernels' work counts (the OpenMP size tests) in Index.
  detail::checked_product(who, "the multiply-adds O x C/G x K x K x N x OH x OW",
                          {g.O, g.Cg(), g.K, g.K, g.N, g.OH, g.OW}, static_cast<std::size_t>(INT64_MAX));
  return g;
}

namespace {

// Images per panel of the fused loops below: about 2^18 / R columns (a panel of cols of about
// 1 MB in float), at least 512 columns, whole images only. When that makes fewer than 16
// (group, panel) iterations, the panels shrink until their count is a multiple of 4, so that
// 2 or 4 threads share them evenly (7 panels on 2 threads keep one waiting an eighth of the
// time). Fixed by the shape alone.
Index images_per_panel(const Conv2dGeometry& g) {
  const Index PP = g.OH * g.OW, N = static_cast<Index>(g.N), G = static_cast<Index>(g.G);
  const Index target = std::max<Index>(512, (Index{1} << 18) / static_cast<Index>(g.R()));
  Index per = std::clamp<Index>(target / PP, 1, N);
  const Index iterations = G * ((N + per - 1) / per);
  if (iterations < 16 && iterations % 4 != 0) {
    const Index panels = ((iterations + 3) / 4 * 4 + G - 1) / G;  // per group
    per = std::max<Index>(1, (N + panels - 1) / panels);
  }
  return per;
}

// The input gradient of a stride-1 convolution is itself one: dx[n, c] = the convolution of dy
// (padded by K - 1 - P) by the weights flipped in both axes, each group's (Og, Cg) transposed.
Conv2dGeometry input_grad_geometry(const Conv2dGeometry& g) {
  Conv2dGeometry t = g;
  t.C = g.O;
  t.H = g.OH;
  t.W = g.OW;
  t.O = g.C;
  t.P = g.K - 1 - g.P;
  t.OH = g.H;
  t.OW = g.W;
  return t;
}

// The column kernels work on one (image, channel) plane at a time, through a zero-padded copy
// ((H + 2P) x (W + 2P), per thread, cache resident), so their inner loops are plain strided
// copies without bounds checks.

// The K*K rows (kh, kw) of one plane's columns: out[(kh*K + kw) * ld + oh*OW + ow] =
// padded x[oh*S + kh, ow*S + kw]. padded: a zeroed (Hp, Wp) buffer when P > 0 (its border is
// never written), unused otherwise.
template <class T>
void im2col_plane(const T* plane, T* out, Index ld, T* padded, const Conv2dGeometry& g) {
  const Index H = g.H, W = g.W, K = g.K, S = g.S, P = g.P, OH = g.OH, OW = g.OW, Wp = W + 2 * P;
  if (P > 0) {
    for (Index h = 0; h < H; ++h) copy_run(plane + h * W, padded + (h + P) * Wp + P, W);
    plane = padded;
  }
  for (Index kh = 0; kh < K; ++kh) {
    for (Index kw = 0; kw < K; ++kw) {
      T* row = out + (kh * K + kw) * ld;  // (OH, OW)
      for (Index oh = 0; oh < OH; ++oh) {
        const T* src = plane + (oh * S + kh) * Wp + kw;
        T* dst = row + oh * OW;
        if (S == 1) {
          copy_run(src, dst, OW);
        } else if (S == 2) {
          copy_run_stride2(src, dst, OW);
        } else {
          for (Index ow = 0; ow < OW; ++ow) dst[ow] = src[ow * S];
        }
      }
    }
  }
}

// The reverse: dx_plane (H, W) += the sum of the K*K rows of src (row stride ld), each element
// summing its taps in (kh, kw, oh, ow) order (with overwrite, dx_plane = that sum). padded: an
// (Hp, Wp) work buffer.
template <class T>
void col2im_plane(const T* src, Index ld, T* dx_plane, T* padded, const Conv2dGeometry& g, bool overwrite = false) {
  const Index H = g.H, W = g.W, K = g.K, S = g.S, P = g.P, OH = g.OH, OW = g.OW, Wp = W + 2 * P;
  std::fill(padded, padded + (H + 2 * P) * Wp, T(0));
  for (Index kh = 0; kh < K; ++kh) {
    for (Index kw = 0; kw < K; ++kw) {
      const T* row = src + (kh * K + kw) * ld;  // (OH, OW)
      for (Index oh = 0; oh < OH; ++oh) {
        T* dst = padded + (oh * S + kh) * Wp + kw;
        const T* s = row + oh * OW;
        if (S == 1) {
          add_run(s, dst, OW);
        } else {
          for (Index ow = 0; ow < OW; ++ow) dst[ow * S] += s[ow];
        }
      }
    }
  }
  for (Index h = 0; h < H; ++h) {
    if (overwrite) {
      copy_run(padded + (h + P) * Wp + P, dx_plane + h * W, W);
    } else {
      add_run(padded + (h + P) * Wp + P, dx_plane + h * W, W);
    }
  }
}

// cols (R, width = (n1 - n0) * OH*OW) = the columns of images [n0, n1), channels of group grp:
// row (cg, kh, kw), the images' positions side by side. padded: as for im2col_plane.
template <class T>
void im2col_images(const T* x, T* cols, Index grp, Index n0, Index n1, T* padded, const Conv2dGeometry& g) {
  const Index C = g.C, K = g.K, PP = g.OH * g.OW, Cg = C / static_cast<Index>(g.G), width = (n1 - n0) * PP;
  for (Index n = n0; n < n1; ++n) {
    for (Index cg = 0; cg < Cg; ++cg) {
      im2col_plane(x + (n * C + grp * Cg + cg) * g.H * g.W, cols + cg * K * K * width + (n - n0) * PP, width, padded, g);
    }
  }
}

#if defined(XGRAD_CONV_DIRECT)
// The vectors the direct kernels compute with: 16 floats on AVX-512, 8 on AVX2 with FMA.
// `channels` is the forward block's count of output channels: with two rows, 2 * channels
// accumulators, which leave registers for the taps and a weight (32 registers on AVX-512, 16 on
// AVX2).
// The sum of v's lanes: halves, then pairs, in a fixed order.
inline float sum8(__m256 v) {
  const __m128 half = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  const __m128 pairs = _mm_add_ps(half, _mm_movehl_ps(half, half));
  return _mm_cvtss_f32(_mm_add_ss(pairs, _mm_movehdup_ps(pairs)));
}
#if defined(__AVX512F__)
struct Vec {
  static constexpr Index width = 16;
  static constexpr int channels = 8;
  static constexpr int grad_channels = 4;  // the weight gradient's tile: 4 channels x 6 taps
  using V = __m512;
  using Mask = __mmask16;
  static Mask first(Index count) { return first_lanes16(count); }  // the first `count` lanes
  static V load(const float* p) { return _mm512_loadu_ps(p); }
  static V load(const float* p, Mask m) { return _mm512_maskz_loadu_ps(m, p); }  // zero elsewhere
  static void store(float* p, V v) { _mm512_storeu_ps(p, v); }
  static void store(float* p, Mask m, V v) { _mm512_mask_storeu_ps(p, m, v); }
  static V set1(float x) { return _mm512_set1_ps(x); }
  static V fmadd(V a, V b, V c) { return _mm512_fmadd_ps(a, b, c); }
  static V fmadd(V a, V b, V c, Mask m) { return _mm512_mask3_fmadd_ps(a, b, c, m); }  // c outside m
  static V zero() { return _mm512_setzero_ps(); }
  static float sum(V v) {  // halves, then pairwise, in a fixed order (through memory: GCC 12's
    alignas(64) float lanes[16];  // cast and extract intrinsics warn of an uninitialised value)
    _mm512_store_ps(lanes, v);
    return sum8(_mm256_add_ps(_mm256_load_ps(lanes), _mm256_load_ps(lanes + 8)));
  }
};
#else
struct Vec {
  static constexpr Index width = 8;
  static constexpr int channels = 4;
  static constexpr int grad_channels = 2;  // the weight gradient's tile: 2 channels x 6 taps
  using V = __m256;
  // Full vectors (most of them) take plain loads and stores, partial ones masked loads and
  // store_first (AVX2's masked stores are slow on AMD's cores).
  struct Mask {
    __m256i bits;
    Index count;  // 0..8
    bool full;
  };
  static Mask first(Index count) {
    const __m256i iota = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    const Index n = std::clamp<Index>(count, 0, 8);
    return {_mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<int>(n)), iota), n, n == 8};
  }
  static V load(const float* p) { return _mm256_loadu_ps(p); }
  static V load(const float* p, Mask m) { return m.full ? _mm256_loadu_ps(p) : _mm256_maskload_ps(p, m.bits); }
  static void store(float* p, V v) { _mm256_storeu_ps(p, v); }
  static void store(float* p, Mask m, V v) { store_first(p, v, m.count); }
  static V set1(float x) { return _mm256_set1_ps(x); }
  static V fmadd(V a, V b, V c) { return _mm256_fmadd_ps(a, b, c); }
  static V fmadd(V a, V b, V c, Mask m) {
    const V sum = _mm256_fmadd_ps(a, b, c);
    return m.full ? sum : _mm256_blendv_ps(c, sum, _mm256_castsi256_ps(m.bits));
  }
  static V zero() { return _mm256_setzero_ps(); }
  static float sum(V v) { return sum8(v); }
};
#endif
using V = Vec::V;

// Direct convolution for few column rows (R = Cg*K*K <= kDirectRows) at stride 1, the first
// layer of a grey-image network (1 channel, 3x3: R = 9). Its GEMMs would be (Og, 9) x (9, width)
// and its transpose: nine multiply-adds per output, less than the im2col and the packing around
// them cost. Instead each thread pads one (image, group) at a time and computes a vector of
// outputs of a row at once (Vec::width: 16 on AVX-512, 8 on AVX2):
//   forward: y[o, oh, ow0 + t] = b[o] + sum_r w[o, r] * tap_r[t], Vec::channels output channels
//            and two rows at a time (each weight loaded serves two vectors);
//   weight gradient: see direct_weight_grad (and wide_weight_grad for more rows).
// tap_r (r = (c, kh, kw)) is the padded row oh + kh of channel c from ow0 + kw. Every output's
// sum runs in a fixed order, so results do not depend on the thread count.
constexpr Index kDirectRows = 32;
constexpr Index kDirectSlack = 16;  // zero floats past the padded planes: a vector read from the
                                    // last row's end stays inside the buffer (its lanes unused)

bool direct_convolution(const Conv2dGeometry& g) { return g.S == 1 && static_cast<Index>(g.R()) <= kDirectRows; }
// The forward takes the direct kernel for more rows too, at any stride, while its vectors are
// well filled (at least 3/4 of the lanes: with 16, output rows of 12-16, 28-32, ... columns;
// with 8, also 6-8 columns) and a block of output channels' weights stays in L1
// (R <= kDirectForwardRows; at strides above 1, where it was measured at parity for R = 363,
// R <= kDirectStridedForwardRows). Measured (bench_layers), AVX-512 (an Intel core): 1.8-1.9x
// the im2col + GEMM forward for R = 300 and 400 on 14- and 15-wide rows and for the mini
// preset's conv1 (stride 2, R = 75); at parity for R = 1200 on 27-wide rows and AlexNet's conv1
// (stride 4, R = 363); slower on 7-wide rows (7 of 16 lanes) and for R >= 1728. AVX2 (Zen 3):
// 1.25-1.45x for those 14- and 15-wide rows and that conv1, and from parity to 1.3x on 7-wide
// rows with R = 432-576.
constexpr Index kDirectForwardRows = 1024;
constexpr Index kDirectStridedForwardRows = 128;  // at strides above 1
bool direct_forward_ok(const Conv2dGeometry& g) {
  const Index R = static_cast<Index>(g.R()), OW = static_cast<Index>(g.OW);
  const Index vectors = (OW + Vec::width - 1) / Vec::width;
  const Index limit = g.S == 1 ? kDirectForwardRows : kDirectStridedForwardRows;
  return direct_convolution(g) || (R <= limit && 4 * OW >= 3 * Vec::width * vectors);
}

// The padded planes' layout. At stride S each padded plane (Hp, Wp) is kept as S phase planes
// (Hp, Wq = ceil(Wp / S)), phase q holding the columns q, q + S, q + 2S, ..., so that the taps
// of a vector's neighbouring outputs are consecutive floats of one phase row; at stride 1 it is the
// plain padded plane.
struct DirectLayout {
  Index S, Hp, Wq;
  Index phase() const { return Hp * Wq; }        // floats of one phase plane
  Index plane() const { return S * phase(); }    // of one channel
  Index row_step() const { return S * Wq; }      // from one output row's taps to the next's
};

DirectLayout direct_layout(const Conv2dGeometry& g) {
  const Index S = static_cast<Index>(g.S), Wp = static_cast<Index>(g.W + 2 * g.P);
  return {S, static_cast<Index>(g.H + 2 * g.P), (Wp + S - 1) / S};
}

// padded (Cg, S, Hp, Wq) = the planes of image n's channels of group grp in that layout; the
// border, the phases' unused ends and the slack after them are zero (zeroed once per buffer,
// never written).
void pad_group(const float* x, float* padded, Index n, Index grp, const Conv2dGeometry& g) {
  const Index H = g.H, W = g.W, P = g.P, Cg = static_cast<Index>(g.Cg());
  const DirectLayout d = direct_layout(g);
  for (Index c = 0; c < Cg; ++c) {
    const float* plane = x + ((n * static_cast<Index>(g.C)) + grp * Cg + c) * H * W;
    float* dst = padded + c * d.plane();
    if (d.S == 1) {
      for (Index h = 0; h < H; ++h) copy_run(plane + h * W, dst + (h + P) * d.Wq + P, W);
      continue;
    }
    for (Index q = 0; q < d.S; ++q) {
      // The columns w of phase q: (w + P) % S == q, from w0 on, landing at (w + P) / S.
      const Index w0 = ((q - P) % d.S + d.S) % d.S, j0 = (w0 + P) / d.S;
      if (w0 >= W) continue;
      const Index count = (W - w0 + d.S - 1) / d.S;
      for (Index h = 0; h < H; ++h) {
        const float* src = plane + h * W + w0;
        float* out = dst + q * d.phase() + (h + P) * d.Wq + j0;
        for (Index t = 0; t < count; ++t) out[t] = src[t * d.S];
      }
    }
  }
}

// tap[r]: the offset of tap r = (c, kh, kw) in the padded planes, relative to the taps of
// output (oh, ow0), which start at oh * row_step + ow0.
void tap_offsets(const Conv2dGeometry& g, Index* tap) {
  const Index K = g.K;
  const DirectLayout d = direct_layout(g);
  for (Index c = 0, r = 0; c < static_cast<Index>(g.Cg()); ++c)
    for (Index kh = 0; kh < K; ++kh)
      for (Index kw = 0; kw < K; ++kw, ++r) tap[r] = c * d.plane() + (kw % d.S) * d.phase() + kh * d.Wq + kw / d.S;
}

// Floats of the per-thread buffer for one image's padded planes.
std::size_t direct_buffer_size(const Conv2dGeometry& g) {
  return g.Cg() * static_cast<std::size_t>(direct_layout(g).plane()) + kDirectSlack;
}

// y for channels [o0, o0 + OB) of ROWS row vectors (rows oh and oh + 1, the same columns,
// `lanes` of them used): stored, or with `add` added to what y holds (b is then unused). With
// two rows, each weight loaded serves two multiply-adds.
template <int OB, int ROWS>
inline void direct_forward_block(const float* taps, Index next_row, const Index* tap, Index R, const float* w,
                                 const float* b, float* y, Index out_row, Index plane, Vec::Mask lanes, bool add) {
  V acc[ROWS][OB];
  for (int k = 0; k < ROWS; ++k)
    for (int j = 0; j < OB; ++j)
      acc[k][j] = add ? Vec::load(y + j * plane + k * out_row, lanes) : Vec::set1(b != nullptr ? b[j] : 0.0f);
  for (Index r = 0; r < R; ++r) {
    V v[ROWS];
    for (int k = 0; k < ROWS; ++k) v[k] = Vec::load(taps + k * next_row + tap[r]);
    for (int j = 0; j < OB; ++j) {
      const V wj = Vec::set1(w[j * R + r]);
      for (int k = 0; k < ROWS; ++k) acc[k][j] = Vec::fmadd(wj, v[k], acc[k][j]);
    }
  }
  for (int k = 0; k < ROWS; ++k)
    for (int j = 0; j < OB; ++j) Vec::store(y + j * plane + k * out_row, lanes, acc[k][j]);
}

// Every channel of the group for ROWS rows from oh: blocks of Vec::channels (twice that for one
// row), then blocks of 4, then one at a time. (Without the blocks of 4, a leftover channel cost
// two tap loads for each weight and two multiply-adds: the input gradient of the mini preset's
// conv2, 8 + 4 channels a group on AVX-512, took twice its forward's time; its whole backward
// now takes 0.71x the time, bench_layers on an Intel core.)
template <int ROWS>
inline void direct_forward_rows(const float* padded, const float* wg, const float* bg, float* yn, Index oh,
                                const Index* tap, Index R, Index Og, Index row, Index OW, Index plane, bool add) {
  constexpr int OB = ROWS == 1 ? 2 * Vec::channels : Vec::channels;  // as many sums either way
  for (Index ow0 = 0; ow0 < OW; ow0 += Vec::width) {
    const Vec::Mask lanes = Vec::first(OW - ow0);
    const float* taps = padded + oh * row + ow0;
    float* out = yn + oh * OW + ow0;
    Index o = 0;
    for (; o + OB <= Og; o += OB) {
      direct_forward_block<OB, ROWS>(taps, row, tap, R, wg + o * R, bg != nullptr ? bg + o : nullptr, out + o * plane,
                                    OW, plane, lanes, add);
    }
    if constexpr (OB > 4) {
      for (; o + 4 <= Og; o += 4) {
        direct_forward_block<4, ROWS>(taps, row, tap, R, wg + o * R, bg != nullptr ? bg + o : nullptr, out + o * plane,
                                      OW, plane, lanes, add);
      }
    }
    for (; o < Og; ++o) {
      direct_forward_block<1, ROWS>(taps, row, tap, R, wg + o * R, bg != nullptr ? bg + o : nullptr, out + o * plane,
                                    OW, plane, lanes, add);
    }
  }
}

// y (N, O, OH, OW) for image n, group grp, from its padded planes (with `add`, added to y).
void direct_forward_image(const float* padded, const float* w, const float* b, float* y, Index n, Index grp,
                          const Index* tap, const Conv2dGeometry& g, bool add) {
  const Index OH = g.OH, OW = g.OW, Og = static_cast<Index>(g.Og()), R = static_cast<Index>(g.R());
  const Index row = direct_layout(g).row_step();
  const Index plane = OH * OW, first = grp * Og;
  float* yn = y + (n * static_cast<Index>(g.O) + first) * plane;
  const float* wg = w + first * R;
  const float* bg = b != nullptr ? b + first : nullptr;
  Index oh = 0;
  for (; oh + 2 <= OH; oh += 2) direct_forward_rows<2>(padded, wg, bg, yn, oh, tap, R, Og, row, OW, plane, add);
  if (oh < OH) direct_forward_rows<1>(padded, wg, bg, yn, oh, tap, R, Og, row, OW, plane, add);  // an odd last row
}

#if defined(__AVX512F__)
// The forward of a stride-1 convolution whose rows fill the vectors poorly (7-wide rows fill 7
// of 16 lanes), on AVX-512, with the output channels in the lanes instead: a tile of PB
// consecutive positions of one output row x OV vectors of 16 channels keeps PB * OV sums in
// registers over all R taps; each tap loads OV vectors of the weights, transposed to (R, Og
// rounded up to 16, zero-filled), and broadcasts the tap of each of the PB positions (consecutive
// floats of one padded row) into OV multiply-adds (8 x 3: 24 for 12 loads). The tile is then
// stored by position into y. Every output sums its taps in order, as the direct forward does.
// Taken for up to kDirectForwardRows rows (a tile's weights, R x 48 floats, then stay in L2):
// on AVX-512 (an Intel Xeon of family 6 model 167, bench_layers, 2 threads) 0.5-0.8x the time
// of im2col + GEMM for the 7x7 layers (R = 432-576), but 1.3x for AlexNet's conv3 (R = 2304)
// and 2.3x for its input gradient (R = 3456).
bool wide_forward_ok(const Conv2dGeometry& g) {
  return g.S == 1 && !direct_forward_ok(g) && static_cast<Index>(g.R()) <= kDirectForwardRows;
}
#endif

// The forward by direct_forward: the direct kernel, or on AVX-512 the wide one.
bool direct_or_wide_forward_ok(const Conv2dGeometry& g) {
#if defined(__AVX512F__)
  if (wide_forward_ok(g)) return true;
#endif
  return direct_forward_ok(g);
}

#if defined(__AVX512F__)

// out (PB, 16 * OV) = the tile's sums, starting from bias (bT + o0, or zeros).
template <int PB, int OV>
inline void wide_forward_tile(const float* taps, const Index* tap, Index R, const float* wT, Index ldw,
                              const float* bT, float* out) {
  __m512 acc[PB][OV];
  for (int v = 0; v < OV; ++v) {
    const __m512 init = bT != nullptr ? _mm512_loadu_ps(bT + 16 * v) : _mm512_setzero_ps();
    for (int j = 0; j < PB; ++j) acc[j][v] = init;
  }
  for (Index r = 0; r < R; ++r) {
    const float* t = taps + tap[r];
    __m512 wv[OV];
    for (int v = 0; v < OV; ++v) wv[v] = _mm512_loadu_ps(wT + r * ldw + 16 * v);
    for (int j = 0; j < PB; ++j) {
      const __m512 b = _mm512_set1_ps(t[j]);
      for (int v = 0; v < OV; ++v) acc[j][v] = _mm512_fmadd_ps(b, wv[v], acc[j][v]);
    }
  }
  for (int j = 0; j < PB; ++j)
    for (int v = 0; v < OV; ++v) _mm512_storeu_ps(out + (j * OV + v) * 16, acc[j][v]);
}

template <int OV>
void wide_forward_segment(Index pb, const float* taps, const Index* tap, Index R, const float* wT, Index ldw,
                          const float* bT, float* out) {
  switch (pb) {
    case 8: wide_forward_tile<8, OV>(taps, tap, R, wT, ldw, bT, out); break;
    case 7: wide_forward_tile<7, OV>(taps, tap, R, wT, ldw, bT, out); break;
    case 6: wide_forward_tile<6, OV>(taps, tap, R, wT, ldw, bT, out); break;
    case 5: wide_forward_tile<5, OV>(taps, tap, R, wT, ldw, bT, out); break;
    case 4: wide_forward_tile<4, OV>(taps, tap, R, wT, ldw, bT, out); break;
    case 3: wide_forward_tile<3, OV>(taps, tap, R, wT, ldw, bT, out); break;
    case 2: wide_forward_tile<2, OV>(taps, tap, R, wT, ldw, bT, out); break;
    default: wide_forward_tile<1, OV>(taps, tap, R, wT, ldw, bT, out); break;
  }
}

// y = the convolution of x by w, plus b (with `add`, y += the convolution; b unused), by
// wide_forward_tile. One (image, group) per iteration, as direct_forward.
void wide_forward(const float* x, const float* w, const float* b, float* y, const Conv2dGeometry& g, bool add) {
  const Index N = static_cast<Index>(g.N), G = static_cast<Index>(g.G), R = static_cast<Index>(g.R());
  const Index O = static_cast<Index>(g.O), Og = static_cast<Index>(g.Og()), OH = g.OH, OW = g.OW;
  const Index plane = OH * OW, ldw = (Og + 15) / 16 * 16, row = direct_layout(g).row_step();
  const std::size_t size = direct_buffer_size(g);
  Index* tap = thread_buffer<Index, TapsTag>(static_cast<std::size_t>(R));
  tap_offsets(g, tap);
  // (G, R, ldw) and (G, ldw): each group's weights transposed and its biases, zero-filled.
  const std::size_t wsize = static_cast<std::size_t>(G * R * ldw), bsize = static_cast<std::size_t>(G * ldw);
  float* wT = thread_buffer<float, WideWeightsTag>(wsize + bsize);
  float* bT = wT + wsize;
  std::fill(wT, wT + wsize + bsize, 0.0f);
  for (Index grp = 0; grp < G; ++grp) {
    for (Index o = 0; o < Og; ++o) {
      for (Index r = 0; r < R; ++r) wT[(grp * R + r) * ldw + o] = w[(grp * Og + o) * R + r];
      if (b != nullptr) bT[grp * ldw + o] = b[grp * Og + o];
    }
  }
  const bool bias = b != nullptr && !add;
  ParallelErrors errors;
#pragma omp parallel if (O * R * static_cast<Index>(g.L()) >= kParallelMacs)
  {
    float *padded = nullptr, *out = nullptr;
    errors.run([&] {
      padded = thread_buffer<float, DirectTag>(size);
      std::fill(padded, padded + size, 0.0f);
      out = thread_buffer<float, WideTileTag>(8 * 48);
    });
#pragma omp for collapse(2) schedule(static)
    for (Index n = 0; n < N; ++n) {
      for (Index grp = 0; grp < G; ++grp) {
        if (out == nullptr) continue;  // this thread's buffers failed: rethrown below
        pad_group(x, padded, n, grp, g);
        float* yn = y + (n * O + grp * Og) * plane;
        for (Index o0 = 0; o0 < Og; o0 += 48) {
          const Index left = Og - o0, ov = left > 32 ? 3 : left > 16 ? 2 : 1, channels = std::min<Index>(left, 48);
          const float* wb = wT + grp * R * ldw + o0;
          const float* bb = bias ? bT + grp * ldw + o0 : nullptr;
          for (Index oh = 0; oh < OH; ++oh) {
            for (Index ow0 = 0; ow0 < OW; ow0 += 8) {
              const Index pb = std::min<Index>(8, OW - ow0);
              const float* taps = padded + oh * row + ow0;
              if (ov == 3) {
                wide_forward_segment<3>(pb, taps, tap, R, wb, ldw, bb, out);
              } else if (ov == 2) {
                wide_forward_segment<2>(pb, taps, tap, R, wb, ldw, bb, out);
              } else {
                wide_forward_segment<1>(pb, taps, tap, R, wb, ldw, bb, out);
              }
              float* dst = yn + o0 * plane + oh * OW + ow0;
              for (Index j = 0; j < pb; ++j) {
                const float* src = out + j * ov * 16;
                if (add) {
                  for (Index o = 0; o < channels; ++o) dst[o * plane + j] += src[o];
                } else {
                  for (Index o = 0; o < channels; ++o) dst[o * plane + j] = src[o];
                }
              }
            }
          }
        }
      }
    }
  }
  errors.rethrow();
}
#endif  // __AVX512F__

// y = the direct convolution of x by w, plus b; with `add`, y += the convolution (b unused).
void direct_forward(const float* x, const float* w, const float* b, float* y, const Conv2dGeometry& g,
                    bool add = false) {
#if defined(__AVX512F__)
  if (!direct_forward_ok(g)) {
    wide_forward(x, w, b, y, g, add);
    return;
  }
#endif
  const Index N = static_cast<Index>(g.N), G = static_cast<Index>(g.G), R = static_cast<Index>(g.R());
  const std::size_t size = direct_buffer_size(g);
  Index* tap = thread_buffer<Index, TapsTag>(static_cast<std::size_t>(R));
  tap_offsets(g, tap);
  ParallelErrors errors;
  // One (image, group) per iteration: iterations write disjoint planes of y.
#pragma omp parallel if (static_cast<Index>(g.O) * R * static_cast<Index>(g.L()) >= kParallelMacs)
  {
    float* padded = nullptr;
    errors.run([&] {
      padded = thread_buffer<float, DirectTag>(size);
      std::fill(padded, padded + size, 0.0f);
    });
#pragma omp for collapse(2) schedule(static)
    for (Index n = 0; n < N; ++n) {
      for (Index grp = 0; grp < G; ++grp) {
        if (padded == nullptr) continue;  // this thread's buffer failed: rethrown below
        pad_group(x, padded, n, grp, g);
        direct_forward_image(padded, w, b, y, n, grp, tap, g, add);
      }
    }
  }
  errors.rethrow();
}

bool direct_input_grad_ok(const Conv2dGeometry& g) {
  return g.S == 1 && g.P + 1 <= g.K && direct_or_wide_forward_ok(input_grad_geometry(g));
}

// dx (N, C, H, W) += (or, with overwrite, =) the input gradient, by direct_forward.
void direct_input_grad(const float* dy, const float* w, float* dx, const Conv2dGeometry& g, bool overwrite) {
  const Index K = static_cast<Index>(g.K), Cg = static_cast<Index>(g.Cg()), Og = static_cast<Index>(g.Og());
  float* flipped = thread_buffer<float, FlippedTag>(g.C * g.Og() * g.K * g.K);  // (C, Og, K, K)
  for (Index grp = 0; grp < static_cast<Index>(g.G); ++grp)
    for (Index c = 0; c < Cg; ++c)
      for (Index o = 0; o < Og; ++o)
        for (Index kh = 0; kh < K; ++kh)
          for (Index kw = 0; kw < K; ++kw)
            flipped[static_cast<std::size_t>((((grp * Cg + c) * Og + o) * K + kh) * K + kw)] =
                w[(((grp * Og + o) * Cg + c) * K + (K - 1 - kh)) * K + (K - 1 - kw)];
  direct_forward(dy, flipped, nullptr, dx, input_grad_geometry(g), !overwrite);
}
#endif  // XGRAD_CONV_DIRECT

// dw (G*Og, R) += the partial products (G, chunks, R, Og): each element summed by one thread, in
// chunk order. Called inside a parallel region by all its threads; with complete false (a
// thread failed to compute its part) dw is left as it was.
template <class T>
void add_weight_partials(const T* partial, T* dw, Index G, Index chunks, Index Og, Index R, bool complete) {
#pragma omp for schedule(static)
  for (Index j = 0; j < G * Og * R; ++j) {
    if (!complete) continue;
    const Index grp = j / (Og * R), o = j / R % Og, r = j % R;
    const T* p = partial + grp * chunks * R * Og + r * Og + o;  // element (o, r) in chunk 0
    T total = p[0];
    for (Index i = 1; i < chunks; ++i) total += p[i * R * Og];
    dw[j] += total;
  }
}

#if defined(XGRAD_CONV_DIRECT)
// The weight gradient of a stride-1 convolution, direct: dw[o, r] = the sum over the images and
// positions p of dy[n, o, p] * tap_r(n)[p]. A tile of OB channels x RB taps keeps OB * RB vector
// sums of Vec::width positions each in registers over all the positions of a chunk of images:
// each position vector loads OB dy vectors and RB tap vectors for OB * RB multiply-adds (4 x 6:
// 10 loads for 24 on AVX-512; 2 x 6: 8 for 12 on AVX2), fewer loads than multiply-adds, and
// nothing is copied into columns. The lanes past a row's end are loaded
// as zeros on both sides (a zero dy times a finite tap would do, but not an infinite one).
// Then each sum's lanes are added in a fixed order into the chunk's partial product (R, Og), as
// the GEMM path's, so the results do not depend on the thread count.
// Taken for R <= kDirectRows only: for the 5x5 layers with R = 400-600 on 14-27 wide rows it
// ran at 0.6-0.8x the speed of im2col + GEMM on AVX-512 (bench_layers, an Intel Xeon of family 6
// model 167), probably because most of its unaligned tap vectors split across cache lines (not
// measured apart); wide_weight_grad below takes those layers there.

// One vector of positions of a chunk: its taps' start in the chunk's padded planes (tap 0 at
// offset 0), its dy's relative to channel o0 of the chunk's first image, and its lane count.
struct GradStep {
  Index taps, dy, lanes;
};

// The steps of a chunk of `images` images: images x rows x row vectors, in that order (so a
// shorter chunk's are the first ones).
void grad_steps(GradStep* steps, Index images, Index image, Index dy_image, const Conv2dGeometry& g) {
  const Index OH = g.OH, OW = g.OW, row = direct_layout(g).row_step();
  Index count = 0;
  for (Index n = 0; n < images; ++n)
    for (Index oh = 0; oh < OH; ++oh)
      for (Index ow0 = 0; ow0 < OW; ow0 += Vec::width)
        steps[count++] = {n * image + oh * row + ow0, n * dy_image + oh * OW + ow0, std::min(Vec::width, OW - ow0)};
}

// out[i * Og + j] = the sums for channels [o0, o0 + OB) (dy at channel o0 of the chunk's first
// image, `plane` floats between channels) and taps [r0, r0 + RB) (tap at r0) over the steps.
// One flat loop: GCC keeps the accumulators in registers (over nested loops it stored them
// after every multiply-add).
template <int OB, int RB>
inline void direct_weight_grad_tile(const float* padded, const float* dy, Index plane, const GradStep* steps,
                                    Index count, const Index* tap, float* out, Index Og) {
  V acc[OB][RB];
  for (int j = 0; j < OB; ++j)
    for (int i = 0; i < RB; ++i) acc[j][i] = Vec::zero();
  for (Index s = 0; s < count; ++s) {
    const GradStep step = steps[s];
    const Vec::Mask lanes = Vec::first(step.lanes);
    V d[OB];
    for (int j = 0; j < OB; ++j) d[j] = Vec::load(dy + j * plane + step.dy, lanes);
    const float* taps = padded + step.taps;
    for (int i = 0; i < RB; ++i) {
      const V t = Vec::load(taps + tap[i], lanes);
      for (int j = 0; j < OB; ++j) acc[j][i] = Vec::fmadd(d[j], t, acc[j][i]);
    }
  }
  for (int j = 0; j < OB; ++j)
    for (int i = 0; i < RB; ++i) out[i * Og + j] = Vec::sum(acc[j][i]);
}

// The taps [0, R) of channels [o0, o0 + OB) in tiles of 6 taps, then 2, then 1.
template <int OB>
void direct_weight_grad_channels(const float* padded, const float* dy, Index plane, const GradStep* steps,
                                 Index count, const Index* tap, float* out, Index R, Index Og) {
  Index r = 0;
  for (; r + 6 <= R; r += 6)
    direct_weight_grad_tile<OB, 6>(padded, dy, plane, steps, count, tap + r, out + r * Og, Og);
  for (; r + 2 <= R; r += 2)
    direct_weight_grad_tile<OB, 2>(padded, dy, plane, steps, count, tap + r, out + r * Og, Og);
  for (; r < R; ++r) direct_weight_grad_tile<OB, 1>(padded, dy, plane, steps, count, tap + r, out + r * Og, Og);
}

// dw += the direct weight gradient, from dy (N, O, OH, OW) as it is. Chunks of whole images as
// images_per_chunk: one (group, chunk) per iteration pads the chunk's images, then computes its
// partial product tile by tile; then add_weight_partials.
void direct_weight_grad(const float* dy, const float* x, float* dw, const Conv2dGeometry& g) {
  const Index N = static_cast<Index>(g.N), O = static_cast<Index>(g.O), G = static_cast<Index>(g.G);
  const Index Og = static_cast<Index>(g.Og()), R = static_cast<Index>(g.R()), plane = g.OH * g.OW;
  const Index per = images_per_chunk(g), chunks = (N + per - 1) / per;
  const Index image = static_cast<Index>(direct_buffer_size(g));  // floats of one image's planes
  const Index vectors = (static_cast<Index>(g.OW) + Vec::width - 1) / Vec::width;  // per row
  constexpr int OB = Vec::grad_channels;
  Index* tap = thread_buffer<Index, TapsTag>(static_cast<std::size_t>(R));
  tap_offsets(g, tap);
  // (G, chunks, R, Og)
  float* partial = thread_buffer<float, PartialTag>(static_cast<std::size_t>(G * chunks * Og * R));
  ParallelErrors errors;
#pragma omp parallel if (O * R * static_cast<Index>(g.L()) >= kParallelMacs)
  {
    float* padded = nullptr;
    GradStep* steps = nullptr;
    errors.run([&] {
      const std::size_t size = static_cast<std::size_t>(per * image);
      padded = thread_buffer<float, DirectTag>(size);
      std::fill(padded, padded + size, 0.0f);
      steps = thread_buffer<GradStep, StepsTag>(static_cast<std::size_t>(per * g.OH * vectors));
      grad_steps(steps, per, image, O * plane, g);  // a shorter chunk's are their first ones
    });
#pragma omp for collapse(2) schedule(static)
    for (Index grp = 0; grp < G; ++grp) {
      for (Index i = 0; i < chunks; ++i) {
        if (steps == nullptr) continue;  // this thread's buffers failed: rethrown below
        const Index n0 = i * per, images = std::min(N, n0 + per) - n0;
        for (Index n = 0; n < images; ++n) pad_group(x, padded + n * image, n0 + n, grp, g);
        const Index count = images * g.OH * vectors;
        const float* dyc = dy + (n0 * O + grp * Og) * plane;
        float* out = partial + (grp * chunks + i) * R * Og;
        Index o = 0;
        for (; o + OB <= Og; o += OB)
          direct_weight_grad_channels<OB>(padded, dyc + o * plane, plane, steps, count, tap, out + o, R, Og);
        for (; o < Og; ++o)
          direct_weight_grad_channels<1>(padded, dyc + o * plane, plane, steps, count, tap, out + o, R, Og);
      }
    }
    add_weight_partials(partial, dw, G, chunks, Og, R, !errors.failed());
  }
  errors.rethrow();
}

#if defined(__AVX512F__)
// The weight gradient of a 3x3 or 5x5 convolution at stride 1 with more rows than the direct
// kernel takes, or at stride 2, on AVX-512, with the output channels in the vector lanes:
// dw[o, r] = sum over the chunk's positions p of tap_r[p] * dyT[p, o], dyT being the chunk's dy
// transposed to (positions, Og rounded up to a multiple of 16, zero-filled). A tile of ROWS
// kernel rows (c, kh) of K taps each x OV vectors of 16 channels keeps ROWS * K * OV sums in
// registers (5x5: 2 rows, 20 sums; 3x3: 4 rows, 24); each position loads OV dy vectors and
// broadcasts each of its ROWS * K taps from the padded planes (a scalar load, never split
// across cache lines) into OV multiply-adds. Every sum runs over the positions in order, into
// the chunk's partial product (R, Og), so the results do not depend on the thread count.
// At stride 2 the planes are in the phase layout (see DirectLayout): tap kw of a kernel row lies
// (kw % 2) phase planes and kw / 2 floats from its first. Measured (bench_layers, AVX-512, an
// Intel core): the mini preset's conv1 (3 -> 24, 5x5, stride 2, 32x32 outputs, batch 64) takes
// 0.72x the time of im2col + GEMM without the input gradient, 0.89x with it.
bool wide_weight_grad_ok(const Conv2dGeometry& g) {
  return (g.S == 1 || g.S == 2) && (g.K == 3 || g.K == 5) && !direct_convolution(g);
}

// out[(q * K + kw) * Og + o] for the tile's rows q and channels [0, 16 * OV) of dyT (the last
// vector's `last` lanes stored): the sums over the count positions.
template <int K, int S, int ROWS, int OV>
inline void wide_grad_tile(const float* padded, const Index* pos, Index count, const float* dyT, Index ld,
                           const Index* row_off, Index phase, float* out, Index Og, __mmask16 last) {
  __m512 acc[ROWS * K][OV];
  for (int t = 0; t < ROWS * K; ++t)
    for (int v = 0; v < OV; ++v) acc[t][v] = _mm512_setzero_ps();
  Index off[ROWS];
  for (int q = 0; q < ROWS; ++q) off[q] = row_off[q];
  for (Index p = 0; p < count; ++p) {
    __m512 d[OV];
    for (int v = 0; v < OV; ++v) d[v] = _mm512_loadu_ps(dyT + p * ld + 16 * v);
    const float* base = padded + pos[p];
    for (int q = 0; q < ROWS; ++q) {
      for (int kw = 0; kw < K; ++kw) {
        const __m512 b = _mm512_set1_ps(base[off[q] + (kw % S) * phase + kw / S]);
        for (int v = 0; v < OV; ++v) acc[q * K + kw][v] = _mm512_fmadd_ps(b, d[v], acc[q * K + kw][v]);
      }
    }
  }
  for (int t = 0; t < ROWS * K; ++t) {
    for (int v = 0; v < OV; ++v) {
      float* dst = out + t * Og + 16 * v;
      if (v + 1 < OV) {
        _mm512_storeu_ps(dst, acc[t][v]);
      } else {
        _mm512_mask_storeu_ps(dst, last, acc[t][v]);
      }
    }
  }
}

// Every kernel row of the group for the channels [o0, o0 + 16 * OV) (the last vector's `last`
// lanes real): tiles of ROWS rows, then one row at a time.
template <int K, int S, int ROWS, int OV>
void wide_grad_channels(const float* padded, const Index* pos, Index count, const float* dyT, Index ld,
                        const Index* row_off, Index phase, Index rows, float* out, Index Og, __mmask16 last) {
  Index q = 0;
  for (; q + ROWS <= rows; q += ROWS)
    wide_grad_tile<K, S, ROWS, OV>(padded, pos, count, dyT, ld, row_off + q, phase, out + q * K * Og, Og, last);
  for (; q < rows; ++q)
    wide_grad_tile<K, S, 1, OV>(padded, pos, count, dyT, ld, row_off + q, phase, out + q * K * Og, Og, last);
}

template <int K, int S, int ROWS>
void wide_grad_chunk(const float* padded, const Index* pos, Index count, const float* dyT, Index ld,
                     const Index* row_off, Index phase, Index rows, float* out, Index Og) {
  Index o = 0;
  for (; o + 32 <= Og; o += 32)
    wide_grad_channels<K, S, ROWS, 2>(padded, pos, count, dyT + o, ld, row_off, phase, rows, out + o, Og, 0xFFFF);
  if (o + 16 < Og) {  // 17-31 channels left: two vectors, the second partial
    wide_grad_channels<K, S, ROWS, 2>(padded, pos, count, dyT + o, ld, row_off, phase, rows, out + o, Og,
                                      first_lanes16(Og - o - 16));
  } else if (o < Og) {
    wide_grad_channels<K, S, ROWS, 1>(padded, pos, count, dyT + o, ld, row_off, phase, rows, out + o, Og,
                                      first_lanes16(Og - o));
  }
}

// dw += the weight gradient (see above), from dy (N, O, OH, OW) as it is, in the chunks of
// images_per_chunk: one (group, chunk) per iteration pads the chunk's images and transposes its
// dy, then computes its partial product; then add_weight_partials.
void wide_weight_grad(const float* dy, const float* x, float* dw, const Conv2dGeometry& g) {
  const Index N = static_cast<Index>(g.N), O = static_cast<Index>(g.O), G = static_cast<Index>(g.G);
  const Index Og = static_cast<Index>(g.Og()), R = static_cast<Index>(g.R()), K = static_cast<Index>(g.K);
  const Index OH = g.OH, OW = g.OW, plane = OH * OW, Cg = static_cast<Index>(g.Cg());
  const Index per = images_per_chunk(g), chunks = (N + per - 1) / per;
  const Index image = static_cast<Index>(direct_buffer_size(g));  // floats of one image's planes
  const Index ld = (Og + 15) / 16 * 16;                          // dyT's row: Og rounded up
  const DirectLayout layout = direct_layout(g);
  const Index rows = Cg * K;  // kernel rows (c, kh)
  Index* row_off = thread_buffer<Index, TapsTag>(static_cast<std::size_t>(rows));  // of row (c, kh)'s first tap
  for (Index c = 0; c < Cg; ++c)
    for (Index kh = 0; kh < K; ++kh) row_off[c * K + kh] = c * layout.plane() + kh * layout.Wq;
  // (G, chunks, R, Og)
  float* partial = thread_buffer<float, PartialTag>(static_cast<std::size_t>(G * chunks * Og * R));
  ParallelErrors errors;
#pragma omp parallel if (O * R * static_cast<Index>(g.L()) >= kParallelMacs)
  {
    float *padded = nullptr, *dyT = nullptr;
    Index* pos = nullptr;
    errors.run([&] {
      const std::size_t size = static_cast<std::size_t>(per * image);
      padded = thread_buffer<float, DirectTag>(size);
      std::fill(padded, padded + size, 0.0f);
      dyT = thread_buffer<float, PanelTag>(static_cast<std::size_t>(per * plane * ld));
      std::fill(dyT, dyT + per * plane * ld, 0.0f);  // the lanes past Og stay zero
      pos = thread_buffer<Index, PositionsTag>(static_cast<std::size_t>(per * plane));
      // The same for every chunk (a shorter one uses the first ones): image n's planes start
      // n * image floats in.
      for (Index n = 0; n < per; ++n)
        for (Index oh = 0; oh < OH; ++oh)
          for (Index ow = 0; ow < OW; ++ow) pos[(n * OH + oh) * OW + ow] = n * image + oh * layout.row_step() + ow;
    });
#pragma omp for collapse(2) schedule(static)
    for (Index grp = 0; grp < G; ++grp) {
      for (Index i = 0; i < chunks; ++i) {
        if (pos == nullptr) continue;  // this thread's buffers failed: rethrown below
        const Index n0 = i * per, images = std::min(N, n0 + per) - n0, count = images * plane;
        for (Index n = 0; n < images; ++n) {
          pad_group(x, padded + n * image, n0 + n, grp, g);
          // Position by position, so that each row of dyT is written whole while it is in L1
          // (channel by channel, every row's cache lines were revisited Og times from L2; a
          // gather of 16 channels at a time was slower, on an Intel core).
          const float* src = dy + ((n0 + n) * O + grp * Og) * plane;
          float* dst = dyT + n * plane * ld;
          for (Index q = 0; q < plane; ++q)
            for (Index o = 0; o < Og; ++o) dst[q * ld + o] = src[o * plane + q];
        }
        float* out = partial + (grp * chunks + i) * R * Og;
        const Index phase = layout.phase();
        if (K == 5 && g.S == 1) {
          wide_grad_chunk<5, 1, 2>(padded, pos, count, dyT, ld, row_off, phase, rows, out, Og);
        } else if (K == 5) {
          wide_grad_chunk<5, 2, 2>(padded, pos, count, dyT, ld, row_off, phase, rows, out, Og);
        } else if (g.S == 1) {
          wide_grad_chunk<3, 1, 4>(padded, pos, count, dyT, ld, row_off, phase, rows, out, Og);
        } else {
          wide_grad_chunk<3, 2, 4>(padded, pos, count, dyT, ld, row_off, phase, rows, out, Og);
        }
      }
    }
    add_weight_partials(partial, dw, G, chunks, Og, R, !errors.failed());
  }
  errors.rethrow();
}
#endif  // __AVX512F__
#endif

// Winograd F(2x2, 3x3) (conv2d_winograd_kernels.hpp) for the float 3x3 layers at stride 1 with
// padding 1, at least kWinogradChannels input and output channels a group and planes of at
// least kWinogradSide rows and columns. Measured (bench_layers, 2 threads, a Zen 4 EPYC): on
// AlexNet's 13x13 layers (batch 16) it takes 0.52-0.62x the time of the kernels before it
// (im2col + GEMM there), forward and backward; on the mini preset's 7x7 layers (batch 64) 1.3-1.8x
// the time of the wide kernels, whose 2x2 tiles overhang a 7x7 plane by 31% and whose GEMMs have
// 64-96 channels inside. The side between 7 and 13 was not measured.
constexpr std::size_t kWinogradChannels = 16;
constexpr std::size_t kWinogradSide = 10;

// Its GEMMs' row distances are 16 times a group's channels and 16 times an image's tiles (or
// more images' when a pass holds several, which the pass size keeps small): beyond BLAS's
// int sizes the layer takes the other kernels.
bool winograd_ok(const Conv2dGeometry& g) {
  const std::size_t tiles = ((g.OH + 1) / 2) * ((g.OW + 1) / 2), limit = kMaxGemmSize / 16;
  return g.K == 3 && g.S == 1 && g.P == 1 && g.Cg() >= kWinogradChannels && g.Og() >= kWinogradChannels &&
         g.OH >= kWinogradSide && g.OW >= kWinogradSide && tiles <= limit && g.Cg() <= limit && g.Og() <= limit;
}

}  // namespace

namespace kernels {

template <class T>
void im2col(const T* x, T* cols, const Conv2dGeometry& g) {
  const Index N = g.N, C = g.C, K = g.K, L = static_cast<Index>(g.L()), PP = g.OH * g.OW;
  const Index planes = (g.H + 2 * g.P) * (g.W + 2 * g.P);
  if (L == 0) return;
  ParallelErrors errors;
  // One (n, c) plane per iteration: rows (c, kh, kw), columns of image n.
#pragma omp parallel if (C * K * K * L >= kParallelElements)
  {
    T* padded = nullptr;
    errors.run([&] { padded = thread_buffer<T, PlaneTag>(static_cast<std::size_t>(planes)); });
    if (padded != nullptr) std::fill(padded, padded + planes, T(0));
#pragma omp for collapse(2) schedule(static)
    for (Index n = 0; n < N; ++n) {
      for (Index c = 0; c < C; ++c) {
        if (padded == nullptr) continue;  // this thread's buffer failed: rethrown below
        im2col_plane(x + (n * C + c) * g.H * g.W, cols + c * K * K * L + n * PP, L, padded, g);
      }
    }
  }
  errors.rethrow();
}

template <class T>
void col2im_add(const T* dcols, T* dx, std::size_t group, const Conv2dGeometry& g) {
  const Index N = g.N, C = g.C, K = g.K, L = static_cast<Index>(g.L()), PP = g.OH * g.OW;
  const Index Cg = C / static_cast<Index>(g.G), grp = static_cast<Index>(group);
  const Index planes = (g.H + 2 * g.P) * (g.W + 2 * g.P);
  if (L == 0) return;
  ParallelErrors errors;
  // One (n, c) plane of dx per iteration: no two threads add into the same element.
#pragma omp parallel if (Cg * K * K * L >= kParallelElements)
  {
    T* padded = nullptr;
    errors.run([&] { padded = thread_buffer<T, PlaneTag>(static_cast<std::size_t>(planes)); });
#pragma omp for collapse(2) schedule(static)
    for (Index n = 0; n < N; ++n) {
      for (Index cg = 0; cg < Cg; ++cg) {
        if (padded == nullptr) continue;  // this thread's buffer failed: rethrown below
        col2im_plane(dcols + cg * K * K * L + n * PP, L, dx + (n * C + grp * Cg + cg) * g.H * g.W, padded, g);
      }
    }
  }
  errors.rethrow();
}

template <class T>
void conv2d_forward(const T* x, const T* w, const T* b, T* y, const Conv2dGeometry& g) {
  const Index N = g.N, O = g.O, PP = g.OH * g.OW, L = static_cast<Index>(g.L());
  const Index R = static_cast<Index>(g.R()), Og = static_cast<Index>(g.Og());
  if (L == 0) return;  // an empty batch
  if constexpr (std::is_same<T, float>::value) {
    if (winograd_ok(g)) {
      detail::winograd_forward(x, w, b, y, g, false);
      return;
    }
  }
#if defined(XGRAD_CONV_DIRECT)
  if constexpr (std::is_same<T, float>::value) {
    if (direct_or_wide_forward_ok(g)) {
      direct_forward(x, w, b, y, g);
      return;
    }
  }
#endif
  const Index per = images_per_panel(g), panels = (N + per - 1) / per;
  const Index planes = (g.H + 2 * g.P) * (g.W + 2 * g.P);
  ParallelErrors errors;
  // One (group, panel of whole images) per iteration, fused while its data is in cache:
  //   cols (R, width) = im2col of the panel's images, channels of the group
  //   out (Og, width) = w_g (Og, R) x cols
  //   y[n, g*Og + o, :] = out[o, n's columns] + b
  // Iterations write disjoint parts of y; nothing else is kept (the backward rebuilds columns).
#pragma omp parallel if (Og * L * R >= kParallelMacs)
  {
    T *padded = nullptr, *out = nullptr, *cols = nullptr;
    const bool ready = errors.run([&] {
      padded = thread_buffer<T, PlaneTag>(static_cast<std::size_t>(planes));
      std::fill(padded, padded + planes, T(0));
      out = thread_buffer<T, PanelTag>(static_cast<std::size_t>(Og * per * PP));  // (Og, width)
      cols = thread_buffer<T, ColsTag>(static_cast<std::size_t>(R * per * PP));  // (R, width)
    });
#pragma omp for collapse(2) schedule(static)
    for (Index grp = 0; grp < static_cast<Index>(g.G); ++grp) {
      for (Index panel = 0; panel < panels; ++panel) {
        if (!ready) continue;  // this thread's buffers failed: rethrown below
        const Index n0 = panel * per, n1 = std::min(N, n0 + per), width = (n1 - n0) * PP;
        im2col_images(x, cols, grp, n0, n1, padded, g);
        gemm_serial(false, false, Og, width, R, T(1), w + grp * Og * R, R, cols, width, T(0), out, width);
        for (Index o = 0; o < Og; ++o) {
          const Index oc = grp * Og + o;
          const T bias = b != nullptr ? b[oc] : T(0);
          for (Index n = n0; n < n1; ++n) {
            const T* src = out + o * width + (n - n0) * PP;
            T* dst = y + (n * O + oc) * PP;
            for (Index p = 0; p < PP; ++p) dst[p] = src[p] + bias;
          }
        }
      }
    }
  }
  errors.rethrow();
}

template <class T>
void conv2d_backward(const T* dy, const T* w, const T* x, T* dx, T* dw, T* db, T* scratch, const Conv2dGeometry& g,
                     bool dx_overwrite) {
  const Index N = g.N, C = g.C, O = g.O, K = g.K, PP = g.OH * g.OW, L = static_cast<Index>(g.L());
  const Index R = static_cast<Index>(g.R()), Og = static_cast<Index>(g.Og()), Cg = C / static_cast<Index>(g.G);
  const Index G = static_cast<Index>(g.G);
  if (L == 0) return;  // an empty batch: nothing to add
  bool direct = false;     // the weight gradient by direct_weight_grad, from dy as it is
  bool wide = false;       // the weight gradient by wide_weight_grad, from dy as it is
  bool direct_dx = false;  // the input gradient by direct_input_grad
  bool winograd = false;   // both by the Winograd kernels
  if constexpr (std::is_same<T, float>::value) winograd = winograd_ok(g);
#if defined(XGRAD_CONV_DIRECT)
  if constexpr (std::is_same<T, float>::value) {
    if (!winograd) direct = direct_convolution(g);
#if defined(__AVX512F__)
    wide = !winograd && wide_weight_grad_ok(g);
#endif
    direct_dx = !winograd && dx != nullptr && direct_input_grad_ok(g);
  }
#endif
  // scratch (O, N, OH*OW) = dy (N, O, OH*OW) regrouped by channel, for the GEMMs; db (O) += its
  // row sums (in double). Each channel's row is written and summed by one thread. Without a
  // GEMM to feed, db sums dy's rows in place, image by image.
  const bool regroup = !winograd && ((dx != nullptr && !direct_dx) || (dw != nullptr && !direct && !wide));
#pragma omp parallel for schedule(static) if (N * O * PP >= kParallelElements)
  for (Index o = 0; o < O; ++o) {
    if (regroup) {
      T* row = scratch + o * L;
      for (Index n = 0; n < N; ++n) copy_run(dy + (n * O + o) * PP, row + n * PP, PP);
      if (db != nullptr) db[o] += static_cast<T>(sum_in_double(row, L));
    } else if (db != nullptr) {
      double total = 0.0;
      for (Index n = 0; n < N; ++n) total += sum_in_double(dy + (n * O + o) * PP, PP);
      db[o] += static_cast<T>(total);
    }
  }
  if constexpr (std::is_same<T, float>::value) {
    if (winograd) {
      if (dw != nullptr) detail::winograd_weight_grad(dy, x, dw, g);
      if (dx != nullptr) detail::winograd_input_grad(dy, w, dx, input_grad_geometry(g), dx_overwrite);
      return;
    }
  }
#if defined(XGRAD_CONV_DIRECT)
  if constexpr (std::is_same<T, float>::value) {
    if (direct && dw != nullptr) direct_weight_grad(dy, x, dw, g);
#if defined(__AVX512F__)
    if (wide && dw != nullptr) wide_weight_grad(dy, x, dw, g);
#endif
  }
#endif
  if (dw != nullptr && !direct && !wide) {
    // dw_g (Og, R) += dy_g (Og, L) x cols_g^T (L, R), with L cut into fixed chunks of whole
    // images: one (group, chunk) per iteration rebuilds the chunk's columns (R, width) and
    // multiplies them into its own partial product, kept transposed (R, Og), which OpenBLAS
    // computes faster with the longer side as rows. Then each element of dw is summed by one
    // thread, in chunk order. No operand is packed twice, as cutting dw into panels would do.
    const Index per = images_per_chunk(g), chunks = (N + per - 1) / per;
    const Index planes = (g.H + 2 * g.P) * (g.W + 2 * g.P);
    T* partial = thread_buffer<T, PartialTag>(static_cast<std::size_t>(G * chunks * Og * R));  // (G, chunks, R, Og)
    ParallelErrors errors;
#pragma omp parallel if (Og * L * R * G >= kParallelMacs)
    {
      T *padded = nullptr, *cols = nullptr;
      const bool ready = errors.run([&] {
        padded = thread_buffer<T, PlaneTag>(static_cast<std::size_t>(planes));
        std::fill(padded, padded + planes, T(0));
        cols = thread_buffer<T, ColsTag>(static_cast<std::size_t>(R * per * PP));  // (R, width)
      });
#pragma omp for collapse(2) schedule(static)
      for (Index grp = 0; grp < G; ++grp) {
        for (Index i = 0; i < chunks; ++i) {
          if (!ready) continue;  // this thread's buffers failed: rethrown below
          const Index n0 = i * per, n1 = std::min(N, n0 + per), width = (n1 - n0) * PP;
          im2col_images(x, cols, grp, n0, n1, padded, g);
          gemm_serial(false, true, R, Og, width, T(1), cols, width, scratch + grp * Og * L + n0 * PP, L, T(0),
                      partial + (grp * chunks + i) * R * Og, Og);
        }
      }
      // After the barrier ending the loop above, every thread sees whether any failed: the
      // partial products are then incomplete, and dw is left as it was.
      add_weight_partials(partial, dw, G, chunks, Og, R, !errors.failed());
    }
    errors.rethrow();
  }
  if (dx == nullptr) return;
#if defined(XGRAD_CONV_DIRECT)
  if constexpr (std::is_same<T, float>::value) {
    if (direct_dx) {
      direct_input_grad(dy, w, dx, g, dx_overwrite);
      return;
    }
  }
#endif
  // One (group, panel of whole images) per iteration, fused while in cache:
  //   dcols (R, width) = w_g^T (R, Og) x dy_g[:, panel] (Og, width)
  //   dx[n, channels of g] += col2im(dcols) for the panel's images
  // Iterations add into disjoint (n, c) planes of dx.
  const Index per = images_per_panel(g), panels = (N + per - 1) / per;
  const Index planes = (g.H + 2 * g.P) * (g.W + 2 * g.P);
  ParallelErrors errors;
#pragma omp parallel if (Og * L * R >= kParallelMacs)
  {
    T *padded = nullptr, *dcols = nullptr;
    const bool ready = errors.run([&] {
      padded = thread_buffer<T, PlaneTag>(static_cast<std::size_t>(planes));
      dcols = thread_buffer<T, PanelTag>(static_cast<std::size_t>(R * per * PP));  // (R, width)
    });
#pragma omp for collapse(2) schedule(static)
    for (Index grp = 0; grp < static_cast<Index>(g.G); ++grp) {
      for (Index panel = 0; panel < panels; ++panel) {
        if (!ready) continue;  // this thread's buffers failed: rethrown below
        const Index n0 = panel * per, n1 = std::min(N, n0 + per), width = (n1 - n0) * PP;
        gemm_serial(true, false, R, width, Og, T(1), w + grp * Og * R, R, scratch + grp * Og * L + n0 * PP, L, T(0),
                    dcols, width);
        for (Index n = n0; n < n1; ++n) {
          for (Index cg = 0; cg < Cg; ++cg) {
            col2im_plane(dcols + cg * K * K * width + (n - n0) * PP, width, dx + (n * C + grp * Cg + cg) * g.H * g.W,
                         padded, g, dx_overwrite);
          }
        }
      }
    }
  }
  errors.rethrow();
}

template void im2col<float>(const float*, float*, const Conv2dGeometry&);
template void im2col<double>(const double*, double*, const Conv2dGeometry&);
template void col2im_add<float>(const float*, float*, std::size_t, const Conv2dGeometry&);
template void col2im_add<double>(const double*, double*, std::size_t, const Conv2dGeometry&);
template void conv2d_forward<float>(const float*, const float*, const float*, float*, const Conv2dGeometry&);
template void conv2d_forward<double>(const double*, const double*, const double*, double*, const Conv2dGeometry&);
template void conv2d_backward<float>(const float*, const float*, const float*, float*, float*, float*, float*,
                                     const Conv2dGeometry&, bool);
template void conv2d_backward<double>(const double*, const double*, const double*, double*, double*, double*,
                                      double*, const Conv2dGeometry&, bool);

}  // namespace kernels

namespace functional {

Variable conv2d(const Variable& x, const Variable& weight, const Variable& bias, const Conv2dFuncOptions& options,
                Conv2dWorkspace* workspace) {
  XGRAD_CHECK(x.defined(), "Conv2d: undefined input");
  XGRAD_CHECK(weight.defined(), "Conv2d: undefined weight");
  const Shape ws = weight.shape();
  XGRAD_CHECK(ws.size() == 4 && ws[2] == ws[3], "Conv2d: weight must be (out_channels, in_channels / groups, K, K), got ",
              shape_str(ws));
  const std::size_t groups = options.groups();
  XGRAD_CHECK(groups >= 1, "Conv2d: groups must be >= 1, got ", groups);
  XGRAD_CHECK(!bias.defined() || bias.shape() == Shape{ws[0]}, "Conv2d: bias must be (", ws[0],
              ") for a weight ", shape_str(ws), ", got ", shape_str(bias.shape()));
  const std::size_t in_channels = detail::checked_product("Conv2d", "in_channels (the weight's C/G x groups)", {ws[1], groups});
  const Conv2dGeometry g = Conv2dGeometry::make("Conv2d", x.shape(), in_channels, ws[0], ws[2], options.stride(),
                                                options.padding(), groups);
  Conv2dWorkspace fresh;
  Conv2dWorkspace& work = workspace != nullptr ? *workspace : fresh;
  if (work.scratch == nullptr) work.scratch = std::make_shared<Tensor>();
  Tensor y = empty(g.output_shape(), "Conv2d");
  kernels::conv2d_forward<float>(x.value().data(), weight.value().data(),
                                 bias.defined() ? bias.value().data() : nullptr, y.data(), g);
  // The backward rebuilds the columns from x's value for dw, chunk by chunk, instead of keeping
  // them (C*K*K times x's size).
  auto backward = [x, w = weight, b = bias, scratch = work.scratch, g](const Tensor& dy) mutable {
    bool dx_overwrite = false;
    float* dx = x.requires_grad() ? x.grad_buffer(dx_overwrite).data() : nullptr;
    float* dw = w.requires_grad() ? w.grad_buffer().data() : nullptr;
    float* db = b.defined() && b.requires_grad() ? b.grad_buffer().data() : nullptr;
    ensure_size(*scratch, g.scratch_size());
    kernels::conv2d_backward<float>(dy.data(), w.value().data(), x.value().data(), dx, dw, db, scratch->data(), g,
                                    dx_overwrite);
  };
  return bias.defined() ? record_op("Conv2d", std::move(y), {x, weight, bias}, {x, weight}, std::move(backward))
                        : record_op("Conv2d", std::move(y), {x, weight}, std::move(backward));
}

}  // namespace functional

Conv2d::Conv2d(const Conv2dOptions& options, Rng& rng) : options_(options) {
  check_args(repr().c_str(), options.in_channels(), options.out_channels(), options.kernel_size(), options.stride(),
             options.groups());
  const std::size_t in = options.in_channels(), out = options.out_channels(), k = options.kernel_size();
  const std::string who = repr();
  // fan_in = Cg*K*K >= 1 (check_args): the bound is finite.
  const std::size_t fan = detail::checked_product(who.c_str(), "a group's column rows C/G x K x K",
                                                  {in / options.groups(), k, k}, kMaxGemmSize);
  detail::checked_product(who.c_str(), "out_channels / groups", {out / options.groups()}, kMaxGemmSize);
  detail::checked_product(who.c_str(), "the weight O x C/G x K x K", {out, in / options.groups(), k, k});
  const double bound = 1.0 / std::sqrt(static_cast<double>(fan));
  Tensor w = empty({out, in / options.groups(), k, k}, who.c_str());
  rng.fill_uniform(w, -bound, bound);
  weight_ = register_parameter("weight", Variable(std::move(w)));
  if (options.bias()) {
    Tensor b = empty({out}, who.c_str());
    rng.fill_uniform(b, -bound, bound);
    bias_ = register_parameter("bias", Variable(std::move(b)));
  }
}

Variable Conv2d::forward(const Variable& x) {
  try {
    return functional::conv2d(x, weight_, bias_, options_.func(), &workspace_);
  } catch (const Error& e) {
    rethrow_naming_layer(e, "Conv2d");
  }
}

std::string Conv2d::repr() const {
  const Conv2dOptions& o = options_;
  return cat("Conv2d(", o.in_channels(), ", ", o.out_channels(), ", kernel_size=", o.kernel_size(), ", stride=",
             o.stride(), ", padding=", o.padding(), ", groups=", o.groups(), ", bias=", o.bias() ? "true" : "false", ")");
}

}  // namespace xgrad
