#include <xgrad/layers/checkpoint.hpp>

#include <fcntl.h>
#include <limits.h>  // NAME_MAX
#include <stdio.h>  // renameat2, RENAME_EXCHANGE (glibc >= 2.28)
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <set>
#include <system_error>
#include <vector>

#include <xgrad/core/error.hpp>
#include <xgrad/core/npy.hpp>

namespace fs = std::filesystem;

namespace xgrad {

namespace {

// "dir/" and "dir" name the same checkpoint.
fs::path normalised(const std::string& dir, const char* who) {
  XGRAD_CHECK(!dir.empty(), who, ": the checkpoint directory name is empty");
  fs::path p(dir);
  if (p.filename().empty()) p = p.parent_path();
  return p;
}

// One file of a checkpoint: a parameter's value or a buffer, by dotted path.
struct Entry {
  std::string name;
  Variable parameter;       // defined for a parameter
  Tensor* buffer = nullptr;  // else the buffer
  const Tensor& read() const { return parameter.defined() ? parameter.value() : *buffer; }
  // Loading into a parameter changes it in place (a new version of the Variable).
  Tensor& write() { return parameter.defined() ? parameter.mutable_value() : *buffer; }
};

std::string file_name(const Entry& e) { return e.name + ".npy"; }

// The model's parameters, then its buffers; names checked to be usable and unique file names.
std::vector<Entry> entries(Layer& model, const char* who) {
  std::vector<Entry> all;
  for (auto& p : model.parameters()) all.push_back({p.name, p.variable, nullptr});
  for (auto& b : model.buffers()) all.push_back({b.name, Variable(), b.tensor});
  std::set<std::string> seen;
  for (const auto& e : all) {
    detail::check_file_name(who, "parameter or buffer", e.name, file_name(e));
    XGRAD_CHECK(seen.insert(e.name).second, who, ": two parameters or buffers are both named '", e.name, "'");
  }
  return all;
}

// Flushes a file or directory to stable storage.
void fsync_path(const fs::path& path, bool directory) {
  const int fd = ::open(path.c_str(), directory ? (O_RDONLY | O_DIRECTORY) : O_RDONLY);
  XGRAD_CHECK(fd >= 0, "checkpoint: cannot open ", path.string(), " to sync it: ", std::strerror(errno));
  const int rc = ::fsync(fd);
  const int saved = errno;
  ::close(fd);
  XGRAD_CHECK(rc == 0, "checkpoint: fsync of ", path.string(), " failed: ", std::strerror(saved));
}

void rename_or_throw(const fs::path& from, const fs::path& to) {
  std::error_code ec;
  fs::rename(from, to, ec);
  XGRAD_CHECK(!ec, "checkpoint: cannot rename ", from.string(), " to ", to.string(), ": ", ec.message());
}

// Puts the complete directory `fresh` in place of `target` (which may not exist).
void replace_directory(const fs::path& fresh, const fs::path& target, const fs::path& parent) {
  std::error_code ec;
  if (!fs::exists(target, ec)) {
    rename_or_throw(fresh, target);
  } else {
    XGRAD_CHECK(fs::is_directory(target, ec), "save_checkpoint: ", target.string(), " exists and is not a directory");
#ifdef RENAME_EXCHANGE
    // One atomic step: afterwards `fresh` names the previous checkpoint.
    if (::renameat2(AT_FDCWD, fresh.c_str(), AT_FDCWD, target.c_str(), RENAME_EXCHANGE) == 0) {
      fs::remove_all(fresh, ec);
      fsync_path(parent, true);
      return;
    }
#endif
    // Fallback for filesystems without an atomic exchange: between the two renames the
    // previous checkpoint survives as "<dir>.old-<pid>".
    fs::path old = target;
    old += ".old-" + std::to_string(::getpid());
    fs::remove_all(old, ec);
    rename_or_throw(target, old);
    try {
      rename_or_throw(fresh, target);
    } catch (...) {
      fs::rename(old, target, ec);  // put the previous checkpoint back
      throw;
    }
    fs::remove_all(old, ec);
  }
  fsync_path(parent, true);
}

}  // namespace

void save_checkpoint(Layer& model, const std::string& dir) { save_checkpoint(model, dir, nullptr); }

namespace detail {

void write_directory(const std::string& dir, const char* who, const std::vector<DirectoryFile>& files,
                     const CheckpointFileHook& after_each_file) {
  const fs::path target = normalised(dir, who);
  const fs::path parent = target.has_parent_path() ? target.parent_path() : fs::path(".");
  std::error_code ec;
  fs::create_directories(parent, ec);
  XGRAD_CHECK(!ec, who, ": cannot create the parent directory ", parent.string(), " of ", target.string(), ": ",
              ec.message());
  XGRAD_CHECK(!fs::exists(target, ec) || fs::is_directory(target, ec), who, ": ", target.string(),
              " exists and is not a directory");

  fs::path tmp = target;
  tmp += ".tmp-" + std::to_string(::getpid());
  fs::remove_all(tmp, ec);  // a leftover of an earlier save by a process with our pid
  fs::create_directory(tmp, ec);
  XGRAD_CHECK(!ec, who, ": cannot create the temporary directory ", tmp.string(), ": ", ec.message());
  try {
    std::set<fs::path> subdirectories;
    std::size_t written = 0;
    for (const auto& f : files) {
      const fs::path file = tmp / f.name;
      if (file.parent_path() != tmp && subdirectories.insert(file.parent_path()).second) {
        fs::create_directories(file.parent_path(), ec);
        XGRAD_CHECK(!ec, who, ": cannot create ", file.parent_path().string(), ": ", ec.message());
      }
      f.write(file.string());
      fsync_path(file, false);
      ++written;
      if (after_each_file) after_each_file(f.name, written);
    }
    for (const auto& d : subdirectories) fsync_path(d, true);
    fsync_path(tmp, true);
    replace_directory(tmp, target, parent);
  } catch (...) {
    fs::remove_all(tmp, ec);
    throw;
  }
}

void fsync_directory(const std::string& dir) { fsync_path(dir, true); }

void check_file_name(const char* who, const char* what, const std::string& name, const std::string& file) {
  // The name as a message shows it: a NUL as \0, a long name cut short.
  std::string shown;
  for (const char c : name.substr(0, 64)) shown += c == '\0' ? std::string("\\0") : std::string(1, c);
  if (name.size() > 64) shown += cat("... (", name.size(), " bytes)");
  const char* why = nullptr;
  if (name.empty()) why = "it is empty";
  else if (name == "." || name == "..") why = "it names a directory";
  else if (name.find('/') != std::string::npos) why = "it contains a '/'";
  else if (name.find('\0') != std::string::npos) why = "it contains a NUL byte";
  else if (file.size() > NAME_MAX) why = "its file name would be longer than NAME_MAX (255 bytes)";
  XGRAD_CHECK(why == nullptr, who, ": ", what, " name '", shown, "' cannot be used as a file name: ", why);
}

}  // namespace detail

std::vector<detail::DirectoryFile> detail::checkpoint_files(Layer& model, const char* who, const std::string& prefix) {
  std::vector<DirectoryFile> files;
  for (const auto& e : entries(model, who)) {
    files.push_back({prefix + file_name(e), [e](const std::string& path) { save_npy<float>(path, e.read()); }});
  }
  return files;
}

void save_checkpoint(Layer& model, const std::string& dir, const CheckpointFileHook& after_each_file) {
  detail::write_directory(dir, "save_checkpoint", detail::checkpoint_files(model, "save_checkpoint"), after_each_file);
}

void load_checkpoint(Layer& model, const std::string& dir) {
  auto params = entries(model, "load_checkpoint");
  const fs::path root = normalised(dir, "load_checkpoint");
  const std::string where = "load_checkpoint(" + root.string() + ")";

  std::error_code ec;
  const auto status = fs::status(root, ec);
  XGRAD_CHECK(fs::exists(status), where, ": the checkpoint directory does not exist");
  XGRAD_CHECK(fs::is_directory(status), where, ": not a directory");

  // Every .npy file present. An unreadable directory fails here.
  std::set<std::string> present;
  fs::directory_iterator it(root, ec);
  XGRAD_CHECK(!ec, where, ": cannot read the directory: ", ec.message());
  for (; it != fs::directory_iterator(); it.increment(ec)) {
    XGRAD_CHECK(!ec, where, ": cannot read the directory: ", ec.message());
    if (it->path().extension() == ".npy") present.insert(it->path().filename().string());
  }
  XGRAD_CHECK(!ec, where, ": cannot read the directory: ", ec.message());

  std::string missing, extra;
  std::set<std::string> expected;
  for (const auto& p : params) {
    expected.insert(file_name(p));
    if (!present.count(file_name(p))) missing += (missing.empty() ? "" : ", ") + file_name(p);
  }
  for (const auto& name : present) {
    if (!expected.count(name)) extra += (extra.empty() ? "" : ", ") + name;
  }
  XGRAD_CHECK(missing.empty(), where, ": missing parameter or buffer file(s): ", missing);
  XGRAD_CHECK(extra.empty(), where, ": unexpected file(s) not matching any parameter or buffer: ", extra);

  // Read and validate everything before touching the model.
  std::vector<Tensor> loaded;
  loaded.reserve(params.size());
  for (const auto& p : params) {
    const std::string path = (root / file_name(p)).string();
    try {
      const NpyHeader header = read_npy_header(path);
      XGRAD_CHECK(header.dtype == "<f4", "dtype is '", header.dtype, "', expected '<f4' (float32)");
      const Shape expected_shape(p.read().shape().begin(), p.read().shape().end());
      XGRAD_CHECK(header.shape == expected_shape, "shape is ", shape_str(header.shape), ", ", p.name, " expects ",
                  shape_str(expected_shape));
      loaded.push_back(load_npy<float>(path));
    } catch (const Error& e) {
      throw Error(cat(where, ": ", file_name(p), ": ", e.what()));
    }
  }
  for (std::size_t i = 0; i < params.size(); ++i) params[i].write() = std::move(loaded[i]);
}

}  // namespace xgrad
