#pragma once
// Row-major GEMM on raw buffers through xtensor-blas's BLAS bindings (OpenBLAS):
//   C (m x n) = alpha * op(A) * op(B) + beta * C
// op(A) is (m x k): A is stored (m x k), or (k x m) when trans_a. op(B) is (k x n): B is
// stored (k x n), or (n x k) when trans_b. Transposes are flags, never copies.
// beta = 1 accumulates into C, which is how backward passes add into gradients.
//
// Two entry points, one for each way of parallelising (OpenBLAS itself always runs
// single-threaded, see core/threading.hpp: its own threading changes results with the thread
// count):
// - gemm: a whole product on contiguous operands. Large products are split into blocks of rows
//   or columns of C whose boundaries depend only on (m, n, k), and the blocks run in parallel
//   under OpenMP. The same calls happen at any thread count, so results are bit-identical at 1
//   and N threads. Called from inside an OpenMP parallel region, it runs serially. A product of
//   a small batch against a large operand (a fully connected layer's at batch 16 or less: op(A)
//   or the inner dimension of at most 16 rows, the other operand of 2^20 elements or more) runs
//   on xgrad's own kernels instead (core/blas_skinny_kernels.hpp): OpenBLAS ran them at a third
//   to a half of the speed their memory traffic allows. They too are bit-identical at any
//   thread count.
// - gemm_serial: exactly one BLAS call on the calling thread, on operands inside larger
//   buffers. For kernels that cut their GEMMs into pieces themselves and run the pieces in their
//   own OpenMP loops (conv2d); safe to call from several threads at once.
#include <climits>
#include <cstddef>
#include <string>

namespace xgrad {

// The largest m, n, k or leading dimension a BLAS call takes (OpenBLAS's LP64 interface counts
// in int). Layers and ops check their GEMM sizes against it at entry (detail::checked_product);
// gemm() checks its own.
constexpr std::size_t kMaxGemmSize = INT_MAX;

// Contiguous operands: the stored row lengths are k or m (A), n or k (B) and n (C).
// m, n or k 0 calls no BLAS (k 0: C = beta * C); otherwise m, n or k above kMaxGemmSize throws
// xgrad::Error naming gemm.
void gemm(bool trans_a, bool trans_b, std::size_t m, std::size_t n, std::size_t k, float alpha, const float* a,
          const float* b, float beta, float* c);

// lda, ldb, ldc are the distances between consecutive stored rows of A, B and C. Instantiated
// for float and double. requires: every size at most kMaxGemmSize (unchecked: it runs inside
// OpenMP regions, where nothing may throw). m, n or k 0 calls no BLAS.
template <class T>
void gemm_serial(bool trans_a, bool trans_b, std::size_t m, std::size_t n, std::size_t k, T alpha, const T* a,
                 std::size_t lda, const T* b, std::size_t ldb, T beta, T* c, std::size_t ldc);

// The OpenBLAS kernels xgrad's GEMMs run on.
//
// OpenBLAS built for many CPUs (Debian's is) picks its kernels when it loads, from the CPU's
// model number. A CPU newer than the OpenBLAS release is not in its tables, and OpenBLAS then
// falls back to its generic "Prescott" kernels (SSE3), which run sgemm several times slower
// than the CPU can: on a 2-core Xeon of model 207 with Debian 12's OpenBLAS 0.3.21, the
// Fashion-MNIST example trains at a third of the speed (bench/README.md). So before its first
// BLAS call (and in set_num_threads), xgrad checks which kernels OpenBLAS chose and, when they
// are that fallback while the CPU and the operating system support wider vectors, has OpenBLAS
// load the kernels that match them instead: SkylakeX for AVX-512 (F, CD, BW, DQ, VL), Haswell
// for AVX2 with FMA, Sandybridge for AVX. Any other choice of OpenBLAS's is kept, and so is the
// user's: nothing changes when OPENBLAS_CORETYPE is set (OPENBLAS_CORETYPE=Prescott keeps the
// generic kernels). The switch happens once, on the first call, before any BLAS call of
// xgrad's; an application that calls OpenBLAS itself from other threads at that moment should
// call blas_kernels() first. Results stay bit-identical at any thread count (OpenBLAS runs
// single-threaded under xgrad), but may differ in the last bits between kernels.
struct BlasKernels {
  std::string core;      // the kernels in use, by OpenBLAS's name (openblas_get_corename)
  std::string detected;  // the kernels OpenBLAS chose by itself
  bool replaced = false;  // xgrad replaced the fallback kernels with `core`
  std::string note;      // why they were or were not replaced, for a program's start-up line
};

// Chooses the kernels on the first call (see above) and returns the same result on every call.
// Thread-safe.
const BlasKernels& blas_kernels();

}  // namespace xgrad
