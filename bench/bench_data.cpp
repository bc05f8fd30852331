// The DataLoader's throughput in images/s (counter items_per_second, real time).
//
//   loader_epoch/W        one epoch of a synthetic ImageDataset of 60,000 28x28 uint8 images
//                         (Fashion-MNIST's size), shuffled, RandomCrop(28, 4) +
//                         RandomHorizontalFlip + Normalize, batch 256, W worker threads; the
//                         caller only takes the batches (no training step), so this is the
//                         loader's ceiling, and with W > 0 the calling thread idles.
//   gather_epoch          the same epoch without a transform, W = 0: fetch, convert and copy.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include <benchmark/benchmark.h>

#include <xgrad/core/rng.hpp>
#include <xgrad/data/data_loader.hpp>
#include <xgrad/data/dataset.hpp>
#include <xgrad/data/transforms.hpp>

namespace {

using namespace xgrad::data;

const ImageDataset& synthetic_images() {
  static const ImageDataset data = [] {
    const std::size_t n = 60000, side = 28;
    xgrad::Rng rng(1);
    std::vector<std::uint8_t> pixels(n * side * side);
    for (auto& p : pixels) p = static_cast<std::uint8_t>(rng.next_u64() >> 56);
    std::vector<std::int64_t> labels(n);
    for (std::size_t i = 0; i < n; ++i) labels[i] = static_cast<std::int64_t>(i % 10);
    return ImageDataset("Synthetic60k", std::move(pixels), {1, side, side}, std::move(labels), 10);
  }();
  return data;
}

void run_epochs(benchmark::State& state, const DataLoader& loader) {
  std::uint64_t epoch = 0;
  std::size_t images = 0;
  for (auto _ : state) {
    for (const Batch& batch : loader.epoch(epoch++)) {
      benchmark::DoNotOptimize(batch.images.data());
      images += batch.labels.size();
    }
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(images));
}

void loader_epoch(benchmark::State& state) {
  const auto transform = std::make_shared<Compose>(std::vector<std::shared_ptr<const Transform>>{
      std::make_shared<RandomCrop>(28, 4), std::make_shared<RandomHorizontalFlip>(),
      std::make_shared<Normalize>(0.2860f, 0.3530f)});
  const DataLoader loader(synthetic_images(),
                          DataLoaderOptions(256).shuffle(true).seed(1).workers(static_cast<std::size_t>(state.range(0))),
                          transform);
  run_epochs(state, loader);
}
BENCHMARK(loader_epoch)->Arg(0)->Arg(1)->Arg(2)->Unit(benchmark::kMillisecond)->UseRealTime();

void gather_epoch(benchmark::State& state) {
  const DataLoader loader(synthetic_images(), DataLoaderOptions(256).shuffle(true).seed(1));
  run_epochs(state, loader);
}
BENCHMARK(gather_epoch)->Unit(benchmark::kMillisecond)->UseRealTime();

}  // namespace

BENCHMARK_MAIN();
