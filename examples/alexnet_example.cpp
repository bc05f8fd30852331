// alexnet_example: trains an AlexNet-style network (LocalResponseNorm after the first two
// convolutions) on synthetic pattern images and reports its test accuracy.
//
// With no arguments it trains the "mini" preset on 10 classes; the goal it reports against is
// >= 95% test accuracy within 120 s of training on a 2-core machine. See --help.
//
// With --dataset fashion-mnist it trains the "fmnist" preset (1x28x28) on Fashion-MNIST's IDX
// files (--data-dir, Debian's dataset-fashion-mnist by default) through data::DataLoader, with
// the recipe of kFashionMnistRecipe below (augmentation, schedule, epochs), model selection on
// a validation split and one evaluation of the test set at the end; see
// examples/fashion_mnist.hpp. The goal it reports against: >= 93.5% test accuracy within 600 s.
//
// With --distributed (builds with MPI only) it trains data-parallel under mpirun: every rank
// holds the model, trains on its own shard of each epoch, and the ranks average gradients
// after every backward; --batch-size stays the global batch. Only rank 0 prints, writes
// metrics and saves checkpoints.
#include <fcntl.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <functional>
#include <iostream>
#include <limits>
#include <memory>
#include <numeric>
#include <sstream>
#include <string>
#include <vector>

#include <boost/program_options.hpp>

#include "examples/fashion_mnist.hpp"
#include "examples/models.hpp"
#include "examples/report.hpp"
#include "examples/training.hpp"
#include <xgrad/xgrad.hpp>
#ifdef XGRAD_WITH_MPI
#include <xgrad/distributed/distributed.hpp>
#endif

namespace po = boost::program_options;
using namespace xgrad;
using xgrad::examples::EpochRecord;
using xgrad::examples::World;
using Clock = std::chrono::steady_clock;

namespace {

// The command line: the settings that the metrics record, the files to read and write, and the
// --profile and --distributed switches.
struct Config : examples::RunSettings {
  std::string dataset = "synthetic";  // or "fashion-mnist"
  std::string data_dir = data::kFashionMnistDir;
  long long val_size = 5000;  // fashion-mnist: validation images carved from the training set
  long long crop_padding = 0;  // fashion-mnist: padding of the RandomCrop augmentation (0: no crop)
  double random_erasing = 0.0;  // fashion-mnist: p of the RandomErasing augmentation (0: none)
  std::string save, load, metrics, plot;
  std::string checkpoint_dir, resume;  // training-state checkpoints
  long long checkpoint_every = 0;      // steps; 0: at the end of every epoch
  bool profile = false;
  bool distributed = false;
};

// Thrown for bad command lines: main prints it with the usage and exits with code 2.
struct UsageError {
  std::string message;
};

po::options_description make_options(Config& c) {
  po::options_description desc("options");
  // clang-format off
  desc.add_options()
    ("help,h", "print this help and exit")
    ("dataset", po::value(&c.dataset)->default_value(c.dataset), "synthetic (generated pattern images) or fashion-mnist "
                                                                 "(the IDX files in --data-dir; other defaults, see below)")
    ("data-dir", po::value(&c.data_dir)->default_value(c.data_dir), "fashion-mnist: the directory of its four .gz files")
    ("val-size", po::value(&c.val_size)->default_value(c.val_size), "fashion-mnist: validation images, carved from the "
                                                                   "training set")
    ("crop-padding", po::value(&c.crop_padding)->default_value(c.crop_padding), "fashion-mnist: padding of the "
                                                                               "RandomCrop(28) augmentation (0: no crop)")
    ("random-erasing", po::value(&c.random_erasing)->default_value(c.random_erasing), "fashion-mnist: probability "
                                                                                     "of the RandomErasing "
                                                                                     "augmentation (0: none)")
    ("preset", po::value(&c.preset)->default_value(c.preset), "model preset: mini (3x64x64), alexnet (3x224x224) or "
                                                             "fmnist (1x28x28, the default with fashion-mnist)")
    ("classes", po::value(&c.classes)->default_value(c.classes), "number of classes (>= 2)")
    ("epochs", po::value(&c.epochs)->default_value(c.epochs), "training epochs (0: evaluate only)")
    ("batch-size", po::value(&c.batch_size)->default_value(c.batch_size), "minibatch size")
    ("lr", po::value(&c.lr)->default_value(c.lr), "peak learning rate (linear warm-up, then cosine decay)")
    ("warmup", po::value(&c.warmup)->default_value(c.warmup), "share of the training steps in the linear warm-up, "
                                                             "in [0, 1]")
    ("final-lr", po::value(&c.final_lr)->default_value(c.final_lr), "the cosine decay's last rate, as a share of --lr, "
                                                                   "in (0, 1]")
    ("momentum", po::value(&c.momentum)->default_value(c.momentum), "SGD momentum, in [0, 1)")
    ("nesterov", po::bool_switch(&c.nesterov), "Nesterov momentum")
    ("weight-decay", po::value(&c.weight_decay)->default_value(c.weight_decay), "L2 weight decay")
    ("dropout", po::value(&c.dropout)->default_value(c.dropout), "drop probability of the two Dropout layers")
    ("batch-norm", po::value(&c.batch_norm)->default_value(c.batch_norm)->implicit_value(true),
     "a BatchNorm2d after each of conv3-5, before its ReLU (--batch-norm or --batch-norm 1; 0: none)")
    ("label-smoothing", po::value(&c.label_smoothing)->default_value(c.label_smoothing), "label smoothing of the "
                                                                   "cross-entropy loss, in [0, 1]")
    ("eval-flip", po::value(&c.eval_flip)->default_value(c.eval_flip)->implicit_value(true),
     "evaluate (validation and test) on the average of the logits of each image and of its horizontal mirror "
     "(--eval-flip or --eval-flip 1; --eval-flip 0: off)")
    ("ema-decay", po::value(&c.ema_decay)->default_value(c.ema_decay), "decay of an exponential moving average "
                                                                       "of the weights, evaluated beside them after "
                                                                       "every epoch, in [0, 1) (0: none)")
    ("seed", po::value(&c.seed)->default_value(c.seed), "seed of the weights, data and shuffling")
    ("threads", po::value(&c.threads)->default_value(c.threads), "OpenMP / OpenBLAS threads")
    ("train-size", po::value(&c.train_size)->default_value(c.train_size), "training images (fashion-mnist: at most "
                                                                         "the first N of its training split)")
    ("test-size", po::value(&c.test_size)->default_value(c.test_size), "test images (drawn from another seed; "
                                                                      "fashion-mnist: the first N of its test set)")
    ("save", po::value(&c.save), "save a checkpoint directory after training")
    ("load", po::value(&c.load), "load a checkpoint directory before training")
    ("checkpoint-dir", po::value(&c.checkpoint_dir), "save the training state (weights, optimiser, progress) into DIR/step-N "
                                                     "during training, keeping the newest two")
    ("checkpoint-every", po::value(&c.checkpoint_every)->default_value(c.checkpoint_every),
     "steps between training-state saves (0: at the end of every epoch)")
    ("resume", po::value(&c.resume), "continue the run whose training state is in DIR (its newest checkpoint), "
                                     "with the same flags")
    ("metrics", po::value(&c.metrics), "write JSON metrics to FILE and per-epoch CSV beside it (FILE.csv)")
    ("plot", po::value(&c.plot), "write a PNG of the loss and accuracy curves (needs gnuplot)")
    ("profile", po::bool_switch(&c.profile), "print per-layer forward/backward times")
    ("distributed", po::bool_switch(&c.distributed), "data-parallel training over MPI ranks (run under mpirun; "
                                                      "--batch-size is the global batch, split evenly over the ranks)");
  // clang-format on
  return desc;
}

// The Fashion-MNIST recipe: what --dataset fashion-mnist changes among the flags not given.
constexpr const char* kFashionMnistRecipe =
    "With --dataset fashion-mnist the defaults become the Fashion-MNIST recipe: --preset fmnist, --batch-norm "
    "1 (a BatchNorm2d after each of conv3-5), --epochs 15, --batch-size 64, --lr 0.05 (5% linear warm-up, then "
    "cosine decay to 1%, per step), --momentum 0.9, --weight-decay 5e-4, --dropout 0, --label-smoothing 0.1, "
    "--eval-flip 1, --ema-decay 0.999, --train-size 55000 (all but the 5,000 validation images), --test-size "
    "10000. Augmentation: RandomHorizontalFlip(0.5), Normalize(0.2860, 0.3530); --crop-padding N adds a "
    "RandomCrop(28, padding N) first; --random-erasing P a RandomErasing(P) last (scale 0.02-0.33, ratio "
    "0.3-3.3, value 0: the mean).\n"
    "The validation accuracy of the weights and of their moving average is printed after every epoch, and the "
    "best of them on validation (weights and running estimates) is kept; the test set is evaluated once, at the "
    "end (per-class accuracy and confusion matrix). With --eval-flip both evaluations average the logits of each "
    "image and of its mirror image.\n"
    "--checkpoint-dir, --resume and --distributed work as on the synthetic data.\n";

void apply_fashion_mnist_defaults(Config& c, const po::variables_map& vm) {
  auto unless_given = [&](const char* flag, auto& field, auto value) {
    if (vm[flag].defaulted()) field = value;
  };
  unless_given("preset", c.preset, std::string("fmnist"));
  unless_given("batch-norm", c.batch_norm, true);
  unless_given("epochs", c.epochs, 15LL);
  unless_given("batch-size", c.batch_size, 64LL);
  unless_given("lr", c.lr, 0.05);
  unless_given("weight-decay", c.weight_decay, 5e-4);
  unless_given("dropout", c.dropout, 0.0);
  unless_given("label-smoothing", c.label_smoothing, 0.1);
  unless_given("ema-decay", c.ema_decay, 0.999);
  unless_given("eval-flip", c.eval_flip, true);
  unless_given("train-size", c.train_size, 55000LL);
  unless_given("test-size", c.test_size, 10000LL);
}

// Why `path` cannot be written, or "" when it can: as a file (its directory must exist), or as a
// directory that the program creates with any missing parents. Checked before training, so that
// a long run does not end in an error after its work.
std::string unwritable(const std::string& path, bool directory) {
  namespace fs = std::filesystem;
  std::error_code ec;
  fs::path p(path);
  if (p.filename().empty()) p = p.parent_path();  // "dir/" names "dir"
  const fs::file_status st = fs::status(p, ec);
  if (fs::exists(st)) {
    if (directory && !fs::is_directory(st)) return "it exists and is not a directory";
    if (!directory && fs::is_directory(st)) return "it is a directory";
    if (!directory && !fs::is_regular_file(st)) return "it exists and is not a regular file";
    if (::access(p.c_str(), directory ? (W_OK | X_OK) : W_OK) != 0) return "it is not writable";
    return "";
  }
  fs::path parent = p.parent_path();
  if (parent.empty()) parent = ".";
  if (directory) {  // created with its parents: the nearest existing one must take new entries
    while (!fs::exists(parent, ec) && parent.has_parent_path() && parent.parent_path() != parent) {
      parent = parent.parent_path();
    }
  } else if (!fs::exists(parent, ec)) {
    return "its directory " + parent.string() + " does not exist";
  }
  if (!fs::is_directory(parent, ec)) return parent.string() + " is not a directory";
  // Creating a file there is the one test that holds for every file system and user.
  const fs::path probe = parent / cat(".alexnet_example-probe-", ::getpid());
  const int fd = ::open(probe.c_str(), O_WRONLY | O_CREAT | O_EXCL, 0600);
  if (fd < 0) return "cannot create entries in " + parent.string() + ": " + std::strerror(errno);
  ::close(fd);
  fs::remove(probe, ec);
  return "";
}

void check_outputs(const Config& c) {
  auto check = [](const char* flag, const std::string& path, bool directory) {
    if (path.empty()) return;
    const std::string why = unwritable(path, directory);
    if (!why.empty()) throw UsageError{cat("--", flag, " ", path, ": cannot write there: ", why)};
  };
  check("save", c.save, true);
  check("checkpoint-dir", c.checkpoint_dir, true);
  check("metrics", c.metrics, false);
  if (!c.metrics.empty()) check("metrics", examples::csv_path(c.metrics).string(), false);
  check("plot", c.plot, false);
  if (!c.plot.empty() && std::system("command -v gnuplot >/dev/null 2>&1") != 0) {
    throw UsageError{"--plot needs gnuplot, which is not installed (Debian: apt-get install gnuplot-nox)"};
  }
}

void validate(const Config& c) {
  auto need = [](bool ok, const std::string& message) {
    if (!ok) throw UsageError{message};
  };
  // A number outside its flag's range: the message gives the range and the value given.
  auto in_range = [&](const char* flag, auto value, auto lo, auto hi) {
    std::ostringstream m;
    m << "--" << flag << " must be in [" << lo << ", " << hi << "], got " << value;
    need(value >= lo && value <= hi, m.str());  // false for NaN
  };
  const auto& presets = examples::alexnet_presets();
  need(std::find(presets.begin(), presets.end(), c.preset) != presets.end(),
       "--preset must be mini, alexnet or fmnist, got '" + c.preset + "'");
  need(c.dataset == "synthetic" || c.dataset == "fashion-mnist",
       "--dataset must be synthetic or fashion-mnist, got '" + c.dataset + "'");
  if (c.dataset == "fashion-mnist") {
    need(c.preset == "fmnist", "--dataset fashion-mnist needs --preset fmnist (1x28x28 inputs)");
    need(c.classes == 10, "--dataset fashion-mnist has 10 classes: leave --classes at 10");
    in_range("val-size", c.val_size, 1LL, 59999LL);
    in_range("crop-padding", c.crop_padding, 0LL, 14LL);
    in_range("random-erasing", c.random_erasing, 0.0, 1.0);
  } else {
    need(c.preset != "fmnist", "--preset fmnist (1x28x28 inputs) needs --dataset fashion-mnist");
  }
  constexpr double kFloatMin = std::numeric_limits<float>::min(), kFloatMax = std::numeric_limits<float>::max();
  in_range("classes", c.classes, 2LL, 100000LL);
  in_range("epochs", c.epochs, 0LL, 100000LL);
  in_range("batch-size", c.batch_size, 1LL, 65536LL);
  in_range("lr", c.lr, kFloatMin, kFloatMax);  // a positive normal float: the update runs in float
  need(c.momentum >= 0 && c.momentum < 1, cat("--momentum must be in [0, 1), got ", c.momentum));
  need(c.weight_decay == 0 || (c.weight_decay >= kFloatMin && c.weight_decay <= kFloatMax),
       cat("--weight-decay must be 0 or in [", kFloatMin, ", ", kFloatMax, "] (a normal float), got ", c.weight_decay));
  need(c.dropout >= 0 && c.dropout < 1, cat("--dropout must be in [0, 1), got ", c.dropout));
  need(c.ema_decay >= 0 && c.ema_decay < 1, cat("--ema-decay must be in [0, 1), got ", c.ema_decay));
  in_range("seed", c.seed, 0LL, std::numeric_limits<long long>::max());
  in_range("threads", c.threads, 1LL, 1024LL);
  in_range("train-size", c.train_size, 1LL, 100000000LL);
  in_range("test-size", c.test_size, 1LL, 100000000LL);
  in_range("checkpoint-every", c.checkpoint_every, 0LL, 100000000LL);
  need(c.load.empty() || c.resume.empty(), "--load and --resume exclude each other (--resume restores the weights)");
#ifndef XGRAD_WITH_MPI
  need(!c.distributed, "--distributed needs MPI, but this build has none (XGRAD_WITH_MPI is off): install an MPI "
                       "(Debian: libopenmpi-dev openmpi-bin) and reconfigure");
#endif
  in_range("warmup", c.warmup, 0.0, 1.0);
  need(c.final_lr > 0 && c.final_lr <= 1, cat("--final-lr must be in (0, 1], got ", c.final_lr));
  in_range("label-smoothing", c.label_smoothing, 0.0, 1.0);
  check_outputs(c);  // last: the numbers first, then the file system
}

World make_world(const Config& c) {
  World world;
#ifdef XGRAD_WITH_MPI
  if (c.distributed) {
    world.rank = distributed::rank();
    world.ranks = distributed::world_size();
    world.reduce = [](std::vector<double>& v) { distributed::allreduce_sum(v.data(), v.size()); };
    world.average_buffers = [](const std::vector<NamedBuffer>& b) { distributed::average_buffers(b); };
  }
#endif
  return world;
}

#ifdef XGRAD_WITH_MPI
// Same weights on every rank (after checking every rank built the same model), and an averager
// of the gradients after every backward.
std::unique_ptr<distributed::GradientAverager> make_averager(Layer& model, bool profile) {
  distributed::broadcast_parameters(model.parameters());
  auto averager = std::make_unique<distributed::GradientAverager>(model.parameters());
  averager->set_wait_timing(profile);  // --profile separates waiting for other ranks
  return averager;
}

// Prints what the gradient averaging cost per step; returns the share of the training time
// spent inside MPI_Allreduce.
double report_averaging(const distributed::GradientAverager& averager, double train_seconds, bool profile) {
  if (train_seconds <= 0 || averager.calls() == 0) return 0.0;
  const double calls = static_cast<double>(averager.calls());
  const double share = averager.communication_seconds() / train_seconds;
  std::printf("gradient averaging: %zu floats in %zu bucket(s) per step; MPI_Allreduce %.2f ms of a %.1f ms step "
              "(%.1f%%); the whole averaging %.1f%%\n",
              averager.total_floats(), averager.buckets_per_call(), 1e3 * averager.communication_seconds() / calls,
              1e3 * train_seconds / calls, 100 * share, 100 * averager.total_seconds() / train_seconds);
  if (profile) {
    std::printf("  of which waiting at a barrier for the slowest rank: %.2f ms per step (%.1f%%)\n",
                1e3 * averager.wait_seconds() / calls, 100 * averager.wait_seconds() / train_seconds);
  }
  return share;
}
#endif

// The leader's end of a run: checkpoint, metrics, plot and the summary lines.
void finish(const Config& c, Layer& model, double train_seconds, std::size_t images,
            const std::vector<EpochRecord>& history, examples::RunResults results) {
  results.train_seconds = train_seconds;
  results.images_per_second = results.train_seconds > 0 ? static_cast<double>(images) / results.train_seconds : 0.0;
  if (!history.empty()) results.final_loss = history.back().train_loss;
  results.target_met = results.test_accuracy >= results.target_accuracy &&
                       results.train_seconds <= results.target_seconds && c.epochs > 0;
  if (!c.save.empty()) {
    save_checkpoint(model, c.save);
    std::printf("saved checkpoint %s\n", c.save.c_str());
  }
  if (!c.metrics.empty()) {
    const auto csv = examples::write_metrics(c.metrics, c, results, history);
    std::printf("metrics written to %s and %s\n", c.metrics.c_str(), csv.string().c_str());
  }
  if (!c.plot.empty()) examples::write_plot(c.plot, history);
  std::printf("test accuracy %.2f%% after %lld epoch%s, %.1f s of training, %.0f images/s (target: >= %g%% within "
              "%g s: %s)\n",
              100 * results.test_accuracy, c.epochs, c.epochs == 1 ? "" : "s", results.train_seconds,
              results.images_per_second, 100 * results.target_accuracy, results.target_seconds,
              results.target_met ? "met" : "not met");
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  std::printf("peak resident memory %.0f MB\n", static_cast<double>(usage.ru_maxrss) / 1024.0);
}

// The data of a run: the synthetic sets, or Fashion-MNIST's splits; and what Training gets of it.
struct RunData {
  std::unique_ptr<data::SyntheticShapes> synthetic_train, synthetic_test;
  std::unique_ptr<examples::FashionMnistData> fashion;
  examples::TrainingData training;
  const data::Dataset* test_set = nullptr;
  std::vector<std::size_t> test;
  std::vector<std::string> class_names;
};

std::vector<std::size_t> all_of(std::size_t n) {
  std::vector<std::size_t> v(n);
  std::iota(v.begin(), v.end(), std::size_t{0});
  return v;
}

RunData load_data(const Config& c, const World& world, Layer& model) {
  RunData d;
  const auto start = Clock::now();
  const auto seed = static_cast<std::uint64_t>(c.seed);
  const auto classes = static_cast<std::size_t>(c.classes);
  auto& t = d.training;
  if (c.dataset == "fashion-mnist") {
    d.fashion = std::make_unique<examples::FashionMnistData>(examples::load_fashion_mnist(
        c.data_dir, static_cast<std::size_t>(c.val_size), static_cast<std::size_t>(c.train_size),
        static_cast<std::size_t>(c.test_size), seed));
    const examples::FashionMnistData& f = *d.fashion;
    t = {&f.train_set, f.train, examples::fashion_mnist_augmentation(static_cast<std::size_t>(c.crop_padding), c.random_erasing), 1,
         &f.train_set, f.val, examples::fashion_mnist_normalize(), static_cast<std::size_t>(c.batch_size), true};
    d.test_set = &f.test_set;
    d.test = f.test;
    d.class_names = data::fashion_mnist_classes();
  } else {
    // Train and test sets come from different seeds.
    const std::size_t side = examples::input_side(c.preset);
    d.synthetic_train = std::make_unique<data::SyntheticShapes>(static_cast<std::size_t>(c.train_size), side, classes,
                                                                seed * 2 + 1000003);
    d.synthetic_test = std::make_unique<data::SyntheticShapes>(static_cast<std::size_t>(c.test_size), side, classes,
                                                               seed * 2 + 2000003);
    const std::size_t eval_batch = c.preset == "mini" ? std::max<std::size_t>(static_cast<std::size_t>(c.batch_size), 250)
                                                      : static_cast<std::size_t>(c.batch_size);
    t = {d.synthetic_train.get(), all_of(d.synthetic_train->size()), nullptr, 0,
         d.synthetic_test.get(), all_of(d.synthetic_test->size()), nullptr, eval_batch, false};
    d.test_set = d.synthetic_test.get();
    d.test = t.eval;
    for (std::size_t i = 0; i < classes; ++i) d.class_names.push_back(data::SyntheticShapes::class_name(i));
  }
  if (world.leader()) {
    std::size_t parameter_count = 0;
    for (const auto& p : model.parameters()) parameter_count += p.variable.size();
    const Shape image = t.train_set->image_shape();
    const std::string val = t.keep_best ? std::to_string(t.eval.size()) + " validation / " : "";
    std::printf("alexnet_example: preset %s (%zu parameters), %s (%s in %.1f s): %zu train / %s%zu test images of "
                "%s, batch %lld, %lld threads\n",
                c.preset.c_str(), parameter_count, t.train_set->name().c_str(), d.fashion ? "read" : "generated",
                std::chrono::duration<double>(Clock::now() - start).count(), t.train.size(), val.c_str(),
                d.test.size(), shape_str(t.train_set->image_shape()).c_str(), c.batch_size, c.threads);
    if (c.distributed) {
      std::printf("distributed: %d ranks x %lld threads, %lld images per rank and step\n", world.ranks, c.threads,
                  c.batch_size / world.ranks);
    }
    const BlasKernels& kernels = blas_kernels();
    std::printf("OpenBLAS kernels: %s (%s)\n", kernels.core.c_str(), kernels.note.c_str());
  }
  return d;
}

int run(const Config& c) {
  set_num_threads(static_cast<int>(c.threads));
  manual_seed(static_cast<std::uint64_t>(c.seed));
  const World world = make_world(c);
  XGRAD_CHECK(c.batch_size % world.ranks == 0, "--batch-size (", c.batch_size, ") must be a multiple of the number of ",
              "ranks (", world.ranks, ") with --distributed: it is the global batch, split evenly over the ranks");
  XGRAD_CHECK(c.train_size >= world.ranks, "--train-size (", c.train_size, ") must be at least the number of ranks (",
              world.ranks, ")");

  auto model = examples::make_alexnet_model(c.preset, static_cast<std::size_t>(c.classes), c.dropout,
                                            c.batch_norm);
  if (!c.load.empty() && world.leader()) {  // a distributed run copies rank 0's weights to the others below
    load_checkpoint(*model, c.load);
    std::printf("loaded checkpoint %s\n", c.load.c_str());
  }
  std::function<void()> average_gradients = [] {};
#ifdef XGRAD_WITH_MPI
  const auto averager = c.distributed ? make_averager(*model, c.profile) : nullptr;
  if (averager) average_gradients = [a = averager.get()] { a->average(); };
#endif
  const RunData d = load_data(c, world, *model);
  if (c.profile) set_profiling(true);

  examples::Training training(c, {c.checkpoint_dir, c.resume, c.checkpoint_every}, world, *model, d.training,
                              average_gradients);
  std::vector<EpochRecord> history;
  if (!training.run(history)) return 1;
  if (d.training.keep_best && training.best_epoch() > 0 && world.leader()) {
    std::printf("model selection: the %s of epoch %d (validation accuracy %.2f%%)\n",
                training.best_is_average() ? "moving average of the weights" : "weights", training.best_epoch(),
                100 * training.best_accuracy());
  }
  // The test set, once: per class, and as a confusion matrix for a data set of few classes.
  const auto confusion = examples::confusion_matrix(*model, *d.test_set, d.test, d.training.eval_batch,
                                                    d.training.eval_transform, world, c.eval_flip);
  examples::RunResults results;
  results.ranks = world.ranks;
  results.test_accuracy = examples::confusion_accuracy(confusion);
  if (d.fashion) {
    results.target_accuracy = 0.935;  // >= 93.5% within 10 minutes of training on 2 cores
    results.target_seconds = 600.0;
  }
  if (!world.leader()) return 0;  // below: reports and files, written by rank 0 alone
  if (d.fashion) examples::print_confusion_matrix(confusion, d.class_names);
  else examples::print_class_accuracies(examples::class_accuracies(confusion), d.class_names);
  if (c.profile) {
    set_profiling(false);
    examples::print_profile();
  }
#ifdef XGRAD_WITH_MPI
  if (averager) results.communication_share = report_averaging(*averager, training.seconds(), c.profile);
#endif
  finish(c, *model, training.seconds(), training.images(), history, results);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  Config config;
  const po::options_description options = make_options(config);
  const char* usage = "usage: alexnet_example [options]";
  try {
    po::variables_map vm;
    // No positional arguments: a stray word is an error, not silently ignored.
    po::store(po::command_line_parser(argc, argv).options(options).positional({}).run(), vm);
    if (vm.count("help")) {
      std::cout << usage << "\n\nTrains an AlexNet-style network on synthetic pattern images or Fashion-MNIST.\n\n"
                << options << "\n" << kFashionMnistRecipe;
      return 0;
    }
    po::notify(vm);
    if (config.dataset == "fashion-mnist") apply_fashion_mnist_defaults(config, vm);
    validate(config);
  } catch (const po::error& e) {
    std::cerr << "alexnet_example: " << e.what() << "\n" << usage << "\n" << options;
    return 2;
  } catch (const UsageError& e) {
    std::cerr << "alexnet_example: " << e.message << "\n" << usage << "\n" << options;
    return 2;
  }
  // Each step's activations and gradients reuse the memory the last step freed (xgrad/core/memory.hpp).
  retain_freed_memory();
#ifdef XGRAD_WITH_MPI
  if (config.distributed) {
    // An exception on any rank prints "rank R: error: ..." and ends the whole job.
    distributed::Session mpi(argc, argv);
    return distributed::run_or_abort([&] { return run(config); });
  }
#endif
  try {
    return run(config);
  } catch (const std::exception& e) {
    std::fflush(stdout);
    std::cerr << "\nalexnet_example: error: " << e.what() << "\n";
    return 1;
  }
}
