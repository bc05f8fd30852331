#include <xgrad/distributed/sampler.hpp>

#include <xgrad/core/error.hpp>
#include <xgrad/core/rng.hpp>

namespace xgrad::distributed {

DistributedSampler::DistributedSampler(std::size_t dataset_size, int rank, int world_size, std::uint64_t seed)
    : dataset_size_(dataset_size), rank_(rank), world_size_(world_size), seed_(seed) {
  XGRAD_CHECK(world_size >= 1, "DistributedSampler: world_size must be >= 1, got ", world_size);
  XGRAD_CHECK(rank >= 0 && rank < world_size, "DistributedSampler: rank must be in [0, ", world_size, "), got ", rank);
  XGRAD_CHECK(dataset_size >= static_cast<std::size_t>(world_size), "DistributedSampler: dataset_size (", dataset_size,
        ") must be >= world_size (", world_size, "), or some rank would have no sample");
}

std::vector<std::size_t> DistributedSampler::permutation(std::uint64_t epoch) const {
  return epoch_permutation(dataset_size_, seed_, epoch);
}

std::vector<std::size_t> DistributedSampler::indices(std::uint64_t epoch) const {
  const std::vector<std::size_t> perm = permutation(epoch);
  const std::size_t w = static_cast<std::size_t>(world_size_), n = size();
  std::vector<std::size_t> mine(n);
  for (std::size_t i = 0; i < n; ++i) mine[i] = perm[static_cast<std::size_t>(rank_) + i * w];
  return mine;
}

}  // namespace xgrad::distributed
