// Conv2d kernels (im2col + one GEMM per group for the whole batch) in GFLOP/s.
//
//   conv_forward/N/C/H/W/O/K/S/P/G    y = conv(x) + b: 2 * MACs flops
//   conv_backward/N/C/H/W/O/K/S/P/G   dx, dw and db from dy and x (whose columns it rebuilds for
//                                     dw): 4 * MACs flops (dw and dx are one forward-sized GEMM each)
//   conv_backward_no_dx/...           dw and db only (a first layer, whose input needs no gradient)
//   im2col/...                        the column matrix alone, as bytes written per second
//   gemm_of_forward/...               the forward's GEMMs alone (G times (Og x R) x (R x L)): the
//                                     ceiling measured in the same run
//
// MACs = N * O * OH * OW * (C / G) * K * K. Cases: the convolutions of the mini AlexNet at batch
// 64 (64 x 64 input), AlexNet's conv1 at batch 16 (224 x 224 input) and the fmnist preset's
// first two at batch 64 (28 x 28 input). Buffers are allocated and
// written once before timing.
//
//   maxpool_forward/N/C/H/W/K/S        MaxPool2d's forward (values and argmax), as input elements
//                                      read per second
//
//   linear_gemm/N/In/Out/Op            one of Linear's products through gemm(), at batch N:
//                                      Op 0 y = x W^T, 1 dx = dy W, 2 dW = dy^T x (stored, as
//                                      after zero_grad); GFLOP/s and the weight's bytes per
//                                      second (each reads or writes W once). At batch 16 gemm()
//                                      takes xgrad's kernels for small batches
//                                      (core/blas_skinny_kernels.hpp).
//   linear_gemm_openblas/...           the same product as OpenBLAS calls on column blocks of
//                                      256 over the threads (what gemm() does for such shapes
//                                      otherwise): the reference of the same run
#include <cstddef>
#include <cstdint>
#include <random>
#include <vector>

#include <algorithm>

#include <benchmark/benchmark.h>
#include <omp.h>

#include <xgrad/core/blas.hpp>
#include <xgrad/layers/conv2d.hpp>
#include <xgrad/layers/max_pool2d.hpp>

namespace {

using xgrad::Conv2dGeometry;

Conv2dGeometry geometry_of(const benchmark::State& state) {
  auto arg = [&state](int i) { return static_cast<std::size_t>(state.range(i)); };
  return Conv2dGeometry::make("bench", {arg(0), arg(1), arg(2), arg(3)}, arg(1), arg(4), arg(5), arg(6), arg(7),
                              arg(8));
}

std::vector<float> random_buffer(std::size_t count, std::uint32_t seed) {
  std::vector<float> v(count);
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
  for (auto& e : v) e = dist(rng);
  return v;
}

// Every buffer of one convolution, with x, w, b and dy random.
struct ConvBuffers {
  explicit ConvBuffers(const Conv2dGeometry& g)
      : x(random_buffer(g.N * g.C * g.H * g.W, 1)),
        w(random_buffer(g.O * g.Cg() * g.K * g.K, 2)),
        b(random_buffer(g.O, 3)),
        y(g.N * g.O * g.OH * g.OW),
        dy(random_buffer(y.size(), 4)),
        dx(x.size()),
        dw(w.size()),
        db(b.size()),
        cols(g.cols_size()),
        scratch(g.scratch_size()) {}
  std::vector<float> x, w, b, y, dy, dx, dw, db, cols, scratch;
};

double macs(const Conv2dGeometry& g) {
  return static_cast<double>(g.N) * g.O * g.OH * g.OW * g.Cg() * g.K * g.K;
}

void set_gflops(benchmark::State& state, double flops_per_iteration) {
  state.counters["GFLOP/s"] =
      benchmark::Counter(flops_per_iteration * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
}

void conv_forward(benchmark::State& state) {
  const Conv2dGeometry g = geometry_of(state);
  ConvBuffers buf(g);
  for (auto _ : state) {
    xgrad::kernels::conv2d_forward<float>(buf.x.data(), buf.w.data(), buf.b.data(), buf.y.data(), g);
    benchmark::DoNotOptimize(buf.y.data());
    benchmark::ClobberMemory();
  }
  set_gflops(state, 2 * macs(g));
}

void backward(benchmark::State& state, bool with_dx) {
  const Conv2dGeometry g = geometry_of(state);
  ConvBuffers buf(g);
  xgrad::kernels::conv2d_forward<float>(buf.x.data(), buf.w.data(), buf.b.data(), buf.y.data(), g);
  for (auto _ : state) {
    xgrad::kernels::conv2d_backward<float>(buf.dy.data(), buf.w.data(), buf.x.data(),
                                           with_dx ? buf.dx.data() : nullptr, buf.dw.data(), buf.db.data(),
                                           buf.scratch.data(), g);
    benchmark::DoNotOptimize(buf.dw.data());
    benchmark::ClobberMemory();
  }
  set_gflops(state, (with_dx ? 4 : 2) * macs(g));
}

void im2col(benchmark::State& state) {
  const Conv2dGeometry g = geometry_of(state);
  ConvBuffers buf(g);
  for (auto _ : state) {
    xgrad::kernels::im2col<float>(buf.x.data(), buf.cols.data(), g);
    benchmark::DoNotOptimize(buf.cols.data());
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * g.cols_size() * sizeof(float)));
}

void gemm_of_forward(benchmark::State& state) {
  const Conv2dGeometry g = geometry_of(state);
  ConvBuffers buf(g);
  const std::size_t Og = g.Og(), R = g.R(), L = g.L();
  for (auto _ : state) {
    for (std::size_t grp = 0; grp < g.G; ++grp) {
      xgrad::gemm(false, false, Og, L, R, 1.0f, buf.w.data() + grp * Og * R, buf.cols.data() + grp * R * L, 0.0f,
                  buf.scratch.data() + grp * Og * L);
    }
    benchmark::DoNotOptimize(buf.scratch.data());
    benchmark::ClobberMemory();
  }
  set_gflops(state, 2 * macs(g));
}

void conv_backward(benchmark::State& state) { backward(state, true); }
void conv_backward_no_dx(benchmark::State& state) { backward(state, false); }

// {N, C, H, W, O, K, S, P, G}
void conv_cases(benchmark::internal::Benchmark* b) {
  b->ArgNames({"N", "C", "H", "W", "O", "K", "S", "P", "G"});
  b->Args({64, 3, 64, 64, 24, 5, 2, 2, 1});    // mini AlexNet conv1
  b->Args({64, 24, 15, 15, 64, 5, 1, 2, 2});   // conv2
  b->Args({64, 64, 7, 7, 96, 3, 1, 1, 1});     // conv3
  b->Args({64, 96, 7, 7, 96, 3, 1, 1, 2});     // conv4
  b->Args({64, 96, 7, 7, 64, 3, 1, 1, 2});     // conv5
  b->Args({16, 3, 224, 224, 96, 11, 4, 2, 1}); // AlexNet conv1
  b->Args({16, 96, 27, 27, 256, 5, 1, 2, 2});  // AlexNet conv2
  b->Args({16, 256, 13, 13, 384, 3, 1, 1, 1}); // AlexNet conv3
  b->Args({16, 384, 13, 13, 256, 3, 1, 1, 2}); // AlexNet conv5
  b->Args({64, 1, 28, 28, 32, 3, 1, 1, 1});    // fmnist conv1 (its conv3-5 are mini's)
  b->Args({64, 32, 14, 14, 64, 5, 1, 2, 2});   // fmnist conv2
  b->Unit(benchmark::kMillisecond)->UseRealTime();
}

void maxpool_forward(benchmark::State& state) {
  auto arg = [&state](int i) { return static_cast<std::size_t>(state.range(i)); };
  const auto g = xgrad::MaxPool2dGeometry::make("bench", {arg(0), arg(1), arg(2), arg(3)}, arg(4), arg(5), 0);
  const std::vector<float> x = random_buffer(g.N * g.C * g.H * g.W, 5);
  std::vector<float> y(g.N * g.C * g.OH * g.OW);
  std::vector<std::int32_t> argmax(y.size());
  for (auto _ : state) {
    xgrad::kernels::maxpool2d_forward<float>(x.data(), y.data(), argmax.data(), g);
    benchmark::DoNotOptimize(y.data());
    benchmark::ClobberMemory();
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * x.size()));
}

// Linear's three products at (N, In, Out); op as in the header.
struct LinearProduct {
  bool trans_a, trans_b;
  std::size_t m, n, k;
  float beta;
};

LinearProduct linear_product(std::size_t batch, std::size_t in, std::size_t out, int op) {
  if (op == 0) return {false, true, batch, out, in, 0.0f};
  if (op == 1) return {false, false, batch, in, out, 0.0f};
  return {true, false, out, in, batch, 0.0f};
}

void linear_case(benchmark::State& state, bool openblas) {
  const std::size_t batch = static_cast<std::size_t>(state.range(0)), in = static_cast<std::size_t>(state.range(1)),
                    out = static_cast<std::size_t>(state.range(2));
  const LinearProduct p = linear_product(batch, in, out, static_cast<int>(state.range(3)));
  const std::vector<float> a = random_buffer(p.m * p.k, 6), b = random_buffer(p.k * p.n, 7);
  std::vector<float> c(p.m * p.n, 0.0f);
  constexpr std::size_t kBlock = 256;
  const std::ptrdiff_t blocks = static_cast<std::ptrdiff_t>((p.n + kBlock - 1) / kBlock);
  const std::size_t lda = p.trans_a ? p.m : p.k, ldb = p.trans_b ? p.k : p.n;
  for (auto _ : state) {
    if (openblas) {
#pragma omp parallel for schedule(static)
      for (std::ptrdiff_t i = 0; i < blocks; ++i) {
        const std::size_t first = static_cast<std::size_t>(i) * kBlock, width = std::min(kBlock, p.n - first);
        xgrad::gemm_serial(p.trans_a, p.trans_b, p.m, width, p.k, 1.0f, a.data(), lda,
                           p.trans_b ? b.data() + first * ldb : b.data() + first, ldb, p.beta, c.data() + first, p.n);
      }
    } else {
      xgrad::gemm(p.trans_a, p.trans_b, p.m, p.n, p.k, 1.0f, a.data(), b.data(), p.beta, c.data());
    }
    benchmark::DoNotOptimize(c.data());
    benchmark::ClobberMemory();
  }
  set_gflops(state, 2.0 * static_cast<double>(p.m) * p.n * p.k);
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * in * out * sizeof(float)));
}

void linear_gemm(benchmark::State& state) { linear_case(state, false); }
void linear_gemm_openblas(benchmark::State& state) { linear_case(state, true); }

// AlexNet's FC1 and FC2 at batch 16, each product.
void linear_cases(benchmark::internal::Benchmark* b) {
  b->ArgNames({"N", "In", "Out", "Op"});
  for (int op = 0; op < 3; ++op) {
    b->Args({16, 9216, 4096, op});
    b->Args({16, 4096, 4096, op});
  }
  b->Unit(benchmark::kMillisecond)->UseRealTime();
}

}  // namespace

BENCHMARK(maxpool_forward)
    ->ArgNames({"N", "C", "H", "W", "K", "S"})
    ->Args({128, 32, 28, 28, 3, 2})   // the fmnist preset's first pool
    ->Args({64, 24, 32, 32, 3, 2})    // the mini preset's first pool
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();
BENCHMARK(im2col)->Apply(conv_cases);
BENCHMARK(gemm_of_forward)->Apply(conv_cases);
BENCHMARK(conv_forward)->Apply(conv_cases);
BENCHMARK(conv_backward)->Apply(conv_cases);
BENCHMARK(conv_backward_no_dx)->Apply(conv_cases);
BENCHMARK(linear_gemm)->Apply(linear_cases);
BENCHMARK(linear_gemm_openblas)->Apply(linear_cases);

BENCHMARK_MAIN();
