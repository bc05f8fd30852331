#include <xgrad/data/dataset.hpp>

#include <algorithm>

#include <xgrad/core/error.hpp>

namespace xgrad::data {

namespace {

void check_labels(const std::string& who, const std::vector<std::int64_t>& labels, std::size_t classes) {
  XGRAD_CHECK(classes >= 1, who, ": classes must be >= 1, got ", classes);
  for (std::size_t i = 0; i < labels.size(); ++i) {
    XGRAD_CHECK(labels[i] >= 0 && static_cast<std::size_t>(labels[i]) < classes, who, ": label ", i, " is ",
                labels[i], ", outside [0, ", classes, ")");
  }
}

void check_index(const Dataset& data, std::size_t index) {
  XGRAD_CHECK(index < data.size(), data.name(), ": index ", index, " is out of range for ", data.size(), " examples");
}

}  // namespace

TensorDataset::TensorDataset(Tensor images, std::vector<std::int64_t> labels, std::size_t classes)
    : images_(std::move(images)), labels_(std::move(labels)), classes_(classes) {
  XGRAD_CHECK(images_.dimension() == 4, "TensorDataset: images must be (N, C, H, W), got ", shape_str(images_.shape()));
  detail::checked_elements("TensorDataset", "the images", Shape(images_.shape().begin(), images_.shape().end()));
  XGRAD_CHECK(images_.shape()[0] == labels_.size(), "TensorDataset: ", labels_.size(), " labels for images ",
              shape_str(images_.shape()));
  check_labels("TensorDataset", labels_, classes_);
}

Shape TensorDataset::image_shape() const { return {images_.shape()[1], images_.shape()[2], images_.shape()[3]}; }

Example TensorDataset::get(std::size_t index) const {
  check_index(*this, index);
  const Shape shape = image_shape();
  const std::size_t count = numel(shape);
  Tensor image = empty(shape, "TensorDataset");
  const float* src = images_.data() + index * count;
  std::copy(src, src + count, image.data());
  return {std::move(image), labels_[index]};
}

ImageDataset::ImageDataset(std::string name, std::vector<std::uint8_t> pixels, Shape image_shape,
                           std::vector<std::int64_t> labels, std::size_t classes)
    : name_(std::move(name)),
      pixels_(std::move(pixels)),
      image_shape_(std::move(image_shape)),
      labels_(std::move(labels)),
      classes_(classes) {
  XGRAD_CHECK(image_shape_.size() == 3, name_, ": image shape must be (C, H, W), got ", shape_str(image_shape_));
  // The count of pixels the labels need is checked, never wrapped.
  const std::size_t per_image = detail::checked_elements(name_.c_str(), "an image of shape", image_shape_);
  const std::size_t needed = detail::checked_product(name_.c_str(), "the pixels of all images", {labels_.size(), per_image});
  XGRAD_CHECK(pixels_.size() == needed, name_, ": ", pixels_.size(), " pixels for ",
              labels_.size(), " images of ", shape_str(image_shape_));
  check_labels(name_, labels_, classes_);
}

Example ImageDataset::get(std::size_t index) const {
  check_index(*this, index);
  const std::size_t count = numel(image_shape_);
  Tensor image = empty(image_shape_, name_.c_str());
  const std::uint8_t* src = pixels_.data() + index * count;
  float* dst = image.data();
  for (std::size_t i = 0; i < count; ++i) dst[i] = static_cast<float>(src[i]) * (1.0f / 255.0f);
  return {std::move(image), labels_[index]};
}

}  // namespace xgrad::data
