#pragma once
// Rng: a small seeded generator (xoshiro256** seeded through splitmix64) with its own
// uniform and normal transforms, so a seed gives the same numbers with every standard library.
#include <cstddef>
#include <cstdint>
#include <vector>

#include <xgrad/core/tensor.hpp>

namespace xgrad {

// Everything an Rng's future draws depend on, to save and restore a generator exactly.
struct RngState {
  std::uint64_t s[4];
  bool has_spare;
  double spare;  // the second normal of the last Box-Muller pair, when has_spare
};

class Rng {
 public:
  explicit Rng(std::uint64_t seed = 0);

  std::uint64_t next_u64();
  // Uniform in [lo, hi).
  double uniform(double lo = 0.0, double hi = 1.0);
  // Normal with the given mean and standard deviation (Box-Muller).
  double normal(double mean = 0.0, double stddev = 1.0);
  // Uniform integer in [0, n); n must be > 0.
  std::uint64_t below(std::uint64_t n);
  // Shuffles values in place (Fisher-Yates, one below() per position from the back).
  void shuffle(std::vector<std::size_t>& values);

  RngState state() const;
  // Continues exactly where the generator that gave `state` was. An all-zero s (which
  // xoshiro256** never reaches) throws xgrad::Error.
  void set_state(const RngState& state);

  void fill_uniform(Tensor& t, double lo, double hi);
  void fill_normal(Tensor& t, double mean, double stddev);

 private:
  std::uint64_t s_[4];
  bool has_spare_ = false;
  double spare_ = 0.0;
};

// splitmix64's finaliser: a bijective 64-bit mix with good avalanche (every input bit changes
// about half the output bits); turns counters such as (seed, epoch, index) into unrelated seeds.
// Note mix64(0) == 0: mix a constant into a counter that may be 0.
std::uint64_t mix64(std::uint64_t z);

// The permutation of [0, n) of one epoch: 0..n-1 shuffled by Rng::shuffle (Fisher-Yates) from a
// generator seeded by (seed, epoch). The DataLoader's shuffle and DistributedSampler both draw
// this one, so one process and W ranks see the same order of samples.
std::vector<std::size_t> epoch_permutation(std::size_t n, std::uint64_t seed, std::uint64_t epoch);

// The process-wide generator that layers use for their initial weights when none is given,
// and its seeding (like torch.manual_seed). Not thread-safe: build models on one thread.
Rng& global_rng();
void manual_seed(std::uint64_t seed);

// Fan-in and fan-out of a weight tensor in PyTorch's layouts: Linear [out, in],
// Conv OIHW [out, in/groups, kh, kw]. Rank < 2 throws xgrad::Error.
std::size_t fan_in(const Tensor& weight);
std::size_t fan_out(const Tensor& weight);

// Kaiming (He) normal init for ReLU networks: std = sqrt(2 / fan_in).
void kaiming_normal(Tensor& weight, Rng& rng);
// Xavier (Glorot) uniform init: bound = sqrt(6 / (fan_in + fan_out)).
void xavier_uniform(Tensor& weight, Rng& rng);

}  // namespace xgrad
