#include <xgrad/optim/training_state.hpp>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <map>
#include <system_error>

#include <xgrad/core/error.hpp>
#include <xgrad/core/npy.hpp>

namespace fs = std::filesystem;

namespace xgrad::optim {

namespace {

using Words = xt::xarray<std::int64_t>;  // 64-bit words of state, stored as int64 (bit for bit)

Words words(const std::vector<std::uint64_t>& values) {
  Words out = Words::from_shape({values.size()});
  for (std::size_t i = 0; i < values.size(); ++i) out(i) = static_cast<std::int64_t>(values[i]);
  return out;
}

std::vector<std::uint64_t> unsigned_words(const Words& w) {
  std::vector<std::uint64_t> out(w.size());
  for (std::size_t i = 0; i < w.size(); ++i) out[i] = static_cast<std::uint64_t>(w.data()[i]);
  return out;
}

std::uint64_t bits_of(double v) {
  std::uint64_t u;
  std::memcpy(&u, &v, sizeof u);
  return u;
}

double double_of(std::uint64_t u) {
  double v;
  std::memcpy(&v, &u, sizeof v);
  return v;
}

// An Rng's state as 6 words: s[0..3], has_spare, the spare's bits.
std::vector<std::uint64_t> rng_words(const RngState& s) {
  return {s.s[0], s.s[1], s.s[2], s.s[3], s.has_spare ? 1u : 0u, bits_of(s.spare)};
}

std::string layer_file(const std::string& path) { return path.empty() ? "layer.npy" : "layer." + path + ".npy"; }

// The layer at a dotted path below model ("" is the model itself), or null.
Layer* find_layer(Layer& model, const std::string& path) {
  if (path.empty()) return &model;
  const std::size_t dot = path.find('.');
  const std::string head = path.substr(0, dot);
  for (const auto& child : model.named_children()) {
    if (child.name == head) return dot == std::string::npos ? child.layer.get() : find_layer(*child.layer, path.substr(dot + 1));
  }
  return nullptr;
}

constexpr const char* kStepPrefix = "step-";

// "step-000000000123" for step 123: names sort in step order.
std::string step_name(std::uint64_t step) {
  char name[32];
  std::snprintf(name, sizeof name, "%s%012llu", kStepPrefix, static_cast<unsigned long long>(step));
  return name;
}

// The complete checkpoints under root, oldest first (temporary directories are not).
std::vector<fs::path> complete_checkpoints(const fs::path& root) {
  std::vector<fs::path> found;
  std::error_code ec;
  if (!fs::is_directory(root, ec)) return found;
  for (fs::directory_iterator it(root, ec), end; !ec && it != end; it.increment(ec)) {
    const std::string name = it->path().filename().string();
    const bool digits = name.size() == 5 + 12 && name.compare(0, 5, kStepPrefix) == 0 &&
                        std::all_of(name.begin() + 5, name.end(), [](char c) { return c >= '0' && c <= '9'; });
    if (digits && it->is_directory(ec)) found.push_back(it->path());
  }
  std::sort(found.begin(), found.end());
  return found;
}

template <class T>
xt::xarray<T> load_checked(const fs::path& file, const char* what, const std::string& where) {
  try {
    return load_npy<T>(file.string());
  } catch (const Error& e) {
    throw Error(cat(where, ": ", what, " ", file.filename().string(), ": ", e.what()));
  }
}

}  // namespace

TrainingCheckpoints::TrainingCheckpoints(std::string root, std::size_t keep) : root_(std::move(root)), keep_(keep) {
  XGRAD_CHECK(!root_.empty(), "TrainingCheckpoints: the checkpoint directory name is empty");
  XGRAD_CHECK(keep_ >= 1, "TrainingCheckpoints: keep must be >= 1, got ", keep_);
}

std::string TrainingCheckpoints::save(Layer& model, const SGD& optimizer, const TrainingProgress& progress,
                                      const CheckpointFileHook& after_each_file) const {
  const char* who = "TrainingCheckpoints::save";
  std::vector<detail::DirectoryFile> files = detail::checkpoint_files(model, who, "model/");
  const auto& params = optimizer.parameters();
  for (std::size_t i = 0; i < params.size(); ++i) {
    const std::string file = "momentum." + params[i].name + ".npy";
    detail::check_file_name(who, "parameter", params[i].name, file);  // even before the first step (no buffer yet)
    const Tensor* buffer = optimizer.momentum_buffer(i);
    if (buffer == nullptr) continue;  // no step with momentum yet
    files.push_back({"optimizer/" + file, [buffer](const std::string& path) { save_npy<float>(path, *buffer); }});
  }
  auto add_words = [&files](std::string name, std::vector<std::uint64_t> values) {
    files.push_back({"progress/" + std::move(name), [w = words(values)](const std::string& path) {
                       save_npy<std::int64_t>(path, w);
                     }});
  };
  add_words("counters.npy", {progress.epoch, progress.step});
  add_words("order.npy", std::vector<std::uint64_t>(progress.order.begin(), progress.order.end()));
  for (const auto& [name, state] : progress.rngs) {
    detail::check_file_name(who, "generator", name, "rng." + name + ".npy");
    add_words("rng." + name + ".npy", rng_words(state));
  }
  for (const auto& [name, tensor] : progress.tensors) {
    detail::check_file_name(who, "tensor", name, "tensor." + name + ".npy");
    files.push_back({"progress/tensor." + name + ".npy", [t = &tensor](const std::string& path) {
                       save_npy<float>(path, *t);
                     }});
  }
  for (auto& [path, state] : model.extra_states()) {
    if (!path.empty()) detail::check_file_name(who, "layer", path, layer_file(path));
    add_words(layer_file(path), state);
  }

  const fs::path dir = fs::path(root_) / step_name(progress.step);
  detail::write_directory(dir.string(), who, files, after_each_file);
  // Only the newest `keep` stay; and leftovers of interrupted saves go.
  std::error_code ec;
  const auto all = complete_checkpoints(root_);
  for (std::size_t i = 0; i + keep_ < all.size(); ++i) fs::remove_all(all[i], ec);
  for (fs::directory_iterator it(root_, ec), end; !ec && it != end; it.increment(ec)) {
    const std::string name = it->path().filename().string();
    if (name.find(".tmp-") != std::string::npos || name.find(".old-") != std::string::npos) fs::remove_all(it->path(), ec);
  }
  detail::fsync_directory(root_);
  return dir.string();
}

std::string TrainingCheckpoints::latest() const {
  const auto all = complete_checkpoints(root_);
  return all.empty() ? std::string() : all.back().string();
}

TrainingProgress TrainingCheckpoints::load(const std::string& dir, Layer& model, SGD& optimizer) const {
  const fs::path root(dir);
  const std::string where = "TrainingCheckpoints::load(" + root.string() + ")";
  std::error_code ec;
  XGRAD_CHECK(fs::is_directory(root, ec), where, ": not a checkpoint directory");
  const fs::path progress_dir = root / "progress";

  // Read and check everything the model checkpoint does not hold, before changing anything.
  TrainingProgress progress;
  const auto counters = unsigned_words(load_checked<std::int64_t>(progress_dir / "counters.npy", "progress", where));
  XGRAD_CHECK(counters.size() == 2, where, ": progress/counters.npy must hold {epoch, step}, got ", counters.size(),
              " values");
  progress.epoch = counters[0];
  progress.step = counters[1];
  for (std::uint64_t v : unsigned_words(load_checked<std::int64_t>(progress_dir / "order.npy", "progress", where))) {
    progress.order.push_back(static_cast<std::size_t>(v));
  }
  std::map<std::string, fs::path> rng_files, tensor_files;
  for (fs::directory_iterator it(progress_dir, ec), end; !ec && it != end; it.increment(ec)) {
    const std::string name = it->path().filename().string();
    if (it->path().extension() != ".npy") continue;
    if (name.size() > 8 && name.compare(0, 4, "rng.") == 0) rng_files[name.substr(4, name.size() - 8)] = it->path();
    if (name.size() > 11 && name.compare(0, 7, "tensor.") == 0) {
      tensor_files[name.substr(7, name.size() - 11)] = it->path();
    }
  }
  XGRAD_CHECK(!ec, where, ": cannot read ", progress_dir.string(), ": ", ec.message());
  for (const auto& [name, file] : rng_files) {
    const auto w = unsigned_words(load_checked<std::int64_t>(file, "generator", where));
    XGRAD_CHECK(w.size() == 6, where, ": ", file.filename().string(), " must hold 6 words, got ", w.size());
    RngState state{{w[0], w[1], w[2], w[3]}, w[4] != 0, double_of(w[5])};
    try {
      Rng check;
      check.set_state(state);  // refuses a state no generator can be in
    } catch (const Error& e) {
      throw Error(cat(where, ": generator ", file.filename().string(), ": ", e.what()));
    }
    progress.rngs.emplace_back(name, state);
  }
  for (const auto& [name, file] : tensor_files) {
    progress.tensors.emplace_back(name, load_checked<float>(file, "tensor", where));
  }
  std::vector<std::pair<Layer*, std::vector<std::uint64_t>>> extra;
  for (const auto& [path, current] : model.extra_states()) {
    const auto saved = unsigned_words(load_checked<std::int64_t>(progress_dir / layer_file(path), "layer state", where));
    XGRAD_CHECK(saved.size() == current.size(), where, ": ", layer_file(path), " holds ", saved.size(),
                " words, the layer '", path, "' has ", current.size());
    extra.emplace_back(find_layer(model, path), saved);
  }
  const auto& params = optimizer.parameters();
  std::vector<Tensor> momentum(params.size());
  std::vector<bool> has_momentum(params.size(), false);
  for (std::size_t i = 0; i < params.size(); ++i) {
    const fs::path file = root / "optimizer" / ("momentum." + params[i].name + ".npy");
    // Absent: saved before the first step with momentum. A dangling link is not absent.
    if (!fs::exists(fs::symlink_status(file, ec))) continue;
    momentum[i] = load_checked<float>(file, "optimizer state", where);
    has_momentum[i] = true;
    const Shape shape(momentum[i].shape().begin(), momentum[i].shape().end());
    XGRAD_CHECK(shape == params[i].variable.shape(), where, ": ", file.filename().string(), " has shape ",
                shape_str(shape), ", the parameter ", shape_str(params[i].variable.shape()));
  }

  try {
    load_checkpoint(model, (root / "model").string());  // validates all before changing any parameter
  } catch (const Error& e) {
    throw Error(cat(where, ": ", e.what()));
  }
  for (std::size_t i = 0; i < params.size(); ++i) {
    if (has_momentum[i]) optimizer.set_momentum_buffer(i, std::move(momentum[i]));
    else optimizer.clear_momentum_buffer(i);
  }
  for (auto& [layer, state] : extra) layer->set_extra_state(state);
  return progress;
}

}  // namespace xgrad::optim
