#pragma once
// Threading policy: one knob for all of xgrad's parallelism. OpenMP runs our kernels and
// our GEMM blocks; OpenBLAS is kept single-threaded underneath (its own threading changes
// results with the thread count). Results never depend on the thread count; only speed does.

namespace xgrad {

// Sets the OpenMP thread count (OpenBLAS stays at 1); n < 1 throws xgrad::Error.
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
