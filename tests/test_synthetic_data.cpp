// The synthetic pattern dataset of the AlexNet example: shapes, balance, determinism (per seed
// and across thread counts), normalisation, and colour carrying no label information.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include <boost/test/unit_test.hpp>

#include <xgrad/xgrad.hpp>

using namespace xgrad;
using xgrad::data::SyntheticShapes;

namespace {

// Every example of a SyntheticShapes, as one tensor (S, 3, side, side) and the labels.
struct Dataset {
  Tensor images;
  std::vector<std::int64_t> labels;
};

Dataset make_synthetic_dataset(std::size_t samples, std::size_t side, std::size_t classes, std::uint64_t seed) {
  const SyntheticShapes set(samples, side, classes, seed);
  Dataset d{empty({samples, 3, side, side}), {}};
  const std::size_t per = 3 * side * side;
  for (std::size_t i = 0; i < samples; ++i) {
    const data::Example e = set.get(i);
    std::copy(e.image.begin(), e.image.end(), d.images.data() + i * per);
    d.labels.push_back(e.label);
  }
  BOOST_TEST(d.labels == set.labels());
  return d;
}

bool identical(const Dataset& a, const Dataset& b) {
  return a.labels == b.labels && a.images.shape() == b.images.shape() &&
         std::memcmp(a.images.data(), b.images.data(), a.images.size() * sizeof(float)) == 0;
}
}  // namespace

BOOST_AUTO_TEST_CASE(shapes_and_balanced_labels) {
  const Dataset d = make_synthetic_dataset(103, 32, 10, 7);
  BOOST_TEST((Shape(d.images.shape().begin(), d.images.shape().end()) == Shape{103, 3, 32, 32}));
  BOOST_REQUIRE_EQUAL(d.labels.size(), 103u);
  std::vector<int> counts(10, 0);
  for (auto label : d.labels) {
    BOOST_REQUIRE(label >= 0 && label < 10);
    ++counts[static_cast<std::size_t>(label)];
  }
  for (int c : counts) BOOST_TEST((c == 10 || c == 11));
  for (float v : d.images) BOOST_REQUIRE(std::isfinite(v));
}

BOOST_AUTO_TEST_CASE(deterministic_per_seed_and_thread_count) {
  set_num_threads(1);
  const Dataset one = make_synthetic_dataset(40, 24, 10, 42);
  set_num_threads(2);
  const Dataset two = make_synthetic_dataset(40, 24, 10, 42);
  const Dataset again = make_synthetic_dataset(40, 24, 10, 42);
  BOOST_TEST(identical(one, two));
  BOOST_TEST(identical(two, again));
}

BOOST_AUTO_TEST_CASE(different_seeds_differ) {
  const Dataset a = make_synthetic_dataset(20, 24, 10, 1);
  const Dataset b = make_synthetic_dataset(20, 24, 10, 2);
  BOOST_TEST(a.labels == b.labels);  // labels follow the index
  std::size_t same = 0;
  for (std::size_t i = 0; i < a.images.size(); ++i) same += a.images.data()[i] == b.images.data()[i];
  BOOST_TEST(same < a.images.size() / 100);
}

BOOST_AUTO_TEST_CASE(normalised_per_channel) {
  const Dataset d = make_synthetic_dataset(200, 32, 10, 3);
  const std::size_t plane = 32 * 32;
  for (std::size_t c = 0; c < 3; ++c) {
    double s = 0, q = 0;
    for (std::size_t i = 0; i < 200; ++i) {
      const float* p = d.images.data() + (i * 3 + c) * plane;
      for (std::size_t j = 0; j < plane; ++j) {
        s += p[j];
        q += double(p[j]) * p[j];
      }
    }
    const double n = 200.0 * plane, mean = s / n, var = q / n - mean * mean;
    BOOST_TEST(std::abs(mean) < 1e-3);
    BOOST_TEST(std::abs(var - 1.0) < 1e-3);
  }
}

// Colours are drawn independently of the class and each image's mean colour is removed:
// no image's mean colour carries information, and the per-class average of the images'
// colour contrast (per-channel spread) is the same for every class.
BOOST_AUTO_TEST_CASE(colour_does_not_reveal_the_class) {
  const std::size_t classes = 10, per_class = 80, side = 24, plane = side * side;
  const Dataset d = make_synthetic_dataset(classes * per_class, side, classes, 11);
  std::vector<double> class_spread(classes * 3, 0.0);
  for (std::size_t i = 0; i < d.labels.size(); ++i) {
    for (std::size_t c = 0; c < 3; ++c) {
      double s = 0, q = 0;
      const float* p = d.images.data() + (i * 3 + c) * plane;
      for (std::size_t j = 0; j < plane; ++j) {
        s += p[j];
        q += double(p[j]) * p[j];
      }
      BOOST_REQUIRE_SMALL(s / plane, 1e-2);
      class_spread[static_cast<std::size_t>(d.labels[i]) * 3 + c] += std::sqrt(q / plane) / per_class;
    }
  }
  // Per-channel spreads average about 0.95 with a per-class standard error near 0.05.
  for (double v : class_spread) BOOST_TEST(std::abs(v - 0.95) < 0.12);
}

BOOST_AUTO_TEST_CASE(many_classes_and_errors) {
  BOOST_TEST(SyntheticShapes::family_count() >= 10u);
  const Dataset d = make_synthetic_dataset(30, 16, 1000, 5);
  BOOST_TEST(d.labels[29] == 29);
  BOOST_TEST(SyntheticShapes::class_name(0) != SyntheticShapes::class_name(1));
  BOOST_CHECK_THROW(make_synthetic_dataset(0, 16, 10, 1), Error);
  BOOST_CHECK_THROW(make_synthetic_dataset(10, 4, 10, 1), Error);
  BOOST_CHECK_THROW(make_synthetic_dataset(10, 16, 0, 1), Error);
}

// The images are kept as uint8 codes: each channel of an example takes at most 256 values, an
// index past the end is an error naming the data set, and the shape is what image_shape() says.
BOOST_AUTO_TEST_CASE(kept_as_bytes_and_indexed_safely) {
  const SyntheticShapes set(12, 16, 10, 4);
  BOOST_TEST((set.image_shape() == Shape{3, 16, 16}));
  BOOST_TEST(set.classes() == 10u);
  for (std::size_t i = 0; i < set.size(); ++i) {
    const data::Example e = set.get(i);
    BOOST_TEST((Shape(e.image.shape().begin(), e.image.shape().end()) == Shape{3, 16, 16}));
    for (std::size_t c = 0; c < 3; ++c) {
      std::vector<float> values(e.image.data() + c * 256, e.image.data() + (c + 1) * 256);
      std::sort(values.begin(), values.end());
      const auto distinct = static_cast<std::size_t>(std::unique(values.begin(), values.end()) - values.begin());
      BOOST_TEST(distinct <= 256u);
      BOOST_TEST(distinct >= 8u);  // a pattern with noise, not a constant
    }
  }
  BOOST_CHECK_EXCEPTION(set.get(12), Error, [](const Error& e) {
    const std::string m = e.what();
    return m.find("SyntheticShapes") != std::string::npos && m.find("12") != std::string::npos;
  });
  BOOST_CHECK_THROW(SyntheticShapes(std::size_t{1} << 62, 64, 10, 1), Error);
}
