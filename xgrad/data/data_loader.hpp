#pragma once
// DataLoader: batches of a Dataset, in an order chosen per epoch, with per-example transforms,
// prepared ahead by background worker threads, as torch::data's DataLoader.
//
//   xgrad::data::DataLoader loader(train, xgrad::data::DataLoaderOptions(256).shuffle(true).seed(7).workers(2),
//                                  std::make_shared<xgrad::data::RandomHorizontalFlip>());
//   for (std::uint64_t e = 0; e < epochs; ++e)
//     for (const xgrad::data::Batch& batch : loader.epoch(e)) train_step(batch.images, batch.labels);
//
// or, with the epoch as a handle: `auto it = loader.epoch(e); while (auto batch = it.next()) {...}`.
//
// Determinism: an epoch's order is fixed by (seed, epoch) — the identity, epoch_permutation
// (shuffle) or the sampler's list — and batch k holds entries [k*B, (k+1)*B) of it. Example i
// is transformed with an Rng seeded by example_seed(seed, epoch, i). So batch k is the same,
// bit for bit, for any number of workers and whatever the timing.
//
// Threads: with workers(0) the calling thread builds each batch in next(). With W > 0 an
// Epoch starts W std::threads that build batches ahead (gather + transform; no OpenMP) and keep
// at most W * prefetch batches ahead of the caller; the caller takes them in order. The Epoch
// owns its threads: they are joined when the epoch ends, fails, or is destroyed mid-way (which
// is how to stop early). An Epoch keeps the loader's settings alive and may outlive the
// loader; the dataset must outlive both.
//
// Errors: an exception while building batch k (the dataset's get() or a transform throws)
// reaches the caller as an xgrad::Error from next() when batch k is due, with the same message
// for any number of workers, naming the epoch, the batch and the example index; the epoch is
// then over (later next() calls throw the same error).
#include <cstddef>
#include <cstdint>
#include <functional>
#include <iterator>
#include <memory>
#include <optional>
#include <vector>

#include <xgrad/core/tensor.hpp>
#include <xgrad/data/dataset.hpp>
#include <xgrad/data/transforms.hpp>

namespace xgrad::data {

struct Batch {
  Tensor images;                      // (B, C, H, W), the transformed images
  std::vector<std::int64_t> labels;   // (B)
  std::vector<std::size_t> indices;   // (B), the examples' indices in the dataset
};

// The epoch's sample indices, in training order.
using Sampler = std::function<std::vector<std::size_t>(std::uint64_t epoch)>;

// Required arguments positional, the rest named: DataLoaderOptions(64).shuffle(true).workers(2).
// The DataLoader validates them (xgrad::Error naming DataLoader and the option).
class DataLoaderOptions {
 public:
  // Examples per batch (>= 1); the last batch of an epoch may be smaller unless drop_last.
  explicit DataLoaderOptions(std::size_t batch_size) : batch_size_(batch_size) {}

  DataLoaderOptions& batch_size(std::size_t v) { batch_size_ = v; return *this; }
  std::size_t batch_size() const { return batch_size_; }
  // A new permutation every epoch, from (seed, epoch). Not with a sampler.
  DataLoaderOptions& shuffle(bool v) { shuffle_ = v; return *this; }
  bool shuffle() const { return shuffle_; }
  // Leaves out the last batch when it would be smaller than batch_size.
  DataLoaderOptions& drop_last(bool v) { drop_last_ = v; return *this; }
  bool drop_last() const { return drop_last_; }
  // Seeds the shuffle and the transforms' draws.
  DataLoaderOptions& seed(std::uint64_t v) { seed_ = v; return *this; }
  std::uint64_t seed() const { return seed_; }
  // Background threads (0: batches are built on the calling thread), at most kMaxWorkers.
  DataLoaderOptions& workers(std::size_t v) { workers_ = v; return *this; }
  std::size_t workers() const { return workers_; }
  // Batches each worker may prepare ahead of the caller, in [1, kMaxPrefetch].
  DataLoaderOptions& prefetch(std::size_t v) { prefetch_ = v; return *this; }
  std::size_t prefetch() const { return prefetch_; }
  // The epoch's indices come from `sampler(epoch)` instead of 0..N-1 or the shuffle; each
  // index < the dataset's size, the same number every epoch. For example, rank r of W:
  //   .sampler([s = DistributedSampler(data.size(), r, W, seed)](std::uint64_t e) { return s.indices(e); })
  DataLoaderOptions& sampler(Sampler v) { sampler_ = std::move(v); return *this; }
  const Sampler& sampler() const { return sampler_; }

  static constexpr std::size_t kMaxWorkers = 64;
  static constexpr std::size_t kMaxPrefetch = 64;

 private:
  std::size_t batch_size_;
  bool shuffle_ = false;
  bool drop_last_ = false;
  std::uint64_t seed_ = 0;
  std::size_t workers_ = 0;
  std::size_t prefetch_ = 2;
  Sampler sampler_;
};

class DataLoader {
 public:
  // Throws xgrad::Error naming DataLoader and the option when an option is out of range,
  // shuffle is combined with a sampler, or the sampler's epoch-0 indices are out of range; and
  // the transform's own error when the dataset's images do not fit it. A null transform
  // passes the images through.
  DataLoader(const Dataset& dataset, DataLoaderOptions options, std::shared_ptr<const Transform> transform = nullptr);

  class Epoch;
  // Starts epoch `epoch` (its workers start now). Throws xgrad::Error when the sampler's list
  // for this epoch has an index out of range or a different length from epoch 0's.
  Epoch epoch(std::uint64_t epoch) const;

  // Batches in every epoch.
  std::size_t batches_per_epoch() const;
  // Examples in every epoch (before drop_last).
  std::size_t samples_per_epoch() const;
  // The shape of one transformed image, (C, H, W).
  const Shape& image_shape() const;
  const DataLoaderOptions& options() const;

  struct Settings;  // shared with the epochs

 private:
  std::shared_ptr<const Settings> settings_;
};

// One pass over the data. Movable, not copyable; destroying it stops and joins its workers.
class DataLoader::Epoch {
 public:
  Epoch(Epoch&&) noexcept;
  Epoch& operator=(Epoch&&) noexcept;
  ~Epoch();

  // The next batch, or nothing at the end of the epoch; throws xgrad::Error if it failed.
  std::optional<Batch> next();
  // Batches handed out so far.
  std::size_t batches_taken() const;

  // Range-for support: an input iterator over the remaining batches.
  class iterator {
   public:
    using iterator_category = std::input_iterator_tag;
    using value_type = Batch;
    using difference_type = std::ptrdiff_t;
    using pointer = const Batch*;
    using reference = const Batch&;

    const Batch& operator*() const { return *batch_; }
    const Batch* operator->() const { return &*batch_; }
    iterator& operator++() { batch_ = epoch_->next(); return *this; }
    bool operator==(const iterator& other) const { return batch_.has_value() == other.batch_.has_value(); }
    bool operator!=(const iterator& other) const { return !(*this == other); }

   private:
    friend class Epoch;
    iterator() = default;
    explicit iterator(Epoch* epoch) : epoch_(epoch), batch_(epoch->next()) {}
    Epoch* epoch_ = nullptr;
    std::optional<Batch> batch_;
  };
  iterator begin() { return iterator(this); }
  iterator end() { return iterator(); }

  struct State;  // the order, the workers and what they share

 private:
  friend class DataLoader;
  explicit Epoch(std::unique_ptr<State> state);
  std::unique_ptr<State> state_;
};

}  // namespace xgrad::data
