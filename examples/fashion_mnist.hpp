#pragma once
// alexnet_example on Fashion-MNIST (--dataset fashion-mnist): the splits, the augmentation,
// the training loop through data::DataLoader with model selection on a validation split, and
// the evaluation as a confusion matrix.
//
// Splits: a permutation of the 60,000 training images seeded by --seed; its last --val-size
// images are the validation set, the first --train-size of the rest the training set. The
// 10,000 test images (the first --test-size of them) are evaluated once, after training.
// Model selection: after every epoch the validation accuracy is measured; at the end the model
// gets back the weights of the epoch with the best one (the first, on a tie), and those are
// tested. The history's test_accuracy column holds the validation accuracy.
#include <cstddef>
#include <memory>
#include <string>
#include <vector>
#include <xgrad/data/dataset.hpp>
#include <xgrad/data/transforms.hpp>
#include <xgrad/layers/layer.hpp>

#include "examples/report.hpp"

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
// RandomHorizontalFlip(0.5), Normalize(mean, std).
std::shared_ptr<const data::Transform> fashion_mnist_augmentation(std::size_t crop_padding);
// Evaluation: Normalize(mean, std) alone.
std::shared_ptr<const data::Transform> fashion_mnist_normalize();

// The confusion matrix (classes x classes, row = true label, column = prediction, row-major)
// of the model over data's examples `indices`, in eval mode and batches of `batch`; leaves the
// model in training mode.
std::vector<std::size_t> confusion_matrix(Layer& model, const data::Dataset& data,
                                          const std::vector<std::size_t>& indices, std::size_t batch,
                                          std::shared_ptr<const data::Transform> transform);

// The share of a confusion matrix's entries on its diagonal; 0 for an empty one.
double confusion_accuracy(const std::vector<std::size_t>& confusion);

// What training took: seconds of training steps and images trained on.
struct TrainingTotals {
  double seconds = 0.0;
  std::size_t images = 0;
  int best_epoch = 0;
  double best_val_accuracy = 0.0;
};

// Trains `model` on d.train under settings (SGD with momentum and weight decay, the warm-up +
// cosine schedule per step, shuffled by --seed, one background loader worker), augmented by
// fashion_mnist_augmentation(crop_padding), prints one line per epoch with the validation
// accuracy, and leaves the model with the best epoch's weights.
// Returns false (after saying why on stderr) when the loss stopped being finite.
bool train_fashion_mnist(const RunSettings& settings, std::size_t crop_padding, Layer& model,
                         const FashionMnistData& d, std::vector<EpochRecord>& history, TrainingTotals& totals);

}  // namespace xgrad::examples
