#pragma once
// Data-parallel training over MPI (built only when XGRAD_WITH_MPI is on; link
// xgrad::xgrad_distributed). Every rank holds a full copy of the model and trains on its own
// shard of the data (see sampler.hpp); after each backward, the ranks average their gradients,
// so every rank takes the same optimiser step and the copies stay equal.
//
//   distributed::Session mpi(argc, argv);              // MPI_Init ... MPI_Finalize
//   distributed::broadcast_parameters(model.parameters());   // checks shapes, copies rank 0's
//   distributed::GradientAverager averager(model.parameters());
//   for each local batch: zero_grad, forward, loss, backward, averager.average(), opt.step()
//   distributed::average_buffers(model.buffers());     // before evaluation and saves
//
// Collectives (every function below except init/finalize/initialized/rank/world_size/abort)
// must be called by all ranks in the same order. Communication uses MPI_COMM_WORLD; MPI
// calls come from the main thread only (MPI_THREAD_FUNNELED), OpenMP runs inside each rank.
#include <cstddef>
#include <functional>
#include <string>
#include <vector>

#include <xgrad/autograd/variable.hpp>
#include <xgrad/layers/layer.hpp>

namespace xgrad::distributed {

// Default bucket size of the bucketed collectives: 25 MiB of float32 per MPI call.
constexpr std::size_t kDefaultBucketBytes = std::size_t{25} << 20;

// Initialises MPI (thread level FUNNELED) unless already initialised; argc/argv may be null.
// Throws xgrad::Error when MPI cannot provide FUNNELED.
void init(int* argc = nullptr, char*** argv = nullptr);
// Finalises MPI if it was initialised and not yet finalised.
void finalize();
// True between init and finalize.
bool initialized();
// This process's rank in MPI_COMM_WORLD and the number of ranks; throw before init.
int rank();
int world_size();
// Ends every rank of the job with the exit code (MPI_Abort); never returns.
[[noreturn]] void abort(int code);

// MPI_Init in the constructor, MPI_Finalize in the destructor.
class Session {
 public:
  Session(int& argc, char**& argv) { init(&argc, &argv); }
  ~Session() { finalize(); }
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;
};

// Runs body and returns its result. If it throws, prints "rank R: error: <what>" to stderr
// and aborts the whole job with exit code 1, so the other ranks cannot hang in a collective
// waiting for this one.
int run_or_abort(const std::function<int()>& body);

// Collective. Checks that every rank has the same parameter list (names and shapes, in
// order). Throws xgrad::Error on every rank otherwise, naming the first rank that differs
// from rank 0, the first parameter that differs and its shape on both ranks.
void check_same_parameters(const std::vector<NamedParameter>& parameters);

// Collective. Checks the parameter lists (as check_same_parameters), then overwrites every
// rank's parameter values with rank 0's, in buckets of at most bucket_bytes.
void broadcast_parameters(const std::vector<NamedParameter>& parameters,
                          std::size_t bucket_bytes = kDefaultBucketBytes);

// Collective. Replaces every buffer (e.g. BatchNorm2d's running estimates, which each rank
// updates from its own shard) by its mean over the ranks, summed in double precision; call it
// before evaluating or saving a model. Checks the buffer lists (names and shapes) as
// check_same_parameters checks the parameters, and throws xgrad::Error on every rank otherwise.
void average_buffers(const std::vector<NamedBuffer>& buffers);

// Collective. Sums data[0, n) over the ranks in place (for counters and statistics).
void allreduce_sum(double* data, std::size_t n);

// Averages the parameters' gradients over the ranks: all gradients are packed, in parameter
// order, into one contiguous float buffer of at most bucket_bytes at a time, summed with one
// MPI_Allreduce per bucket, scaled by 1 / world_size and unpacked. A parameter may straddle
// two buckets. A parameter without a gradient counts as zero (its gradient is allocated), so
// every rank sends the same number of floats.
class GradientAverager {
 public:
  // Collective: checks the parameter lists as check_same_parameters does.
  // Throws xgrad::Error for bucket_bytes < sizeof(float).
  explicit GradientAverager(std::vector<NamedParameter> parameters,
                            std::size_t bucket_bytes = kDefaultBucketBytes);

  // Collective.
  void average();

  // Floats per bucket and MPI_Allreduce calls per average().
  std::size_t bucket_floats() const { return buffer_.size(); }
  std::size_t buckets_per_call() const;
  std::size_t total_floats() const { return total_; }
  // Cumulative seconds inside MPI_Allreduce, and in the whole of average() (pack, reduce,
  // scale, unpack), since construction or reset_timers(). The allreduce time includes waiting
  // for the slowest rank to arrive, unless wait timing is on.
  double communication_seconds() const { return comm_seconds_; }
  // With wait timing on, average() first waits at an MPI_Barrier for every rank to finish its
  // backward, and counts that time in wait_seconds() instead of communication_seconds(): the
  // two then separate load imbalance from the transfer itself (at the cost of one barrier).
  void set_wait_timing(bool on) { wait_timing_ = on; }
  double wait_seconds() const { return wait_seconds_; }
  double total_seconds() const { return total_seconds_; }
  std::size_t calls() const { return calls_; }
  void reset_timers();

 private:
  std::vector<NamedParameter> params_;
  std::vector<float> buffer_;  // (bucket_floats), reused by every bucket
  std::size_t total_ = 0;      // floats over all parameters
  double comm_seconds_ = 0.0, total_seconds_ = 0.0, wait_seconds_ = 0.0;
  bool wait_timing_ = false;
  std::size_t calls_ = 0;
};

}  // namespace xgrad::distributed
