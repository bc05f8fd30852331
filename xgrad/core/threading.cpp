#include <xgrad/core/threading.hpp>

#include <omp.h>

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
  omp_set_num_threads(n);
  // OpenBLAS stays single-threaded: xgrad's gemm parallelises over fixed blocks itself, so
  // that results do not depend on the thread count (see core/blas.hpp).
  openblas_set_num_threads(1);
}

int get_num_threads() { return omp_get_max_threads(); }

BlasSingleThreadGuard::BlasSingleThreadGuard() : previous_(openblas_get_num_threads()) {
  openblas_set_num_threads(1);
}

BlasSingleThreadGuard::~BlasSingleThreadGuard() { openblas_set_num_threads(previous_); }

}  // namespace xgrad
