#pragma once
// MNIST and Fashion-MNIST: 28x28 grey images in 10 classes, 60,000 for training and 10,000
// for testing, as the four gzipped IDX files of their distributions:
//   train-images-idx3-ubyte.gz  train-labels-idx1-ubyte.gz
//   t10k-images-idx3-ubyte.gz   t10k-labels-idx1-ubyte.gz
// Debian's dataset-fashion-mnist package installs Fashion-MNIST's in kFashionMnistDir
// (apt-get install dataset-fashion-mnist); Debian ships no MNIST package, so mnist() takes the
// directory that holds them.
//
// ensures: an ImageDataset of images (1, 28, 28) kept as uint8 (the training set costs ~47 MB)
//          and labels in [0, 10), named "FashionMnist(train)", "Mnist(test)", ...; a missing
//          directory or file is an xgrad::Error that names it and says how to get it.
#include <string>
#include <vector>

#include <xgrad/data/dataset.hpp>

namespace xgrad::data {

enum class Split { Train, Test };

inline constexpr const char* kFashionMnistDir = "/usr/share/datasets/fashion-mnist";

ImageDataset fashion_mnist(Split split, const std::string& dir = kFashionMnistDir);
ImageDataset mnist(Split split, const std::string& dir);

// Fashion-MNIST's class names, by label: "T-shirt/top", "Trouser", ..., "Ankle boot".
const std::vector<std::string>& fashion_mnist_classes();

}  // namespace xgrad::data
