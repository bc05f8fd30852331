// distributed/: run by ctest under `mpirun -np 2`. Every test case is collective: both ranks
// run the same cases in the same order, and checks that could differ between ranks never
// stop a case early (that would leave the other rank waiting in a collective).
#include <boost/test/unit_test.hpp>

#include <algorithm>
#include <cmath>
#include <memory>
#include <vector>

#include <xgrad/distributed/distributed.hpp>
#include "tests/test_util.hpp"
#include <xgrad/xgrad.hpp>

namespace dist = xgrad::distributed;
using namespace xgrad;
using xgrad::test::message_has;

namespace {

struct MpiSetup {
  MpiSetup() {
    dist::init();
    set_num_threads(1);  // two ranks share the machine's cores
  }
  ~MpiSetup() { dist::finalize(); }
};

// A small model with every kind of parameterised layer the example uses, plus LRN and pooling.
// x: (N, 3, 16, 16) -> logits (N, 10)
std::shared_ptr<Sequential> small_model(std::uint64_t seed) {
  manual_seed(seed);
  auto m = std::make_shared<Sequential>();
  m->emplace<Conv2d>(Conv2dOptions(3, 8, 3).padding(1));
  m->emplace<ReLU>();
  m->emplace<LocalResponseNorm>(LrnOptions(5).alpha(1e-2).beta(0.75).k(2.0));
  m->emplace<MaxPool2d>(2);
  m->emplace<Conv2d>(Conv2dOptions(8, 8, 3).padding(1).groups(2));
  m->emplace<ReLU>();
  m->emplace<Flatten>();
  m->emplace<Linear>(8 * 8 * 8, 10);
  return m;
}

// Largest |a - b| relative to max |b| over one tensor.
double relative_difference(const Tensor& a, const Tensor& b) {
  double diff = 0.0, scale = 0.0;
  for (std::size_t i = 0; i < a.size(); ++i) {
    diff = std::max(diff, std::fabs(static_cast<double>(a.data()[i]) - b.data()[i]));
    scale = std::max(scale, std::fabs(static_cast<double>(b.data()[i])));
  }
  return diff / std::max(scale, 1e-30);
}

// One SGD step of model on images[first, first + count) of the global batch.
void train_step(Sequential& model, optim::SGD& opt, const Tensor& images, const std::vector<std::int64_t>& labels,
                std::size_t first, std::size_t count, dist::GradientAverager* averager) {
  const auto& s = images.shape();
  const std::size_t sample = s[1] * s[2] * s[3];
  Tensor x = empty({count, s[1], s[2], s[3]});
  std::copy_n(images.data() + first * sample, count * sample, x.data());
  const std::vector<std::int64_t> y(labels.begin() + static_cast<long>(first),
                                    labels.begin() + static_cast<long>(first + count));
  opt.zero_grad();
  CrossEntropyLoss loss_fn;
  Variable loss = loss_fn(model(Variable(std::move(x))), y);
  loss.backward();
  if (averager) averager->average();
  opt.step();
}

}  // namespace

BOOST_TEST_GLOBAL_FIXTURE(MpiSetup);

BOOST_AUTO_TEST_CASE(runs_on_two_ranks) {
  BOOST_TEST(dist::initialized());
  BOOST_TEST(dist::world_size() == 2, "run this test with mpirun -np 2");
  BOOST_TEST(dist::rank() >= 0);
  BOOST_TEST(dist::rank() < dist::world_size());
}

BOOST_AUTO_TEST_CASE(gradient_average_over_several_buckets) {
  const int rank = dist::rank(), size = dist::world_size();
  // Sizes 5, 1, 7 with buckets of 3 floats: parameters straddle buckets.
  std::vector<NamedParameter> params = {{"a", Variable(zeros<float>({5}), true)},
                                        {"b", Variable(zeros<float>({1}), true)},
                                        {"c", Variable(zeros<float>({7}), true)},
                                        {"d", Variable(zeros<float>({2}), true)}};
  for (std::size_t p = 0; p < 3; ++p) {
    Tensor& g = params[p].variable.grad_buffer();
    for (std::size_t i = 0; i < g.size(); ++i) g.data()[i] = static_cast<float>((rank + 1) * (10 * p + i + 1));
  }
  // "d" has a gradient on rank 0 only: it counts as zero elsewhere.
  if (rank == 0) params[3].variable.grad_buffer().fill(4.0f);
  dist::GradientAverager averager(params, 3 * sizeof(float));
  BOOST_TEST(averager.bucket_floats() == 3u);
  BOOST_TEST(averager.buckets_per_call() == 5u);  // 15 floats
  averager.average();
  const double mean_factor = (size + 1) / 2.0;  // mean of 1..size
  for (std::size_t p = 0; p < 3; ++p) {
    const Tensor& g = params[p].variable.grad();
    for (std::size_t i = 0; i < g.size(); ++i) {
      BOOST_TEST(static_cast<double>(g.data()[i]) == mean_factor * static_cast<double>(10 * p + i + 1),
                 boost::test_tools::tolerance(1e-6));
    }
  }
  BOOST_TEST(params[3].variable.has_grad());
  for (std::size_t i = 0; i < 2; ++i) BOOST_TEST(params[3].variable.grad().data()[i] == 4.0f / static_cast<float>(size));
  BOOST_TEST(averager.calls() == 1u);
  BOOST_TEST(averager.communication_seconds() >= 0.0);
  BOOST_TEST(averager.total_seconds() >= averager.communication_seconds());
}

BOOST_AUTO_TEST_CASE(broadcast_copies_rank_0_weights) {
  const int rank = dist::rank();
  auto model = small_model(100 + static_cast<std::uint64_t>(rank));
  auto reference = small_model(100);
  const auto params = model->parameters(), ref = reference->parameters();
  if (rank != 0) BOOST_TEST(relative_difference(params[0].variable.value(), ref[0].variable.value()) > 0.1);
  dist::broadcast_parameters(params, 1000);  // small buckets: many broadcasts
  for (std::size_t i = 0; i < params.size(); ++i) {
    BOOST_TEST(relative_difference(params[i].variable.value(), ref[i].variable.value()) == 0.0, params[i].name);
  }
}

BOOST_AUTO_TEST_CASE(two_ranks_of_batch_b_equal_one_process_of_batch_2b) {
  const int rank = dist::rank(), size = dist::world_size();
  BOOST_TEST_REQUIRE(size == 2);  // the same on every rank, so stopping here is safe
  const std::size_t local = 4, global = local * static_cast<std::size_t>(size), steps = 10;
  const optim::SGDOptions sgd = optim::SGDOptions(0.05).momentum(0.9).weight_decay(5e-4);

  // Distributed copy: a different initialisation on each rank, replaced by rank 0's.
  auto model = small_model(100 + static_cast<std::uint64_t>(rank));
  dist::broadcast_parameters(model->parameters());
  optim::SGD opt(model->parameters(), sgd);
  dist::GradientAverager averager(model->parameters());
  // Reference: one process on the whole batch, no communication. Negative control: this
  // rank's shard alone, no averaging (must NOT match, or the test could not fail).
  auto reference = small_model(100), alone = small_model(100);
  optim::SGD ref_opt(reference->parameters(), sgd), alone_opt(alone->parameters(), sgd);

  Rng data_rng(2024);
  for (std::size_t step = 0; step < steps; ++step) {
    Tensor images = empty({global, 3, 16, 16});
    data_rng.fill_normal(images, 0.0, 1.0);
    std::vector<std::int64_t> labels(global);
    for (auto& l : labels) l = static_cast<std::int64_t>(data_rng.below(10));
    const std::size_t first = static_cast<std::size_t>(rank) * local;
    train_step(*model, opt, images, labels, first, local, &averager);
    train_step(*reference, ref_opt, images, labels, 0, global, nullptr);
    train_step(*alone, alone_opt, images, labels, first, local, nullptr);
  }

  const auto params = model->parameters(), ref = reference->parameters(), solo = alone->parameters();
  const auto initial = small_model(100)->parameters();
  double worst = 0.0, moved = 1e30, control = 0.0;
  for (std::size_t i = 0; i < params.size(); ++i) {
    const double d = relative_difference(params[i].variable.value(), ref[i].variable.value());
    BOOST_TEST(d <= 1e-5, params[i].name << ": relative difference " << d);
    worst = std::max(worst, d);
    moved = std::min(moved, relative_difference(ref[i].variable.value(), initial[i].variable.value()));
    control = std::max(control, relative_difference(solo[i].variable.value(), ref[i].variable.value()));
  }
  BOOST_TEST_MESSAGE("rank " << rank << ": worst relative difference " << worst << ", smallest change from init "
                             << moved << ", shard-only control " << control);
  BOOST_TEST(moved > 1e-3);    // training did change every tensor
  BOOST_TEST(control > 1e-3);  // without averaging the shards train a different model

  // The two ranks' copies are identical: w0 + w1 == 2 w (exact in double for float inputs).
  std::vector<double> mine, sum;
  for (const auto& p : params) mine.insert(mine.end(), p.variable.value().begin(), p.variable.value().end());
  sum = mine;
  dist::allreduce_sum(sum.data(), sum.size());
  std::size_t differing = 0;
  for (std::size_t i = 0; i < mine.size(); ++i) differing += sum[i] != 2.0 * mine[i];
  BOOST_TEST(differing == 0u);
}

BOOST_AUTO_TEST_CASE(buffers_are_averaged_over_the_ranks) {
  const int rank = dist::rank(), size = dist::world_size();
  Sequential model;
  model.emplace<BatchNorm2d>(3);
  model.emplace<ReLU>();
  model.emplace<BatchNorm2d>(2);
  const std::vector<NamedBuffer> buffers = model.buffers();
  BOOST_TEST_REQUIRE(buffers.size() == 4u);  // two running means and variances
  for (std::size_t k = 0; k < buffers.size(); ++k) {
    for (std::size_t i = 0; i < buffers[k].tensor->size(); ++i)
      buffers[k].tensor->data()[i] = static_cast<float>((rank + 1) * (10 * k + i + 1));
  }
  dist::average_buffers(buffers);
  const double mean_factor = (size + 1) / 2.0;  // mean of 1..size
  for (std::size_t k = 0; k < buffers.size(); ++k) {
    for (std::size_t i = 0; i < buffers[k].tensor->size(); ++i) {
      BOOST_TEST(static_cast<double>(buffers[k].tensor->data()[i]) == mean_factor * static_cast<double>(10 * k + i + 1),
                 buffers[k].name << "[" << i << "]");
    }
  }
  // A model without buffers: nothing to do, and no error.
  Sequential plain;
  plain.emplace<Linear>(2, 2);
  BOOST_CHECK_NO_THROW(dist::average_buffers(plain.buffers()));
}

BOOST_AUTO_TEST_CASE(a_missing_buffer_is_reported) {
  const int rank = dist::rank();
  Sequential model;
  model.emplace<BatchNorm2d>(2);
  if (rank == 0) model.emplace<BatchNorm2d>(4);
  BOOST_CHECK_EXCEPTION(dist::average_buffers(model.buffers()), Error, [](const Error& e) {
    return message_has(e, {"average_buffers", "rank 1",
                           "buffer 2 is '1.running_mean (4,)' on rank 0 but nothing (the list ends) on rank 1",
                           "rank 0 has 4 buffers, rank 1 has 2"});
  });
}

BOOST_AUTO_TEST_CASE(mismatched_shapes_are_reported_on_every_rank) {
  const int rank = dist::rank();
  Sequential model;
  model.emplace<Linear>(4, 8);
  model.emplace<ReLU>();
  model.emplace<Linear>(8, rank == 0 ? 5 : 3);
  BOOST_CHECK_EXCEPTION(dist::broadcast_parameters(model.parameters()), Error, [](const Error& e) {
    return message_has(e, {"check_same_parameters", "rank 1", "parameter 2", "'2.weight (5, 8)' on rank 0",
                           "'2.weight (3, 8)' on rank 1"});
  });
  BOOST_CHECK_EXCEPTION(dist::GradientAverager(model.parameters()), Error,
                        [](const Error& e) { return message_has(e, {"rank 1", "2.weight"}); });
}

BOOST_AUTO_TEST_CASE(a_missing_parameter_is_reported) {
  const int rank = dist::rank();
  Sequential model;
  model.emplace<Linear>(4, 8);
  if (rank == 0) model.emplace<Linear>(8, 2);
  BOOST_CHECK_EXCEPTION(dist::check_same_parameters(model.parameters()), Error, [](const Error& e) {
    return message_has(e, {"parameter 2 is '1.weight (2, 8)' on rank 0 but nothing (the list ends) on rank 1",
                           "rank 0 has 4 parameters, rank 1 has 2"});
  });
  // Equal lists pass.
  Sequential same;
  same.emplace<Linear>(4, 8);
  BOOST_CHECK_NO_THROW(dist::check_same_parameters(same.parameters()));
}
