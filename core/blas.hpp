#pragma once
// Row-major GEMM on raw contiguous buffers through xtensor-blas (OpenBLAS):
//   C (m x n) = alpha * op(A) * op(B) + beta * C
// op(A) is (m x k): A is stored (m x k), or (k x m) when trans_a. op(B) is (k x n): B is
// stored (k x n), or (n x k) when trans_b. Transposes are flags, never copies.
// beta = 1 accumulates into C, which is how backward passes add into gradients.
#include <cstddef>

namespace xgrad {

void gemm(bool trans_a, bool trans_b, std::size_t m, std::size_t n, std::size_t k, float alpha, const float* a,
          const float* b, float beta, float* c);

}  // namespace xgrad
