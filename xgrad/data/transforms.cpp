#include <xgrad/data/transforms.hpp>

#include <algorithm>
#include <cmath>
#include <utility>

#include <xgrad/core/error.hpp>

// Dimension key: C = channels, H, W = height, width of the input image; S = crop size,
// P = padding. Images are contiguous row-major (C, H, W); the loops use raw pointers.

namespace xgrad::data {

namespace {

Shape shape_of(const Tensor& image) { return Shape(image.shape().begin(), image.shape().end()); }

void check_image(const Transform& t, const Shape& input) {
  XGRAD_CHECK(input.size() == 3, t.repr(), ": the image must be (C, H, W), got ", shape_str(input));
}

std::string list_str(const std::vector<float>& values) {
  std::string out = "[";
  for (std::size_t i = 0; i < values.size(); ++i) out += cat(i ? ", " : "", values[i]);
  return out + "]";
}

}  // namespace

std::uint64_t example_seed(std::uint64_t seed, std::uint64_t epoch, std::uint64_t index) {
  // The constant keeps seed 0 away from mix64's fixed point 0; each step is a bijection of
  // its last input, so for one (seed, epoch) distinct indices give distinct seeds.
  std::uint64_t h = mix64(seed ^ 0x243F6A8885A308D3ull);
  h = mix64(h ^ epoch);
  return mix64(h ^ index);
}

// Normalize

Normalize::Normalize(std::vector<float> mean, std::vector<float> std) : mean_(std::move(mean)), std_(std::move(std)) {
  XGRAD_CHECK(!mean_.empty() && !std_.empty(), "Normalize: mean and std need at least one value each, got ",
              mean_.size(), " and ", std_.size());
  for (std::size_t c = 0; c < mean_.size(); ++c) {
    XGRAD_CHECK(std::isfinite(mean_[c]), "Normalize: mean[", c, "] must be finite, got ", mean_[c]);
  }
  for (std::size_t c = 0; c < std_.size(); ++c) {
    XGRAD_CHECK(std::isfinite(std_[c]) && std_[c] > 0.0f, "Normalize: std[", c, "] must be finite and > 0, got ",
                std_[c]);
  }
}

Shape Normalize::output_shape(const Shape& input) const {
  check_image(*this, input);
  const std::size_t C = input[0];
  XGRAD_CHECK((mean_.size() == 1 || mean_.size() == C) && (std_.size() == 1 || std_.size() == C), repr(),
              ": needs 1 or ", C, " values of mean and std for an image ", shape_str(input), ", got ", mean_.size(),
              " and ", std_.size());
  return input;
}

void Normalize::apply(Tensor& image, Rng&) const {
  const Shape shape = output_shape(shape_of(image));
  const std::size_t C = shape[0], HW = shape[1] * shape[2];
  float* x = image.data();
  for (std::size_t c = 0; c < C; ++c) {
    const float m = mean_[mean_.size() == 1 ? 0 : c], s = std_[std_.size() == 1 ? 0 : c];
    float* plane = x + c * HW;
    for (std::size_t i = 0; i < HW; ++i) plane[i] = (plane[i] - m) / s;
  }
}

std::string Normalize::repr() const { return cat("Normalize(mean=", list_str(mean_), ", std=", list_str(std_), ")"); }

// RandomCrop

RandomCrop::RandomCrop(std::size_t size, std::size_t padding) : size_(size), padding_(padding) {
  XGRAD_CHECK(size >= 1, "RandomCrop: size must be >= 1, got ", size);
}

Shape RandomCrop::output_shape(const Shape& input) const {
  check_image(*this, input);
  const std::string who = repr();
  // The padded image and the crop are checked, never wrapped.
  const std::size_t Hp = detail::checked_sum(who.c_str(), "the padded height H + 2 * padding", {input[1], padding_, padding_});
  const std::size_t Wp = detail::checked_sum(who.c_str(), "the padded width W + 2 * padding", {input[2], padding_, padding_});
  XGRAD_CHECK(size_ <= Hp && size_ <= Wp, who, ": a ", size_, " x ",
              size_, " window does not fit an image ", shape_str(input), " padded by ", padding_);
  detail::checked_elements(who.c_str(), "the crop", {input[0], size_, size_});
  return {input[0], size_, size_};
}

void RandomCrop::apply(Tensor& image, Rng& rng) const {
  const Shape in = shape_of(image);
  const Shape out = output_shape(in);
  const std::size_t C = in[0], H = in[1], W = in[2], S = size_, P = padding_;
  // The window's top-left corner in padded coordinates, in [0, H + 2P - S] x [0, W + 2P - S].
  const std::size_t top = rng.below(H + 2 * P - S + 1), left = rng.below(W + 2 * P - S + 1);
  Tensor cropped = zeros(out, "RandomCrop");
  const float* x = image.data();
  float* y = cropped.data();
  // Output row r reads input row top + r - P, columns [left - P, left - P + S) clipped to [0, W).
  const std::size_t c0 = std::max(left, P), c1 = std::min(left + S, W + P);  // padded columns kept
  for (std::size_t c = 0; c < C; ++c) {
    for (std::size_t r = 0; r < S; ++r) {
      const std::size_t row = top + r;  // padded row
      if (row < P || row >= H + P || c0 >= c1) continue;
      const float* src = x + (c * H + (row - P)) * W + (c0 - P);
      std::copy(src, src + (c1 - c0), y + (c * S + r) * S + (c0 - left));
    }
  }
  image = std::move(cropped);
}

std::string RandomCrop::repr() const { return cat("RandomCrop(size=", size_, ", padding=", padding_, ")"); }

// RandomHorizontalFlip

RandomHorizontalFlip::RandomHorizontalFlip(double p) : p_(p) {
  XGRAD_CHECK(p >= 0.0 && p <= 1.0, "RandomHorizontalFlip: p must be in [0, 1], got ", p);
}

Shape RandomHorizontalFlip::output_shape(const Shape& input) const {
  check_image(*this, input);
  return input;
}

void RandomHorizontalFlip::apply(Tensor& image, Rng& rng) const {
  const Shape shape = output_shape(shape_of(image));
  if (!(rng.uniform() < p_)) return;
  const std::size_t rows = shape[0] * shape[1], W = shape[2];
  float* x = image.data();
  for (std::size_t r = 0; r < rows; ++r) std::reverse(x + r * W, x + (r + 1) * W);
}

std::string RandomHorizontalFlip::repr() const { return cat("RandomHorizontalFlip(p=", p_, ")"); }

// RandomErasing

RandomErasing::RandomErasing(double p, double scale_lo, double scale_hi, double ratio_lo, double ratio_hi,
                             float value)
    : p_(p), scale_lo_(scale_lo), scale_hi_(scale_hi), ratio_lo_(ratio_lo), ratio_hi_(ratio_hi), value_(value) {
  XGRAD_CHECK(p >= 0.0 && p <= 1.0, "RandomErasing: p must be in [0, 1], got ", p);
  XGRAD_CHECK(std::isfinite(scale_lo) && std::isfinite(scale_hi) && scale_lo > 0.0 && scale_lo <= scale_hi &&
                  scale_hi <= 1.0,
              "RandomErasing: scale must satisfy 0 < scale_lo <= scale_hi <= 1, got (", scale_lo, ", ", scale_hi,
              ")");
  XGRAD_CHECK(std::isfinite(ratio_lo) && std::isfinite(ratio_hi) && ratio_lo > 0.0 && ratio_lo <= ratio_hi,
              "RandomErasing: ratio must satisfy 0 < ratio_lo <= ratio_hi, both finite, got (", ratio_lo, ", ",
              ratio_hi, ")");
  XGRAD_CHECK(std::isfinite(value), "RandomErasing: value must be finite, got ", value);
}

Shape RandomErasing::output_shape(const Shape& input) const {
  check_image(*this, input);
  return input;
}

void RandomErasing::apply(Tensor& image, Rng& rng) const {
  const Shape shape = output_shape(shape_of(image));
  if (!(rng.uniform() < p_)) return;
  const std::size_t C = shape[0], H = shape[1], W = shape[2];
  const double area = static_cast<double>(H) * static_cast<double>(W);
  const double log_lo = std::log(ratio_lo_), log_hi = std::log(ratio_hi_);
  for (int attempt = 0; attempt < 10; ++attempt) {
    const double target = area * rng.uniform(scale_lo_, scale_hi_);
    const double ratio = std::exp(rng.uniform(log_lo, log_hi));
    const double h = std::round(std::sqrt(target * ratio)), w = std::round(std::sqrt(target / ratio));
    if (!(h >= 1.0 && w >= 1.0 && h < static_cast<double>(H) && w < static_cast<double>(W))) continue;
    const std::size_t eh = static_cast<std::size_t>(h), ew = static_cast<std::size_t>(w);
    const std::size_t top = rng.below(H - eh + 1), left = rng.below(W - ew + 1);
    float* x = image.data();
    for (std::size_t c = 0; c < C; ++c)
      for (std::size_t r = top; r < top + eh; ++r) std::fill_n(x + (c * H + r) * W + left, ew, value_);
    return;
  }
}

std::string RandomErasing::repr() const {
  return cat("RandomErasing(p=", p_, ", scale=(", scale_lo_, ", ", scale_hi_, "), ratio=(", ratio_lo_, ", ",
             ratio_hi_, "), value=", value_, ")");
}

// Compose

Compose::Compose(std::vector<std::shared_ptr<const Transform>> transforms) : transforms_(std::move(transforms)) {
  for (std::size_t i = 0; i < transforms_.size(); ++i) {
    XGRAD_CHECK(transforms_[i] != nullptr, "Compose: transform ", i, " is null");
  }
}

Shape Compose::output_shape(const Shape& input) const {
  Shape shape = input;
  for (const auto& t : transforms_) shape = t->output_shape(shape);
  return shape;
}

void Compose::apply(Tensor& image, Rng& rng) const {
  for (const auto& t : transforms_) t->apply(image, rng);
}

std::string Compose::repr() const {
  std::string out = "Compose(";
  for (std::size_t i = 0; i < transforms_.size(); ++i) out += (i ? ", " : "") + transforms_[i]->repr();
  return out + ")";
}

}  // namespace xgrad::data
