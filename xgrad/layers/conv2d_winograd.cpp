#include <xgrad/layers/conv2d_winograd_kernels.hpp>

#include <omp.h>
#include <sys/mman.h>

#if defined(__AVX512F__)
#include <immintrin.h>
#endif

#include <algorithm>
#include <atomic>
#include <cstddef>
#include <cstdint>

#include <xgrad/core/blas.hpp>
#include <xgrad/core/error.hpp>
#include <xgrad/core/simd_kernels.hpp>
#include <xgrad/core/threading.hpp>

// Layout (see conv2d_winograd_kernels.hpp for the maths). A pass takes images [n0, n1) of the
// batch, TI = th * tw tiles each (th = ceil(OH / 2), tw = ceil(OW / 2)), T = (n1 - n0) * TI
// tiles in all, tile (n, ty, tx) at column (n - n0) * TI + ty * tw + tx:
//   V (C, 16, T): the input patches transformed, row (c, xi) (so that one plane's transforms
//                 land close together: with (16, C, T) each plane wrote to 16 pages far apart,
//                 and the transform ran at a third of the speed);
//   M (O, 16, T): the products, row (o, xi), or, for the weight gradient, D = the output
//                 gradient's tiles transformed;
//   U (O, 16, Cg): the weights transformed (the forward), dU the weight gradient's products.
// Every loop writes disjoint memory: V rows per (image, channel) plane, GEMM blocks of M,
// output planes per (image, channel). The GEMMs run on OpenMP threads through gemm_serial,
// each over its whole inner dimension, cut by the shape alone.

namespace xgrad {
namespace detail {
namespace {

// Images per pass: the batch, unless its buffers V and M would pass pass_floats (by default
// 2^26 floats, 256 MB); fixed by the shape alone.
std::atomic<Index> pass_floats{Index{1} << 26};

struct Tiling {
  Index th, tw, TI;  // tile rows, tile columns, tiles per image
  Index per;         // images per pass
};

Tiling tiling(const Conv2dGeometry& g) {
  Tiling t{};
  t.th = (static_cast<Index>(g.OH) + 1) / 2;
  t.tw = (static_cast<Index>(g.OW) + 1) / 2;
  t.TI = t.th * t.tw;
  const Index per_image = 16 * static_cast<Index>(g.C + g.O) * t.TI;
  t.per = std::clamp<Index>(pass_floats.load() / std::max<Index>(per_image, 1), 1, std::max<Index>(static_cast<Index>(g.N), 1));
  return t;
}

// A buffer of floats kept for the calling thread between calls (steps then take no new memory
// from the system), in memory mapped for it and, on Linux, backed by transparent huge pages where
// the system allows them: the transforms write each plane's 16 runs across tens of kilobytes,
// and on 4 KiB pages most of their time went to TLB misses. Contents unspecified. Called
// outside parallel regions only.
class MappedBuffer {
 public:
  MappedBuffer() = default;
  MappedBuffer(const MappedBuffer&) = delete;
  MappedBuffer& operator=(const MappedBuffer&) = delete;
  ~MappedBuffer() { release(); }

  float* get(std::size_t floats, const char* what) {
    if (floats <= capacity_) return data_;
    release();
    constexpr std::size_t kHuge = std::size_t{1} << 21;
    const std::size_t wanted = (floats * sizeof(float) + kHuge - 1) / kHuge * kHuge;
    // One huge page more, so that the buffer can start on a huge-page boundary.
    const std::size_t bytes = wanted + kHuge;
    void* p = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) {
      throw AllocationError(cat("Conv2d: out of memory: cannot map the Winograd ", what, " of ", floats, " floats"));
    }
    const std::uintptr_t start = (reinterpret_cast<std::uintptr_t>(p) + kHuge - 1) / kHuge * kHuge;
#if defined(MADV_HUGEPAGE)
    madvise(reinterpret_cast<void*>(start), wanted, MADV_HUGEPAGE);  // advice only: it works without
#endif
    base_ = p;
    bytes_ = bytes;
    data_ = reinterpret_cast<float*>(start);
    capacity_ = wanted / sizeof(float);
    return data_;
  }

 private:
  void release() {
    if (base_ != nullptr) munmap(base_, bytes_);
    base_ = nullptr;
    data_ = nullptr;
    bytes_ = capacity_ = 0;
  }
  void* base_ = nullptr;
  float* data_ = nullptr;
  std::size_t bytes_ = 0, capacity_ = 0;
};

float* workspace(std::size_t size) {
  thread_local MappedBuffer buffer;
  return buffer.get(size, "workspace");
}

// u[xi * ld] = (G g G^T)[xi] for one 3x3 kernel g (row-major; with flip, g rotated by 180°).
inline void weight_transform(const float* g, bool flip, float* u, Index ld) {
  float k[9];
  for (int i = 0; i < 9; ++i) k[i] = flip ? g[8 - i] : g[i];
  float r[4][3];  // G g
  for (int j = 0; j < 3; ++j) {
    r[0][j] = k[j];
    r[1][j] = 0.5f * (k[j] + k[3 + j] + k[6 + j]);
    r[2][j] = 0.5f * (k[j] - k[3 + j] + k[6 + j]);
    r[3][j] = k[6 + j];
  }
  for (int i = 0; i < 4; ++i) {
    u[(i * 4 + 0) * ld] = r[i][0];
    u[(i * 4 + 1) * ld] = 0.5f * (r[i][0] + r[i][1] + r[i][2]);
    u[(i * 4 + 2) * ld] = 0.5f * (r[i][0] - r[i][1] + r[i][2]);
    u[(i * 4 + 3) * ld] = r[i][2];
  }
}

// dw[0, 9) += G^T du G, du[xi] at du[xi * ld].
inline void weight_grad_transform(const float* du, Index ld, float* dw) {
  float r[3][4];  // G^T du
  for (int j = 0; j < 4; ++j) {
    const float a = du[(0 * 4 + j) * ld], b = du[(1 * 4 + j) * ld], c = du[(2 * 4 + j) * ld], d = du[(3 * 4 + j) * ld];
    r[0][j] = a + 0.5f * (b + c);
    r[1][j] = 0.5f * (b - c);
    r[2][j] = 0.5f * (b + c) + d;
  }
  for (int i = 0; i < 3; ++i) {
    dw[i * 3 + 0] += r[i][0] + 0.5f * (r[i][1] + r[i][2]);
    dw[i * 3 + 1] += 0.5f * (r[i][1] - r[i][2]);
    dw[i * 3 + 2] += 0.5f * (r[i][1] + r[i][2]) + r[i][3];
  }
}

// Row h of an (H, W) plane split by column parity, zeros outside the plane and past it: with
// odd_first, even[k] = row[2k - 1] (even[0] = 0) and odd[k] = row[2k], the even and odd columns
// of the row padded by one on the left; without, even[k] = row[2k] and odd[k] = row[2k + 1].
// n entries each.
inline void split_row(const float* plane, Index h, Index H, Index W, bool odd_first, float* even, float* odd, Index n) {
  std::fill(even, even + n, 0.0f);
  std::fill(odd, odd + n, 0.0f);
  if (h < 0 || h >= H) return;
  const float* row = plane + h * W;
  if (odd_first) {
    copy_run_stride2(row + 1, even + 1, W / 2);
    copy_run_stride2(row, odd, (W + 1) / 2);
  } else {
    copy_run_stride2(row, even, (W + 1) / 2);
    copy_run_stride2(row + 1, odd, W / 2);
  }
}

// The input patches of one (H, W) plane transformed: v[xi * ld + ty * tw + tx] = (B^T d B)[xi]
// of tile (ty, tx). The rows are split by column parity first, so every loop below runs over
// consecutive tiles in consecutive floats. work: plane_work floats.
void input_transform_plane(const float* plane, Index H, Index W, const Tiling& t, float* v, Index ld, float* work) {
  const Index n = t.tw + 1;  // the padded row's 2 tw + 2 columns, by parity
  float* ev[4];
  float* od[4];
  for (int i = 0; i < 4; ++i) {
    ev[i] = work + (2 * i) * n;
    od[i] = work + (2 * i + 1) * n;
  }
  float* e = work + 8 * n;  // B^T d: rows 0-3 even, then rows 0-3 odd
  for (Index ty = 0; ty < t.th; ++ty) {
    for (int i = 0; i < 4; ++i) split_row(plane, 2 * ty - 1 + i, H, W, true, ev[i], od[i], n);
    for (int p = 0; p < 2; ++p) {
      float* const* r = p == 0 ? ev : od;
      float* e0 = e + (4 * p + 0) * n;
      float* e1 = e + (4 * p + 1) * n;
      float* e2 = e + (4 * p + 2) * n;
      float* e3 = e + (4 * p + 3) * n;
      for (Index k = 0; k < n; ++k) {
        e0[k] = r[0][k] - r[2][k];
        e1[k] = r[1][k] + r[2][k];
        e2[k] = r[2][k] - r[1][k];
        e3[k] = r[1][k] - r[3][k];
      }
    }
    float* out = v + ty * t.tw;
    for (int i = 0; i < 4; ++i) {  // then B: columns 2 tx .. 2 tx + 3 are E[tx], F[tx], E[tx + 1], F[tx + 1]
      const float* E = e + i * n;
      const float* F = e + (4 + i) * n;
      float* o0 = out + (i * 4 + 0) * ld;
      float* o1 = out + (i * 4 + 1) * ld;
      float* o2 = out + (i * 4 + 2) * ld;
      float* o3 = out + (i * 4 + 3) * ld;
      for (Index tx = 0; tx < t.tw; ++tx) {
        o0[tx] = E[tx] - E[tx + 1];
        o1[tx] = F[tx] + E[tx + 1];
        o2[tx] = E[tx + 1] - F[tx];
        o3[tx] = F[tx] - F[tx + 1];
      }
    }
  }
}

// The output gradient's tiles of one (OH, OW) plane transformed: d[xi * ld + ty * tw + tx] =
// (A dY A^T)[xi] of tile (ty, tx), zeros past the plane. work: plane_work floats.
void grad_transform_plane(const float* plane, Index OH, Index OW, const Tiling& t, float* d, Index ld, float* work) {
  const Index n = t.tw;
  float* a = work;  // row 2 ty: even, odd columns; row 2 ty + 1: even, odd
  float* b = work + n;
  float* c = work + 2 * n;
  float* e = work + 3 * n;
  for (Index ty = 0; ty < t.th; ++ty) {
    split_row(plane, 2 * ty, OH, OW, false, a, b, n);
    split_row(plane, 2 * ty + 1, OH, OW, false, c, e, n);
    // A dY: rows (a, b), (a + c, b + e), (a - c, b - e), (-c, -e); then each row (p, q) A^T:
    // (p, p + q, p - q, -q).
    float* out = d + ty * t.tw;
    for (int i = 0; i < 4; ++i) {
      float* o0 = out + (i * 4 + 0) * ld;
      float* o1 = out + (i * 4 + 1) * ld;
      float* o2 = out + (i * 4 + 2) * ld;
      float* o3 = out + (i * 4 + 3) * ld;
      for (Index tx = 0; tx < n; ++tx) {
        const float p = i == 0 ? a[tx] : i == 1 ? a[tx] + c[tx] : i == 2 ? a[tx] - c[tx] : -c[tx];
        const float q = i == 0 ? b[tx] : i == 1 ? b[tx] + e[tx] : i == 2 ? b[tx] - e[tx] : -e[tx];
        o0[tx] = p;
        o1[tx] = p + q;
        o2[tx] = p - q;
        o3[tx] = -q;
      }
    }
  }
}

// One (OH, OW) output plane from its tiles' products m[xi * ld + ty * tw + tx]: y = A^T m A
// + bias, or with add, y += A^T m A. work: plane_work floats.
void output_transform_plane(const float* m, Index ld, float* y, Index OH, Index OW, const Tiling& t, float bias,
                            bool add, float* work) {
  const Index n = t.tw;
  float* s = work;  // A^T m: s[(r * 4 + j) * n + tx], r = 0, 1
  float* out[4] = {work + 8 * n, work + 9 * n, work + 10 * n, work + 11 * n};  // y00, y01, y10, y11
  for (Index ty = 0; ty < t.th; ++ty) {
    const float* mt = m + ty * t.tw;
    for (int j = 0; j < 4; ++j) {
      const float* a = mt + (0 * 4 + j) * ld;
      const float* b = mt + (1 * 4 + j) * ld;
      const float* c = mt + (2 * 4 + j) * ld;
      const float* d = mt + (3 * 4 + j) * ld;
      float* s0 = s + j * n;
      float* s1 = s + (4 + j) * n;
      for (Index tx = 0; tx < n; ++tx) {
        s0[tx] = a[tx] + b[tx] + c[tx];
        s1[tx] = b[tx] - c[tx] - d[tx];
      }
    }
    for (int r = 0; r < 2; ++r) {
      const float* s0 = s + (4 * r + 0) * n;
      const float* s1 = s + (4 * r + 1) * n;
      const float* s2 = s + (4 * r + 2) * n;
      const float* s3 = s + (4 * r + 3) * n;
      float* left = out[2 * r];
      float* right = out[2 * r + 1];
      for (Index tx = 0; tx < n; ++tx) {
        left[tx] = s0[tx] + s1[tx] + s2[tx] + bias;
        right[tx] = s1[tx] - s2[tx] - s3[tx] + bias;
      }
    }
    for (int r = 0; r < 2; ++r) {
      const Index h = 2 * ty + r;
      if (h >= OH) break;
      const float* left = out[2 * r];
      const float* right = out[2 * r + 1];
      float* row = y + h * OW;
      const Index pairs = OW / 2;
      if (add) {
        for (Index tx = 0; tx < pairs; ++tx) {
          row[2 * tx] += left[tx];
          row[2 * tx + 1] += right[tx];
        }
        if (OW % 2 != 0) row[OW - 1] += left[pairs];
      } else {
        for (Index tx = 0; tx < pairs; ++tx) {
          row[2 * tx] = left[tx];
          row[2 * tx + 1] = right[tx];
        }
        if (OW % 2 != 0) row[OW - 1] = left[pairs];
      }
    }
  }
}

#if defined(__AVX512F__)
// The same three transforms on AVX-512 for planes up to kVectorWidth columns, whose rows (and
// the padded input rows) fit two vectors: each tile row is a few vector operations and
// permutes, where the loops above spend most of their time on the loops themselves (a 13x13
// plane's input transform took ~0.8 us).
constexpr Index kVectorWidth = 30;

inline __mmask16 lanes(Index count) {
  return static_cast<__mmask16>(count >= 16 ? 0xFFFFu : count <= 0 ? 0u : (1u << count) - 1u);
}

// The permutes over two vectors (lo, hi) of 32 columns: even[k] = col 2k, odd[k] = col 2k + 1,
// even1[k] = col 2k + 2, odd1[k] = col 2k + 3 (lane 15 of the last two unused).
struct Permutes {
  __m512i even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
  __m512i odd = _mm512_setr_epi32(1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31);
  __m512i even1 = _mm512_setr_epi32(2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30, 0);
  __m512i odd1 = _mm512_setr_epi32(3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31, 1);
  // interleave: (l0, r0, l1, r1, ...) from left, right: the first 16 and the next 16.
  __m512i zip_lo = _mm512_setr_epi32(0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
  __m512i zip_hi = _mm512_setr_epi32(8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31);
};

void input_transform_plane_avx512(const float* plane, Index H, Index W, const Tiling& t, float* v, Index ld) {
  const Permutes pm;
  // Padded row j = plane row column j - 1: lane 0 of lo is the left padding.
  const __mmask16 lo_mask = static_cast<__mmask16>(lanes(W + 1) & ~1u), hi_mask = lanes(W + 1 - 16);
  const __mmask16 out = lanes(t.tw);
  for (Index ty = 0; ty < t.th; ++ty) {
    __m512 lo[4], hi[4];
    for (int i = 0; i < 4; ++i) {
      const Index h = 2 * ty - 1 + i;
      if (h < 0 || h >= H) {
        lo[i] = hi[i] = _mm512_setzero_ps();
      } else {
        const float* row = plane + h * W - 1;  // lane 0 (masked off) would be the column before
        lo[i] = _mm512_maskz_loadu_ps(lo_mask, row);
        hi[i] = _mm512_maskz_loadu_ps(hi_mask, row + 16);
      }
    }
    const __m512 elo[4] = {_mm512_sub_ps(lo[0], lo[2]), _mm512_add_ps(lo[1], lo[2]), _mm512_sub_ps(lo[2], lo[1]),
                           _mm512_sub_ps(lo[1], lo[3])};
    const __m512 ehi[4] = {_mm512_sub_ps(hi[0], hi[2]), _mm512_add_ps(hi[1], hi[2]), _mm512_sub_ps(hi[2], hi[1]),
                           _mm512_sub_ps(hi[1], hi[3])};
    float* dst = v + ty * t.tw;
    for (int i = 0; i < 4; ++i) {
      const __m512 E = _mm512_permutex2var_ps(elo[i], pm.even, ehi[i]);
      const __m512 F = _mm512_permutex2var_ps(elo[i], pm.odd, ehi[i]);
      const __m512 E1 = _mm512_permutex2var_ps(elo[i], pm.even1, ehi[i]);
      const __m512 F1 = _mm512_permutex2var_ps(elo[i], pm.odd1, ehi[i]);
      _mm512_mask_storeu_ps(dst + (i * 4 + 0) * ld, out, _mm512_sub_ps(E, E1));
      _mm512_mask_storeu_ps(dst + (i * 4 + 1) * ld, out, _mm512_add_ps(F, E1));
      _mm512_mask_storeu_ps(dst + (i * 4 + 2) * ld, out, _mm512_sub_ps(E1, F));
      _mm512_mask_storeu_ps(dst + (i * 4 + 3) * ld, out, _mm512_sub_ps(F, F1));
    }
  }
}

void grad_transform_plane_avx512(const float* plane, Index OH, Index OW, const Tiling& t, float* d, Index ld) {
  const Permutes pm;
  const __mmask16 lo_mask = lanes(OW), hi_mask = lanes(OW - 16), out = lanes(t.tw);
  for (Index ty = 0; ty < t.th; ++ty) {
    __m512 ev[2], od[2];
    for (int r = 0; r < 2; ++r) {
      const Index h = 2 * ty + r;
      if (h >= OH) {
        ev[r] = od[r] = _mm512_setzero_ps();
      } else {
        const __m512 lo = _mm512_maskz_loadu_ps(lo_mask, plane + h * OW);
        const __m512 hi = _mm512_maskz_loadu_ps(hi_mask, plane + h * OW + 16);
        ev[r] = _mm512_permutex2var_ps(lo, pm.even, hi);
        od[r] = _mm512_permutex2var_ps(lo, pm.odd, hi);
      }
    }
    // A dY: rows (a, b), (a + c, b + e), (a - c, b - e), (-c, -e); each row (p, q) A^T:
    // (p, p + q, p - q, -q).
    const __m512 zero = _mm512_setzero_ps();
    const __m512 p[4] = {ev[0], _mm512_add_ps(ev[0], ev[1]), _mm512_sub_ps(ev[0], ev[1]), _mm512_sub_ps(zero, ev[1])};
    const __m512 q[4] = {od[0], _mm512_add_ps(od[0], od[1]), _mm512_sub_ps(od[0], od[1]), _mm512_sub_ps(zero, od[1])};
    float* dst = d + ty * t.tw;
    for (int i = 0; i < 4; ++i) {
      _mm512_mask_storeu_ps(dst + (i * 4 + 0) * ld, out, p[i]);
      _mm512_mask_storeu_ps(dst + (i * 4 + 1) * ld, out, _mm512_add_ps(p[i], q[i]));
      _mm512_mask_storeu_ps(dst + (i * 4 + 2) * ld, out, _mm512_sub_ps(p[i], q[i]));
      _mm512_mask_storeu_ps(dst + (i * 4 + 3) * ld, out, _mm512_sub_ps(zero, q[i]));
    }
  }
}

void output_transform_plane_avx512(const float* m, Index ld, float* y, Index OH, Index OW, const Tiling& t,
                                   float bias, bool add) {
  const Permutes pm;
  const __mmask16 in = lanes(t.tw), lo_mask = lanes(OW), hi_mask = lanes(OW - 16);
  const __m512 b = _mm512_set1_ps(bias);
  for (Index ty = 0; ty < t.th; ++ty) {
    const float* mt = m + ty * t.tw;
    __m512 s0[4], s1[4];  // A^T m: rows 0 + 1 + 2 and 1 - 2 - 3
    for (int j = 0; j < 4; ++j) {
      const __m512 a = _mm512_maskz_loadu_ps(in, mt + (0 * 4 + j) * ld);
      const __m512 bb = _mm512_maskz_loadu_ps(in, mt + (1 * 4 + j) * ld);
      const __m512 c = _mm512_maskz_loadu_ps(in, mt + (2 * 4 + j) * ld);
      const __m512 d = _mm512_maskz_loadu_ps(in, mt + (3 * 4 + j) * ld);
      s0[j] = _mm512_add_ps(_mm512_add_ps(a, bb), c);
      s1[j] = _mm512_sub_ps(_mm512_sub_ps(bb, c), d);
    }
    for (int r = 0; r < 2; ++r) {
      const Index h = 2 * ty + r;
      if (h >= OH) break;
      const __m512* sr = r == 0 ? s0 : s1;
      const __m512 left = _mm512_add_ps(_mm512_add_ps(_mm512_add_ps(sr[0], sr[1]), sr[2]), add ? _mm512_setzero_ps() : b);
      const __m512 right = _mm512_add_ps(_mm512_sub_ps(_mm512_sub_ps(sr[1], sr[2]), sr[3]), add ? _mm512_setzero_ps() : b);
      __m512 lo = _mm512_permutex2var_ps(left, pm.zip_lo, right);
      __m512 hi = _mm512_permutex2var_ps(left, pm.zip_hi, right);
      float* row = y + h * OW;
      if (add) {
        lo = _mm512_add_ps(lo, _mm512_maskz_loadu_ps(lo_mask, row));
        hi = _mm512_add_ps(hi, _mm512_maskz_loadu_ps(hi_mask, row + 16));
      }
      _mm512_mask_storeu_ps(row, lo_mask, lo);
      _mm512_mask_storeu_ps(row + 16, hi_mask, hi);
    }
  }
}
#endif  // __AVX512F__

// Work floats per thread for the plane transforms.
Index plane_work(const Tiling& t) { return 16 * (t.tw + 1); }

// V (16, C, T) for images [n0, n1) of x (N, C, H, W), in parallel over the planes.
void transform_inputs(const float* x, Index C, Index H, Index W, Index n0, Index n1, const Tiling& t, float* V,
                      float* work) {
  const Index T = (n1 - n0) * t.TI, planes = (n1 - n0) * C;
#pragma omp parallel for schedule(static) if (planes * H * W >= kParallelElements)
  for (Index j = 0; j < planes; ++j) {
    const Index n = n0 + j % (n1 - n0), c = j / (n1 - n0);  // images first: neighbouring planes write neighbouring runs
    const float* plane = x + (n * C + c) * H * W;
    float* v = V + c * 16 * T + (n - n0) * t.TI;
#if defined(__AVX512F__)
    if (W <= kVectorWidth) {
      input_transform_plane_avx512(plane, H, W, t, v, T);
      continue;
    }
#endif
    input_transform_plane(plane, H, W, t, v, T, work + omp_get_thread_num() * plane_work(t));
  }
}

// y (N, O, OH, OW) for images [n0, n1) from M (16, O, T), in parallel over the planes.
void transform_outputs(const float* M, const float* b, float* y, Index O, Index OH, Index OW, Index n0, Index n1,
                       const Tiling& t, bool add, float* work) {
  const Index T = (n1 - n0) * t.TI, planes = (n1 - n0) * O;
#pragma omp parallel for schedule(static) if (planes * OH * OW >= kParallelElements)
  for (Index j = 0; j < planes; ++j) {
    const Index n = n0 + j % (n1 - n0), o = j / (n1 - n0);
    const float* m = M + o * 16 * T + (n - n0) * t.TI;
    float* plane = y + (n * O + o) * OH * OW;
    const float bias = b != nullptr && !add ? b[o] : 0.0f;
#if defined(__AVX512F__)
    if (OW <= kVectorWidth) {
      output_transform_plane_avx512(m, T, plane, OH, OW, t, bias, add);
      continue;
    }
#endif
    output_transform_plane(m, T, plane, OH, OW, t, bias, add, work + omp_get_thread_num() * plane_work(t));
  }
}

// A convolution's sizes in Index, its tiling and the threads of its parallel loops.
struct Sizes {
  explicit Sizes(const Conv2dGeometry& g)
      : N(static_cast<Index>(g.N)), C(static_cast<Index>(g.C)), O(static_cast<Index>(g.O)),
        G(static_cast<Index>(g.G)), Cg(C / G), Og(O / G), H(static_cast<Index>(g.H)), W(static_cast<Index>(g.W)),
        OH(static_cast<Index>(g.OH)), OW(static_cast<Index>(g.OW)), t(tiling(g)),
        threads(std::max(1, omp_get_max_threads())) {}
  Index N, C, O, G, Cg, Og, H, W, OH, OW;
  Tiling t;
  Index threads;
};

// The forward on weights already transformed: U (O, 16, Cg).
void forward_transformed(const float* x, const float* U, const float* b, float* y, const Conv2dGeometry& g,
                         bool add) {
  const Sizes z(g);
  const Tiling& t = z.t;
  const Index N = z.N, C = z.C, O = z.O, G = z.G, Cg = z.Cg, Og = z.Og, H = z.H, W = z.W, OH = z.OH, OW = z.OW;
  const Index Tmax = t.per * t.TI;  // per <= N
  float* V = workspace(static_cast<std::size_t>(16 * (C + O) * Tmax + z.threads * plane_work(t)));
  float* M = V + 16 * C * Tmax;
  float* work = M + 16 * O * Tmax;
  for (Index n0 = 0; n0 < N; n0 += t.per) {
    const Index n1 = std::min(N, n0 + t.per), T = (n1 - n0) * t.TI;
    transform_inputs(x, C, H, W, n0, n1, t, V, work);
    // M[xi] rows of group grp = U[xi] (Og, Cg) x V[xi] (Cg, T), in column panels of about 512.
    const Index panels = (T + 511) / 512, width = (T + panels - 1) / panels;
#pragma omp parallel for collapse(3) schedule(static) if (16 * Og * Cg * T * G >= kParallelMacs)
    for (Index xi = 0; xi < 16; ++xi) {
      for (Index grp = 0; grp < G; ++grp) {
        for (Index p = 0; p < panels; ++p) {
          const Index c0 = p * width, cols = std::min(T, c0 + width) - c0;
          if (cols <= 0) continue;
          gemm_serial(false, false, Og, cols, Cg, 1.0f, U + (grp * Og * 16 + xi) * Cg, 16 * Cg, V + grp * Cg * 16 * T + xi * T + c0,
                      16 * T, 0.0f, M + grp * Og * 16 * T + xi * T + c0, 16 * T);
        }
      }
    }
    transform_outputs(M, b, y, O, OH, OW, n0, n1, t, add, work);
  }
}

// The calling thread's buffer for U or dU, kept between calls.
float* weights_buffer(std::size_t size) {
  thread_local MappedBuffer buffer;
  return buffer.get(size, "weights");
}

}  // namespace

Index set_winograd_pass_floats(Index floats) { return pass_floats.exchange(std::max<Index>(floats, 1)); }

void winograd_forward(const float* x, const float* w, const float* b, float* y, const Conv2dGeometry& g, bool add) {
  if (g.N == 0) return;
  const Index O = static_cast<Index>(g.O), Cg = static_cast<Index>(g.Cg());
  float* U = weights_buffer(static_cast<std::size_t>(16 * O * Cg));  // (O, 16, Cg)
#pragma omp parallel for schedule(static) if (O * Cg * 16 >= kParallelElements)
  for (Index j = 0; j < O * Cg; ++j) {
    const Index o = j / Cg, c = j % Cg;
    weight_transform(w + j * 9, false, U + o * 16 * Cg + c, Cg);
  }
  forward_transformed(x, U, b, y, g, add);
}

void winograd_input_grad(const float* dy, const float* w, float* dx, const Conv2dGeometry& t, bool overwrite) {
  if (t.N == 0) return;
  // The forward of dy (N, O, OH, OW) into dx (N, C, H, W): t's in channels are the layer's O,
  // its out channels the layer's C, and the weights of group grp (Cg, Og) are
  // w'[c, o] = w[grp * Og + o, c] rotated by 180°.
  const Index C = static_cast<Index>(t.O), G = static_cast<Index>(t.G);
  const Index Cg = C / G, Og = static_cast<Index>(t.Cg());
  float* U = weights_buffer(static_cast<std::size_t>(16 * C * Og));  // (C, 16, Og)
#pragma omp parallel for schedule(static) if (C * Og * 16 >= kParallelElements)
  for (Index j = 0; j < C * Og; ++j) {  // j = (grp, c, o)
    const Index grp = j / (Cg * Og), c = j / Og % Cg, o = j % Og;
    weight_transform(w + ((grp * Og + o) * Cg + c) * 9, true, U + (grp * Cg + c) * 16 * Og + o, Og);
  }
  forward_transformed(dy, U, nullptr, dx, t, !overwrite);
}

void winograd_weight_grad(const float* dy, const float* x, float* dw, const Conv2dGeometry& g) {
  if (g.N == 0) return;
  const Sizes z(g);
  const Tiling& t = z.t;
  const Index N = z.N, C = z.C, O = z.O, G = z.G, Cg = z.Cg, Og = z.Og, H = z.H, W = z.W, OH = z.OH, OW = z.OW;
  const Index Tmax = t.per * t.TI;  // per <= N
  float* V = workspace(static_cast<std::size_t>(16 * (C + O) * Tmax + z.threads * plane_work(t)));
  float* D = V + 16 * C * Tmax;
  float* work = D + 16 * O * Tmax;
  float* dU = weights_buffer(static_cast<std::size_t>(16 * O * Cg));  // (O, 16, Cg)
  for (Index n0 = 0; n0 < N; n0 += t.per) {
    const Index n1 = std::min(N, n0 + t.per), T = (n1 - n0) * t.TI;
    transform_inputs(x, C, H, W, n0, n1, t, V, work);
    const Index planes = (n1 - n0) * O;
#pragma omp parallel for schedule(static) if (planes * OH * OW >= kParallelElements)
    for (Index j = 0; j < planes; ++j) {
      const Index n = n0 + j % (n1 - n0), o = j / (n1 - n0);
      const float* plane = dy + (n * O + o) * OH * OW;
      float* d = D + o * 16 * T + (n - n0) * t.TI;
#if defined(__AVX512F__)
      if (OW <= kVectorWidth) {
        grad_transform_plane_avx512(plane, OH, OW, t, d, T);
        continue;
      }
#endif
      grad_transform_plane(plane, OH, OW, t, d, T, work + omp_get_thread_num() * plane_work(t));
    }
    // dU[xi] rows of group grp (+)= D[xi] (Og, T) x V[xi]^T (T, Cg): one GEMM over all the
    // pass's tiles; passes add in order.
    const float beta = n0 == 0 ? 0.0f : 1.0f;
#pragma omp parallel for collapse(2) schedule(static) if (16 * Og * Cg * T * G >= kParallelMacs)
    for (Index xi = 0; xi < 16; ++xi) {
      for (Index grp = 0; grp < G; ++grp) {
        gemm_serial(false, true, Og, Cg, T, 1.0f, D + grp * Og * 16 * T + xi * T, 16 * T, V + grp * Cg * 16 * T + xi * T,
                    16 * T, beta, dU + (grp * Og * 16 + xi) * Cg, 16 * Cg);
      }
    }
  }
#pragma omp parallel for schedule(static) if (O * Cg * 16 >= kParallelElements)
  for (Index j = 0; j < O * Cg; ++j) weight_grad_transform(dU + (j / Cg * 16) * Cg + j % Cg, Cg, dw + j * 9);
}

}  // namespace detail
}  // namespace xgrad
