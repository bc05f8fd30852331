// LocalResponseNorm kernels against the memory-bandwidth limit measured in the same run.
//
//   lrn_forward/N/C/H/W/size    y = LRN(x): reads x, writes y
//   lrn_backward/N/C/H/W/size   dx from x and dy (nothing saved by the forward): reads x and
//                               dy, writes dx
//   stream_copy/N/C/H/W         y = x: one read, one write of the tensor (the forward's floor)
//   stream_r2w1/N/C/H/W         z = a + b: two reads, one write (the backward's floor)
//   column_copy/N/C/H/W         y = x in the forward's access order (blocks of 512 positions,
//                               columns of four SIMD vectors walked down the channels, the
//                               same software prefetches), no arithmetic: the floor of the
//                               column design itself, to tell what the order costs from what
//                               the kernel's arithmetic costs
//   lrn_forward_columns_paired/ the same, with the column walks forced where the forward takes
//                               its band walks (tensors of 2^22 values or more): the two walks
//                               in one run, to check the choice on another CPU
//   lrn_forward_paired/...      the forward and stream_copy timed back to back in every
//   lrn_backward_paired/...     iteration (the backward and stream_r2w1), in alternating
//                               order, so that kernel and reference see the same machine
//                               state; the time reported is the kernel's, and the counter
//                               `ratio` is the median over the iterations of kernel time /
//                               reference time. On a shared machine the separate cases
//                               above can run minutes apart under different loads.
//
// All buffers are float, allocated the same way and touched (written) by the OpenMP threads
// before timing, so no run pays for page faults. Each timed loop writes every output element
// from the inputs, and the output is handed to benchmark::DoNotOptimize.
#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <random>
#include <vector>

#include <benchmark/benchmark.h>
#include <xsimd/xsimd.hpp>

#include <xgrad/layers/local_response_norm.hpp>
#include <xgrad/layers/local_response_norm_kernels_hooks.hpp>

namespace {

using Index = std::int64_t;

// A float buffer of `count` elements, first touched in parallel (static schedule, as the
// kernels use) and filled with deterministic values in [-2, 2].
class Buffer {
 public:
  explicit Buffer(std::size_t count, std::uint32_t seed) : data_(new float[count]), count_(count) {
    const Index n = static_cast<Index>(count);
#pragma omp parallel for schedule(static)
    for (Index i = 0; i < n; ++i) data_[i] = 0.0f;
    std::mt19937 rng(seed);
    std::uniform_real_distribution<float> dist(-2.0f, 2.0f);
    for (std::size_t i = 0; i < count; ++i) data_[i] = dist(rng);
  }
  ~Buffer() { delete[] data_; }
  Buffer(const Buffer&) = delete;
  Buffer& operator=(const Buffer&) = delete;

  float* data() { return data_; }
  std::size_t size() const { return count_; }

 private:
  float* data_;
  std::size_t count_;
};

std::vector<std::size_t> shape_of(const benchmark::State& state) {
  return {static_cast<std::size_t>(state.range(0)), static_cast<std::size_t>(state.range(1)),
          static_cast<std::size_t>(state.range(2)), static_cast<std::size_t>(state.range(3))};
}

std::size_t count_of(const std::vector<std::size_t>& shape) {
  std::size_t count = 1;
  for (std::size_t d : shape) count *= d;
  return count;
}

void set_bytes(benchmark::State& state, std::size_t count, int streams) {
  state.SetBytesProcessed(state.iterations() *
                          static_cast<std::int64_t>(streams * count * sizeof(float)));
}

// What the cases time, each a callable on buffers set up once; every call writes its whole
// output and hands it to benchmark::DoNotOptimize.

// A kernel case's shape (N, C, H, W) and options (size).
class LrnCase {
 public:
  explicit LrnCase(const benchmark::State& state)
      : shape_(shape_of(state)), count_(count_of(shape_)), options_{state.range(4)} {}
  std::size_t count() const { return count_; }

 protected:
  std::vector<std::size_t> shape_;
  std::size_t count_;
  xgrad::LrnOptions options_;
};

// y = LRN(x): one read, one write.
class Forward : public LrnCase {
 public:
  explicit Forward(const benchmark::State& state)
      : LrnCase(state), x_(count_, 1), y_(count_, 2) {}
  void operator()() {
    xgrad::lrn_forward(x_.data(), y_.data(), shape_, options_);
    benchmark::DoNotOptimize(y_.data());
    benchmark::ClobberMemory();
  }
  const float* x() { return x_.data(); }
  static constexpr int kStreams = 2;

 private:
  Buffer x_, y_;
};

// The forward with the column walks forced (see lrn_forward_columns_paired above).
class ForwardColumns : public Forward {
 public:
  using Forward::Forward;
  void operator()() {
    const xgrad::detail::LrnWalks before = xgrad::detail::set_lrn_walks(xgrad::detail::LrnWalks::Columns);
    Forward::operator()();
    xgrad::detail::set_lrn_walks(before);
  }
};

// dx from x and dy (nothing saved by the forward): two reads, one write.
class Backward : public LrnCase {
 public:
  explicit Backward(const benchmark::State& state)
      : LrnCase(state), x_(count_, 1), dy_(count_, 3), dx_(count_, 4) {}
  void operator()() {
    xgrad::lrn_backward(x_.data(), dy_.data(), dx_.data(), shape_, options_, /*accumulate=*/false);
    benchmark::DoNotOptimize(dx_.data());
    benchmark::ClobberMemory();
  }
  const float* x() { return x_.data(); }
  const float* dy() { return dy_.data(); }
  static constexpr int kStreams = 3;

 private:
  Buffer x_, dy_, dx_;
};

// stream_copy's pass: out = src, into a buffer of its own.
class CopyPass {
 public:
  CopyPass(const float* src, std::size_t count) : src_(src), out_(count, 5) {}
  void operator()() {
    const Index n = static_cast<Index>(out_.size());
    const float* src = src_;
    float* out = out_.data();
#pragma omp parallel for schedule(static)
    for (Index i = 0; i < n; ++i) out[i] = src[i];
    benchmark::DoNotOptimize(out_.data());
    benchmark::ClobberMemory();
  }

 private:
  const float* src_;
  Buffer out_;
};

// stream_r2w1's pass: out = a + b, into a buffer of its own.
class AddPass {
 public:
  AddPass(const float* a, const float* b, std::size_t count) : a_(a), b_(b), out_(count, 5) {}
  void operator()() {
    const Index n = static_cast<Index>(out_.size());
    const float* a = a_;
    const float* b = b_;
    float* out = out_.data();
#pragma omp parallel for schedule(static)
    for (Index i = 0; i < n; ++i) out[i] = a[i] + b[i];
    benchmark::DoNotOptimize(out_.data());
    benchmark::ClobberMemory();
  }

 private:
  const float* a_;
  const float* b_;
  Buffer out_;
};

template <class F>
double seconds_of(F& f) {
  const auto start = std::chrono::steady_clock::now();
  f();
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

// Times kernel() and reference() back to back in every iteration, the order alternating;
// reports the kernel's time and the median ratio.
template <class Kernel, class Reference>
void run_paired(benchmark::State& state, Kernel& kernel, Reference& reference) {
  std::vector<double> ratios;
  bool kernel_first = true;
  for (auto _ : state) {
    double kernel_seconds = 0.0, reference_seconds = 0.0;
    if (kernel_first) {
      kernel_seconds = seconds_of(kernel);
      reference_seconds = seconds_of(reference);
    } else {
      reference_seconds = seconds_of(reference);
      kernel_seconds = seconds_of(kernel);
    }
    kernel_first = !kernel_first;
    ratios.push_back(kernel_seconds / reference_seconds);
    state.SetIterationTime(kernel_seconds);
  }
  set_bytes(state, kernel.count(), Kernel::kStreams);
  if (ratios.empty()) return;
  const auto middle = ratios.begin() + static_cast<std::ptrdiff_t>(ratios.size() / 2);
  std::nth_element(ratios.begin(), middle, ratios.end());
  state.counters["ratio"] = *middle;
}

template <class Kernel>
void run_alone(benchmark::State& state, Kernel& kernel) {
  for (auto _ : state) kernel();
  set_bytes(state, kernel.count(), Kernel::kStreams);
}

void lrn_forward(benchmark::State& state) {
  Forward kernel(state);
  run_alone(state, kernel);
}

void lrn_backward(benchmark::State& state) {
  Backward kernel(state);
  run_alone(state, kernel);
}

void lrn_forward_paired(benchmark::State& state) {
  Forward kernel(state);
  CopyPass reference(kernel.x(), kernel.count());
  run_paired(state, kernel, reference);
}

void lrn_forward_columns_paired(benchmark::State& state) {
  ForwardColumns kernel(state);
  CopyPass reference(kernel.x(), kernel.count());
  run_paired(state, kernel, reference);
}

void lrn_backward_paired(benchmark::State& state) {
  Backward kernel(state);
  AddPass reference(kernel.x(), kernel.dy(), kernel.count());
  run_paired(state, kernel, reference);
}

void stream_copy(benchmark::State& state) {
  const std::size_t count = count_of(shape_of(state));
  Buffer x(count, 1);
  CopyPass pass(x.data(), count);
  for (auto _ : state) pass();
  set_bytes(state, count, 2);
}

void stream_r2w1(benchmark::State& state) {
  const std::size_t count = count_of(shape_of(state));
  Buffer a(count, 1), b(count, 3);
  AddPass pass(a.data(), b.data(), count);
  for (auto _ : state) pass();
  set_bytes(state, count, 3);
}

void column_copy(benchmark::State& state) {
  using Batch = xsimd::batch<float>;
  constexpr Index kLanes = static_cast<Index>(Batch::size);
  constexpr Index kWide = 4 * kLanes;  // a column: four vectors
  constexpr Index kBlock = 512;
  const Index samples = state.range(0), channels = state.range(1);
  const Index inner = state.range(2) * state.range(3);
  const std::size_t count = static_cast<std::size_t>(samples * channels * inner);
  Buffer x(count, 1), y(count, 2);
  const Index blocks = (inner + kBlock - 1) / kBlock;
  for (auto _ : state) {
    const float* src = x.data();
    float* dst = y.data();
#pragma omp parallel for schedule(static)
    for (Index item = 0; item < samples * blocks; ++item) {
      const Index begin = (item % blocks) * kBlock, end = std::min(begin + kBlock, inner);
      const float* xi = src + (item / blocks) * channels * inner;
      float* yi = dst + (item / blocks) * channels * inner;
      Index p = begin;
      for (; p + kWide <= end; p += kWide) {
        for (Index c = 0; c < channels; ++c) {
          const float* xc = xi + c * inner + p;
          float* yc = yi + c * inner + p;
          for (Index v = 0; v < kWide; v += kLanes) {
            __builtin_prefetch(xc + v + 2 * kWide);
            __builtin_prefetch(yc + v + kWide, 1);
            Batch::load_unaligned(xc + v).store_unaligned(yc + v);
          }
        }
      }
      for (Index c = 0; c < channels; ++c) {
        for (Index q = p; q < end; ++q) yi[c * inner + q] = xi[c * inner + q];
      }
    }
    benchmark::DoNotOptimize(y.data());
    benchmark::ClobberMemory();
  }
  set_bytes(state, count, 2);
}

// (N, C, H, W, size): AlexNet's two LRN layers, an even size, and C not a multiple of 8; and
// 32x64x8x8 (512 KB a tensor), which stays in the two cores' L2 caches between iterations:
// there memory weighs less and the kernels' own instructions more, and the stream
// references run at cache speed.
void lrn_shapes(benchmark::internal::Benchmark* b) {
  b->Args({32, 96, 55, 55, 5})->Args({32, 256, 27, 27, 5})->Args({32, 96, 55, 55, 4})->Args({32, 90, 55, 55, 5});
  b->Args({32, 64, 8, 8, 5});
  b->Unit(benchmark::kMicrosecond);
}

void lrn_cases(benchmark::internal::Benchmark* b) {
  lrn_shapes(b);
  b->UseRealTime();
}

void paired_cases(benchmark::internal::Benchmark* b) {
  lrn_shapes(b);
  b->UseManualTime();
}

void stream_cases(benchmark::internal::Benchmark* b) {
  b->Args({32, 96, 55, 55})->Args({32, 256, 27, 27})->Args({32, 90, 55, 55})->Args({32, 64, 8, 8});
  b->UseRealTime()->Unit(benchmark::kMicrosecond);
}

}  // namespace

BENCHMARK(stream_copy)->Apply(stream_cases);
BENCHMARK(stream_r2w1)->Apply(stream_cases);
BENCHMARK(column_copy)->Apply(stream_cases);
BENCHMARK(lrn_forward)->Apply(lrn_cases);
BENCHMARK(lrn_backward)->Apply(lrn_cases);
BENCHMARK(lrn_forward_paired)->Apply(paired_cases);
BENCHMARK(lrn_forward_columns_paired)->Apply(paired_cases);
BENCHMARK(lrn_backward_paired)->Apply(paired_cases);

BENCHMARK_MAIN();
