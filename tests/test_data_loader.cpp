// data/transforms and data/data_loader: transform properties, batches that do not depend on
// the number of workers, epoch order, early stop, worker errors, the sampler hook, bad options.
#include <boost/test/data/monomorphic.hpp>
#include <boost/test/data/test_case.hpp>
#include <boost/test/unit_test.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstring>
#include <map>
#include <memory>
#include <numeric>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <xgrad/core/rng.hpp>
#include <xgrad/data/data_loader.hpp>
#include <xgrad/data/dataset.hpp>
#include <xgrad/data/transforms.hpp>
#include <xgrad/distributed/sampler.hpp>
#include "tests/test_util.hpp"

namespace bdata = boost::unit_test::data;
using namespace xgrad;
using namespace xgrad::data;
using xgrad::test::mentions;
using xgrad::test::message_has;
using xgrad::test::random_tensor;

namespace {

// n random images (C, H, W) of uint8 pixels, labels i % 10.
ImageDataset random_images(std::size_t n, std::size_t C, std::size_t H, std::size_t W, std::uint64_t seed = 1) {
  Rng rng(seed);
  std::vector<std::uint8_t> pixels(n * C * H * W);
  for (auto& p : pixels) p = static_cast<std::uint8_t>(rng.below(256));
  std::vector<std::int64_t> labels(n);
  for (std::size_t i = 0; i < n; ++i) labels[i] = static_cast<std::int64_t>(i % 10);
  return ImageDataset("RandomImages", std::move(pixels), {C, H, W}, std::move(labels), 10);
}

// Wraps a dataset: counts get() calls, and throws on one index (if any).
class ProbeDataset : public Dataset {
 public:
  explicit ProbeDataset(const Dataset& inner, std::size_t bad_index = SIZE_MAX, bool xgrad_error = false)
      : inner_(inner), bad_(bad_index), xgrad_error_(xgrad_error) {}
  std::size_t size() const override { return inner_.size(); }
  Example get(std::size_t index) const override {
    gets.fetch_add(1);
    if (index == bad_) {
      if (xgrad_error_) throw Error("ProbeDataset: record is corrupt");
      throw std::runtime_error("bad record");
    }
    return inner_.get(index);
  }
  Shape image_shape() const override { return inner_.image_shape(); }
  std::size_t classes() const override { return inner_.classes(); }
  std::string name() const override { return "ProbeDataset"; }

  mutable std::atomic<std::size_t> gets{0};

 private:
  const Dataset& inner_;
  std::size_t bad_;
  bool xgrad_error_;
};

// Claims (1, 6, 6) images but gives (1, 5, 5) ones.
class WrongShapeDataset : public Dataset {
 public:
  std::size_t size() const override { return 4; }
  Example get(std::size_t) const override { return {zeros({1, 5, 5}), 0}; }
  Shape image_shape() const override { return {1, 6, 6}; }
  std::size_t classes() const override { return 1; }
  std::string name() const override { return "WrongShapeDataset"; }
};

std::shared_ptr<const Transform> augmentation(std::size_t size, std::size_t padding) {
  return std::make_shared<Compose>(std::vector<std::shared_ptr<const Transform>>{
      std::make_shared<RandomCrop>(size, padding), std::make_shared<RandomHorizontalFlip>(),
      std::make_shared<Normalize>(std::vector<float>{0.5f, 0.4f, 0.3f}, std::vector<float>{0.25f, 0.2f, 0.3f})});
}

std::vector<Batch> all_batches(DataLoader::Epoch epoch) {
  std::vector<Batch> out;
  while (auto batch = epoch.next()) out.push_back(std::move(*batch));
  return out;
}

bool same_bits(const Tensor& a, const Tensor& b) {
  return a.shape() == b.shape() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

void apply_with_seed(const Transform& t, Tensor& image, std::uint64_t seed) {
  Rng rng(seed);
  t.apply(image, rng);
}

}  // namespace

BOOST_AUTO_TEST_SUITE(transforms)

BOOST_AUTO_TEST_CASE(random_crop_keeps_the_size_and_without_padding_at_full_size_is_the_identity) {
  const Tensor image = random_tensor({3, 9, 7}, 1);
  const RandomCrop crop(5, 2);
  BOOST_TEST(crop.output_shape({3, 9, 7}) == Shape({3, 5, 5}));
  for (std::uint64_t seed = 0; seed < 20; ++seed) {
    Tensor x = image;
    apply_with_seed(crop, x, seed);
    BOOST_TEST(shape_str(x.shape()) == "(3, 5, 5)");
  }
  const Tensor square = random_tensor({2, 6, 6}, 2);
  for (std::uint64_t seed = 0; seed < 5; ++seed) {
    Tensor x = square;
    apply_with_seed(RandomCrop(6, 0), x, seed);
    BOOST_TEST(same_bits(x, square));
  }
}

BOOST_AUTO_TEST_CASE(random_crop_is_a_window_of_the_zero_padded_image) {
  // Against a plain reference: pad, then read the window at the offsets the generator gives
  // (top, then left, as documented).
  const std::size_t C = 2, H = 5, W = 7, S = 6, P = 3;
  const Tensor image = random_tensor({C, H, W}, 3, 0.5, 1.0);  // no zeros of its own
  Tensor padded = zeros({C, H + 2 * P, W + 2 * P});
  for (std::size_t c = 0; c < C; ++c)
    for (std::size_t y = 0; y < H; ++y)
      for (std::size_t x = 0; x < W; ++x) padded(c, y + P, x + P) = image(c, y, x);
  std::set<std::pair<std::size_t, std::size_t>> offsets;
  for (std::uint64_t seed = 0; seed < 1000; ++seed) {
    Rng draws(seed);
    const std::size_t top = draws.below(H + 2 * P - S + 1), left = draws.below(W + 2 * P - S + 1);
    offsets.insert({top, left});
    Tensor got = image;
    apply_with_seed(RandomCrop(S, P), got, seed);
    Tensor want = empty({C, S, S});
    for (std::size_t c = 0; c < C; ++c)
      for (std::size_t y = 0; y < S; ++y)
        for (std::size_t x = 0; x < S; ++x) want(c, y, x) = padded(c, top + y, left + x);
    BOOST_TEST(same_bits(got, want), "seed " << seed << ", offset (" << top << ", " << left << ")");
  }
  // Every offset is reachable: (H + 2P - S + 1) * (W + 2P - S + 1) = 6 * 8.
  BOOST_TEST(offsets.size() == 48u);
}

BOOST_AUTO_TEST_CASE(flipping_twice_is_the_identity_and_once_mirrors_each_row) {
  const Tensor image = random_tensor({3, 4, 5}, 4);
  const RandomHorizontalFlip always(1.0), never(0.0);
  Tensor x = image;
  apply_with_seed(always, x, 1);
  for (std::size_t c = 0; c < 3; ++c)
    for (std::size_t y = 0; y < 4; ++y)
      for (std::size_t w = 0; w < 5; ++w) BOOST_TEST(x(c, y, w) == image(c, y, 4 - w));
  apply_with_seed(always, x, 2);
  BOOST_TEST(same_bits(x, image));
  apply_with_seed(never, x, 3);
  BOOST_TEST(same_bits(x, image));
  // p = 0.5 flips about half the images.
  int flipped = 0;
  for (std::uint64_t seed = 0; seed < 400; ++seed) {
    Tensor y = image;
    apply_with_seed(RandomHorizontalFlip(0.5), y, seed);
    flipped += !same_bits(y, image);
  }
  BOOST_TEST(flipped > 150);
  BOOST_TEST(flipped < 250);
}

// Every erasure is one rectangle, the same in every channel, set to the value and nothing else
// changed; its area is within the scale range (up to the rounding of its sides); p = 0 never
// erases, p = 1 nearly always (some tries may all fail), p = 0.5 about half the time; the same
// seed erases the same rectangle.
BOOST_AUTO_TEST_CASE(random_erasing_sets_one_rectangle_in_every_channel) {
  const std::size_t C = 2, H = 28, W = 28;
  const Tensor image = random_tensor({C, H, W}, 7);  // values in [-1, 1], never the value 7
  const RandomErasing always(1.0, 0.02, 0.33, 0.3, 3.3, 7.0f);
  int erased = 0;
  double fraction_sum = 0.0;
  for (std::uint64_t seed = 0; seed < 300; ++seed) {
    Tensor x = image;
    apply_with_seed(always, x, seed);
    Tensor again = image;
    apply_with_seed(always, again, seed);
    BOOST_TEST(same_bits(x, again));
    std::size_t top = H, bottom = 0, left = W, right = 0, count = 0;
    for (std::size_t h = 0; h < H; ++h)
      for (std::size_t w = 0; w < W; ++w)
        if (x(0, h, w) != image(0, h, w)) {
          top = std::min(top, h), bottom = std::max(bottom, h + 1);
          left = std::min(left, w), right = std::max(right, w + 1);
          ++count;
        }
    if (count == 0) {
      BOOST_TEST(same_bits(x, image), "seed " << seed);
      continue;
    }
    ++erased;
    BOOST_TEST(count == (bottom - top) * (right - left), "seed " << seed << ": not a rectangle");
    std::size_t wrong = 0;
    for (std::size_t c = 0; c < C; ++c)
      for (std::size_t h = 0; h < H; ++h)
        for (std::size_t w = 0; w < W; ++w) {
          const bool inside = h >= top && h < bottom && w >= left && w < right;
          wrong += inside ? x(c, h, w) != 7.0f : x(c, h, w) != image(c, h, w);
        }
    BOOST_TEST(wrong == 0u, "seed " << seed);
    const double fraction = static_cast<double>(count) / (H * W);
    BOOST_TEST(fraction >= 0.01);
    BOOST_TEST(fraction <= 0.40);
    fraction_sum += fraction;
  }
  BOOST_TEST(erased >= 250);
  const double mean = fraction_sum / erased;  // uniform in [0.02, 0.33], less the tries that failed
  BOOST_TEST(mean > 0.10);
  BOOST_TEST(mean < 0.22);
  int half = 0;
  for (std::uint64_t seed = 0; seed < 400; ++seed) {
    Tensor y = image, z = image;
    apply_with_seed(RandomErasing(0.5), y, seed);
    apply_with_seed(RandomErasing(0.0), z, seed);
    half += !same_bits(y, image);
    BOOST_TEST(same_bits(z, image));
  }
  BOOST_TEST(half > 150);
  BOOST_TEST(half < 250);
  BOOST_TEST(RandomErasing(0.25).repr() == "RandomErasing(p=0.25, scale=(0.02, 0.33), ratio=(0.3, 3.3), value=0)");
  auto names = [](const char* part) {
    return [part](const Error& e) { return message_has(e, {"RandomErasing", part}); };
  };
  BOOST_CHECK_EXCEPTION(RandomErasing(1.5), Error, names("p must"));
  BOOST_CHECK_EXCEPTION(RandomErasing(0.5, 0.0, 0.3), Error, names("scale"));
  BOOST_CHECK_EXCEPTION(RandomErasing(0.5, 0.4, 0.3), Error, names("scale"));
  BOOST_CHECK_EXCEPTION(RandomErasing(0.5, 0.02, 0.33, 2.0, 1.0), Error, names("ratio"));
  BOOST_CHECK_EXCEPTION(RandomErasing(0.5, 0.02, 0.33, 0.3, 3.3, std::nanf("")), Error, names("value"));
  BOOST_CHECK_EXCEPTION(RandomErasing(0.5).output_shape({28, 28}), Error, names("(C, H, W)"));
}

BOOST_AUTO_TEST_CASE(normalize_computes_x_minus_mean_over_std_exactly) {
  const Tensor image = random_tensor({3, 4, 4}, 5, 0.0, 1.0);
  const std::vector<float> mean{0.1f, 0.7f, 0.3f}, std{0.3f, 0.17f, 1.9f};
  Tensor x = image;
  apply_with_seed(Normalize(mean, std), x, 0);
  Tensor y = image;
  apply_with_seed(Normalize(0.45f, 0.226f), y, 0);
  for (std::size_t c = 0; c < 3; ++c)
    for (std::size_t h = 0; h < 4; ++h)
      for (std::size_t w = 0; w < 4; ++w) {
        BOOST_TEST(x(c, h, w) == (image(c, h, w) - mean[c]) / std[c]);
        BOOST_TEST(y(c, h, w) == (image(c, h, w) - 0.45f) / 0.226f);
      }
}

BOOST_AUTO_TEST_CASE(compose_applies_in_order) {
  const Tensor image = random_tensor({1, 3, 3}, 6);
  const Compose both({std::make_shared<Normalize>(1.0f, 2.0f), std::make_shared<Normalize>(3.0f, 4.0f)});
  Tensor x = image;
  apply_with_seed(both, x, 0);
  for (std::size_t i = 0; i < image.size(); ++i) BOOST_TEST(x.data()[i] == ((image.data()[i] - 1.0f) / 2.0f - 3.0f) / 4.0f);
  BOOST_TEST(Compose({std::make_shared<RandomCrop>(28, 4), std::make_shared<RandomHorizontalFlip>(),
                      std::make_shared<Normalize>(0.5f, 0.25f)})
                 .repr() == "Compose(RandomCrop(size=28, padding=4), RandomHorizontalFlip(p=0.5), "
                            "Normalize(mean=[0.5], std=[0.25]))");
  BOOST_TEST(both.output_shape({1, 3, 3}) == Shape({1, 3, 3}));
}

BOOST_AUTO_TEST_CASE(draws_depend_only_on_seed_epoch_and_index) {
  const auto t = augmentation(6, 3);
  const Tensor image = random_tensor({3, 6, 6}, 7);
  auto run = [&](std::uint64_t seed, std::uint64_t epoch, std::uint64_t index) {
    Tensor x = image;
    apply_with_seed(*t, x, example_seed(seed, epoch, index));
    return x;
  };
  BOOST_TEST(same_bits(run(1, 2, 3), run(1, 2, 3)));
  // Different indices (or epochs, or seeds) get different draws: of 100 indices, nearly all
  // outputs differ from one another (7 x 7 offsets x 2 flips = 98 outcomes).
  std::set<std::vector<float>> outputs, per_epoch;
  for (std::uint64_t i = 0; i < 100; ++i) {
    const Tensor x = run(1, 2, i);
    outputs.insert(std::vector<float>(x.begin(), x.end()));
    const Tensor y = run(1, i, 3);
    per_epoch.insert(std::vector<float>(y.begin(), y.end()));
  }
  BOOST_TEST(outputs.size() > 50u);
  BOOST_TEST(per_epoch.size() > 50u);
  std::set<std::uint64_t> seeds;
  for (std::uint64_t i = 0; i < 10000; ++i) seeds.insert(example_seed(0, 0, i));
  BOOST_TEST(seeds.size() == 10000u);
  BOOST_TEST(example_seed(0, 0, 0) != example_seed(0, 1, 0));
  BOOST_TEST(example_seed(0, 0, 0) != example_seed(1, 0, 0));
}

BOOST_AUTO_TEST_CASE(bad_arguments_name_the_transform_and_the_value) {
  BOOST_CHECK_EXCEPTION(Normalize(0.5f, 0.0f), Error, mentions({"Normalize", "std[0]", "> 0", "got 0"}));
  BOOST_CHECK_EXCEPTION(Normalize(0.5f, -1.0f), Error, mentions({"Normalize", "std[0]", "-1"}));
  BOOST_CHECK_EXCEPTION(Normalize({0.5f, 0.5f}, {1.0f, std::nanf("")}), Error, mentions({"Normalize", "std[1]", "nan"}));
  BOOST_CHECK_EXCEPTION(Normalize(0.5f, INFINITY), Error, mentions({"Normalize", "std[0]", "inf"}));
  BOOST_CHECK_EXCEPTION(Normalize(std::nanf(""), 1.0f), Error, mentions({"Normalize", "mean[0]", "nan"}));
  BOOST_CHECK_EXCEPTION(Normalize(std::vector<float>{}, std::vector<float>{1.0f}), Error, mentions({"Normalize", "at least one"}));
  Tensor rgb = random_tensor({3, 2, 2}, 8);
  Rng rng(0);
  BOOST_CHECK_EXCEPTION(Normalize({0.1f, 0.2f}, {1.0f, 1.0f}).apply(rgb, rng), Error,
                        mentions({"Normalize(mean=[0.1, 0.2]", "1 or 3", "(3, 2, 2)"}));
  BOOST_CHECK_EXCEPTION(RandomCrop(0), Error, mentions({"RandomCrop", "size", ">= 1"}));
  BOOST_CHECK_EXCEPTION(RandomCrop(9, 1).apply(rgb, rng), Error, mentions({"RandomCrop(size=9, padding=1)", "(3, 2, 2)"}));
  BOOST_CHECK_EXCEPTION(RandomHorizontalFlip(1.5), Error, mentions({"RandomHorizontalFlip", "p", "1.5"}));
  BOOST_CHECK_EXCEPTION(RandomHorizontalFlip(std::nan("")), Error, mentions({"RandomHorizontalFlip", "nan"}));
  Tensor flat = random_tensor({4, 4}, 9);
  BOOST_CHECK_EXCEPTION(RandomHorizontalFlip().apply(flat, rng), Error, mentions({"RandomHorizontalFlip", "(C, H, W)", "(4, 4)"}));
  BOOST_CHECK_EXCEPTION(Compose({nullptr}), Error, mentions({"Compose", "transform 0", "null"}));
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(loader)

struct WorkerCase {
  std::size_t workers, prefetch;
};
std::ostream& operator<<(std::ostream& out, const WorkerCase& c) {
  return out << "workers=" << c.workers << " prefetch=" << c.prefetch;
}
const std::vector<WorkerCase> kWorkerCases = {{1, 2}, {2, 2}, {4, 2}, {2, 1}, {4, 5}};

BOOST_DATA_TEST_CASE(batches_are_bit_identical_for_any_number_of_workers, bdata::make(kWorkerCases), c) {
  const ImageDataset data = random_images(203, 3, 10, 10);
  const auto t = augmentation(8, 2);
  const DataLoader reference(data, DataLoaderOptions(16).shuffle(true).seed(11), t);
  const DataLoader loader(data, DataLoaderOptions(16).shuffle(true).seed(11).workers(c.workers).prefetch(c.prefetch), t);
  BOOST_TEST(loader.batches_per_epoch() == 13u);
  for (std::uint64_t epoch = 0; epoch < 3; ++epoch) {
    const auto want = all_batches(reference.epoch(epoch));
    const auto got = all_batches(loader.epoch(epoch));
    BOOST_TEST_REQUIRE(got.size() == want.size());
    for (std::size_t k = 0; k < got.size(); ++k) {
      BOOST_TEST(same_bits(got[k].images, want[k].images), "epoch " << epoch << " batch " << k);
      BOOST_TEST(got[k].labels == want[k].labels);
      BOOST_TEST(got[k].indices == want[k].indices);
    }
    BOOST_TEST(shape_str(want.back().images.shape()) == "(11, 3, 8, 8)");
  }
}

BOOST_AUTO_TEST_CASE(an_example_is_augmented_the_same_in_any_batch_and_order) {
  // The draws follow (seed, epoch, index): another batch size, order or worker count gives
  // each example the same image; another epoch gives it a new one.
  const ImageDataset data = random_images(50, 3, 10, 10);
  const auto t = augmentation(8, 2);
  auto by_index = [&](const DataLoaderOptions& options, std::uint64_t epoch) {
    std::map<std::size_t, std::vector<float>> out;
    const DataLoader loader(data, options, t);
    for (const Batch& b : loader.epoch(epoch)) {
      for (std::size_t j = 0; j < b.indices.size(); ++j) {
        out[b.indices[j]].assign(b.images.data() + j * 192, b.images.data() + (j + 1) * 192);
      }
    }
    return out;
  };
  const auto a = by_index(DataLoaderOptions(16).shuffle(true).seed(3), 1);
  const auto reversed = [](std::uint64_t) {
    std::vector<std::size_t> order(50);
    std::iota(order.rbegin(), order.rend(), std::size_t{0});
    return order;
  };
  BOOST_TEST(a.size() == 50u);
  BOOST_TEST((by_index(DataLoaderOptions(7).seed(3).workers(2), 1) == a));
  BOOST_TEST((by_index(DataLoaderOptions(3).seed(3).sampler(reversed), 1) == a));
  const auto other_epoch = by_index(DataLoaderOptions(16).seed(3), 2);
  int same = 0;
  for (const auto& [i, image] : a) same += other_epoch.at(i) == image;
  BOOST_TEST(same < 10);
}

BOOST_AUTO_TEST_CASE(batches_hold_the_examples_they_name) {
  const ImageDataset data = random_images(37, 2, 5, 4);
  const DataLoader loader(data, DataLoaderOptions(8).workers(2));
  std::size_t k = 0;
  for (const Batch& batch : loader.epoch(0)) {
    BOOST_TEST(shape_str(batch.images.shape()) == (k < 4 ? "(8, 2, 5, 4)" : "(5, 2, 5, 4)"));
    for (std::size_t j = 0; j < batch.indices.size(); ++j) {
      BOOST_TEST(batch.indices[j] == k * 8 + j);  // no shuffle: 0, 1, 2, ...
      const Example e = data.get(batch.indices[j]);
      BOOST_TEST(batch.labels[j] == e.label);
      BOOST_TEST(std::memcmp(batch.images.data() + j * 40, e.image.data(), 40 * sizeof(float)) == 0);
    }
    ++k;
  }
  BOOST_TEST(k == 5u);
}

BOOST_DATA_TEST_CASE(every_index_once_per_epoch_in_a_new_reproducible_order, bdata::make({0, 2}), workers) {
  const ImageDataset data = random_images(103, 1, 4, 4);
  const auto options = DataLoaderOptions(10).shuffle(true).seed(5).workers(static_cast<std::size_t>(workers));
  const DataLoader loader(data, options);
  BOOST_TEST(loader.batches_per_epoch() == 11u);
  BOOST_TEST(loader.samples_per_epoch() == 103u);
  auto order = [](const DataLoader& l, std::uint64_t epoch) {
    std::vector<std::size_t> out;
    for (const Batch& b : l.epoch(epoch)) out.insert(out.end(), b.indices.begin(), b.indices.end());
    return out;
  };
  std::vector<std::size_t> all(103);
  std::iota(all.begin(), all.end(), std::size_t{0});
  const auto e0 = order(loader, 0), e1 = order(loader, 1);
  for (const auto& e : {e0, e1}) {
    auto sorted = e;
    std::sort(sorted.begin(), sorted.end());
    BOOST_TEST(sorted == all);
  }
  BOOST_TEST(e0 != e1);
  BOOST_TEST(e0 != all);
  // Reproducible from the seed, and the same permutation DistributedSampler draws for 1 rank.
  BOOST_TEST(order(DataLoader(data, options), 1) == e1);
  BOOST_TEST(order(DataLoader(data, DataLoaderOptions(options).seed(6)), 1) != e1);
  BOOST_TEST(e1 == distributed::DistributedSampler(103, 0, 1, 5).indices(1));
  // Without shuffle: 0, 1, 2, ... every epoch.
  BOOST_TEST(order(DataLoader(data, DataLoaderOptions(10).workers(static_cast<std::size_t>(workers))), 3) == all);
}

BOOST_AUTO_TEST_CASE(drop_last_leaves_out_the_short_batch) {
  const ImageDataset data = random_images(103, 1, 4, 4);
  const DataLoader loader(data, DataLoaderOptions(10).drop_last(true).shuffle(true).workers(2));
  BOOST_TEST(loader.batches_per_epoch() == 10u);
  const auto batches = all_batches(loader.epoch(0));
  BOOST_TEST(batches.size() == 10u);
  std::set<std::size_t> seen;
  for (const Batch& b : batches) {
    BOOST_TEST(b.indices.size() == 10u);
    seen.insert(b.indices.begin(), b.indices.end());
  }
  BOOST_TEST(seen.size() == 100u);
  // Fewer examples than one batch: an epoch with no batches.
  const DataLoader empty_loader(data, DataLoaderOptions(200).drop_last(true).workers(2));
  BOOST_TEST(empty_loader.batches_per_epoch() == 0u);
  BOOST_TEST(all_batches(empty_loader.epoch(0)).empty());
  BOOST_TEST(DataLoader(data, DataLoaderOptions(200)).batches_per_epoch() == 1u);
}

BOOST_DATA_TEST_CASE(stopping_early_joins_the_workers, bdata::make({1, 2, 4}), workers) {
  const ImageDataset images = random_images(1000, 3, 8, 8);
  const ProbeDataset data(images);
  const auto w = static_cast<std::size_t>(workers);
  for (int round = 0; round < 3; ++round) {
    const DataLoader loader(data, DataLoaderOptions(10).shuffle(true).workers(w).prefetch(2), augmentation(8, 2));
    BOOST_TEST(loader.batches_per_epoch() == 100u);
    {
      auto epoch = loader.epoch(static_cast<std::uint64_t>(round));
      BOOST_TEST(epoch.next().has_value());
      BOOST_TEST(epoch.next().has_value());
      BOOST_TEST(epoch.batches_taken() == 2u);
      // The workers stay within their window: at most 2 taken + w * prefetch ahead.
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
      BOOST_TEST(data.gets.load() <= (2 + w * 2) * 10);
    }
    // Destroyed: the workers are joined, so nothing reads the dataset any more.
    const std::size_t gets = data.gets.load();
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    BOOST_TEST(data.gets.load() == gets);
    data.gets = 0;
  }
  // An epoch may outlive its loader; destroying it then still joins its workers.
  std::optional<DataLoader::Epoch> epoch;
  {
    const DataLoader loader(data, DataLoaderOptions(10).workers(w));
    epoch.emplace(loader.epoch(0));
  }
  BOOST_TEST(epoch->next()->indices.front() == 0u);
  BOOST_TEST(epoch->next()->indices.front() == 10u);
  epoch.reset();
  // A moved-from epoch is inert; the moved-to one carries on.
  const DataLoader loader(data, DataLoaderOptions(10).workers(w));
  auto a = loader.epoch(0);
  a.next();
  auto b = std::move(a);
  BOOST_TEST(b.next()->indices.front() == 10u);
  BOOST_CHECK_EXCEPTION(a.next(), Error, mentions({"moved-from"}));
}

BOOST_DATA_TEST_CASE(a_failing_example_reaches_the_caller_naming_it, bdata::make({0, 2}), workers) {
  const ImageDataset images = random_images(100, 1, 4, 4);
  const auto w = static_cast<std::size_t>(workers);
  for (const bool xgrad_error : {false, true}) {
    const ProbeDataset data(images, 37, xgrad_error);
    const DataLoader loader(data, DataLoaderOptions(10).workers(w));
    auto epoch = loader.epoch(0);
    for (int k = 0; k < 3; ++k) BOOST_TEST(epoch.next().has_value());
    const std::vector<std::string> parts = {"DataLoader: epoch 0, batch 3, example 37: ",
                                            xgrad_error ? "ProbeDataset: record is corrupt" : "bad record"};
    BOOST_CHECK_EXCEPTION(epoch.next(), Error, mentions(parts));
    // The epoch is over: it fails again rather than skipping the batch.
    BOOST_CHECK_EXCEPTION(epoch.next(), Error, mentions(parts));
  }
  // With shuffle, the message names the example wherever it lands.
  const ProbeDataset data(images, 61);
  const DataLoader loader(data, DataLoaderOptions(16).shuffle(true).seed(3).workers(w));
  BOOST_CHECK_EXCEPTION(all_batches(loader.epoch(2)), Error, mentions({"DataLoader: epoch 2, batch ", "example 61: bad record"}));
}

BOOST_DATA_TEST_CASE(a_distributed_sampler_gives_each_rank_its_shard, bdata::make({0, 2}), workers) {
  const ImageDataset data = random_images(103, 1, 4, 4);
  const int ranks = 2;
  std::set<std::size_t> seen;
  for (int rank = 0; rank < ranks; ++rank) {
    const distributed::DistributedSampler sampler(data.size(), rank, ranks, 9);
    const DataLoader loader(data, DataLoaderOptions(8).seed(9).workers(static_cast<std::size_t>(workers)).sampler(
                                      [sampler](std::uint64_t e) { return sampler.indices(e); }));
    BOOST_TEST(loader.samples_per_epoch() == 51u);
    BOOST_TEST(loader.batches_per_epoch() == 7u);
    for (std::uint64_t epoch = 0; epoch < 2; ++epoch) {
      std::vector<std::size_t> mine;
      for (const Batch& b : loader.epoch(epoch)) mine.insert(mine.end(), b.indices.begin(), b.indices.end());
      BOOST_TEST(mine == sampler.indices(epoch));
      if (epoch == 0) {
        for (std::size_t i : mine) BOOST_TEST(seen.insert(i).second, "index " << i << " on two ranks");
      }
    }
  }
  BOOST_TEST(seen.size() == 102u);
}

BOOST_AUTO_TEST_CASE(bad_options_name_the_loader_and_the_option) {
  const ImageDataset data = random_images(20, 1, 6, 6);
  BOOST_CHECK_EXCEPTION(DataLoader(data, DataLoaderOptions(0)), Error, mentions({"DataLoader", "batch_size", ">= 1"}));
  BOOST_CHECK_EXCEPTION(DataLoader(data, DataLoaderOptions(4).workers(65)), Error,
                        mentions({"DataLoader", "workers", "<= 64", "65"}));
  BOOST_CHECK_EXCEPTION(DataLoader(data, DataLoaderOptions(4).prefetch(0)), Error, mentions({"DataLoader", "prefetch"}));
  BOOST_CHECK_EXCEPTION(DataLoader(data, DataLoaderOptions(4).prefetch(65)), Error, mentions({"DataLoader", "prefetch"}));
  const Sampler all = [](std::uint64_t) { return std::vector<std::size_t>{0, 1, 2}; };
  BOOST_CHECK_EXCEPTION(DataLoader(data, DataLoaderOptions(4).shuffle(true).sampler(all)), Error,
                        mentions({"DataLoader", "shuffle", "sampler"}));
  BOOST_CHECK_EXCEPTION(
      DataLoader(data, DataLoaderOptions(4).sampler([](std::uint64_t) { return std::vector<std::size_t>{3, 20}; })),
      Error, mentions({"DataLoader", "sampler", "entry 1", "index 20", "20 examples"}));
  const DataLoader growing(data, DataLoaderOptions(4).sampler([](std::uint64_t e) {
    return std::vector<std::size_t>(static_cast<std::size_t>(e) + 1, 0);
  }));
  BOOST_CHECK_EXCEPTION(growing.epoch(1), Error, mentions({"DataLoader", "sampler", "epoch 1 has 2 indices", "epoch 0 has 1"}));
  BOOST_CHECK_EXCEPTION(DataLoader(data, DataLoaderOptions(4), std::make_shared<RandomCrop>(9)), Error,
                        mentions({"RandomCrop(size=9, padding=0)", "(1, 6, 6)"}));
  const WrongShapeDataset wrong;
  BOOST_CHECK_EXCEPTION(DataLoader(wrong, DataLoaderOptions(4).workers(1)).epoch(0).next(), Error,
                        mentions({"DataLoader: epoch 0, batch 0, example 0: WrongShapeDataset", "(1, 5, 5)",
                                  "image_shape() is (1, 6, 6)"}));
}

BOOST_AUTO_TEST_SUITE_END()
