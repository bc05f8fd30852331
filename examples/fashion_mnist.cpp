#include "examples/fashion_mnist.hpp"

#include <algorithm>

#include <xgrad/core/error.hpp>
#include <xgrad/core/rng.hpp>
#include <xgrad/data/mnist.hpp>

namespace xgrad::examples {

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

std::shared_ptr<const data::Transform> fashion_mnist_augmentation(std::size_t crop_padding, double erasing) {
  std::vector<std::shared_ptr<const data::Transform>> steps;
  if (crop_padding > 0) steps.push_back(std::make_shared<data::RandomCrop>(28, crop_padding));
  steps.push_back(std::make_shared<data::RandomHorizontalFlip>(0.5));
  steps.push_back(fashion_mnist_normalize());
  if (erasing > 0.0) steps.push_back(std::make_shared<data::RandomErasing>(erasing));
  return std::make_shared<data::Compose>(std::move(steps));
}

std::shared_ptr<const data::Transform> fashion_mnist_normalize() {
  return std::make_shared<data::Normalize>(kFashionMnistMean, kFashionMnistStd);
}

}  // namespace xgrad::examples
