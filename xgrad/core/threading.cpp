#include <xgrad/core/threading.hpp>

#include <omp.h>

#include <algorithm>

#include <xgrad/core/blas.hpp>
#include <xgrad/core/error.hpp>

// OpenBLAS's own controls, declared here rather than through <cblas.h>, which must not meet
// xtensor-blas's declarations in one translation unit.
extern "C" {
void openblas_set_num_threads(int num_threads);
int openblas_get_num_threads(void);
}

namespace xgrad {

void set_num_threads(int n) {
  XGRAD_CHECK(n >= 1, "set_num_threads: thread count must be >= 1, got ", n);
  // More threads than the runtime allows (OMP_THREAD_LIMIT), or than any machine this runs on
  // has, would fail or crawl inside the first parallel region instead of here.
  const int limit = std::min(omp_get_thread_limit(), kMaxThreads);
  XGRAD_CHECK(n <= limit, "set_num_threads: thread count must be at most ", limit, " (", kMaxThreads,
              ", or OMP_THREAD_LIMIT if lower), got ", n);
  omp_set_num_threads(n);
  // OpenBLAS stays single-threaded: xgrad's gemm parallelises over fixed blocks itself, so
  // that results do not depend on the thread count (see core/blas.hpp).
  keep_blas_single_threaded();
}

int get_num_threads() { return omp_get_max_threads(); }

void parallel_fill(float* data, std::int64_t n, float value) {
#pragma omp parallel for schedule(static) if (n >= kParallelElements)
  for (std::int64_t i = 0; i < n; ++i) data[i] = value;
}

void keep_blas_single_threaded() {
  // The first call chooses OpenBLAS's kernels (core/blas.hpp) and sets the thread count (a
  // static's initialisation runs once, even when threads race to it); later ones set it again
  // only if something else has changed it since.
  static const bool first = (blas_kernels(), openblas_set_num_threads(1), true);
  (void)first;
  if (openblas_get_num_threads() != 1) openblas_set_num_threads(1);
}

}  // namespace xgrad
