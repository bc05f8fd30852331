#include "examples/fashion_mnist.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <xgrad/xgrad.hpp>

namespace xgrad::examples {

namespace {

using Clock = std::chrono::steady_clock;

// The epoch's training order: d.train shuffled by (seed, epoch), as the DataLoader's own
// shuffle would do over the whole set.
data::Sampler shuffled(std::vector<std::size_t> indices, std::uint64_t seed) {
  return [indices = std::move(indices), seed](std::uint64_t epoch) {
    const std::vector<std::size_t> perm = epoch_permutation(indices.size(), seed, epoch);
    std::vector<std::size_t> order(perm.size());
    for (std::size_t i = 0; i < perm.size(); ++i) order[i] = indices[perm[i]];
    return order;
  };
}

// The parameter values of the best epoch so far.
struct BestWeights {
  std::vector<Tensor> values;
  int epoch = 0;
  double accuracy = -1.0;

  void keep(Layer& model, int e, double a) {
    values.clear();
    for (const auto& p : model.parameters()) values.push_back(p.variable.value());
    epoch = e;
    accuracy = a;
  }
  void restore(Layer& model) const {
    std::size_t i = 0;
    for (const auto& p : model.parameters()) {
      Variable v = p.variable;
      std::copy(values[i].begin(), values[i].end(), v.value().begin());
      ++i;
    }
  }
};

}  // namespace

double confusion_accuracy(const std::vector<std::size_t>& confusion) {
  const auto k = static_cast<std::size_t>(std::lround(std::sqrt(static_cast<double>(confusion.size()))));
  std::size_t correct = 0, total = 0;
  for (std::size_t i = 0; i < k; ++i) {
    for (std::size_t j = 0; j < k; ++j) total += confusion[i * k + j];
    correct += confusion[i * k + i];
  }
  return total == 0 ? 0.0 : static_cast<double>(correct) / static_cast<double>(total);
}

namespace {

// One epoch's running sums.
struct EpochSums {
  double loss = 0.0, seconds = 0.0;
  std::size_t correct = 0, seen = 0;
};

}  // namespace

FashionMnistData load_fashion_mnist(const std::string& dir, std::size_t val_size, std::size_t train_size,
                                    std::size_t test_size, std::uint64_t seed) {
  FashionMnistData d{
      data::fashion_mnist(data::Split::Train, dir), data::fashion_mnist(data::Split::Test, dir), {}, {}, {}};
  const std::size_t n = d.train_set.size();
  XGRAD_CHECK(val_size < n, "--val-size (", val_size, ") must leave training images: there are ", n);
  const std::vector<std::size_t> perm = epoch_permutation(n, seed * 2 + 4000037, 0);
  d.val.assign(perm.end() - static_cast<std::ptrdiff_t>(val_size), perm.end());
  d.train.assign(perm.begin(), perm.begin() + static_cast<std::ptrdiff_t>(std::min(train_size, n - val_size)));
  d.test.resize(std::min(test_size, d.test_set.size()));
  for (std::size_t i = 0; i < d.test.size(); ++i) d.test[i] = i;
  return d;
}

std::shared_ptr<const data::Transform> fashion_mnist_augmentation(std::size_t crop_padding) {
  std::vector<std::shared_ptr<const data::Transform>> steps;
  if (crop_padding > 0) steps.push_back(std::make_shared<data::RandomCrop>(28, crop_padding));
  steps.push_back(std::make_shared<data::RandomHorizontalFlip>(0.5));
  steps.push_back(fashion_mnist_normalize());
  return std::make_shared<data::Compose>(std::move(steps));
}

std::shared_ptr<const data::Transform> fashion_mnist_normalize() {
  return std::make_shared<data::Normalize>(kFashionMnistMean, kFashionMnistStd);
}

std::vector<std::size_t> confusion_matrix(Layer& model, const data::Dataset& data,
                                          const std::vector<std::size_t>& indices, std::size_t batch,
                                          std::shared_ptr<const data::Transform> transform) {
  const std::size_t k = data.classes();
  std::vector<std::size_t> confusion(k * k, 0);
  model.eval();
  {
    NoGradGuard no_grad;
    data::DataLoader loader(
        data, data::DataLoaderOptions(batch).workers(1).sampler([indices](std::uint64_t) { return indices; }),
        std::move(transform));
    auto epoch = loader.epoch(0);
    while (auto b = epoch.next()) {
      const Variable logits = model(Variable(std::move(b->images)));
      const std::size_t cols = logits.shape()[1];
      for (std::size_t j = 0; j < b->labels.size(); ++j) {
        const float* row = logits.value().data() + j * cols;
        const auto predicted = static_cast<std::size_t>(std::max_element(row, row + cols) - row);
        ++confusion[static_cast<std::size_t>(b->labels[j]) * k + predicted];
      }
    }
  }
  model.train();
  return confusion;
}

bool train_fashion_mnist(const RunSettings& s, std::size_t crop_padding, Layer& model, const FashionMnistData& d,
                         std::vector<EpochRecord>& history, TrainingTotals& totals) {
  const auto seed = static_cast<std::uint64_t>(s.seed) * 2 + 5000011;
  const data::DataLoader loader(d.train_set,
                                data::DataLoaderOptions(static_cast<std::size_t>(s.batch_size))
                                    .seed(seed)
                                    .workers(1)
                                    .sampler(shuffled(d.train, seed)),
                                fashion_mnist_augmentation(crop_padding));
  const std::size_t total_steps = loader.batches_per_epoch() * static_cast<std::size_t>(s.epochs);
  optim::SGD opt(model.parameters(), optim::SGDOptions(s.lr).momentum(s.momentum).weight_decay(s.weight_decay));
  optim::WarmupCosineLR schedule(opt, std::max<std::size_t>(total_steps, 1));
  CrossEntropyLoss loss_fn;
  BestWeights best;
  for (int epoch = 1; epoch <= s.epochs; ++epoch) {
    EpochSums sums;
    model.train();
    auto batches = loader.epoch(static_cast<std::uint64_t>(epoch - 1));
    while (auto b = batches.next()) {
      const auto t0 = Clock::now();
      opt.zero_grad();
      const Variable logits = model(Variable(std::move(b->images)));
      Variable loss = loss_fn(logits, b->labels);
      const double loss_value = loss.value()();
      if (!std::isfinite(loss_value)) {
        std::fprintf(stderr,
                     "alexnet_example: training diverged: the loss is %g at epoch %d, step %zu; try a smaller "
                     "--lr (now %g)\n",
                     loss_value, epoch, batches.batches_taken(), s.lr);
        return false;
      }
      loss.backward();
      opt.step();
      schedule.step();
      sums.seconds += std::chrono::duration<double>(Clock::now() - t0).count();
      sums.loss += loss_value * static_cast<double>(b->labels.size());
      sums.correct += count_correct(logits.value(), b->labels);
      sums.seen += b->labels.size();
    }
    const double val = confusion_accuracy(confusion_matrix(model, d.train_set, d.val, 500, fashion_mnist_normalize()));
    history.push_back({epoch, sums.loss / static_cast<double>(sums.seen),
                       static_cast<double>(sums.correct) / static_cast<double>(sums.seen), val, sums.seconds});
    totals.seconds += sums.seconds;
    totals.images += sums.seen;
    std::printf("epoch %d/%lld  loss %.4f  train acc %5.1f%%  val acc %5.2f%%  %.1f s  %.0f img/s\n", epoch, s.epochs,
                history.back().train_loss, 100 * history.back().train_accuracy, 100 * val, sums.seconds,
                static_cast<double>(sums.seen) / sums.seconds);
    std::fflush(stdout);
    if (val > best.accuracy) best.keep(model, epoch, val);
  }
  if (best.epoch > 0) {
    best.restore(model);
    totals.best_epoch = best.epoch;
    totals.best_val_accuracy = best.accuracy;
  }
  return true;
}

}  // namespace xgrad::examples
