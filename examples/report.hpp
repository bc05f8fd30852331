#pragma once
// What alexnet_example measures and writes about a run: the accuracies, the metrics JSON
// (--metrics FILE) with the per-epoch CSV beside it, the figure of the training curves (--plot,
// through gnuplot) and the per-layer time table (--profile).
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include <memory>

#include <xgrad/data/dataset.hpp>
#include <xgrad/data/transforms.hpp>
#include <xgrad/layers/layer.hpp>

namespace xgrad::examples {

// The goal the example reports against: this test accuracy within this much training time.
constexpr double kTargetAccuracy = 0.95;
constexpr double kTargetSeconds = 120.0;

// The settings of a run that its metrics record, with the example's defaults.
struct RunSettings {
  std::string preset = "mini";
  long long classes = 10;
  long long epochs = 4;
  long long batch_size = 64;  // global: over all ranks
  double lr = 0.01;           // peak of the warm-up + cosine schedule
  double momentum = 0.9;
  double weight_decay = 5e-4;
  // The architecture's Dropout layers are kept but off by default: on this budget (about 320
  // steps) dropout 0.5 slows learning more than it helps generalisation.
  double dropout = 0.0;
  bool batch_norm = false;    // a BatchNorm2d after each of conv3-5
  bool nesterov = false;
  double warmup = 0.05;       // of the steps, the linear warm-up
  double final_lr = 0.01;     // of lr, the cosine's end
  double label_smoothing = 0.0;
  bool eval_flip = false;     // evaluation averages the logits of each image and its mirror image
  // Decay of the exponential moving average of the weights and buffers, evaluated beside the
  // weights after every epoch (0: none).
  double ema_decay = 0.0;
  long long seed = 1;
  long long threads = 2;
  long long train_size = 5120;
  long long test_size = 1000;
};

// What a run measured.
struct RunResults {
  int ranks = 1;
  double test_accuracy = 0.0;
  double train_seconds = 0.0;
  double images_per_second = 0.0;
  double communication_share = 0.0;  // of the training time, inside MPI_Allreduce
  double final_loss = std::nan("");  // the last epoch's training loss; NaN (written null) without training
  double target_accuracy = kTargetAccuracy, target_seconds = kTargetSeconds;  // the goal of this data set
  bool target_met = false;
};

// One epoch: a row of the CSV and a point of the plot.
struct EpochRecord {
  int epoch;
  double train_loss, train_accuracy, test_accuracy, seconds;
};

// This process among the ranks of a run: the only one, or rank `rank` of `ranks`. Only rank 0,
// the leader, prints and writes files.
struct World {
  int rank = 0, ranks = 1;
  // Sums counters over the ranks of a distributed run; does nothing in a single process.
  std::function<void(std::vector<double>&)> reduce = [](std::vector<double>&) {};
  // Replaces the model's buffers by their mean over the ranks; does nothing in a single process.
  std::function<void(const std::vector<NamedBuffer>&)> average_buffers = [](const std::vector<NamedBuffer>&) {};
  bool leader() const { return rank == 0; }
};

// Number of rows of logits (N, K) whose argmax is the label.
std::size_t count_correct(const Tensor& logits, const std::vector<std::int64_t>& labels);

// The confusion matrix (classes x classes, row = true label, column = prediction, row-major)
// of the model over data's examples `indices`, in eval mode, in batches of `batch`, each image
// through `transform` (none when null). With flip the prediction is the argmax of the sum of the
// logits of the image and of its horizontal mirror (the last dimension reversed). In a
// distributed run rank r of W evaluates the entries r, r + W, ... of indices and world.reduce
// sums the counts over the ranks. Leaves the model in training mode.
std::vector<std::size_t> confusion_matrix(Layer& model, const data::Dataset& data,
                                          const std::vector<std::size_t>& indices, std::size_t batch,
                                          const std::shared_ptr<const data::Transform>& transform, const World& world,
                                          bool flip = false);

// The share of a confusion matrix's entries on its diagonal; 0 for an empty one.
double confusion_accuracy(const std::vector<std::size_t>& confusion);

// Each class's accuracy (its row's diagonal share; 0 for a class without examples).
std::vector<double> class_accuracies(const std::vector<std::size_t>& confusion);

// Prints the test accuracy of each class, named by names[i]; nothing for more than 20 classes.
void print_class_accuracies(const std::vector<double>& per_class, const std::vector<std::string>& names);

// Prints the accuracy of each class (by name) and the confusion matrix (classes x classes,
// row = true label, column = prediction, row-major), one row per class; names.size() classes.
void print_confusion_matrix(const std::vector<std::size_t>& confusion, const std::vector<std::string>& names);

// A duration for progress lines: "42s", "3m05s", "1h02m"; "?" when negative or not finite.
std::string format_duration(double seconds);

// The per-epoch CSV that write_metrics writes beside the JSON file `metrics`.
std::filesystem::path csv_path(const std::string& metrics);

// Writes the settings and results as JSON to `path`, and the history as CSV beside it
// (FILE.csv, or FILE.epochs.csv when FILE itself ends in .csv); returns the CSV's path.
// Throws xgrad::Error when a file cannot be written.
std::filesystem::path write_metrics(const std::string& path, const RunSettings& settings, const RunResults& results,
                                    const std::vector<EpochRecord>& history);

// Renders the loss and accuracy curves to the PNG `png` with gnuplot; returns false (after
// saying why on stderr) when gnuplot is missing or fails.
bool write_plot(const std::string& png, const std::vector<EpochRecord>& history);

// Prints the per-layer forward and backward times gathered while profiling was on.
void print_profile();

}  // namespace xgrad::examples
