#include <xgrad/core/blas.hpp>

#include <xgrad/core/blas_skinny_kernels.hpp>

#include <strings.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <limits>

#include <omp.h>

#include <xtensor-blas/xblas.hpp>

#include <xgrad/core/tensor.hpp>
#include <xgrad/core/threading.hpp>

// OpenBLAS's name for its kernels (every build has it), and the two calls of a build for many
// CPUs (DYNAMIC_ARCH) that unload and choose its kernels again. Those two are internal to
// OpenBLAS, so they are weak references: null where the library lacks them, and then xgrad
// only reports what it would have chosen.
extern "C" {
char* openblas_get_corename(void);
void gotoblas_dynamic_init(void) __attribute__((weak));
void gotoblas_dynamic_quit(void) __attribute__((weak));
}

namespace xgrad {

namespace {

// The OpenBLAS kernels that match the widest vectors this CPU and its operating system support,
// or null when the generic ones are all there is. __builtin_cpu_supports also checks that the
// operating system saves the vector registers (XCR0).
const char* best_kernels_for_this_cpu() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512cd") && __builtin_cpu_supports("avx512bw") &&
      __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl"))
    return "SkylakeX";
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return "Haswell";
  if (__builtin_cpu_supports("avx")) return "Sandybridge";
#endif
  return nullptr;
}

std::string corename() {
  const char* name = openblas_get_corename();
  return name != nullptr ? name : "";
}

BlasKernels choose_blas_kernels() {
  BlasKernels k;
  k.detected = k.core = corename();
  if (const char* forced = std::getenv("OPENBLAS_CORETYPE")) {
    k.note = "kept OPENBLAS_CORETYPE=" + std::string(forced);
    return k;
  }
  // "Prescott" is the kernels OpenBLAS falls back to when it does not know the CPU.
  if (strcasecmp(k.detected.c_str(), "Prescott") != 0) {
    k.note = "chosen by OpenBLAS for this CPU";
    return k;
  }
  const char* best = best_kernels_for_this_cpu();
  if (best == nullptr) {
    k.note = "OpenBLAS's generic kernels; this CPU has no wider vectors (AVX) for others";
    return k;
  }
  if (gotoblas_dynamic_init == nullptr || gotoblas_dynamic_quit == nullptr) {
    k.note = "OpenBLAS did not recognise this CPU and cannot switch its kernels here: set OPENBLAS_CORETYPE=" +
             std::string(best) + " before the program starts, for faster GEMMs";
    return k;
  }
  // OpenBLAS reads OPENBLAS_CORETYPE when it chooses its kernels; the variable is set only for
  // that moment (it was unset), so child processes choose for themselves.
  setenv("OPENBLAS_CORETYPE", best, 1);
  gotoblas_dynamic_quit();
  gotoblas_dynamic_init();
  unsetenv("OPENBLAS_CORETYPE");
  k.core = corename();
  k.replaced = strcasecmp(k.core.c_str(), k.detected.c_str()) != 0;
  k.note = k.replaced ? "OpenBLAS did not recognise this CPU; xgrad chose the kernels for its vector units"
                      : "OpenBLAS did not recognise this CPU and does not have the " + std::string(best) + " kernels";
  return k;
}

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
  if (detail::takes_skinny_gemm(trans_a, trans_b, m, n, k)) {
    detail::skinny_gemm(trans_a, trans_b, m, n, k, alpha, a, b, beta, c);
    return;
  }
  // m * n * k, saturated (it can pass 2^64 for sizes below 2^31 each).
  std::size_t work = 0;
  if (__builtin_mul_overflow(m, n, &work) || __builtin_mul_overflow(work, k, &work)) work = SIZE_MAX;
  const bool split_columns = work >= kSplitWork && n >= 2 * kColumnBlock && n >= m;
  const bool split_rows = !split_columns && work >= kSplitWork && m >= 2 * kRowBlock;
  if (!split_columns && !split_rows) {
    gemm_serial(trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
    return;
  }
  // Blocks of kColumnBlock columns or kRowBlock rows; an odd count below 16 becomes the next
  // even one, of equal widths (multiples of 16), so that two threads share the blocks evenly
  // (576 columns made blocks of 256, 256 and 64: one thread did eight ninths of the work).
  const std::size_t extent = split_columns ? n : m;
  std::size_t block = split_columns ? kColumnBlock : kRowBlock;
  std::size_t count = (extent + block - 1) / block;
  if (count < 16 && count % 2 == 1) {
    block = ((extent + count) / (count + 1) + 15) / 16 * 16;
    count = (extent + block - 1) / block;
  }
  const std::ptrdiff_t blocks = static_cast<std::ptrdiff_t>(count);
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

const BlasKernels& blas_kernels() {
  static const BlasKernels kernels = choose_blas_kernels();
  return kernels;
}

}  // namespace xgrad
