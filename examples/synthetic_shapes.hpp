#pragma once
// A synthetic image-classification dataset for the AlexNet example: every class is a family of
// spatial patterns (textures: oriented gratings, concentric rings, checkerboards, radial
// spokes, random waves, dot grids; shapes: disc, cross, ring outline, square, triangle) drawn
// with random position, rotation jitter, scale, phase and period. Foreground and background
// colours are drawn independently of the class and pixel noise is added; then each image is
// standardised (its mean colour removed, scaled to unit variance). Colour says nothing about
// the label: a model has to learn spatial structure.
//
// S = samples, side = image height and width.
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include <xgrad/core/tensor.hpp>

namespace xgrad::examples {

struct Dataset {
  Tensor images;                     // (S, 3, side, side), zero mean / unit variance per channel
  std::vector<std::int64_t> labels;  // (S), in [0, classes)
};

// The number of distinct pattern families. Classes beyond it reuse the families with other
// parameters (angle offsets, periods, aspect ratios): those classes are harder to tell apart
// and exist so that 1000-class models can run.
std::size_t synthetic_family_count();
// The family a class is drawn from, e.g. "grating 0deg", "disc".
std::string synthetic_class_name(std::size_t label);

// Labels are balanced: sample i has label i % classes. Sample i depends only on (seed, i),
// so the result is identical at every thread count; draw train and test sets from
// different seeds. Generation is parallel over samples (OpenMP).
// Throws xgrad::Error when samples, side or classes is 0, or side < 8.
Dataset make_synthetic_dataset(std::size_t samples, std::size_t side, std::size_t classes, std::uint64_t seed);

// Copies the samples order[first, first + count) into one batch: images (count, 3, side, side)
// and labels (count).
void gather(const Dataset& data, const std::vector<std::size_t>& order, std::size_t first, std::size_t count,
            Tensor& images, std::vector<std::int64_t>& labels);

}  // namespace xgrad::examples
