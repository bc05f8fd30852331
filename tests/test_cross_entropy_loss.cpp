// CrossEntropyLoss: value against a direct log-softmax in double, stability for large logits,
// analytic gradients (double kernels and the float loss on the tape), label smoothing (against
// PyTorch's values and by gradient check), validation errors.
#include <boost/test/unit_test.hpp>

#include <cmath>
#include <string>
#include <vector>

#include <xtensor/xarray.hpp>

#include <xgrad/autograd/gradcheck.hpp>
#include <xgrad/autograd/tape.hpp>
#include <xgrad/core/error.hpp>
#include <xgrad/core/rng.hpp>
#include <xgrad/layers/cross_entropy_loss.hpp>
#include "tests/test_util.hpp"

namespace tt = boost::test_tools;
using namespace xgrad;
using xgrad::test::message_contains;
using xgrad::test::message_has;

namespace {

double reference_loss(const xt::xarray<double>& z, const std::vector<std::int64_t>& labels) {
  const std::size_t N = z.shape()[0], K = z.shape()[1];
  double total = 0.0;
  for (std::size_t n = 0; n < N; ++n) {
    double sum = 0.0;
    for (std::size_t k = 0; k < K; ++k) sum += std::exp(z(n, k));
    total += std::log(sum) - z(n, static_cast<std::size_t>(labels[n]));
  }
  return total / static_cast<double>(N);
}

xt::xarray<double> random_logits(std::size_t N, std::size_t K, std::uint64_t seed, double scale = 2.0) {
  xt::xarray<double> z = xt::xarray<double>::from_shape({N, K});
  Rng rng(seed);
  for (auto& v : z) v = rng.uniform(-scale, scale);
  return z;
}

const std::vector<std::int64_t> kLabels = {3, 0, 9, 4, 4, 1, 7};

}  // namespace

BOOST_AUTO_TEST_SUITE(cross_entropy_loss)

BOOST_AUTO_TEST_CASE(value_matches_direct_log_softmax) {
  const xt::xarray<double> z = random_logits(7, 10, 1);
  CrossEntropyLoss loss;
  const Variable l = loss(Variable(Tensor(xt::cast<float>(z))), kLabels);
  BOOST_TEST(l.shape().empty());
  BOOST_TEST(static_cast<double>(l.value()()) == reference_loss(z, kLabels), tt::tolerance(1e-6));
  BOOST_TEST(kernels::cross_entropy_forward<double>(z.data(), kLabels.data(), 7, 10) == reference_loss(z, kLabels),
             tt::tolerance(1e-12));
  // Uniform logits: log(K).
  BOOST_TEST(loss(Variable(zeros({2, 10})), {1, 2}).value()() == std::log(10.0f), tt::tolerance(1e-6f));
}

BOOST_AUTO_TEST_CASE(large_logits_are_stable) {
  Tensor z = {{1000.0f, 0.0f, -1000.0f}, {-500.0f, 500.0f, 499.0f}};
  Variable logits(z, true);
  CrossEntropyLoss loss;
  Variable l = loss(logits, {2, 2});
  // Row 0: 2000; row 1: log(1 + e^-1) + 1.
  const double expected = (2000.0 + std::log1p(std::exp(-1.0)) + 1.0) / 2.0;
  BOOST_TEST(static_cast<double>(l.value()()) == expected, tt::tolerance(1e-6));
  l.backward();
  for (float g : logits.grad()) BOOST_TEST(std::isfinite(g));
  BOOST_TEST(logits.grad()(0, 0) == 0.5f, tt::tolerance(1e-6f));
  BOOST_TEST(logits.grad()(0, 2) == -0.5f, tt::tolerance(1e-6f));
}

BOOST_AUTO_TEST_CASE(double_kernel_gradients) {
  auto forward = [](const KernelInputs& in) {
    return xt::xarray<double>(kernels::cross_entropy_forward<double>(in[0].data(), kLabels.data(), 7, 10));
  };
  const GradcheckResult r = gradcheck_kernel(
      forward,
      [](const KernelInputs& in, const xt::xarray<double>& dout, KernelInputs& grads) {
        kernels::cross_entropy_backward<double>(in[0].data(), kLabels.data(), dout(), grads[0].data(), 7, 10);
      },
      {random_logits(7, 10, 2)});
  BOOST_TEST(r.ok, r.summary());

  // Planted: dropping the 1/N makes the check fail.
  const GradcheckResult wrong = gradcheck_kernel(
      forward,
      [](const KernelInputs& in, const xt::xarray<double>& dout, KernelInputs& grads) {
        kernels::cross_entropy_backward<double>(in[0].data(), kLabels.data(), dout() * 7.0, grads[0].data(), 7, 10);
      },
      {random_logits(7, 10, 2)});
  BOOST_TEST(!wrong.ok, wrong.summary());
}

BOOST_AUTO_TEST_CASE(gradients_on_the_tape) {
  Variable logits(Tensor(xt::cast<float>(random_logits(7, 10, 3))), true, "logits");
  CrossEntropyLoss loss;
  const GradcheckResult r = gradcheck([&] { return loss(logits, kLabels); }, {logits});
  BOOST_TEST(r.ok, r.summary());
}

// torch.nn.functional.cross_entropy(z, y, label_smoothing=0.1) in float64 (PyTorch 1.13), and
// z.grad after its backward.
BOOST_AUTO_TEST_CASE(label_smoothing_matches_pytorch) {
  const xt::xarray<double> z = {{1.5, -0.5, 0.25, 2.0}, {0.0, 3.0, -1.0, 0.5}, {-2.0, 0.75, 1.25, -0.25}};
  const std::vector<std::int64_t> labels = {3, 0, 2};
  const double torch_loss = 1.5247955812547447;
  const xt::xarray<double> torch_grad = {
      {0.10022444983775369, 0.006358364999664516, 0.022768992281691516, -0.12935180711910974},
      {-0.2939046541089712, 0.2814744359804228, -0.0030253188834329986, 0.015455537011981513},
      {-0.001415920764876354, 0.0998732050660958, -0.1299309118453643, 0.03147362754414487}};
  BOOST_TEST(kernels::cross_entropy_forward<double>(z.data(), labels.data(), 3, 4, 0.1) == torch_loss,
             tt::tolerance(1e-12));
  xt::xarray<double> grad = xt::zeros<double>({3, 4});
  kernels::cross_entropy_backward<double>(z.data(), labels.data(), 1.0, grad.data(), 3, 4, 0.1);
  for (std::size_t i = 0; i < grad.size(); ++i) BOOST_TEST(grad.data()[i] == torch_grad.data()[i], tt::tolerance(1e-12));

  // The float loss on the tape, through the options.
  CrossEntropyLoss loss(CrossEntropyLossOptions().label_smoothing(0.1));
  BOOST_TEST(loss.repr() == "CrossEntropyLoss(label_smoothing=0.1)");
  Variable logits(Tensor(xt::cast<float>(z)), true);
  Variable l = loss(logits, labels);
  BOOST_TEST(static_cast<double>(l.value()()) == torch_loss, tt::tolerance(1e-6));
  l.backward();
  for (std::size_t i = 0; i < grad.size(); ++i) {
    BOOST_TEST(static_cast<double>(logits.grad().data()[i]) == torch_grad.data()[i], tt::tolerance(1e-5));
  }
  // Smoothing 0 is the plain loss; uniform logits give log(K) for any smoothing.
  BOOST_TEST(kernels::cross_entropy_forward<double>(z.data(), labels.data(), 3, 4, 0.0) == reference_loss(z, labels),
             tt::tolerance(1e-12));
  BOOST_TEST(CrossEntropyLoss(CrossEntropyLossOptions().label_smoothing(0.3))(Variable(zeros({2, 10})), {1, 2}).value()() ==
                 std::log(10.0f),
             tt::tolerance(1e-6f));
}

BOOST_AUTO_TEST_CASE(label_smoothing_gradients) {
  auto forward = [](const KernelInputs& in) {
    return xt::xarray<double>(kernels::cross_entropy_forward<double>(in[0].data(), kLabels.data(), 7, 10, 0.1));
  };
  const GradcheckResult r = gradcheck_kernel(
      forward,
      [](const KernelInputs& in, const xt::xarray<double>& dout, KernelInputs& grads) {
        kernels::cross_entropy_backward<double>(in[0].data(), kLabels.data(), dout(), grads[0].data(), 7, 10, 0.1);
      },
      {random_logits(7, 10, 4)});
  BOOST_TEST(r.ok, r.summary());

  // Planted: a backward that forgets the smoothing (the one-hot target) makes the check fail.
  const GradcheckResult wrong = gradcheck_kernel(
      forward,
      [](const KernelInputs& in, const xt::xarray<double>& dout, KernelInputs& grads) {
        kernels::cross_entropy_backward<double>(in[0].data(), kLabels.data(), dout(), grads[0].data(), 7, 10, 0.0);
      },
      {random_logits(7, 10, 4)});
  BOOST_TEST(!wrong.ok, wrong.summary());

  Variable logits(Tensor(xt::cast<float>(random_logits(7, 10, 5))), true, "logits");
  CrossEntropyLoss loss(CrossEntropyLossOptions().label_smoothing(0.2));
  const GradcheckResult tape = gradcheck([&] { return loss(logits, kLabels); }, {logits});
  BOOST_TEST(tape.ok, tape.summary());
}

BOOST_AUTO_TEST_CASE(invalid_inputs_throw_naming_the_loss) {
  auto has = [](std::initializer_list<const char*> parts) {
    return [parts](const Error& e) { return message_has(e, parts); };
  };
  CrossEntropyLoss loss;
  BOOST_CHECK_EXCEPTION(loss(Variable(zeros({2, 3})), {0, 3}), Error,
                        has({"CrossEntropyLoss", "label 1 is 3", "[0, 3)", "(2, 3)"}));
  BOOST_CHECK_EXCEPTION(loss(Variable(zeros({2, 3})), {-1, 0}), Error, has({"CrossEntropyLoss", "label 0 is -1"}));
  BOOST_CHECK_EXCEPTION(loss(Variable(zeros({2, 3})), {0}), Error,
                        has({"CrossEntropyLoss", "1 labels", "(2, 3)", "expected 2"}));
  BOOST_CHECK_EXCEPTION(loss(Variable(zeros({2, 3, 1})), {0, 0}), Error,
                        has({"CrossEntropyLoss", "rank 2", "(2, 3, 1)"}));
  BOOST_CHECK_EXCEPTION(loss(Variable(zeros({0, 3})), {}), Error, has({"CrossEntropyLoss", "empty batch", "(0, 3)"}));
  BOOST_CHECK_EXCEPTION(loss(Variable(), {}), Error, has({"CrossEntropyLoss", "undefined"}));
  BOOST_CHECK_EXCEPTION(CrossEntropyLoss(CrossEntropyLossOptions().label_smoothing(1.5)), Error,
                        has({"CrossEntropyLoss", "label_smoothing", "[0, 1]", "1.5"}));
  BOOST_CHECK_EXCEPTION(CrossEntropyLoss(CrossEntropyLossOptions().label_smoothing(-0.1)), Error,
                        has({"CrossEntropyLoss", "label_smoothing", "[0, 1]"}));
  BOOST_CHECK_EXCEPTION(functional::cross_entropy(Variable(zeros({2, 3})), {0, 0}, std::nan("")), Error,
                        has({"CrossEntropyLoss", "label_smoothing"}));
}

BOOST_AUTO_TEST_SUITE_END()
