#include <xgrad/core/blas.hpp>

#include <algorithm>
#include <cstdint>
#include <limits>

#include <omp.h>

#include <xtensor-blas/xblas.hpp>

#include <xgrad/core/tensor.hpp>
#include <xgrad/core/threading.hpp>

namespace xgrad {

namespace {

// Products smaller than this (m * n * k) are one call; larger ones are split.
constexpr std::size_t kSplitWork = std::size_t{1} << 18;
constexpr std::size_t kColumnBlock = 256;  // columns of C per block when splitting n
constexpr std::size_t kRowBlock = 64;      // rows of C per block when splitting m

static_assert(kMaxGemmSize <= static_cast<std::size_t>(std::numeric_limits<xt::blas_index_t>::max()),
              "kMaxGemmSize must fit BLAS's index type");

}  // namespace

template <class T>
void gemm_serial(bool trans_a, bool trans_b, std::size_t m, std::size_t n, std::size_t k, T alpha, const T* a,
                 std::size_t lda, const T* b, std::size_t ldb, T beta, T* c, std::size_t ldc) {
  if (m == 0 || n == 0) return;
  if (k == 0) {
    // BLAS would only scale C by beta; keep that meaning without calling it on empty operands.
    for (std::size_t i = 0; i < m; ++i)
      for (std::size_t j = 0; j < n; ++j) c[i * ldc + j] = beta == T(0) ? T(0) : beta * c[i * ldc + j];
    return;
  }
  keep_blas_single_threaded();
  using I = xt::blas_index_t;
  cxxblas::gemm<I>(cxxblas::StorageOrder::RowMajor, trans_a ? cxxblas::Transpose::Trans : cxxblas::Transpose::NoTrans,
                   trans_b ? cxxblas::Transpose::Trans : cxxblas::Transpose::NoTrans, static_cast<I>(m),
                   static_cast<I>(n), static_cast<I>(k), alpha, a, static_cast<I>(lda), b, static_cast<I>(ldb), beta, c,
                   static_cast<I>(ldc));
}

void gemm(bool trans_a, bool trans_b, std::size_t m, std::size_t n, std::size_t k, float alpha, const float* a,
          const float* b, float beta, float* c) {
  if (m == 0 || n == 0) return;
  if (k > 0) {  // a product that calls BLAS
    detail::checked_product("gemm", "m", {m}, kMaxGemmSize);
    detail::checked_product("gemm", "n", {n}, kMaxGemmSize);
    detail::checked_product("gemm", "k", {k}, kMaxGemmSize);
  }
  const std::size_t lda = trans_a ? m : k, ldb = trans_b ? k : n, ldc = n;
  // m * n * k, saturated (it can pass 2^64 for sizes below 2^31 each).
  std::size_t work = 0;
  if (__builtin_mul_overflow(m, n, &work) || __builtin_mul_overflow(work, k, &work)) work = SIZE_MAX;
  const bool split_columns = work >= kSplitWork && n >= 2 * kColumnBlock && n >= m;
  const bool split_rows = !split_columns && work >= kSplitWork && m >= 2 * kRowBlock;
  if (!split_columns && !split_rows) {
    gemm_serial(trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
    return;
  }
  const std::size_t block = split_columns ? kColumnBlock : kRowBlock;
  const std::ptrdiff_t blocks = static_cast<std::ptrdiff_t>(((split_columns ? n : m) + block - 1) / block);
  // Each block writes its own rows or columns of C.
#pragma omp parallel for schedule(static) if (!omp_in_parallel())
  for (std::ptrdiff_t i = 0; i < blocks; ++i) {
    const std::size_t first = static_cast<std::size_t>(i) * block;
    if (split_columns) {
      const std::size_t width = std::min(block, n - first);
      const float* bb = trans_b ? b + first * ldb : b + first;
      gemm_serial(trans_a, trans_b, m, width, k, alpha, a, lda, bb, ldb, beta, c + first, ldc);
    } else {
      const std::size_t height = std::min(block, m - first);
      const float* ab = trans_a ? a + first : a + first * lda;
      gemm_serial(trans_a, trans_b, height, n, k, alpha, ab, lda, b, ldb, beta, c + first * ldc, ldc);
    }
  }
}

template void gemm_serial<float>(bool, bool, std::size_t, std::size_t, std::size_t, float, const float*, std::size_t,
                                 const float*, std::size_t, float, float*, std::size_t);
template void gemm_serial<double>(bool, bool, std::size_t, std::size_t, std::size_t, double, const double*,
                                  std::size_t, const double*, std::size_t, double, double*, std::size_t);

}  // namespace xgrad
