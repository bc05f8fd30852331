#pragma once
// DistributedSampler: which samples each rank trains on in an epoch. Pure logic (no MPI), so
// every rank computes the same permutation from the shared seed without communicating.
//
// Each epoch draws one permutation `perm` of [0, dataset_size) from (seed, epoch). Rank r of
// W takes perm[r], perm[r + W], perm[r + 2W], ...: the shards are disjoint, and together
// they are the first W * (dataset_size / W) entries of perm. The remainder (dataset_size % W
// samples, different ones each epoch) is dropped, so every rank has the same number of
// samples and therefore takes the same number of steps: ranks that took different numbers
// of steps would wait forever in a collective.
//
// Equivalence: local batch k of every rank (B samples each) together hold exactly
// perm[k*W*B, (k+1)*W*B), the k-th batch of W*B a single process would take from the same
// permutation; only the order inside the batch differs, which a mean loss does not see.
#include <cstddef>
#include <cstdint>
#include <vector>

namespace xgrad::distributed {

class DistributedSampler {
 public:
  // Throws xgrad::Error when world_size < 1, rank is not in [0, world_size), or
  // dataset_size < world_size (some rank would have no sample).
  DistributedSampler(std::size_t dataset_size, int rank, int world_size, std::uint64_t seed);

  // The permutation of [0, dataset_size) shared by all ranks in this epoch.
  std::vector<std::size_t> permutation(std::uint64_t epoch) const;
  // This rank's sample indices for the epoch, in training order (size() of them).
  std::vector<std::size_t> indices(std::uint64_t epoch) const;
  // Samples per rank and epoch: dataset_size / world_size (rounded down).
  std::size_t size() const { return dataset_size_ / static_cast<std::size_t>(world_size_); }

  std::size_t dataset_size() const { return dataset_size_; }
  int rank() const { return rank_; }
  int world_size() const { return world_size_; }

 private:
  std::size_t dataset_size_;
  int rank_, world_size_;
  std::uint64_t seed_;
};

}  // namespace xgrad::distributed
