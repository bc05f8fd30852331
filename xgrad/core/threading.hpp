#pragma once
// Threading policy: one knob for all of xgrad's parallelism. OpenMP runs our kernels and
// our GEMM blocks; OpenBLAS is kept single-threaded underneath (its own threading changes
// results with the thread count). Results never depend on the thread count; only speed does.
#include <atomic>
#include <cstdint>
#include <exception>
#include <mutex>

namespace xgrad {

// Parallel-size thresholds: a loop with less work than this runs on the calling thread, where
// waking the OpenMP team would cost more than it saves. The test uses the shape alone, and each
// output is computed the same way on either side of it, so a threshold changes speed only.
// Elements a loop reads or writes (for pooling: output elements times the window).
constexpr std::int64_t kParallelElements = std::int64_t{1} << 15;
// Multiply-adds of a loop of GEMM pieces: higher, as BLAS does many in the time of one element
// moved.
constexpr std::int64_t kParallelMacs = std::int64_t{1} << 21;

// The most threads set_num_threads accepts.
constexpr int kMaxThreads = 1024;

// Sets the OpenMP thread count (OpenBLAS stays at 1); n < 1, n > kMaxThreads and n above the
// runtime's thread limit throw xgrad::Error.
void set_num_threads(int n);
// The OpenMP thread count that parallel kernels will use.
int get_num_threads();

// data[0, n) = value, split over the OpenMP threads when n >= kParallelElements (a gradient
// buffer's zeroing, which would otherwise leave the other threads waiting).
void parallel_fill(float* data, std::int64_t n, float value);

// The one place that keeps OpenBLAS single-threaded: sets its thread count to 1 unless it
// already is 1. Called before every BLAS call xgrad makes (core/blas.cpp) and by
// set_num_threads; its first call also chooses OpenBLAS's kernels (blas_kernels()). Once
// OpenBLAS is at 1 it only reads the setting, so it is safe to call from inside OpenMP parallel
// regions.
void keep_blas_single_threaded();

// An exception must not leave an OpenMP parallel region (the runtime calls std::terminate).
// A region whose threads can throw (allocating a per-thread buffer, a check) runs the throwing
// part through one ParallelErrors, which keeps the first exception; after the region,
// rethrow() throws it on the calling thread:
//   ParallelErrors errors;
//   #pragma omp parallel
//   {
//     T* buffer = nullptr;
//     errors.run([&] { buffer = thread_buffer<T>(size); });
//   #pragma omp for
//     for (...) {
//       if (buffer == nullptr) continue;  // this thread failed: skip its share, reach the barrier
//       ...
//     }
//   }
//   errors.rethrow();
// Every thread still reaches every worksharing construct and barrier (no thread may leave the
// region early), so a failure costs no deadlock. One run() per thread or per work item, never
// per element: a try block costs nothing until something throws.
class ParallelErrors {
 public:
  // Runs f; keeps what it throws (the first exception of the region wins). True if f returned.
  template <class F>
  bool run(F&& f) noexcept {
    try {
      f();
      return true;
    } catch (...) {
      keep(std::current_exception());
      return false;
    }
  }
  // True once any thread's run() has caught an exception.
  bool failed() const noexcept { return failed_.load(std::memory_order_relaxed); }
  // After the region: throws the exception kept, if any.
  void rethrow() const {
    if (first_) std::rethrow_exception(first_);
  }

 private:
  void keep(std::exception_ptr e) noexcept {
    std::lock_guard<std::mutex> lock(mutex_);
    if (!first_) first_ = std::move(e);
    failed_.store(true, std::memory_order_relaxed);
  }

  std::mutex mutex_;
  std::exception_ptr first_;
  std::atomic<bool> failed_{false};
};

}  // namespace xgrad
