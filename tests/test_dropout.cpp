// Dropout: inverted scaling, seeded and reproducible masks that change from step to step, the
// identity in eval() and for p == 0, gradients through the regenerated mask, thread-count
// independence, validation.
#include <boost/test/data/monomorphic.hpp>
#include <boost/test/data/test_case.hpp>
#include <boost/test/unit_test.hpp>

#include <cmath>
#include <limits>
#include <string>

#include <xtensor/xarray.hpp>

#include <xgrad/autograd/gradcheck.hpp>
#include <xgrad/autograd/tape.hpp>
#include <xgrad/core/error.hpp>
#include <xgrad/core/rng.hpp>
#include <xgrad/core/threading.hpp>
#include <xgrad/layers/dropout.hpp>
#include "tests/test_util.hpp"

namespace bdata = boost::unit_test::data;
using namespace xgrad;
using xgrad::test::message_contains;
using xgrad::test::message_has;

namespace {

Tensor random_tensor(const Shape& shape, std::uint64_t seed) {
  Tensor t = empty(shape);
  Rng rng(seed);
  rng.fill_uniform(t, 0.5, 1.5);  // never zero, so a zero output means dropped
  return t;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(dropout)

BOOST_DATA_TEST_CASE(drops_a_fraction_p_and_scales_the_rest, bdata::make({0.1, 0.5, 0.9}), p) {
  Dropout drop(p, 42);
  const Tensor x = random_tensor({64, 1000}, 1);
  const Variable y = drop(Variable(x));
  std::size_t dropped = 0;
  bool scaled = true;
  const float scale = static_cast<float>(1.0 / (1.0 - p));
  for (std::size_t i = 0; i < x.size(); ++i) {
    const float v = y.value().data()[i];
    if (v == 0.0f) {
      ++dropped;
    } else if (v != x.data()[i] * scale) {
      scaled = false;
    }
  }
  BOOST_TEST(scaled);
  // Binomial(n, p): allow 5 standard deviations.
  const double n = static_cast<double>(x.size());
  BOOST_TEST(std::abs(static_cast<double>(dropped) - n * p) <= 5.0 * std::sqrt(n * p * (1.0 - p)));
}

BOOST_AUTO_TEST_CASE(seeded_masks_are_reproducible_and_change_per_step) {
  const Tensor x = random_tensor({8, 333}, 2);
  Dropout a(0.5, 7), b(0.5, 7), c(0.5, 8);
  const Tensor a1 = a(Variable(x)).value(), a2 = a(Variable(x)).value();
  const Tensor b1 = b(Variable(x)).value(), b2 = b(Variable(x)).value();
  const Tensor c1 = c(Variable(x)).value();
  BOOST_TEST((a1 == b1));
  BOOST_TEST((a2 == b2));
  BOOST_TEST(!(a1 == a2));
  BOOST_TEST(!(a1 == c1));
  a.set_seed(7);
  BOOST_TEST((a(Variable(x)).value() == a1));
}

BOOST_AUTO_TEST_CASE(eval_and_p_zero_are_the_identity_and_record_nothing) {
  Variable x(random_tensor({4, 5}, 3), true);
  Tape::active().clear();
  Dropout drop(0.5);
  drop.eval();
  const Variable y = drop(x);
  BOOST_TEST(y.same(x));
  BOOST_TEST(Tape::active().size() == 0u);
  Dropout none(0.0);
  BOOST_TEST(none(x).same(x));
  BOOST_TEST(Tape::active().size() == 0u);
  drop.train();
  BOOST_TEST(!drop(x).same(x));
  BOOST_TEST(Tape::active().size() == 1u);
  Tape::active().clear();
}

BOOST_AUTO_TEST_CASE(gradients_on_the_tape) {
  Dropout drop(0.3, 5);
  Variable x(random_tensor({3, 4, 5}, 4), true, "x");
  // Re-seeded inside f: every evaluation by the checker draws the same mask.
  const GradcheckResult r = gradcheck(
      [&] {
        drop.set_seed(11);
        return drop(x);
      },
      {x});
  BOOST_TEST(r.ok, r.summary());
}

BOOST_AUTO_TEST_CASE(double_kernel_gradients_and_mask_agreement) {
  const DropoutMask mask{0.4, 9, 3};
  xt::xarray<double> x = xt::xarray<double>::from_shape({50});
  Rng rng(5);
  for (auto& v : x) v = rng.uniform(-1.0, 1.0);
  const GradcheckResult r = gradcheck_kernel(
      [&mask](const KernelInputs& in) {
        xt::xarray<double> y = xt::xarray<double>::from_shape(in[0].shape());
        kernels::dropout_forward<double>(in[0].data(), y.data(), y.size(), mask);
        return y;
      },
      [&mask](const KernelInputs& in, const xt::xarray<double>& dout, KernelInputs& grads) {
        kernels::dropout_backward<double>(dout.data(), grads[0].data(), dout.size(), mask);
      },
      {x});
  BOOST_TEST(r.ok, r.summary());
  xt::xarray<double> y = xt::xarray<double>::from_shape({50});
  kernels::dropout_forward<double>(x.data(), y.data(), y.size(), mask);
  for (std::size_t i = 0; i < y.size(); ++i) BOOST_TEST((y(i) != 0.0) == kernels::dropout_keep(mask, i));
}

BOOST_AUTO_TEST_CASE(bit_identical_at_one_and_two_threads) {
  const Tensor x0 = random_tensor({16, 96, 13, 13}, 6);
  const Tensor dy0 = random_tensor({16, 96, 13, 13}, 7);
  auto run = [&](int threads) {
    set_num_threads(threads);
    Dropout drop(0.5, 123);
    Variable x(x0, true);
    Variable y = drop(x);
    y.backward(dy0);
    return std::make_pair(Tensor(y.value()), Tensor(x.grad()));
  };
  const int before = get_num_threads();
  const auto one = run(1), two = run(2);
  set_num_threads(before);
  BOOST_TEST((one.first == two.first));
  BOOST_TEST((one.second == two.second));
}

BOOST_AUTO_TEST_CASE(invalid_p_throws_naming_layer_and_argument) {
  auto has = [](std::initializer_list<const char*> parts) {
    return [parts](const Error& e) { return message_has(e, parts); };
  };
  BOOST_CHECK_EXCEPTION(Dropout(1.0), Error, has({"Dropout", "p must be in [0, 1)", "got 1"}));
  BOOST_CHECK_EXCEPTION(Dropout(-0.1), Error, has({"Dropout", "p must be in [0, 1)", "got -0.1"}));
  BOOST_CHECK_EXCEPTION(Dropout(std::numeric_limits<double>::quiet_NaN()), Error, has({"Dropout", "p must"}));
  Dropout drop(0.5);
  BOOST_CHECK_EXCEPTION(drop(Variable()), Error, has({"Dropout(p=0.5)", "undefined"}));
  BOOST_TEST(drop.describe() == "Dropout(p=0.5)");
}

BOOST_AUTO_TEST_SUITE_END()
