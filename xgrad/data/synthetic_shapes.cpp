#include <xgrad/data/synthetic_shapes.hpp>

#include <algorithm>
#include <array>
#include <cmath>

#include <xgrad/core/error.hpp>
#include <xgrad/core/rng.hpp>
#include <xgrad/core/tensor.hpp>
#include <xgrad/core/threading.hpp>

namespace xgrad::data {

namespace {

constexpr double kPi = 3.14159265358979323846;
constexpr double kDeg = kPi / 180.0;

// The first ten families are the default 10-class problem. Squares and triangles come later:
// telling them from discs takes corner detectors at the scale of the whole shape, which the
// mini model learns far more slowly than the rest; so do dot grids, which resemble
// checkerboards.
enum Family : int {
  Grating0,
  Grating60,
  Grating120,
  Rings,
  Checkerboard,
  Spokes,
  RandomWaves,
  Disc,
  Cross,
  RingOutline,
  Square,
  Triangle,
  DotGrid,
  kFamilies
};

const char* const kFamilyNames[kFamilies] = {"grating 0deg", "grating 60deg", "grating 120deg", "rings",
                                             "checkerboard", "spokes",        "random waves",   "disc",
                                             "cross",        "ring outline",  "square",         "triangle",
                                             "dot grid"};

// Everything random about one image, drawn from the sample's own generator.
struct Draw {
  int family;
  double angle;         // orientation of the pattern, radians
  double period;        // texture period, pixels
  double phase;         // texture phase, radians
  double cx, cy;        // centre of a shape, of rings or of spokes, pixels
  double radius;        // shape size, pixels
  double aspect;        // shape stretch along its own u axis
  double contrast;      // texture amplitude in (0, 1]
  int spokes;           // number of spokes
  std::array<double, 6> wave_angle, wave_period, wave_phase;  // random waves
  std::array<double, 3> fg, bg;  // colours in [0, 1]
  double gx, gy;        // brightness gradient across the image
};

double clamp01(double v) { return std::min(1.0, std::max(0.0, v)); }

// Anti-aliased coverage from a signed distance in pixels (negative inside).
double coverage(double d_pixels) { return clamp01(0.5 - d_pixels); }

Draw draw_parameters(std::size_t label, std::size_t side, Rng& rng) {
  Draw d{};
  d.family = static_cast<int>(label % kFamilies);
  // Classes beyond the families: the same family with shifted angles, periods and aspect.
  const std::size_t variant = label / kFamilies;
  const double variant_scale = 1.0 + 0.35 * static_cast<double>(variant % 4);
  const double variant_angle = 23.0 * kDeg * static_cast<double>(variant / 4);
  const double s = static_cast<double>(side);

  const double base_angles[3] = {0.0, 60.0 * kDeg, 120.0 * kDeg};
  if (d.family <= Grating120) {
    d.angle = base_angles[d.family] + variant_angle + rng.uniform(-12.0, 12.0) * kDeg;
  } else {
    d.angle = rng.uniform(0.0, 2.0 * kPi);
  }
  d.period = std::min(s / 3.0, rng.uniform(5.0, 11.0) * s / 64.0 * variant_scale);
  d.phase = rng.uniform(0.0, 2.0 * kPi);
  d.radius = rng.uniform(0.25, 0.38) * s;
  d.aspect = variant_scale;
  const double margin = 0.8 * d.radius;
  d.cx = rng.uniform(margin, s - margin);
  d.cy = rng.uniform(margin, s - margin);
  d.contrast = rng.uniform(0.7, 1.0);
  d.spokes = 4 + static_cast<int>(rng.below(5)) + static_cast<int>(variant % 3);
  for (std::size_t j = 0; j < d.wave_angle.size(); ++j) {
    d.wave_angle[j] = rng.uniform(0.0, kPi);
    d.wave_period[j] = rng.uniform(6.0, 14.0) * s / 64.0 * variant_scale;
    d.wave_phase[j] = rng.uniform(0.0, 2.0 * kPi);
  }

  // Colours independent of the label; resample until foreground and background differ enough
  // for the pattern to be visible.
  for (int attempt = 0; attempt < 100; ++attempt) {
    double dist2 = 0.0;
    for (int c = 0; c < 3; ++c) {
      d.fg[c] = rng.uniform();
      d.bg[c] = rng.uniform();
      dist2 += (d.fg[c] - d.bg[c]) * (d.fg[c] - d.bg[c]);
    }
    if (dist2 >= 0.45 * 0.45) break;
  }
  d.gx = rng.uniform(-0.2, 0.2);
  d.gy = rng.uniform(-0.2, 0.2);
  return d;
}

// Pattern value in [0, 1] at pixel centre (x, y): 0 is background, 1 foreground.
double pattern(const Draw& d, double x, double y) {
  const double ca = std::cos(d.angle), sa = std::sin(d.angle);
  auto texture = [&](double m) { return 0.5 + d.contrast * (m - 0.5); };
  switch (d.family) {
    case Grating0:
    case Grating60:
    case Grating120: {
      const double t = x * ca + y * sa;
      return texture(0.5 + 0.5 * std::sin(2.0 * kPi * t / d.period + d.phase));
    }
    case Rings: {
      const double r = std::hypot(x - d.cx, y - d.cy);
      return texture(0.5 + 0.5 * std::sin(2.0 * kPi * r / d.period + d.phase));
    }
    case Checkerboard: {
      const double u = x * ca + y * sa, v = -x * sa + y * ca;
      const double p = std::sin(2.0 * kPi * u / d.period + d.phase) * std::sin(2.0 * kPi * v / d.period);
      return texture(0.5 + 0.5 * std::tanh(3.0 * p));
    }
    case Spokes: {
      const double a = std::atan2(y - d.cy, x - d.cx);
      return texture(0.5 + 0.5 * std::sin(d.spokes * a + d.phase));
    }
    case RandomWaves: {
      // Six plane waves of random direction and period: an aperiodic, isotropic texture.
      double sum = 0.0;
      for (std::size_t j = 0; j < d.wave_angle.size(); ++j) {
        const double t = x * std::cos(d.wave_angle[j]) + y * std::sin(d.wave_angle[j]);
        sum += std::sin(2.0 * kPi * t / d.wave_period[j] + d.wave_phase[j]);
      }
      return texture(0.5 + 0.5 * std::tanh(sum / std::sqrt(3.0)));
    }
    case DotGrid: {
      const double u = x * ca + y * sa, v = -x * sa + y * ca;
      const double du = u - d.period * std::round(u / d.period), dv = v - d.period * std::round(v / d.period);
      return texture(coverage(std::hypot(du, dv) - 0.28 * d.period));
    }
    default:
      break;
  }
  // Shapes: local coordinates in units of the radius, rotated and stretched.
  const double dx = x - d.cx, dy = y - d.cy;
  const double u = (dx * ca + dy * sa) / (d.radius * d.aspect), v = (-dx * sa + dy * ca) / d.radius;
  double dist = 0.0;  // signed distance in radius units
  switch (d.family) {
    case Disc:
      dist = std::hypot(u, v) - 1.0;
      break;
    case Square:
      dist = std::max(std::abs(u), std::abs(v)) - 0.85;
      break;
    case Triangle: {
      // Equilateral, circumradius 1.25: three half-planes with outward normals at 270, 30, 150 deg.
      const double h = 0.625;
      const double c30 = std::cos(30.0 * kDeg), s30 = 0.5;
      dist = std::max({-v - h, c30 * u + s30 * v - h, -c30 * u + s30 * v - h});
      break;
    }
    case Cross: {
      const double w = 0.3;
      dist = std::min(std::max(std::abs(u) - 1.0, std::abs(v) - w), std::max(std::abs(u) - w, std::abs(v) - 1.0));
      break;
    }
    case RingOutline:
      dist = std::abs(std::hypot(u, v) - 0.8) - 0.2;
      break;
    default:
      break;
  }
  return coverage(dist * d.radius);
}

std::uint64_t sample_seed(std::uint64_t seed, std::size_t index) {
  // Distinct, well-mixed seeds per (seed, index); Rng runs them through splitmix64.
  return seed * 0x9E3779B97F4A7C15ull + static_cast<std::uint64_t>(index) * 0xD1B54A32D192ED03ull + 0x5851F42D4C957F2Dull;
}

// The uint8 code of a standardised value, and back.
constexpr double kCodeScale = 16.0, kCodeZero = 128.0;
std::uint8_t encode(double v) {
  return static_cast<std::uint8_t>(std::clamp(std::lround(v * kCodeScale + kCodeZero), 0L, 255L));
}
double decode(std::uint8_t q) { return (static_cast<double>(q) - kCodeZero) / kCodeScale; }

}  // namespace

std::size_t SyntheticShapes::family_count() { return kFamilies; }

std::string SyntheticShapes::class_name(std::size_t label) {
  std::string name = kFamilyNames[label % kFamilies];
  if (label >= kFamilies) name += " (variant " + std::to_string(label / kFamilies) + ")";
  return name;
}

SyntheticShapes::SyntheticShapes(std::size_t samples, std::size_t side, std::size_t classes, std::uint64_t seed)
    : side_(side), classes_(classes) {
  XGRAD_CHECK(samples > 0, "SyntheticShapes: samples must be > 0");
  XGRAD_CHECK(classes > 0, "SyntheticShapes: classes must be > 0");
  XGRAD_CHECK(side >= 8, "SyntheticShapes: side must be >= 8, got ", side);
  detail::checked_product("SyntheticShapes", "an image 3 x side x side", {3, side, side});
  const std::size_t plane = side * side;
  const auto total = checked_numel({samples, 3, side, side});
  XGRAD_CHECK(total.has_value(), "SyntheticShapes: ", samples, " images of 3 x ", side, " x ", side,
              " is more elements than size_t holds");
  // Per-sample, per-channel sums of the decoded values for the normalisation, reduced serially
  // afterwards so the statistics do not depend on the thread count.
  std::vector<double> sums, squares;
  detail::naming_allocation_failure("SyntheticShapes", [&] {
    pixels_.resize(*total);
    labels_.resize(samples);
    sums.resize(samples * 3);
    squares.resize(samples * 3);
  });

  const auto n = static_cast<std::ptrdiff_t>(samples);
  // Each sample is written by one thread from its own generator: results are thread-count independent.
  ParallelErrors errors;  // each thread's image buffer may fail to allocate
#pragma omp parallel
  {
    std::vector<double> img;
    const bool ready = errors.run([&] { img.resize(3 * plane); });
#pragma omp for schedule(static)
    for (std::ptrdiff_t si = 0; si < n; ++si) {
      if (!ready) continue;  // rethrown after the region
      const auto i = static_cast<std::size_t>(si);
      const std::size_t label = i % classes;
      labels_[i] = static_cast<std::int64_t>(label);
      Rng rng(sample_seed(seed, i));
      const Draw d = draw_parameters(label, side, rng);
      double image_mean[3] = {0, 0, 0};
      for (std::size_t y = 0; y < side; ++y) {
        for (std::size_t x = 0; x < side; ++x) {
          const double px = static_cast<double>(x) + 0.5, py = static_cast<double>(y) + 0.5;
          const double m = pattern(d, px, py);
          const double shade = d.gx * (px / side - 0.5) + d.gy * (py / side - 0.5);
          for (int c = 0; c < 3; ++c) {
            const double v = d.bg[c] + m * (d.fg[c] - d.bg[c]) + shade + rng.normal(0.0, 0.08);
            img[c * plane + y * side + x] = v;
            image_mean[c] += v;
          }
        }
      }
      // Per-image standardisation: remove the image's mean colour, scale to unit variance.
      double image_var = 0.0;
      for (int c = 0; c < 3; ++c) {
        image_mean[c] /= static_cast<double>(plane);
        for (std::size_t p = 0; p < plane; ++p) {
          const double v = img[c * plane + p] - image_mean[c];
          image_var += v * v;
        }
      }
      const double inv = 1.0 / std::sqrt(image_var / static_cast<double>(3 * plane) + 1e-6);
      std::uint8_t* out = pixels_.data() + i * 3 * plane;
      for (int c = 0; c < 3; ++c) {
        double sum = 0.0, sq = 0.0;
        for (std::size_t p = 0; p < plane; ++p) {
          const std::uint8_t q = encode((img[c * plane + p] - image_mean[c]) * inv);
          out[c * plane + p] = q;
          const double v = decode(q);
          sum += v;
          sq += v * v;
        }
        sums[i * 3 + c] = sum;
        squares[i * 3 + c] = sq;
      }
    }
  }
  detail::naming_allocation_failure("SyntheticShapes", [&] { errors.rethrow(); });
  const double count = static_cast<double>(samples * plane);
  for (int c = 0; c < 3; ++c) {
    double s = 0.0, q = 0.0;
    for (std::size_t i = 0; i < samples; ++i) {
      s += sums[i * 3 + c];
      q += squares[i * 3 + c];
    }
    const double mu = s / count;
    const double var = std::max(q / count - mu * mu, 1e-12);
    mean_[c] = static_cast<float>(mu);
    inv_std_[c] = static_cast<float>(1.0 / std::sqrt(var));
  }
}

Example SyntheticShapes::get(std::size_t index) const {
  XGRAD_CHECK(index < size(), name(), ": index ", index, " is out of range for ", size(), " examples");
  const std::size_t plane = side_ * side_;
  Tensor image = empty({3, side_, side_}, "SyntheticShapes");
  const std::uint8_t* src = pixels_.data() + index * 3 * plane;
  float* dst = image.data();
  for (std::size_t c = 0; c < 3; ++c) {
    const float mean = mean_[c], inv_std = inv_std_[c];
    for (std::size_t p = 0; p < plane; ++p) {
      dst[c * plane + p] = (static_cast<float>(decode(src[c * plane + p])) - mean) * inv_std;
    }
  }
  return {std::move(image), labels_[index]};
}

}  // namespace xgrad::data
