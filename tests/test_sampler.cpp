// distributed/sampler.hpp: each rank's shard is disjoint from the others, together they cover
// all but the remainder, the order changes every epoch and depends only on (seed, epoch).
#include <boost/test/data/monomorphic.hpp>
#include <boost/test/data/test_case.hpp>
#include <boost/test/unit_test.hpp>

#include <set>
#include <vector>

#include <xgrad/distributed/sampler.hpp>
#include "tests/test_util.hpp"

namespace bdata = boost::unit_test::data;
using namespace xgrad;
using xgrad::distributed::DistributedSampler;
using xgrad::test::message_has;

namespace {
struct Case {
  std::size_t n;
  int world;
};
std::ostream& operator<<(std::ostream& out, const Case& c) { return out << "n=" << c.n << " world=" << c.world; }
const std::vector<Case> kCases = {{10, 1}, {10, 2}, {11, 2}, {103, 4}, {7, 7}, {5120, 2}, {1000, 3}};
}  // namespace

BOOST_DATA_TEST_CASE(shards_are_disjoint_equal_sized_and_cover_all_but_the_remainder, bdata::make(kCases), c) {
  for (std::uint64_t epoch = 0; epoch < 3; ++epoch) {
    std::set<std::size_t> seen;
    for (int r = 0; r < c.world; ++r) {
      const DistributedSampler sampler(c.n, r, c.world, 42);
      const auto mine = sampler.indices(epoch);
      BOOST_TEST(mine.size() == c.n / static_cast<std::size_t>(c.world));
      BOOST_TEST(sampler.size() == mine.size());
      for (auto i : mine) {
        BOOST_TEST(i < c.n);
        BOOST_TEST(seen.insert(i).second, "index " << i << " is in two shards (rank " << r << ")");
      }
    }
    // The union is exactly the first world * (n / world) entries of the epoch's permutation.
    const auto perm = DistributedSampler(c.n, 0, c.world, 42).permutation(epoch);
    const std::size_t kept = static_cast<std::size_t>(c.world) * (c.n / static_cast<std::size_t>(c.world));
    BOOST_TEST(seen == std::set<std::size_t>(perm.begin(), perm.begin() + static_cast<long>(kept)));
    BOOST_TEST(std::set<std::size_t>(perm.begin(), perm.end()).size() == c.n);
  }
}

BOOST_AUTO_TEST_CASE(same_seed_same_shards_on_every_rank_and_new_order_each_epoch) {
  // Two "ranks" built independently from the same seed agree on the permutation.
  const DistributedSampler a(1000, 0, 2, 7), b(1000, 1, 2, 7);
  for (std::uint64_t epoch = 0; epoch < 4; ++epoch) BOOST_TEST(a.permutation(epoch) == b.permutation(epoch));
  BOOST_TEST(a.indices(0) != a.indices(1));
  BOOST_TEST(a.indices(1) != a.indices(2));
  BOOST_TEST(a.indices(0) == DistributedSampler(1000, 0, 2, 7).indices(0));
  BOOST_TEST(a.indices(0) != DistributedSampler(1000, 0, 2, 8).indices(0));
  // A real shuffle, not the identity.
  std::vector<std::size_t> identity(1000);
  for (std::size_t i = 0; i < identity.size(); ++i) identity[i] = i;
  BOOST_TEST(a.permutation(0) != identity);
}

BOOST_AUTO_TEST_CASE(local_batches_of_all_ranks_form_the_single_process_batch) {
  // Rank r's k-th batch of B, over all ranks, is the k-th batch of W*B of one process that
  // uses the same seed.
  const std::size_t n = 96, batch = 4;
  const int world = 3;
  const auto perm = DistributedSampler(n, 0, 1, 5).permutation(2);
  std::vector<std::vector<std::size_t>> shards;
  for (int r = 0; r < world; ++r) shards.push_back(DistributedSampler(n, r, world, 5).indices(2));
  for (std::size_t k = 0; k < n / (batch * world); ++k) {
    std::multiset<std::size_t> together, single;
    for (const auto& s : shards) together.insert(s.begin() + static_cast<long>(k * batch), s.begin() + static_cast<long>((k + 1) * batch));
    single.insert(perm.begin() + static_cast<long>(k * batch * world), perm.begin() + static_cast<long>((k + 1) * batch * world));
    BOOST_TEST(together == single, "batch " << k);
  }
}

BOOST_AUTO_TEST_CASE(bad_arguments) {
  BOOST_CHECK_EXCEPTION(DistributedSampler(10, 0, 0, 1), Error, [](const Error& e) {
    return message_has(e, {"DistributedSampler", "world_size", "got 0"});
  });
  BOOST_CHECK_EXCEPTION(DistributedSampler(10, 2, 2, 1), Error, [](const Error& e) {
    return message_has(e, {"DistributedSampler", "rank", "[0, 2)", "got 2"});
  });
  BOOST_CHECK_EXCEPTION(DistributedSampler(10, -1, 2, 1), Error, [](const Error& e) {
    return message_has(e, {"rank", "got -1"});
  });
  BOOST_CHECK_EXCEPTION(DistributedSampler(3, 0, 4, 1), Error, [](const Error& e) {
    return message_has(e, {"dataset_size (3)", "world_size (4)"});
  });
}
