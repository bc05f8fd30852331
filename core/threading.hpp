#pragma once
// Threading policy: one knob for OpenMP (our kernels) and OpenBLAS (GEMM) together.
// Results never depend on the thread count; only speed does.

namespace xgrad {

// Sets the thread count of OpenMP and OpenBLAS; n < 1 throws xgrad::Error.
void set_num_threads(int n);
// The OpenMP thread count that parallel kernels will use.
int get_num_threads();

// Runs OpenBLAS single-threaded for its lifetime (for BLAS calls made from inside an
// OpenMP parallel region), restoring the previous setting afterwards.
class BlasSingleThreadGuard {
 public:
  BlasSingleThreadGuard();
  ~BlasSingleThreadGuard();
  BlasSingleThreadGuard(const BlasSingleThreadGuard&) = delete;
  BlasSingleThreadGuard& operator=(const BlasSingleThreadGuard&) = delete;

 private:
  int previous_;
};

}  // namespace xgrad
