#pragma once
// Threading policy: one knob for all of xgrad's parallelism. OpenMP runs our kernels and
// our GEMM blocks; OpenBLAS is kept single-threaded underneath (its own threading changes
// results with the thread count). Results never depend on the thread count; only speed does.

namespace xgrad {

// Sets the OpenMP thread count (OpenBLAS stays at 1); n < 1 throws xgrad::Error.
void set_num_threads(int n);
// The OpenMP thread count that parallel kernels will use.
int get_num_threads();

// The one place that keeps OpenBLAS single-threaded: sets its thread count to 1 unless it
// already is 1. Called before every BLAS call xgrad makes (core/blas.cpp) and by
// set_num_threads. Once OpenBLAS is at 1 it only reads the setting, so it is safe to call from
// inside OpenMP parallel regions.
void keep_blas_single_threaded();

}  // namespace xgrad
