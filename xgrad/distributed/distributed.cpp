#include <xgrad/distributed/distributed.hpp>

#include <mpi.h>

#include <algorithm>
#include <chrono>
#include <climits>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <sstream>
#include <utility>

#include <xgrad/core/error.hpp>

namespace xgrad::distributed {
namespace {

void require_init(const char* fn) {
  XGRAD_CHECK(initialized(), "distributed::", fn, ": MPI is not initialised; call distributed::init first");
}

// One line per parameter, "name shape", e.g. "0.weight (24, 3, 5, 5)".
std::vector<std::string> describe(const std::vector<NamedParameter>& parameters) {
  std::vector<std::string> lines;
  lines.reserve(parameters.size());
  for (const auto& p : parameters) lines.push_back(p.name + " " + shape_str(p.variable.shape()));
  return lines;
}

// The same for buffers, e.g. "1.running_mean (96,)".
std::vector<std::string> describe(const std::vector<NamedBuffer>& buffers) {
  std::vector<std::string> lines;
  lines.reserve(buffers.size());
  for (const auto& b : buffers) {
    XGRAD_CHECK(b.tensor != nullptr, "distributed::average_buffers: buffer '", b.name, "' has no tensor");
    lines.push_back(b.name + " " + shape_str(b.tensor->shape()));
  }
  return lines;
}

std::uint64_t fnv1a(const std::vector<std::string>& lines) {
  std::uint64_t h = 0xcbf29ce484222325ull;
  for (const auto& line : lines) {
    for (unsigned char ch : line + "\n") {
      h ^= ch;
      h *= 0x100000001b3ull;
    }
  }
  return h;
}

// Rank `other`'s lines gathered from every rank (a collective: every rank calls it); fn and the
// noun of a line name the caller and the list in errors.
std::vector<std::string> gather_lines(const char* fn, const char* noun, const std::vector<std::string>& mine,
                                      int other) {
  std::string text;
  for (const auto& line : mine) text += line + "\n";
  XGRAD_CHECK(text.size() < static_cast<std::size_t>(INT_MAX), "distributed::", fn, ": ", noun, " list too long");
  const int size = world_size();
  int length = static_cast<int>(text.size());
  std::vector<int> lengths(static_cast<std::size_t>(size)), offsets(static_cast<std::size_t>(size));
  MPI_Allgather(&length, 1, MPI_INT, lengths.data(), 1, MPI_INT, MPI_COMM_WORLD);
  long long total = 0;
  for (int r = 0; r < size; ++r) {
    offsets[static_cast<std::size_t>(r)] = static_cast<int>(total);
    total += lengths[static_cast<std::size_t>(r)];
  }
  XGRAD_CHECK(total < INT_MAX, "distributed::", fn, ": ", noun, " lists too long");
  std::string all(static_cast<std::size_t>(total), '\0');
  MPI_Allgatherv(text.data(), length, MPI_CHAR, all.data(), lengths.data(), offsets.data(), MPI_CHAR,
                 MPI_COMM_WORLD);
  std::vector<std::string> lines;
  std::istringstream in(all.substr(static_cast<std::size_t>(offsets[static_cast<std::size_t>(other)]),
                                   static_cast<std::size_t>(lengths[static_cast<std::size_t>(other)])));
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

// Copies floats [first, first + count) of the concatenation of the tensors chosen by `pick`
// (each parameter's value or gradient, in order) into buffer (to_buffer) or back.
template <class Pick>
void copy_range(const std::vector<NamedParameter>& params, Pick pick, std::size_t first, std::size_t count,
                float* buffer, bool to_buffer) {
  std::size_t start = 0;  // flat offset of the current parameter
  for (const auto& p : params) {
    const std::size_t n = p.variable.size();
    const std::size_t lo = std::max(first, start), hi = std::min(first + count, start + n);
    if (lo < hi) {
      float* data = pick(p.variable).data() + (lo - start);
      float* buf = buffer + (lo - first);
      if (to_buffer) std::copy(data, data + (hi - lo), buf);
      else std::copy(buf, buf + (hi - lo), data);
    }
    start += n;
    if (start >= first + count) break;
  }
}

std::size_t total_floats(const std::vector<NamedParameter>& params) {
  std::size_t total = 0;
  for (const auto& p : params) total += p.variable.size();
  return total;
}

std::size_t bucket_floats_for(const char* fn, std::size_t bucket_bytes, std::size_t total) {
  XGRAD_CHECK(bucket_bytes >= sizeof(float), "distributed::", fn, ": bucket_bytes must be >= ", sizeof(float), ", got ",
        bucket_bytes);
  // An MPI count is an int.
  const std::size_t per_bucket = std::min<std::size_t>(bucket_bytes / sizeof(float), INT_MAX);
  return std::max<std::size_t>(1, std::min(per_bucket, total));
}

}  // namespace

void init(int* argc, char*** argv) {
  int done = 0;
  MPI_Initialized(&done);
  if (done) return;
  int provided = 0;
  MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided);
  if (provided < MPI_THREAD_FUNNELED) {
    MPI_Finalize();
    throw Error(cat("distributed::init: MPI provides thread level ", provided,
                    ", below MPI_THREAD_FUNNELED (", MPI_THREAD_FUNNELED, ") which OpenMP inside a rank needs"));
  }
}

void finalize() {
  int started = 0, finished = 0;
  MPI_Initialized(&started);
  MPI_Finalized(&finished);
  if (started && !finished) MPI_Finalize();
}

bool initialized() {
  int started = 0, finished = 0;
  MPI_Initialized(&started);
  MPI_Finalized(&finished);
  return started && !finished;
}

int rank() {
  require_init("rank");
  int r = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &r);
  return r;
}

int world_size() {
  require_init("world_size");
  int s = 0;
  MPI_Comm_size(MPI_COMM_WORLD, &s);
  return s;
}

void abort(int code) {
  std::fflush(stdout);
  std::fflush(stderr);
  if (initialized()) MPI_Abort(MPI_COMM_WORLD, code);
  std::_Exit(code);
}

int run_or_abort(const std::function<int()>& body) {
  try {
    return body();
  } catch (const std::exception& e) {
    std::fflush(stdout);
    if (initialized()) std::fprintf(stderr, "rank %d: error: %s\n", rank(), e.what());
    else std::fprintf(stderr, "error: %s\n", e.what());
  } catch (...) {
    std::fflush(stdout);
    std::fprintf(stderr, "rank %d: error: unknown exception\n", initialized() ? rank() : -1);
  }
  abort(1);
}

namespace {

// Collective. Throws on every rank when some rank's lines ("name shape", one per parameter or
// buffer: the noun) differ from rank 0's, naming the first such rank and line.
void check_same_lines(const char* fn, const char* noun, const std::vector<std::string>& mine) {
  const int size = world_size();
  // Every rank gathers every (count, hash): all take the same branch below.
  const std::uint64_t key[2] = {static_cast<std::uint64_t>(mine.size()), fnv1a(mine)};
  std::vector<std::uint64_t> keys(2 * static_cast<std::size_t>(size));
  MPI_Allgather(key, 2, MPI_UINT64_T, keys.data(), 2, MPI_UINT64_T, MPI_COMM_WORLD);
  int other = -1;
  for (int r = 1; r < size && other < 0; ++r) {
    const std::size_t i = 2 * static_cast<std::size_t>(r);
    if (keys[i] != keys[0] || keys[i + 1] != keys[1]) other = r;
  }
  if (other < 0) return;

  const std::vector<std::string> first = gather_lines(fn, noun, mine, 0),
                                   second = gather_lines(fn, noun, mine, other);
  std::size_t i = 0;
  while (i < first.size() && i < second.size() && first[i] == second[i]) ++i;
  auto at = [i](const std::vector<std::string>& lines) {
    return i < lines.size() ? "'" + lines[i] + "'" : std::string("nothing (the list ends)");
  };
  throw Error(cat("distributed::", fn, ": rank ", other, " has a different model from rank 0: ", noun, " ", i, " is ",
                  at(first), " on rank 0 but ", at(second), " on rank ", other, " (rank 0 has ", first.size(), " ",
                  noun, "s, rank ", other, " has ", second.size(), ")"));
}

}  // namespace

void check_same_parameters(const std::vector<NamedParameter>& parameters) {
  require_init("check_same_parameters");
  check_same_lines("check_same_parameters", "parameter", describe(parameters));
}

void average_buffers(const std::vector<NamedBuffer>& buffers) {
  require_init("average_buffers");
  check_same_lines("average_buffers", "buffer", describe(buffers));
  std::vector<double> sums;
  for (const auto& b : buffers) sums.insert(sums.end(), b.tensor->begin(), b.tensor->end());
  // allreduce_sum takes at most INT_MAX values a call.
  for (std::size_t first = 0; first < sums.size(); first += static_cast<std::size_t>(INT_MAX)) {
    allreduce_sum(sums.data() + first, std::min<std::size_t>(static_cast<std::size_t>(INT_MAX), sums.size() - first));
  }
  const double ranks = static_cast<double>(world_size());
  std::size_t k = 0;
  for (const auto& b : buffers) {
    for (float& v : *b.tensor) v = static_cast<float>(sums[k++] / ranks);
  }
}

void broadcast_parameters(const std::vector<NamedParameter>& parameters, std::size_t bucket_bytes) {
  require_init("broadcast_parameters");
  check_same_parameters(parameters);
  const std::size_t total = total_floats(parameters);
  if (total == 0) return;
  std::vector<float> buffer(bucket_floats_for("broadcast_parameters", bucket_bytes, total));
  const bool root = rank() == 0;
  // A handle to the same value; on the ranks that receive, the copy is a change in place.
  auto value = [](const Variable& v) -> Tensor& { return Variable(v).mutable_value(); };
  for (std::size_t first = 0; first < total; first += buffer.size()) {
    const std::size_t count = std::min(buffer.size(), total - first);
    if (root) copy_range(parameters, value, first, count, buffer.data(), true);
    MPI_Bcast(buffer.data(), static_cast<int>(count), MPI_FLOAT, 0, MPI_COMM_WORLD);
    if (!root) copy_range(parameters, value, first, count, buffer.data(), false);
  }
}

void allreduce_sum(double* data, std::size_t n) {
  require_init("allreduce_sum");
  XGRAD_CHECK(n <= static_cast<std::size_t>(INT_MAX), "distributed::allreduce_sum: n must be <= ", INT_MAX, ", got ", n);
  if (n > 0) MPI_Allreduce(MPI_IN_PLACE, data, static_cast<int>(n), MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD);
}

GradientAverager::GradientAverager(std::vector<NamedParameter> parameters, std::size_t bucket_bytes)
    : params_(std::move(parameters)) {
  require_init("GradientAverager");
  check_same_parameters(params_);
  total_ = distributed::total_floats(params_);
  buffer_.resize(total_ == 0 ? 0 : bucket_floats_for("GradientAverager", bucket_bytes, total_));
}

std::size_t GradientAverager::buckets_per_call() const {
  return buffer_.empty() ? 0 : (total_ + buffer_.size() - 1) / buffer_.size();
}

void GradientAverager::reset_timers() {
  comm_seconds_ = total_seconds_ = wait_seconds_ = 0.0;
  calls_ = 0;
}

void GradientAverager::average() {
  using clock = std::chrono::steady_clock;
  const auto start = clock::now();
  if (wait_timing_) {
    MPI_Barrier(MPI_COMM_WORLD);
    wait_seconds_ += std::chrono::duration<double>(clock::now() - start).count();
  }
  const float scale = 1.0f / static_cast<float>(world_size());
  auto grad = [](const Variable& v) -> Tensor& { return v.grad_buffer(); };
  for (std::size_t first = 0; first < total_; first += buffer_.size()) {
    const std::size_t count = std::min(buffer_.size(), total_ - first);
    copy_range(params_, grad, first, count, buffer_.data(), true);
    const auto t0 = clock::now();
    MPI_Allreduce(MPI_IN_PLACE, buffer_.data(), static_cast<int>(count), MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
    comm_seconds_ += std::chrono::duration<double>(clock::now() - t0).count();
    for (std::size_t i = 0; i < count; ++i) buffer_[i] *= scale;
    copy_range(params_, grad, first, count, buffer_.data(), false);
  }
  total_seconds_ += std::chrono::duration<double>(clock::now() - start).count();
  ++calls_;
}

}  // namespace xgrad::distributed
