#pragma once
// Internal to xgrad (not installed: the install leaves out "*_kernels*.hpp"): the products of
// a fully connected layer at a small batch, which gemm() (blas.hpp) takes instead of OpenBLAS.
//
// With x (batch x in) and a weight W (out x in), Linear computes y = x W^T, dx = dy W and
// dW = dy^T x. At batch 16 (AlexNet's FC layers: W of 4096 x 9216, 151 MB) each of the three
// reads or writes all of W once for 16 multiply-adds per weight, yet OpenBLAS (which packs its
// operands for large square products) ran them at 6.5-7.5 GB/s of W on a 2-core Zen 4 that
// reads 33 GB/s (bench/README.md, bench_layers round 14). These kernels stream W once, straight,
// and keep the small operand in cache (skinny_gemm picks one by the flags):
// - C (m x n) = alpha A B^T + beta C, A (m x k), B (n x k), m <= kSkinnyRows: tiles of (rows of
//   A) x (rows of B) as dot products along k;
// - C (m x n) = alpha A B + beta C, A (m x k), B (k x n), m <= kSkinnyRows: a column strip of C
//   in registers, updated by B's rows one after another;
// - C (m x n) = alpha A^T B + beta C, A (k x m), B (k x n), k <= kSkinnyRows: each tile of C
//   formed in registers over all k and written once.
// All operands are contiguous and row-major (lda = k, m, ...), as gemm() takes them. Work is
// cut into items by the shape alone and each item writes its own part of C, every element
// summed in an order fixed by the shape: results are bit-identical at any thread count (they
// differ from OpenBLAS's in the last bits). Called from inside an OpenMP parallel region they
// run serially. As in BLAS, C is not read when beta is 0.
#include <cstddef>

namespace xgrad::detail {

// The largest small side the kernels take (the accumulators of one column of C fit the 32
// registers of AVX-512).
constexpr std::size_t kSkinnyRows = 16;
// Products whose large operand has fewer elements (4 MB of floats) stay with OpenBLAS, where
// they are not bound by memory.
constexpr std::size_t kSkinnyMinElements = std::size_t{1} << 20;

// Whether gemm() takes one of the kernels for these flags and sizes (all sizes at most
// kMaxGemmSize, m and n nonzero).
bool takes_skinny_gemm(bool trans_a, bool trans_b, std::size_t m, std::size_t n, std::size_t k);

// The kernel for the flags, when takes_skinny_gemm holds.
void skinny_gemm(bool trans_a, bool trans_b, std::size_t m, std::size_t n, std::size_t k, float alpha,
                 const float* a, const float* b, float beta, float* c);

}  // namespace xgrad::detail
