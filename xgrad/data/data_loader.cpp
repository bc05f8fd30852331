#include <xgrad/data/data_loader.hpp>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <exception>
#include <map>
#include <mutex>
#include <numeric>
#include <thread>
#include <utility>

#include <xgrad/core/error.hpp>
#include <xgrad/core/rng.hpp>

// Dimension key: N = examples per epoch, B = batch size, K = batches per epoch, W = workers,
// (C, H, W) the dataset's image shape, (C', H', W') the transformed one.

namespace xgrad::data {

struct DataLoader::Settings {
  const Dataset& dataset;
  DataLoaderOptions options;
  std::shared_ptr<const Transform> transform;  // may be null
  Shape input_shape;   // (C, H, W), the dataset's
  Shape output_shape;  // (C', H', W'), after the transform
  std::size_t samples = 0;  // N
  std::size_t batches = 0;  // K
};

namespace {

using Settings = DataLoader::Settings;

bool same_shape(const Tensor& image, const Shape& shape) {
  return image.dimension() == shape.size() && std::equal(shape.begin(), shape.end(), image.shape().begin());
}

// The epoch's sample indices in training order (N of them), checked against the dataset.
std::vector<std::size_t> epoch_order(const Dataset& dataset, const DataLoaderOptions& options, std::uint64_t epoch) {
  const std::size_t size = dataset.size();
  if (options.sampler()) {
    std::vector<std::size_t> order = options.sampler()(epoch);
    for (std::size_t i = 0; i < order.size(); ++i) {
      XGRAD_CHECK(order[i] < size, "DataLoader: sampler: entry ", i, " of epoch ", epoch, " is index ", order[i],
                  ", out of range for ", dataset.name(), " of ", size, " examples");
    }
    return order;
  }
  if (options.shuffle()) return epoch_permutation(size, options.seed(), epoch);
  std::vector<std::size_t> order(size);
  std::iota(order.begin(), order.end(), std::size_t{0});
  return order;
}

// Batch k of the epoch: entries [k*B, min((k+1)*B, N)) of `order`, each example fetched,
// transformed with its own generator, and copied into the batch. Returns early (an unfinished
// batch, to be thrown away) once *stop is set.
Batch build_batch(const Settings& s, const std::vector<std::size_t>& order, std::uint64_t epoch, std::size_t k,
                  const std::atomic<bool>* stop) {
  const std::size_t begin = k * s.options.batch_size();
  const std::size_t count = std::min(s.options.batch_size(), order.size() - begin);
  const std::size_t per_image = numel(s.output_shape);
  Batch batch;
  batch.indices.assign(order.begin() + static_cast<std::ptrdiff_t>(begin),
                       order.begin() + static_cast<std::ptrdiff_t>(begin + count));
  batch.labels.resize(count);
  batch.images = empty({count, s.output_shape[0], s.output_shape[1], s.output_shape[2]}, "DataLoader");
  for (std::size_t j = 0; j < count; ++j) {
    if (stop != nullptr && stop->load(std::memory_order_relaxed)) break;
    const std::size_t index = batch.indices[j];
    try {
      Example example = s.dataset.get(index);
      XGRAD_CHECK(same_shape(example.image, s.input_shape), s.dataset.name(), ": the image is ",
                  shape_str(example.image.shape()), " but image_shape() is ", shape_str(s.input_shape));
      if (s.transform) {
        Rng rng(example_seed(s.options.seed(), epoch, index));
        s.transform->apply(example.image, rng);
        XGRAD_CHECK(same_shape(example.image, s.output_shape), s.transform->repr(),
                    " gave an image ", shape_str(example.image.shape()), ", not the ", shape_str(s.output_shape),
                    " its output_shape() promised");
      }
      std::copy(example.image.data(), example.image.data() + per_image, batch.images.data() + j * per_image);
      batch.labels[j] = example.label;
    } catch (const std::exception& e) {
      throw Error(cat("DataLoader: epoch ", epoch, ", batch ", k, ", example ", index, ": ", e.what()));
    } catch (...) {
      throw Error(cat("DataLoader: epoch ", epoch, ", batch ", k, ", example ", index, ": an unknown exception"));
    }
  }
  return batch;
}

// build_batch with any failure (also outside an example, e.g. allocating the batch) as an
// xgrad::Error naming the batch: the one path of the calling thread and of the workers.
Batch build_batch_or_error(const Settings& s, const std::vector<std::size_t>& order, std::uint64_t epoch,
                           std::size_t k, const std::atomic<bool>* stop) {
  try {
    return build_batch(s, order, epoch, k, stop);
  } catch (const Error&) {
    throw;
  } catch (const std::exception& e) {
    throw Error(cat("DataLoader: epoch ", epoch, ", batch ", k, ": ", e.what()));
  } catch (...) {
    throw Error(cat("DataLoader: epoch ", epoch, ", batch ", k, ": an unknown exception"));
  }
}

}  // namespace

// What an epoch's caller and workers share. Everything below `mutex` is read and written only
// under it; `stopping` mirrors `stop` for the workers' cheap check between examples.
struct DataLoader::Epoch::State {
  struct Slot {
    Batch batch;
    std::exception_ptr error;  // an xgrad::Error, or null
  };

  std::shared_ptr<const Settings> settings;
  std::uint64_t epoch = 0;
  std::vector<std::size_t> order;  // (N), read-only once the workers run
  std::exception_ptr failure;      // the caller's: set once a batch failed
  std::vector<std::thread> threads;
  std::atomic<bool> stopping{false};

  std::mutex mutex;
  std::condition_variable work_cv;   // workers: room in the window, or stop
  std::condition_variable ready_cv;  // the caller: batch next_batch is ready
  std::size_t next_batch = 0;        // the next batch the caller takes
  std::size_t next_claim = 0;        // the next batch a worker starts
  std::map<std::size_t, Slot> ready; // built batches not yet taken, by batch number
  bool stop = false;

  std::size_t window() const { return settings->options.workers() * settings->options.prefetch(); }

  // Claims batches in order while fewer than window() are ahead of the caller; batch k's
  // content does not depend on which worker builds it.
  void work() {
    for (;;) {
      std::size_t k;
      {
        std::unique_lock<std::mutex> lock(mutex);
        work_cv.wait(lock, [&] {
          return stop || next_claim >= settings->batches || next_claim < next_batch + window();
        });
        if (stop || next_claim >= settings->batches) return;
        k = next_claim++;
      }
      Slot slot;
      try {
        slot.batch = build_batch_or_error(*settings, order, epoch, k, &stopping);
      } catch (...) {
        slot.error = std::current_exception();
      }
      {
        std::lock_guard<std::mutex> lock(mutex);
        if (stop) return;
        ready.emplace(k, std::move(slot));
      }
      ready_cv.notify_one();
    }
  }

  void start() {
    const std::size_t workers = settings->options.workers();
    try {
      threads.reserve(workers);
      for (std::size_t w = 0; w < workers; ++w) threads.emplace_back([this] { work(); });
    } catch (const std::exception& e) {
      shutdown();
      throw Error(cat("DataLoader: could not start ", workers, " worker threads: ", e.what()));
    }
  }

  // Stops the workers (each finishes at most its current example) and joins them.
  void shutdown() {
    {
      std::lock_guard<std::mutex> lock(mutex);
      stop = true;
      ready.clear();
    }
    stopping.store(true, std::memory_order_relaxed);
    work_cv.notify_all();
    for (std::thread& t : threads) t.join();
    threads.clear();
  }

  std::optional<Batch> next() {
    if (failure) std::rethrow_exception(failure);
    const std::size_t batches = settings->batches;
    if (next_batch >= batches) return std::nullopt;
    if (settings->options.workers() == 0) {
      try {
        Batch batch = build_batch_or_error(*settings, order, epoch, next_batch, nullptr);
        ++next_batch;
        return batch;
      } catch (...) {
        failure = std::current_exception();
        throw;
      }
    }
    Slot slot;
    {
      std::unique_lock<std::mutex> lock(mutex);
      ready_cv.wait(lock, [&] { return ready.count(next_batch) != 0; });
      auto node = ready.extract(next_batch);
      slot = std::move(node.mapped());
      ++next_batch;
    }
    work_cv.notify_all();
    if (slot.error) {
      failure = slot.error;
      shutdown();
      std::rethrow_exception(failure);
    }
    if (next_batch >= batches) shutdown();  // the last batch: the workers are done
    return std::move(slot.batch);
  }

  ~State() { shutdown(); }
};

DataLoader::DataLoader(const Dataset& dataset, DataLoaderOptions options, std::shared_ptr<const Transform> transform) {
  const std::size_t B = options.batch_size();
  XGRAD_CHECK(B >= 1, "DataLoader: batch_size must be >= 1, got ", B);
  XGRAD_CHECK(options.workers() <= DataLoaderOptions::kMaxWorkers, "DataLoader: workers must be <= ",
              DataLoaderOptions::kMaxWorkers, ", got ", options.workers());
  XGRAD_CHECK(options.prefetch() >= 1 && options.prefetch() <= DataLoaderOptions::kMaxPrefetch,
              "DataLoader: prefetch must be in [1, ", DataLoaderOptions::kMaxPrefetch, "], got ", options.prefetch());
  XGRAD_CHECK(!(options.shuffle() && options.sampler()),
              "DataLoader: shuffle and sampler cannot be combined (the sampler sets the order)");
  const Shape input = dataset.image_shape();
  XGRAD_CHECK(input.size() == 3, "DataLoader: ", dataset.name(), "'s images must be (C, H, W), got ",
              shape_str(input));
  const Shape output = transform ? transform->output_shape(input) : input;
  XGRAD_CHECK(output.size() == 3, "DataLoader: the transform's images must be (C, H, W), got ", shape_str(output));
  const std::size_t samples = options.sampler() ? epoch_order(dataset, options, 0).size() : dataset.size();
  // The largest batch (B, C, H, W) of the images as transformed (B at most the samples): its
  // element count is checked here, once, and never wraps in the batch assembly.
  detail::checked_product("DataLoader", "a batch B x C x H x W", {std::min(B, samples), output[0], output[1], output[2]});
  const std::size_t batches = samples / B + (!options.drop_last() && samples % B != 0 ? 1 : 0);
  settings_ = std::make_shared<const Settings>(
      Settings{dataset, std::move(options), std::move(transform), input, output, samples, batches});
}

DataLoader::Epoch DataLoader::epoch(std::uint64_t epoch) const {
  auto state = std::make_unique<Epoch::State>();
  state->settings = settings_;
  state->epoch = epoch;
  state->order = epoch_order(settings_->dataset, settings_->options, epoch);
  XGRAD_CHECK(state->order.size() == settings_->samples, "DataLoader: sampler: epoch ", epoch, " has ",
              state->order.size(), " indices, but epoch 0 has ", settings_->samples,
              " (every epoch must have the same number)");
  if (settings_->batches > 0) state->start();
  return Epoch(std::move(state));
}

std::size_t DataLoader::batches_per_epoch() const { return settings_->batches; }
std::size_t DataLoader::samples_per_epoch() const { return settings_->samples; }
const Shape& DataLoader::image_shape() const { return settings_->output_shape; }
const DataLoaderOptions& DataLoader::options() const { return settings_->options; }

DataLoader::Epoch::Epoch(std::unique_ptr<State> state) : state_(std::move(state)) {}
DataLoader::Epoch::Epoch(Epoch&&) noexcept = default;
DataLoader::Epoch& DataLoader::Epoch::operator=(Epoch&&) noexcept = default;
DataLoader::Epoch::~Epoch() = default;

std::optional<Batch> DataLoader::Epoch::next() {
  XGRAD_CHECK(state_ != nullptr, "DataLoader::Epoch: next() on a moved-from epoch");
  return state_->next();
}

std::size_t DataLoader::Epoch::batches_taken() const { return state_ ? state_->next_batch : 0; }

}  // namespace xgrad::data
