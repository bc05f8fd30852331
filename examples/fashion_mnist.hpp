#pragma once
// alexnet_example on Fashion-MNIST (--dataset fashion-mnist): the splits and the augmentation.
//
// Splits: a permutation of the 60,000 training images seeded by --seed; its last --val-size
// images are the validation set, the first --train-size of the rest the training set. The
// 10,000 test images (the first --test-size of them) are evaluated once, after training.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <xgrad/data/dataset.hpp>
#include <xgrad/data/transforms.hpp>

namespace xgrad::examples {

// Fashion-MNIST's pixel mean and standard deviation (of the training set, pixels in [0, 1]).
constexpr float kFashionMnistMean = 0.2860f;
constexpr float kFashionMnistStd = 0.3530f;

struct FashionMnistData {
  data::ImageDataset train_set, test_set;  // all 60,000 and 10,000 images
  std::vector<std::size_t> train, val;     // indices into train_set
  std::vector<std::size_t> test;           // indices into test_set
};

// Reads the four IDX files in dir and carves the splits (see the top of this file); train_size
// and test_size are clamped to what there is.
// Throws xgrad::Error when a file is missing or corrupt, or val_size leaves no training image.
FashionMnistData load_fashion_mnist(const std::string& dir, std::size_t val_size, std::size_t train_size,
                                    std::size_t test_size, std::uint64_t seed);

// Training: RandomCrop(28, crop_padding) (left out when crop_padding is 0),
// RandomHorizontalFlip(0.5), Normalize(mean, std), RandomErasing(erasing) (left out when
// erasing is 0).
std::shared_ptr<const data::Transform> fashion_mnist_augmentation(std::size_t crop_padding, double erasing = 0.0);
// Evaluation: Normalize(mean, std) alone.
std::shared_ptr<const data::Transform> fashion_mnist_normalize();

}  // namespace xgrad::examples
