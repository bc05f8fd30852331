#include <xgrad/data/mnist.hpp>

#include <filesystem>
#include <system_error>

#include <xgrad/core/error.hpp>
#include <xgrad/data/idx.hpp>

namespace xgrad::data {

namespace {

namespace fs = std::filesystem;

// One split of an MNIST-format data set in dir; `hint` says how to get the files.
ImageDataset load_split(const std::string& family, Split split, const std::string& dir, const std::string& hint) {
  const bool train = split == Split::Train;
  const std::string name = family + (train ? "(train)" : "(test)");
  const std::string prefix = train ? "train" : "t10k";
  const std::string images = (fs::path(dir) / (prefix + "-images-idx3-ubyte.gz")).string();
  const std::string labels = (fs::path(dir) / (prefix + "-labels-idx1-ubyte.gz")).string();
  std::error_code ec;
  XGRAD_CHECK(fs::is_directory(dir, ec), name, ": directory ", dir,
              fs::exists(dir, ec) ? " is not a directory" : " does not exist", "; ", hint);
  for (const std::string& file : {images, labels}) {
    XGRAD_CHECK(fs::exists(file, ec), name, ": ", file, " does not exist; ", hint);
  }
  ImageDataset data = load_idx_dataset(name, images, labels, 10);
  XGRAD_CHECK(data.image_shape() == Shape({1, 28, 28}), name, ": images are ", shape_str(data.image_shape()),
              " in ", images, ", expected (1, 28, 28)");
  return data;
}

}  // namespace

ImageDataset fashion_mnist(Split split, const std::string& dir) {
  return load_split("FashionMnist", split, dir,
                    cat("install the data set with: apt-get install dataset-fashion-mnist (it puts the files in ",
                        kFashionMnistDir, ")"));
}

ImageDataset mnist(Split split, const std::string& dir) {
  return load_split("Mnist", split, dir,
                    "the directory must hold MNIST's train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz, "
                    "t10k-images-idx3-ubyte.gz and t10k-labels-idx1-ubyte.gz");
}

const std::vector<std::string>& fashion_mnist_classes() {
  static const std::vector<std::string> names = {"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                                                 "Sandal",      "Shirt",   "Sneaker",  "Bag",   "Ankle boot"};
  return names;
}

}  // namespace xgrad::data
