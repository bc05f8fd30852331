#pragma once
// Transforms: per-example changes to one image (C, H, W), composable, as torchvision's
// Normalize, RandomCrop, RandomHorizontalFlip, RandomErasing and Compose.
//
// Random draws come only from the Rng passed to apply(). The DataLoader seeds a fresh Rng for
// every example from example_seed(seed, epoch, index), so an example's augmentation depends on
// (seed, epoch, sample index) alone: never on threads, workers or which batch it lands in.
//
// requires: apply() is const and touches no shared state: the DataLoader's workers call it
//           on one transform from several threads at once.
// ensures:  apply(image, rng) depends only on the image and the numbers rng gives.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <xgrad/core/rng.hpp>
#include <xgrad/core/tensor.hpp>

namespace xgrad::data {

class Transform {
 public:
  virtual ~Transform() = default;
  // Transforms `image` (C, H, W) in place (it may get a new shape: output_shape(its shape)).
  // Throws xgrad::Error naming the transform when the image does not fit it.
  virtual void apply(Tensor& image, Rng& rng) const = 0;
  // The shape apply() gives an image of shape `input` (C, H, W); throws xgrad::Error naming
  // the transform when such an image does not fit it. The DataLoader checks its dataset's
  // image shape with this before it starts.
  virtual Shape output_shape(const Shape& input) const = 0;
  // For messages and logs, e.g. "RandomCrop(size=28, padding=4)".
  virtual std::string repr() const = 0;
};

// The seed of example `index`'s generator in `epoch`: a mix64 chain, so that nearby epochs
// and indices give unrelated seeds, and (for one seed and epoch) different indices always give
// different seeds.
std::uint64_t example_seed(std::uint64_t seed, std::uint64_t epoch, std::uint64_t index);

// y[c] = (x[c] - mean[c]) / std[c], computed as written (a division, not a reciprocal
// product). mean and std hold one value per channel, or one value for all channels.
class Normalize : public Transform {
 public:
  // Throws xgrad::Error naming Normalize and the value unless every std is finite and > 0 and
  // every mean finite, and neither list is empty.
  Normalize(std::vector<float> mean, std::vector<float> std);
  Normalize(float mean, float std) : Normalize(std::vector<float>{mean}, std::vector<float>{std}) {}

  void apply(Tensor& image, Rng& rng) const override;
  Shape output_shape(const Shape& input) const override;
  std::string repr() const override;

 private:
  std::vector<float> mean_, std_;  // (1) or (C) each
};

// Pads the image with `padding` zeros on each side, then takes a size x size window at a
// random offset (top, then left, each uniform over the positions that fit).
class RandomCrop : public Transform {
 public:
  // Throws xgrad::Error unless size >= 1.
  explicit RandomCrop(std::size_t size, std::size_t padding = 0);

  void apply(Tensor& image, Rng& rng) const override;
  // (C, size, size); xgrad::Error unless size <= H + 2 * padding and size <= W + 2 * padding.
  Shape output_shape(const Shape& input) const override;
  std::string repr() const override;

 private:
  std::size_t size_, padding_;
};

// Mirrors the image left-right with probability p (one uniform draw per image, always made).
class RandomHorizontalFlip : public Transform {
 public:
  // Throws xgrad::Error unless p is in [0, 1].
  explicit RandomHorizontalFlip(double p = 0.5);

  void apply(Tensor& image, Rng& rng) const override;
  Shape output_shape(const Shape& input) const override;
  std::string repr() const override;

 private:
  double p_;
};

// With probability p, sets a random rectangle of every channel to `value`, as torchvision's
// RandomErasing (Zhong et al., 2017): up to 10 tries draw an area (a fraction of H x W,
// uniform in [scale_lo, scale_hi]) and an aspect ratio h / w (log-uniform in [ratio_lo,
// ratio_hi]), round h = sqrt(area * ratio) and w = sqrt(area / ratio), and take the first that
// fits inside the image at a uniform top-left corner; when none fits the image is left as it
// is. Applied after Normalize, value 0 is the data set's mean.
class RandomErasing : public Transform {
 public:
  // Throws xgrad::Error naming RandomErasing and the argument unless p is in [0, 1],
  // 0 < scale_lo <= scale_hi <= 1, 0 < ratio_lo <= ratio_hi (all finite) and value is finite.
  explicit RandomErasing(double p = 0.5, double scale_lo = 0.02, double scale_hi = 0.33, double ratio_lo = 0.3,
                         double ratio_hi = 3.3, float value = 0.0f);

  void apply(Tensor& image, Rng& rng) const override;
  Shape output_shape(const Shape& input) const override;
  std::string repr() const override;

 private:
  double p_, scale_lo_, scale_hi_, ratio_lo_, ratio_hi_;
  float value_;
};

// Applies its transforms in order, all drawing from the one generator.
class Compose : public Transform {
 public:
  // Throws xgrad::Error when an entry is null.
  explicit Compose(std::vector<std::shared_ptr<const Transform>> transforms);

  void apply(Tensor& image, Rng& rng) const override;
  Shape output_shape(const Shape& input) const override;
  std::string repr() const override;

  const std::vector<std::shared_ptr<const Transform>>& transforms() const { return transforms_; }

 private:
  std::vector<std::shared_ptr<const Transform>> transforms_;
};

}  // namespace xgrad::data
