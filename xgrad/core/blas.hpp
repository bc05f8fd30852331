#pragma once
// Row-major GEMM on raw buffers through xtensor-blas's BLAS bindings (OpenBLAS):
//   C (m x n) = alpha * op(A) * op(B) + beta * C
// op(A) is (m x k): A is stored (m x k), or (k x m) when trans_a. op(B) is (k x n): B is
// stored (k x n), or (n x k) when trans_b. Transposes are flags, never copies.
// beta = 1 accumulates into C, which is how backward passes add into gradients.
//
// Threading: OpenBLAS itself always runs single-threaded; large products are split into
// blocks of rows or columns of C whose boundaries depend only on (m, n, k), and the blocks
// run in parallel under OpenMP. The same calls happen at any thread count, so results are
// bit-identical at 1 and N threads (OpenBLAS's own threading does not guarantee that).
// Called from inside an OpenMP parallel region, it runs serially.
#include <cstddef>

namespace xgrad {

// Contiguous operands: lda, ldb, ldc are the stored row lengths.
void gemm(bool trans_a, bool trans_b, std::size_t m, std::size_t n, std::size_t k, float alpha, const float* a,
          const float* b, float beta, float* c);

// Operands inside larger row-major buffers: lda, ldb, ldc are the distances between
// consecutive stored rows of A, B and C.
template <class T>
void gemm(bool trans_a, bool trans_b, std::size_t m, std::size_t n, std::size_t k, T alpha, const T* a,
          std::size_t lda, const T* b, std::size_t ldb, T beta, T* c, std::size_t ldc);

}  // namespace xgrad
