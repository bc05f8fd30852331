#include <xgrad/core/blas_skinny_kernels.hpp>

#include <algorithm>
#include <type_traits>

#include <omp.h>

#include <xgrad/core/simd_kernels.hpp>

namespace xgrad::detail {

namespace {

using B = Batch<float>;
constexpr Index kL = kLanes<float>;
// AVX-512 has 32 vector registers, narrower targets 16: the register tiles below halve there.
constexpr bool kManyRegisters = kL >= 16;

// Keeps a loaded value in its register: without it GCC loads the operand again for every
// multiply-add it feeds (folding the load into the FMA), twice the loads the tiles are built for.
inline void in_register(Reg<float>& value) {
#if defined(__GNUC__)
  asm("" : "+v"(value));
#else
  (void)value;
#endif
}

// alpha * value + beta * c, with c not read when beta is 0 (as in BLAS). The same formula in
// every kernel.
inline float scaled(float alpha, float value, float beta, const float* c) {
  return beta == 0.0f ? alpha * value : alpha * value + beta * *c;
}
inline B scaled(const B& alpha, const B& value, float beta, const float* c, Index count) {
  return beta == 0.0f ? alpha * value : alpha * value + B(beta) * load_part(c, count);
}

// ---- C = alpha A B^T + beta C ----------------------------------------------------------------
// A tile of RI rows of A and RJ rows of B: RI x RJ dot products along k, each in one vector of
// running sums (element p to lane p % lanes) added across its lanes at the end.
constexpr int kNtRowsA = kManyRegisters ? 4 : 2;
constexpr int kNtRowsB = 4;
// Rows of B (columns of C) per work item.
constexpr Index kNtBlock = 64;

// The next group of rows of B, fetched into cache while a group's passes (one per RI rows of A)
// run from cache: pass `pass` of `passes` fetches its share of the lines, one line of each row
// every `passes` steps, so memory is busy during every pass rather than the first alone.
struct NtAhead {
  const float* rows;  // the next group's first row, or null
  Index pass, passes;
};

template <int RI, int RJ>
XGRAD_FLATTEN void nt_tile(const float* a, const float* b, Index k, float alpha, float beta, float* c, Index ldc,
                           const NtAhead& ahead) {
  const Index lines = ceil_div(k, kL);
  const float* fetch = ahead.rows ? ahead.rows + ahead.pass * lines / ahead.passes * kL : nullptr;
  Index countdown = ahead.passes;
  Reg<float> acc[RI][RJ];
  for_each_vector<RI>([&](auto i) { for_each_vector<RJ>([&](auto j) { acc[i][j] = B(0.0f); }); });
  auto step = [&](Index p, Index count, auto full) {
    constexpr bool kFull = decltype(full)::value;
    Reg<float> bv[RJ];
    for_each_vector<RJ>([&](auto j) {
      bv[j] = load_column<kFull>(b + j * k + p, count);
      in_register(bv[j]);
    });
    for_each_vector<RI>([&](auto i) {
      Reg<float> av = load_column<kFull>(a + i * k + p, count);
      in_register(av);
      for_each_vector<RJ>([&](auto j) { acc[i][j] = xsimd::fma(B(av), B(bv[j]), B(acc[i][j])); });
    });
  };
  Index p = 0;
  for (; p + kL <= k; p += kL) {
    step(p, kL, std::true_type());
    if (fetch && --countdown == 0) {
      for_each_vector<RJ>([&](auto j) { __builtin_prefetch(fetch + j * k); });
      fetch += kL;
      countdown = ahead.passes;
    }
  }
  if (p < k) step(p, k - p, std::false_type());
  for_each_vector<RI>([&](auto i) {
    for_each_vector<RJ>([&](auto j) {
      float* out = c + i * ldc + j;
      *out = scaled(alpha, xsimd::hadd(B(acc[i][j])), beta, out);
    });
  });
}

// nt_tile<ri, rj> for 1 <= ri <= RI, 1 <= rj <= RJ.
template <int RI, int RJ>
void nt_tile_of(Index ri, Index rj, const float* a, const float* b, Index k, float alpha, float beta, float* c,
                Index ldc, const NtAhead& ahead) {
  if constexpr (RI > 1) {
    if (ri < RI) return nt_tile_of<RI - 1, RJ>(ri, rj, a, b, k, alpha, beta, c, ldc, ahead);
  }
  if constexpr (RJ > 1) {
    if (rj < RJ) return nt_tile_of<RI, RJ - 1>(ri, rj, a, b, k, alpha, beta, c, ldc, ahead);
  }
  nt_tile<RI, RJ>(a, b, k, alpha, beta, c, ldc, ahead);
}

// Each item streams kNtBlock rows of B (in groups of kNtRowsB, each group read from memory for
// the first rows of A and from cache for the others) against all of A, which stays in cache.
void skinny_nt(Index m, Index n, Index k, float alpha, const float* a, const float* b, float beta, float* c) {
  const Index items = ceil_div(n, kNtBlock);
  const Index passes = ceil_div(m, kNtRowsA);
#pragma omp parallel for schedule(static) if (!omp_in_parallel())
  for (Index item = 0; item < items; ++item) {
    const Index end = std::min(n, (item + 1) * kNtBlock);
    for (Index j = item * kNtBlock; j < end; j += kNtRowsB) {
      const Index rj = std::min<Index>(kNtRowsB, end - j);
      // The next group's rows exist whole (a shorter last group is not fetched ahead).
      const float* next = j + 2 * kNtRowsB <= n ? b + (j + kNtRowsB) * k : nullptr;
      for (Index i = 0; i < m; i += kNtRowsA) {
        nt_tile_of<kNtRowsA, kNtRowsB>(std::min<Index>(kNtRowsA, m - i), rj, a + i * k, b + j * k, k, alpha, beta,
                                       c + i * n + j, n, NtAhead{next, i / kNtRowsA, passes});
      }
    }
  }
}

// ---- C = alpha A B + beta C ------------------------------------------------------------------
// A strip of kNnStrip columns of C, its rows in passes of at most kNnRows: for one vector of
// columns, the pass's rows of C are running sums in registers, and each row p of B adds
// A[i][p] * B[p][cols] to row i. B is walked in tiles of kNnTile rows so that the strip's part
// of a tile (kNnTile x kNnStrip floats) stays in cache for its other vectors; the running sums
// wait in `sums` between tiles. Each element of C is then summed over p in order. Strips of 32
// vectors and tiles of 16 rows measured fastest on AlexNet's FC1 and FC2 (a Zen 4 EPYC, strips
// of 16 to 64 vectors and tiles of 8 to 128 rows tried): 0.75x the time of tiles of 128 rows,
// whose many rows read at once the prefetchers followed poorly.
constexpr int kNnRows = kManyRegisters ? 16 : 8;
constexpr Index kNnStripVectors = 32;
constexpr Index kNnStrip = kNnStripVectors * kL;
constexpr Index kNnTile = 16;

// ahead: the same vector of the rows of the strip's next tile (null for none), fetched into
// cache while this tile runs from it.
// at: the tile's part of A transposed, at[(p - p0) * M + i] = A[i][p]: A's rows lie k floats
// apart, and with k a multiple of 1024 (AlexNet's 4096) the M values of one p all fell in one
// set of L1, which then missed on every multiply-add.
template <int M, bool Full>
XGRAD_FLATTEN void nn_vector(const float* at, const float* b, Index ldb, Index rows, Index count, float* sums,
                             bool first, const float* ahead) {
  Reg<float> acc[M];
  for_each_vector<M>([&](auto i) { acc[i] = first ? B(0.0f) : B::load_aligned(sums + i * kNnStrip); });
  for (Index p = 0; p < rows; ++p) {
    const float* row = b + p * ldb;
    const B bv = load_column<Full>(row, count);
    if (ahead) __builtin_prefetch(ahead + p * ldb);
    const float* ap = at + p * M;
    for_each_vector<M>([&](auto i) { acc[i] = xsimd::fma(B(ap[i]), bv, B(acc[i])); });
  }
  for_each_vector<M>([&](auto i) { B(acc[i]).store_aligned(sums + i * kNnStrip); });
}

template <int M>
void nn_rows(const float* a, Index k, const float* b, Index n, Index col, Index width, float alpha, float beta,
             float* c, float* sums, float* at) {
  for (Index p0 = 0; p0 < k; p0 += kNnTile) {
    const Index rows = std::min(kNnTile, k - p0);
    for (Index p = 0; p < rows; ++p) {
      for (Index i = 0; i < M; ++i) at[p * M + i] = a[i * k + p0 + p];
    }
    const float* tile = b + p0 * n + col;
    // The next tile, when it has as many rows (the last may have fewer).
    const float* ahead = p0 + 2 * kNnTile <= k ? tile + kNnTile * n : nullptr;
    Index v = 0;
    for (; v + kL <= width; v += kL) {
      nn_vector<M, true>(at, tile + v, n, rows, kL, sums + v, p0 == 0, ahead ? ahead + v : nullptr);
    }
    if (v < width) {
      nn_vector<M, false>(at, tile + v, n, rows, width - v, sums + v, p0 == 0, ahead ? ahead + v : nullptr);
    }
  }
  const B va(alpha);
  for (Index i = 0; i < M; ++i) {
    for (Index v = 0; v < width; v += kL) {
      const Index count = std::min(kL, width - v);
      float* out = c + i * n + col + v;
      store_part(scaled(va, B::load_aligned(sums + i * kNnStrip + v), beta, out, count), out, count);
    }
  }
}

template <int M>
void nn_rows_of(Index rows, const float* a, Index k, const float* b, Index n, Index col, Index width, float alpha,
                float beta, float* c, float* sums, float* at) {
  if constexpr (M > 1) {
    if (rows < M) return nn_rows_of<M - 1>(rows, a, k, b, n, col, width, alpha, beta, c, sums, at);
  }
  nn_rows<M>(a, k, b, n, col, width, alpha, beta, c, sums, at);
}

void skinny_nn(Index m, Index n, Index k, float alpha, const float* a, const float* b, float beta, float* c) {
  const Index items = ceil_div(n, kNnStrip);
#pragma omp parallel for schedule(static) if (!omp_in_parallel())
  for (Index item = 0; item < items; ++item) {
    alignas(64) float sums[kNnRows * kNnStrip];
    alignas(64) float at[kNnTile * kNnRows];
    const Index col = item * kNnStrip;
    const Index width = std::min(kNnStrip, n - col);
    for (Index i = 0; i < m; i += kNnRows) {
      nn_rows_of<kNnRows>(std::min<Index>(kNnRows, m - i), a + i * k, k, b, n, col, width, alpha, beta, c + i * n,
                          sums, at);
    }
  }
}

// ---- C = alpha A^T B + beta C ----------------------------------------------------------------
// A tile of RO rows and NV vectors of columns of C in registers, summed over all k (at most
// kSkinnyRows) rows of A and B, then written once. B (k rows) stays in cache; C, read (beta !=
// 0) and written once, is fetched a tile ahead (kTnAhead).
constexpr int kTnRows = 4;
constexpr int kTnVectors = kManyRegisters ? 4 : 2;
constexpr Index kTnBlock = 16;  // rows of C per work item
constexpr Index kTnAhead = 1;

template <int RO, int NV, bool Full>
XGRAD_FLATTEN void tn_tile(const float* a, Index lda, const float* b, Index ldb, Index k, Index count, float alpha,
                           float beta, float* c, Index ldc) {
  Reg<float> acc[RO][NV];
  for_each_vector<RO>([&](auto o) { for_each_vector<NV>([&](auto v) { acc[o][v] = B(0.0f); }); });
  for_each_vector<RO>([&](auto o) {
    for_each_vector<NV>([&](auto v) { __builtin_prefetch(c + o * ldc + (kTnAhead * NV + v) * kL, 1); });
  });
  for (Index p = 0; p < k; ++p) {
    Reg<float> bv[NV];
    for_each_vector<NV>([&](auto v) {
      bv[v] = load_column<Full>(b + p * ldb + v * kL, count);
      in_register(bv[v]);
    });
    for_each_vector<RO>([&](auto o) {
      const B av(a[p * lda + o]);
      for_each_vector<NV>([&](auto v) { acc[o][v] = xsimd::fma(av, B(bv[v]), B(acc[o][v])); });
    });
  }
  const B va(alpha);
  for_each_vector<RO>([&](auto o) {
    for_each_vector<NV>([&](auto v) {
      float* out = c + o * ldc + v * kL;
      const Index lanes = Full ? kL : count;
      store_part(scaled(va, B(acc[o][v]), beta, out, lanes), out, lanes);
    });
  });
}

template <int RO>
void tn_rows(const float* a, Index m, const float* b, Index n, Index k, float alpha, float beta, float* c) {
  constexpr Index kWide = kTnVectors * kL;
  Index col = 0;
  for (; col + kWide <= n; col += kWide) tn_tile<RO, kTnVectors, true>(a, m, b + col, n, k, kL, alpha, beta, c + col, n);
  for (; col + kL <= n; col += kL) tn_tile<RO, 1, true>(a, m, b + col, n, k, kL, alpha, beta, c + col, n);
  if (col < n) tn_tile<RO, 1, false>(a, m, b + col, n, k, n - col, alpha, beta, c + col, n);
}

template <int RO>
void tn_rows_of(Index rows, const float* a, Index m, const float* b, Index n, Index k, float alpha, float beta,
                float* c) {
  if constexpr (RO > 1) {
    if (rows < RO) return tn_rows_of<RO - 1>(rows, a, m, b, n, k, alpha, beta, c);
  }
  tn_rows<RO>(a, m, b, n, k, alpha, beta, c);
}

void skinny_tn(Index m, Index n, Index k, float alpha, const float* a, const float* b, float beta, float* c) {
  const Index items = ceil_div(m, kTnBlock);
#pragma omp parallel for schedule(static) if (!omp_in_parallel())
  for (Index item = 0; item < items; ++item) {
    const Index end = std::min(m, (item + 1) * kTnBlock);
    for (Index o = item * kTnBlock; o < end; o += kTnRows) {
      tn_rows_of<kTnRows>(std::min<Index>(kTnRows, end - o), a + o, m, b, n, k, alpha, beta, c + o * n);
    }
  }
}

}  // namespace

bool takes_skinny_gemm(bool trans_a, bool trans_b, std::size_t m, std::size_t n, std::size_t k) {
  if (trans_a && trans_b) return false;
  if (trans_a) return k >= 1 && k <= kSkinnyRows && m * n >= kSkinnyMinElements;  // m, n < 2^31
  return m <= kSkinnyRows && n * k >= kSkinnyMinElements;
}

void skinny_gemm(bool trans_a, bool trans_b, std::size_t m, std::size_t n, std::size_t k, float alpha,
                 const float* a, const float* b, float beta, float* c) {
  const Index im = static_cast<Index>(m), in = static_cast<Index>(n), ik = static_cast<Index>(k);
  if (trans_a) {
    skinny_tn(im, in, ik, alpha, a, b, beta, c);
  } else if (trans_b) {
    skinny_nt(im, in, ik, alpha, a, b, beta, c);
  } else {
    skinny_nn(im, in, ik, alpha, a, b, beta, c);
  }
}

}  // namespace xgrad::detail
