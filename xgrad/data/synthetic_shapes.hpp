#pragma once
// SyntheticShapes: a generated image-classification data set (3 x side x side colour images) for
// trying models without downloading anything. Every class is a family of spatial patterns
// (textures: oriented gratings, concentric rings, checkerboards, radial spokes, random waves,
// dot grids; shapes: disc, cross, ring outline, square, triangle) drawn with random position,
// rotation jitter, scale, phase and period. Foreground and background colours are drawn
// independently of the class and pixel noise is added; then each image is standardised (its
// mean colour removed, scaled to unit variance). Colour says nothing about the label: a model
// has to learn spatial structure.
//
// Storage: the standardised images are kept as uint8 (value * 16 + 128, so steps of 1/16 over
// -8 to +7.9 standard deviations, clamped beyond: a small bright shape on a dark background
// reaches +7), 12 KB per 64 x 64 image rather than 48 KB.
// get() decodes an image and applies the data set's per-channel normalisation (measured over
// the decoded images), so the examples have zero mean and unit variance per channel.
//
// Example i has label i % classes and depends only on (seed, i): the data set is the same at
// every thread count. Draw training and test sets from different seeds.
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include <xgrad/data/dataset.hpp>

namespace xgrad::data {

class SyntheticShapes : public Dataset {
 public:
  // Generates `samples` images of 3 x side x side in parallel (OpenMP).
  // Throws xgrad::Error naming SyntheticShapes when samples or classes is 0, side < 8, or the
  // size overflows.
  SyntheticShapes(std::size_t samples, std::size_t side, std::size_t classes, std::uint64_t seed);

  std::size_t size() const override { return labels_.size(); }
  Example get(std::size_t index) const override;
  Shape image_shape() const override { return {3, side_, side_}; }
  std::size_t classes() const override { return classes_; }
  std::string name() const override { return "SyntheticShapes"; }

  // The number of distinct pattern families. Classes beyond it reuse the families with other
  // parameters (angle offsets, periods, aspect ratios): those classes are harder to tell apart
  // and exist so that 1000-class models can run.
  static std::size_t family_count();
  // The family a class is drawn from, e.g. "grating 0deg", "disc".
  static std::string class_name(std::size_t label);

  const std::vector<std::int64_t>& labels() const { return labels_; }

 private:
  std::size_t side_, classes_;
  std::vector<std::uint8_t> pixels_;  // (N, 3, side, side), encoded
  std::vector<std::int64_t> labels_;  // (N)
  float mean_[3], inv_std_[3];        // the per-channel normalisation of the decoded images
};

}  // namespace xgrad::data
