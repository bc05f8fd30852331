// One training step of the AlexNet presets: forward, CrossEntropyLoss, backward and an SGD
// step (momentum 0.9, weight decay 5e-4), on a fixed random batch, in real time; and the
// machine's GEMM peak, measured in the same program and run, to express steps as a share of it.
//
//   sgemm_peak/2048             OpenBLAS sgemm 2048^3 through xgrad's gemm (its threading)
//   train_step/mini/64          the "mini" preset, 3x64x64 inputs, 10 classes, batch 64
//   train_step_no_lrn/mini/64   the same model with its LocalResponseNorm layers left out
//   train_step/alexnet/16       the "alexnet" preset, 3x224x224 inputs, 1000 classes, batch 16
//
// Counters of the steps: gflop, the step's floating-point work counted from the layer shapes
// (forward, weight gradient, and input gradient except for the first layer, of every
// convolution and Linear: 2 FLOP per multiply-add; the rest is left out), and efficiency,
// gflop / step time / the sgemm peak measured at the start of the same run; page_faults, the
// minor page faults per step once warmed up (memory newly taken from the OS), and
// warmup_steps, the steps that took (see train_step).
// Freed memory is retained (xgrad::retain_freed_memory, as in alexnet_example) unless
// --system_malloc is given.
//
// The same step in PyTorch (the comparison the README reports, same machine and threads):
//   /usr/bin/python3 bench/peers/torch_train_step.py mini 64 [--threads 2] [--no-lrn]
//   /usr/bin/python3 bench/peers/torch_train_step.py alexnet 16
// Threads: 2 unless XGRAD_THREADS says otherwise.
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include <benchmark/benchmark.h>

#include "examples/models.hpp"
#include <xgrad/core/blas.hpp>
#include <xgrad/layers/cross_entropy_loss.hpp>
#include <xgrad/xgrad.hpp>

namespace {

using namespace xgrad;

// The model of a preset, without its LocalResponseNorm layers when lrn is false.
std::shared_ptr<Sequential> make_model(const std::string& preset, std::size_t classes, bool lrn) {
  auto model = examples::make_alexnet_model(preset, classes);
  if (lrn) return model;
  auto without = std::make_shared<Sequential>();
  for (const auto& child : model->named_children()) {
    if (dynamic_cast<LocalResponseNorm*>(child.layer.get()) == nullptr) without->add(child.name, child.layer);
  }
  return without;
}

// FLOP of one training step (see the top of the file), from the shapes one forward pass sees.
double step_flop(Sequential& model, const Variable& input) {
  NoGradGuard no_grad;
  Variable x = input;
  double flop = 0.0;
  bool first = true;
  for (const auto& child : model.children()) {
    const Shape in = x.shape();
    x = (*child)(x);
    const Shape out = x.shape();
    double macs = 0.0;
    if (auto* conv = dynamic_cast<Conv2d*>(child.get())) {
      const auto& o = conv->options();
      macs = static_cast<double>(out[0] * out[1] * out[2] * out[3]) *
             static_cast<double>(o.in_channels() / o.groups() * o.kernel_size() * o.kernel_size());
    } else if (dynamic_cast<Linear*>(child.get()) != nullptr) {
      macs = static_cast<double>(in[0]) * static_cast<double>(in[1]) * static_cast<double>(out[1]);
    } else {
      continue;
    }
    flop += 2.0 * macs * (first ? 2.0 : 3.0);  // forward + weight gradient (+ input gradient)
    first = false;
  }
  return flop;
}

// sgemm 2048^3 in FLOP/s: the median of 7 timed calls after a warm-up.
double measure_sgemm_peak() {
  const std::size_t n = 2048;
  std::vector<float> a(n * n, 0.5f), b(n * n, 0.25f), c(n * n);
  xgrad::gemm(false, false, n, n, n, 1.0f, a.data(), b.data(), 0.0f, c.data());
  std::vector<double> rates;
  for (int i = 0; i < 7; ++i) {
    const auto t0 = std::chrono::steady_clock::now();
    xgrad::gemm(false, false, n, n, n, 1.0f, a.data(), b.data(), 0.0f, c.data());
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    rates.push_back(2.0 * static_cast<double>(n * n * n) / s);
  }
  std::nth_element(rates.begin(), rates.begin() + 3, rates.end());
  return rates[3];
}

double g_sgemm_peak = 0.0;  // FLOP/s, measured by main before the steps run

void sgemm_peak(benchmark::State& state) {
  const auto n = static_cast<std::size_t>(state.range(0));
  std::vector<float> a(n * n, 0.5f), b(n * n, 0.25f), c(n * n);
  for (auto _ : state) {
    xgrad::gemm(false, false, n, n, n, 1.0f, a.data(), b.data(), 0.0f, c.data());
    benchmark::DoNotOptimize(c.data());
    benchmark::ClobberMemory();
  }
  state.counters["GFLOP/s"] = benchmark::Counter(2e-9 * static_cast<double>(n * n * n),
                                                 benchmark::Counter::kIsIterationInvariantRate);
}

// Minor page faults of the process so far (each a page the OS maps in on first touch).
long minor_faults() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return usage.ru_minflt;
}

void train_step(benchmark::State& state, const std::string& preset, std::size_t batch, std::size_t classes, bool lrn) {
  manual_seed(0);
  auto model = make_model(preset, classes, lrn);
  const std::size_t side = examples::input_side(preset);
  Rng rng(1);
  Tensor x = empty({batch, 3, side, side});
  rng.fill_normal(x, 0.0, 1.0);
  std::vector<std::int64_t> labels(batch);
  for (auto& l : labels) l = static_cast<std::int64_t>(rng.below(classes));
  optim::SGD opt(model->parameters(), optim::SGDOptions(0.01).momentum(0.9).weight_decay(5e-4));
  CrossEntropyLoss loss_fn;
  const Variable input(x);
  const double flop = step_flop(*model, input);
  auto step = [&] {
    opt.zero_grad();
    Variable loss = loss_fn((*model)(input), labels);
    loss.backward();
    opt.step();
    return loss.value()();
  };
  // Warm-up: first-touch allocations, momentum buffers, and the heap's layout. malloc may still
  // grow the heap in the second to fourth step (a block larger than any hole the earlier steps
  // left; measured on AlexNet with the Winograd convolutions), after which the steps reuse the
  // same memory. So at least two steps, then until three steps in a row took no new pages
  // (at most kMaxWarmup); `warmup_steps` reports how many it took.
  constexpr int kMaxWarmup = 20;
  int warmup = 0, settled = 0;
  while (warmup < kMaxWarmup && (warmup < 2 || settled < 3)) {
    const long before = minor_faults();
    step();
    ++warmup;
    settled = minor_faults() == before ? settled + 1 : 0;
  }
  state.counters["warmup_steps"] = warmup;
  const long faults_before = minor_faults();
  for (auto _ : state) benchmark::DoNotOptimize(step());
  // Memory taken from the operating system in the steady state: minor page faults per step.
  state.counters["page_faults"] = benchmark::Counter(static_cast<double>(minor_faults() - faults_before),
                                                     benchmark::Counter::kAvgIterations);
  state.counters["images_per_s"] =
      benchmark::Counter(static_cast<double>(batch), benchmark::Counter::kIsIterationInvariantRate);
  state.counters["gflop"] = flop * 1e-9;
  if (g_sgemm_peak > 0) {
    state.counters["efficiency"] = benchmark::Counter(flop / g_sgemm_peak, benchmark::Counter::kIsIterationInvariantRate);
  }
}

}  // namespace

int main(int argc, char** argv) {
  const char* env = std::getenv("XGRAD_THREADS");
  xgrad::set_num_threads(env ? std::max(1, std::atoi(env)) : 2);
  const xgrad::BlasKernels& kernels = xgrad::blas_kernels();
  std::printf("OpenBLAS kernels: %s (%s)\n", kernels.core.c_str(), kernels.note.c_str());
  // --system_malloc leaves glibc's malloc settings as they are (to measure what retaining freed
  // memory saves); by default the steps run as alexnet_example's do, with it retained.
  bool system_malloc = false;
  for (int i = 1; i < argc; ++i) {
    if (std::string(argv[i]) == "--system_malloc") {
      system_malloc = true;
      for (int j = i; j + 1 < argc; ++j) argv[j] = argv[j + 1];
      --argc;
      break;
    }
  }
  if (system_malloc) {
    std::printf("malloc: the system's settings (--system_malloc)\n");
  } else {
    const xgrad::MemoryRetention r = xgrad::retain_freed_memory();
    if (r.applied) std::printf("malloc: freed memory retained, blocks up to %zu MiB\n", r.largest_reused_block >> 20);
    else std::printf("malloc: freed memory not retained: %s\n", r.reason.c_str());
  }
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  g_sgemm_peak = measure_sgemm_peak();
  std::printf("sgemm 2048^3 peak for the efficiency counters: %.1f GFLOP/s\n", g_sgemm_peak * 1e-9);
  benchmark::RegisterBenchmark("sgemm_peak/2048", sgemm_peak)->Arg(2048)->Unit(benchmark::kMillisecond)->UseRealTime();
  benchmark::RegisterBenchmark("train_step/mini/64", train_step, std::string("mini"), std::size_t(64), std::size_t(10),
                               true)
      ->Unit(benchmark::kMillisecond)
      ->UseRealTime()
      ->MinTime(3.0);
  benchmark::RegisterBenchmark("train_step_no_lrn/mini/64", train_step, std::string("mini"), std::size_t(64),
                               std::size_t(10), false)
      ->Unit(benchmark::kMillisecond)
      ->UseRealTime()
      ->MinTime(3.0);
  benchmark::RegisterBenchmark("train_step/alexnet/16", train_step, std::string("alexnet"), std::size_t(16),
                               std::size_t(1000), true)
      ->Unit(benchmark::kMillisecond)
      ->UseRealTime()
      ->Iterations(5);
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
