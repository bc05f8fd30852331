#include "examples/report.hpp"

#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <fstream>

#include <nlohmann/json.hpp>

#include <xgrad/autograd/profile.hpp>
#include <xgrad/autograd/tape.hpp>
#include <xgrad/core/error.hpp>
#include <xgrad/data/data_loader.hpp>

namespace xgrad::examples {

std::filesystem::path csv_path(const std::string& metrics) {
  std::filesystem::path p(metrics);
  if (p.extension() == ".csv") return p.replace_extension(".epochs.csv");
  return p.replace_extension(".csv");
}

namespace {

void write_csv(const std::filesystem::path& path, const std::vector<EpochRecord>& history) {
  std::ofstream out(path);
  XGRAD_CHECK(out.good(), "cannot write ", path.string());
  out << "epoch,train_loss,train_accuracy,test_accuracy,seconds\n";
  char line[256];
  for (const auto& r : history) {
    std::snprintf(line, sizeof line, "%d,%.6f,%.6f,%.6f,%.3f\n", r.epoch, r.train_loss, r.train_accuracy,
                  r.test_accuracy, r.seconds);
    out << line;
  }
  XGRAD_CHECK(out.good(), "writing ", path.string(), " failed");
}

void write_json(const std::string& path, const RunSettings& s, const RunResults& r) {
  nlohmann::ordered_json j;  // keys in this order in the file
  j["preset"] = s.preset;
  j["classes"] = s.classes;
  j["epochs"] = s.epochs;
  j["batch_size"] = s.batch_size;
  j["threads"] = s.threads;
  j["ranks"] = r.ranks;
  j["train_size"] = s.train_size;
  j["test_size"] = s.test_size;
  j["lr"] = s.lr;
  j["momentum"] = s.momentum;
  j["weight_decay"] = s.weight_decay;
  j["dropout"] = s.dropout;
  j["batch_norm"] = s.batch_norm;
  j["nesterov"] = s.nesterov;
  j["warmup"] = s.warmup;
  j["final_lr"] = s.final_lr;
  j["label_smoothing"] = s.label_smoothing;
  j["eval_flip"] = s.eval_flip;
  j["ema_decay"] = s.ema_decay;
  j["seed"] = s.seed;
  j["test_accuracy"] = r.test_accuracy;
  j["train_seconds"] = r.train_seconds;
  j["images_per_second"] = r.images_per_second;
  j["communication_share"] = r.communication_share;
  j["final_loss"] = std::isfinite(r.final_loss) ? nlohmann::ordered_json(r.final_loss) : nullptr;
  j["target_accuracy"] = r.target_accuracy;
  j["target_seconds"] = r.target_seconds;
  j["target_met"] = r.target_met;
  std::ofstream out(path);
  XGRAD_CHECK(out.good(), "cannot write ", path);
  out << j.dump(2) << '\n';
  XGRAD_CHECK(out.good(), "writing ", path, " failed");
}

// gnuplot's single-quoted strings escape a quote by doubling it.
std::string gnuplot_quoted(std::string s) {
  for (std::size_t pos = 0; (pos = s.find('\'', pos)) != std::string::npos; pos += 2) s.insert(pos, "'");
  return "'" + s + "'";
}

// A copy of images (..., W) with every row reversed: each image's horizontal mirror.
Tensor mirror_last_dimension(const Tensor& images) {
  Tensor out = images;  // same shape; overwritten below
  const std::size_t w = images.shape().back();
  const std::size_t rows = images.size() / w;
  const float* in = images.data();
  float* o = out.data();
  for (std::size_t r = 0; r < rows; ++r) std::reverse_copy(in + r * w, in + (r + 1) * w, o + r * w);
  return out;
}

}  // namespace

std::size_t count_correct(const Tensor& logits, const std::vector<std::int64_t>& labels) {
  const std::size_t n = logits.shape()[0], k = logits.shape()[1];
  std::size_t correct = 0;
  for (std::size_t i = 0; i < n; ++i) {
    const float* row = logits.data() + i * k;
    const auto best = static_cast<std::int64_t>(std::max_element(row, row + k) - row);
    correct += best == labels[i];
  }
  return correct;
}

std::vector<std::size_t> confusion_matrix(Layer& model, const data::Dataset& data,
                                          const std::vector<std::size_t>& indices, std::size_t batch,
                                          const std::shared_ptr<const data::Transform>& transform, const World& world,
                                          bool flip) {
  const std::size_t k = data.classes();
  std::vector<std::size_t> mine;  // this rank's share of indices
  for (std::size_t i = static_cast<std::size_t>(world.rank); i < indices.size(); i += static_cast<std::size_t>(world.ranks)) {
    mine.push_back(indices[i]);
  }
  std::vector<double> counts(k * k, 0.0);
  model.eval();
  if (!mine.empty()) {
    NoGradGuard no_grad;
    data::DataLoader loader(data, data::DataLoaderOptions(batch).workers(1).sampler([mine](std::uint64_t) { return mine; }),
                            transform);
    auto epoch = loader.epoch(0);
    while (auto b = epoch.next()) {
      Tensor mirrored;
      if (flip) mirrored = mirror_last_dimension(b->images);
      Tensor logits = model(Variable(std::move(b->images))).value();
      if (flip) {
        const Tensor other = model(Variable(std::move(mirrored))).value();
        float* out = logits.data();
        const float* add = other.data();
        for (std::size_t i = 0; i < logits.size(); ++i) out[i] += add[i];
      }
      const std::size_t cols = logits.shape()[1];
      for (std::size_t j = 0; j < b->labels.size(); ++j) {
        const float* row = logits.data() + j * cols;
        const auto predicted = static_cast<std::size_t>(std::max_element(row, row + cols) - row);
        counts[static_cast<std::size_t>(b->labels[j]) * k + predicted] += 1;
      }
    }
  }
  model.train();
  world.reduce(counts);
  std::vector<std::size_t> confusion(k * k);
  for (std::size_t i = 0; i < k * k; ++i) confusion[i] = static_cast<std::size_t>(counts[i]);
  return confusion;
}

double confusion_accuracy(const std::vector<std::size_t>& confusion) {
  const auto k = static_cast<std::size_t>(std::lround(std::sqrt(static_cast<double>(confusion.size()))));
  std::size_t correct = 0, total = 0;
  for (std::size_t i = 0; i < k; ++i) {
    for (std::size_t j = 0; j < k; ++j) total += confusion[i * k + j];
    correct += confusion[i * k + i];
  }
  return total == 0 ? 0.0 : static_cast<double>(correct) / static_cast<double>(total);
}

std::vector<double> class_accuracies(const std::vector<std::size_t>& confusion) {
  const auto k = static_cast<std::size_t>(std::lround(std::sqrt(static_cast<double>(confusion.size()))));
  std::vector<double> per_class(k, 0.0);
  for (std::size_t i = 0; i < k; ++i) {
    std::size_t total = 0;
    for (std::size_t j = 0; j < k; ++j) total += confusion[i * k + j];
    per_class[i] = total == 0 ? 0.0 : static_cast<double>(confusion[i * k + i]) / static_cast<double>(total);
  }
  return per_class;
}

void print_confusion_matrix(const std::vector<std::size_t>& confusion, const std::vector<std::string>& names) {
  const std::size_t k = names.size();
  XGRAD_CHECK(confusion.size() == k * k, "print_confusion_matrix: ", confusion.size(), " entries for ", k, " classes");
  std::printf("per-class test accuracy:\n");
  for (std::size_t i = 0; i < k; ++i) {
    std::size_t total = 0;
    for (std::size_t j = 0; j < k; ++j) total += confusion[i * k + j];
    std::printf("  %-12s %5.1f%%\n", names[i].c_str(), total ? 100.0 * confusion[i * k + i] / total : 0.0);
  }
  std::printf("confusion matrix (rows: true class, columns: predicted class):\n%14s", "");
  for (std::size_t j = 0; j < k; ++j) std::printf(" %5zu", j);
  std::printf("\n");
  for (std::size_t i = 0; i < k; ++i) {
    std::printf("  %zu %-10.10s", i, names[i].c_str());
    for (std::size_t j = 0; j < k; ++j) std::printf(" %5zu", confusion[i * k + j]);
    std::printf("\n");
  }
}

std::string format_duration(double seconds) {
  if (!std::isfinite(seconds) || seconds < 0) return "?";
  const long s = std::lround(seconds);
  char buf[32];
  if (s >= 3600) std::snprintf(buf, sizeof buf, "%ldh%02ldm", s / 3600, (s / 60) % 60);
  else if (s >= 60) std::snprintf(buf, sizeof buf, "%ldm%02lds", s / 60, s % 60);
  else std::snprintf(buf, sizeof buf, "%lds", s);
  return buf;
}

void print_class_accuracies(const std::vector<double>& per_class, const std::vector<std::string>& names) {
  if (per_class.size() > 20) return;
  std::printf("test accuracy per class:");
  for (std::size_t i = 0; i < per_class.size(); ++i) {
    std::printf("%s %s %.0f%%", i ? "," : "", names[i].c_str(), 100 * per_class[i]);
  }
  std::printf("\n");
}

std::filesystem::path write_metrics(const std::string& path, const RunSettings& settings, const RunResults& results,
                                    const std::vector<EpochRecord>& history) {
  write_json(path, settings, results);
  const std::filesystem::path csv = csv_path(path);
  write_csv(csv, history);
  return csv;
}

bool write_plot(const std::string& png, const std::vector<EpochRecord>& history) {
  if (std::system("command -v gnuplot >/dev/null 2>&1") != 0) {
    std::fprintf(stderr, "alexnet_example: gnuplot is not installed; skipping --plot %s\n", png.c_str());
    return false;
  }
  namespace fs = std::filesystem;
  const fs::path base = fs::temp_directory_path() / ("alexnet_example-" + std::to_string(::getpid()));
  const fs::path data = base.string() + ".dat", script = base.string() + ".gp";
  {
    std::ofstream d(data);
    for (const auto& r : history) {
      d << r.epoch << ' ' << r.train_loss << ' ' << 100 * r.train_accuracy << ' ' << 100 * r.test_accuracy << '\n';
    }
    std::ofstream s(script);
    s << "set terminal pngcairo size 1000,420 font ',10'\n"
      << "set output " << gnuplot_quoted(png) << "\n"
      << "set multiplot layout 1,2 title 'alexnet\\_example: training curves'\n"
      << "set xlabel 'epoch'\nset xtics 1\nset grid\nset key top right\n"
      << "set ylabel 'training loss'\n"
      << "plot " << gnuplot_quoted(data.string()) << " using 1:2 with linespoints title 'train loss'\n"
      << "set ylabel 'accuracy (%)'\nset key bottom right\n"
      << "plot " << gnuplot_quoted(data.string()) << " using 1:3 with linespoints title 'train',"
      << " '' using 1:4 with linespoints title 'test'\n"
      << "unset multiplot\n";
  }
  const std::string command = "gnuplot '" + script.string() + "'";
  const int rc = std::system(command.c_str());
  std::error_code ec;
  fs::remove(data, ec);
  fs::remove(script, ec);
  if (rc != 0) {
    std::fprintf(stderr, "alexnet_example: gnuplot failed (exit status %d); no plot written\n", rc);
    return false;
  }
  std::printf("plot written to %s\n", png.c_str());
  return true;
}

void print_profile() {
  const auto report = profile_report();
  double total_f = 0, total_b = 0;
  for (const auto& e : report) {
    total_f += e.forward_seconds;
    total_b += e.backward_seconds;
  }
  std::printf("\nper-layer time (all training and evaluation calls):\n");
  std::printf("  %-44s %8s %11s %11s %7s\n", "layer", "calls", "forward s", "backward s", "share");
  for (const auto& e : report) {
    const double share = (total_f + total_b) > 0 ? 100 * (e.forward_seconds + e.backward_seconds) / (total_f + total_b) : 0;
    std::printf("  %-44.44s %8zu %11.3f %11.3f %6.1f%%\n", e.name.c_str(), e.calls, e.forward_seconds,
                e.backward_seconds, share);
  }
  std::printf("  %-44s %8s %11.3f %11.3f\n", "total", "", total_f, total_b);
}

}  // namespace xgrad::examples
