// One training step of the AlexNet presets: forward, CrossEntropyLoss, backward and an SGD
// step (momentum 0.9, weight decay 5e-4), on a fixed random batch, in real time.
//
//   train_step/mini/64       the "mini" preset, 3x64x64 inputs, 10 classes, batch 64
//   train_step/alexnet/16    the "alexnet" preset, 3x224x224 inputs, 1000 classes, batch 16
//
// The same step in PyTorch (the comparison the README reports, same machine and threads):
//   python3 torch_alexnet_step.py mini 64      python3 torch_alexnet_step.py alexnet 16
// Threads: 2 unless XGRAD_THREADS says otherwise.
#include <cstdlib>
#include <string>
#include <vector>

#include <benchmark/benchmark.h>

#include "examples/models.hpp"
#include <xgrad/layers/cross_entropy_loss.hpp>
#include <xgrad/xgrad.hpp>

namespace {

using namespace xgrad;

void train_step(benchmark::State& state, const std::string& preset, std::size_t batch, std::size_t classes) {
  manual_seed(0);
  auto model = examples::make_alexnet_model(preset, classes);
  const std::size_t side = examples::input_side(preset);
  Rng rng(1);
  Tensor x = empty({batch, 3, side, side});
  rng.fill_normal(x, 0.0, 1.0);
  std::vector<std::int64_t> labels(batch);
  for (auto& l : labels) l = static_cast<std::int64_t>(rng.below(classes));
  optim::SGD opt(model->parameters(), optim::SGDOptions(0.01).momentum(0.9).weight_decay(5e-4));
  CrossEntropyLoss loss_fn;
  const Variable input(x);
  auto step = [&] {
    opt.zero_grad();
    Variable loss = loss_fn((*model)(input), labels);
    loss.backward();
    opt.step();
    return loss.value()();
  };
  step();  // warm-up: first-touch allocations, momentum buffers
  for (auto _ : state) benchmark::DoNotOptimize(step());
  state.counters["images_per_s"] =
      benchmark::Counter(static_cast<double>(batch), benchmark::Counter::kIsIterationInvariantRate);
}

}  // namespace

int main(int argc, char** argv) {
  const char* env = std::getenv("XGRAD_THREADS");
  xgrad::set_num_threads(env ? std::max(1, std::atoi(env)) : 2);
  benchmark::RegisterBenchmark("train_step/mini/64", train_step, std::string("mini"), std::size_t(64), std::size_t(10))
      ->Unit(benchmark::kMillisecond)
      ->UseRealTime()
      ->MinTime(3.0);
  benchmark::RegisterBenchmark("train_step/alexnet/16", train_step, std::string("alexnet"), std::size_t(16),
                               std::size_t(1000))
      ->Unit(benchmark::kMillisecond)
      ->UseRealTime()
      ->Iterations(5);
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
