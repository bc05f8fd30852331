#pragma once
// Datasets: a Dataset is a number of examples and a way to get any one of them, an image
// tensor (C, H, W) and an int64 label, as torch::data::Dataset. Image data sets keep their
// pixels as uint8 and convert an example to float only when it is asked for, so the whole
// Fashion-MNIST training set costs ~47 MB rather than ~190 MB.
//
// requires: get() may be called from several threads at once (the DataLoader's workers), so an
//           implementation must not change shared state in get().
// ensures:  get(i) depends only on i: the same index gives the same example, bit for bit.
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include <xgrad/core/tensor.hpp>

namespace xgrad::data {

struct Example {
  Tensor image;        // (C, H, W), float
  std::int64_t label;  // in [0, classes)
};

class Dataset {
 public:
  virtual ~Dataset() = default;
  // The number of examples.
  virtual std::size_t size() const = 0;
  // Example `index`; xgrad::Error naming the dataset, the index and the size when
  // index >= size().
  virtual Example get(std::size_t index) const = 0;
  // The shape of every example's image, (C, H, W).
  virtual Shape image_shape() const = 0;
  // Labels are in [0, classes()).
  virtual std::size_t classes() const = 0;
  // For messages, e.g. "FashionMnist(train)".
  virtual std::string name() const = 0;
};

// Examples held in memory as float: images (N, C, H, W) and N labels.
class TensorDataset : public Dataset {
 public:
  // Throws xgrad::Error unless images is 4-D with one label per image, each in [0, classes).
  TensorDataset(Tensor images, std::vector<std::int64_t> labels, std::size_t classes);

  std::size_t size() const override { return labels_.size(); }
  Example get(std::size_t index) const override;
  Shape image_shape() const override;
  std::size_t classes() const override { return classes_; }
  std::string name() const override { return "TensorDataset"; }

  const Tensor& images() const { return images_; }
  const std::vector<std::int64_t>& labels() const { return labels_; }

 private:
  Tensor images_;                     // (N, C, H, W)
  std::vector<std::int64_t> labels_;  // (N)
  std::size_t classes_;
};

// Examples held in memory as uint8 pixels (N, C, H, W), converted per example to
// float pixel / 255 (in [0, 1]); what the IDX data sets (MNIST, Fashion-MNIST) are.
class ImageDataset : public Dataset {
 public:
  // Throws xgrad::Error unless pixels holds N*C*H*W values for image_shape (C, H, W) and
  // labels.size() == N, each label in [0, classes).
  ImageDataset(std::string name, std::vector<std::uint8_t> pixels, Shape image_shape,
               std::vector<std::int64_t> labels, std::size_t classes);

  std::size_t size() const override { return labels_.size(); }
  Example get(std::size_t index) const override;
  Shape image_shape() const override { return image_shape_; }
  std::size_t classes() const override { return classes_; }
  std::string name() const override { return name_; }

  const std::vector<std::uint8_t>& pixels() const { return pixels_; }
  const std::vector<std::int64_t>& labels() const { return labels_; }

 private:
  std::string name_;
  std::vector<std::uint8_t> pixels_;  // (N, C, H, W)
  Shape image_shape_;                 // (C, H, W)
  std::vector<std::int64_t> labels_;  // (N)
  std::size_t classes_;
};

}  // namespace xgrad::data
