// BatchNorm2d: PyTorch's outputs, gradients and running estimates (fixtures in
// fixtures/batch_norm), double-precision gradient checks of both modes (and a planted error the
// checker must catch), the tape through the layer, eval(), the options, thread-count
// independence, and validation.
#include <boost/test/unit_test.hpp>

#include <cmath>
#include <fstream>
#include <limits>
#include <string>
#include <vector>

#include <xtensor/xarray.hpp>

#include <xgrad/autograd/gradcheck.hpp>
#include <xgrad/autograd/tape.hpp>
#include <xgrad/core/error.hpp>
#include <xgrad/core/npy.hpp>
#include <xgrad/core/threading.hpp>
#include <xgrad/layers/batch_norm.hpp>
#include "tests/test_util.hpp"

using namespace xgrad;
using xgrad::test::mentions;
using xgrad::test::random_tensor;

namespace {

struct Dims {
  std::size_t N, C, S;
};

Dims dims_of(const Shape& s) {
  std::size_t S = 1;
  for (std::size_t d = 2; d < s.size(); ++d) S *= s[d];
  return {s[0], s[1], S};
}

Tensor to_float(const xt::xarray<double>& a) {
  Tensor t = empty(Shape(a.shape().begin(), a.shape().end()));
  for (std::size_t i = 0; i < a.size(); ++i) t.data()[i] = static_cast<float>(a.data()[i]);
  return t;
}

// max |a - b| / (1 + |b|)
double worst(const Tensor& a, const xt::xarray<double>& b) {
  BOOST_REQUIRE(a.size() == b.size());
  double w = 0.0;
  for (std::size_t i = 0; i < a.size(); ++i)
    w = std::max(w, std::abs(static_cast<double>(a.data()[i]) - b.data()[i]) / (1.0 + std::abs(b.data()[i])));
  return w;
}

// The kernels in double, as a forward and backward for gradcheck_kernel: inputs {x, weight, bias},
// with the batch's statistics or with fixed ones (mean 0.3, variance 1.7 in every channel).
xt::xarray<double> kernel_forward(const KernelInputs& in, bool batch_statistics) {
  const Shape s(in[0].shape().begin(), in[0].shape().end());
  const Dims d = dims_of(s);
  std::vector<double> mean(d.C, 0.3), var(d.C, 1.7), invstd(d.C, 1.0 / std::sqrt(1.7 + 1e-5));
  if (batch_statistics)
    kernels::batch_norm_statistics<double>(in[0].data(), d.N, d.C, d.S, 1e-5, mean.data(), var.data(), invstd.data());
  xt::xarray<double> y = xt::xarray<double>::from_shape(s);
  kernels::batch_norm_forward<double>(in[0].data(), y.data(), d.N, d.C, d.S, mean.data(), invstd.data(),
                                      in[1].data(), in[2].data());
  return y;
}

void kernel_backward(const KernelInputs& in, const xt::xarray<double>& dy, KernelInputs& grads, bool batch_statistics) {
  const Shape s(in[0].shape().begin(), in[0].shape().end());
  const Dims d = dims_of(s);
  std::vector<double> mean(d.C, 0.3), var(d.C, 1.7), invstd(d.C, 1.0 / std::sqrt(1.7 + 1e-5));
  if (batch_statistics)
    kernels::batch_norm_statistics<double>(in[0].data(), d.N, d.C, d.S, 1e-5, mean.data(), var.data(), invstd.data());
  kernels::batch_norm_backward<double>(in[0].data(), dy.data(), d.N, d.C, d.S, mean.data(), invstd.data(),
                                       in[1].data(), batch_statistics, grads[0].data(), false, grads[1].data(),
                                       grads[2].data());
}

KernelInputs kernel_inputs(const Shape& shape, std::uint64_t seed) {
  const Tensor x = random_tensor(shape, seed, -2.0, 3.0);
  const Tensor w = random_tensor({shape[1]}, seed + 1, 0.5, 2.0);
  const Tensor b = random_tensor({shape[1]}, seed + 2, -1.0, 1.0);
  auto to_double = [](const Tensor& t) {
    xt::xarray<double> a = xt::xarray<double>::from_shape(t.shape());
    for (std::size_t i = 0; i < t.size(); ++i) a.data()[i] = t.data()[i];
    return a;
  };
  return {to_double(x), to_double(w), to_double(b)};
}

}  // namespace

BOOST_AUTO_TEST_SUITE(batch_norm)

BOOST_AUTO_TEST_CASE(matches_pytorch_fixtures) {
  const std::string dir = std::string(XGRAD_FIXTURES_DIR) + "/batch_norm/";
  std::ifstream manifest(dir + "cases.txt");
  BOOST_REQUIRE(manifest.good());
  std::string name;
  int cases = 0;
  while (manifest >> name) {
    BOOST_TEST_CONTEXT(name) {
      auto load = [&](const char* what) { return load_npy<double>(dir + name + "." + what + ".npy"); };
      const auto x = load("x"), dy = load("dy");
      const std::size_t C = x.shape()[1];
      BatchNorm2d bn(C);
      Variable w = bn.weight(), b = bn.bias();
      w.mutable_value() = to_float(load("weight"));
      b.mutable_value() = to_float(load("bias"));
      *bn.running_mean() = to_float(load("running_mean0"));
      *bn.running_var() = to_float(load("running_var0"));

      Variable xv(to_float(x), true);
      Variable y = bn(xv);
      y.backward(to_float(dy));
      BOOST_TEST(worst(y.value(), load("y")) <= 2e-6);
      BOOST_TEST(worst(xv.grad(), load("dx")) <= 2e-5);
      BOOST_TEST(worst(bn.weight().grad(), load("dweight")) <= 2e-5);
      BOOST_TEST(worst(bn.bias().grad(), load("dbias")) <= 2e-5);
      BOOST_TEST(worst(*bn.running_mean(), load("running_mean")) <= 1e-6);
      BOOST_TEST(worst(*bn.running_var(), load("running_var")) <= 1e-6);

      bn.eval();
      Variable xe(to_float(x), true);
      Variable ye = bn(xe);
      ye.backward(to_float(dy));
      BOOST_TEST(worst(ye.value(), load("y_eval")) <= 2e-6);
      BOOST_TEST(worst(xe.grad(), load("dx_eval")) <= 2e-6);
      // eval() leaves the running estimates alone
      BOOST_TEST(worst(*bn.running_mean(), load("running_mean")) <= 1e-6);
    }
    ++cases;
  }
  BOOST_TEST(cases == 4);
}

BOOST_AUTO_TEST_CASE(kernel_gradients_in_both_modes) {
  for (const Shape& shape : {Shape{3, 2, 4, 5}, Shape{5, 3, 1, 1}, Shape{1, 4, 3, 3}}) {
    for (bool batch : {true, false}) {
      BOOST_TEST_CONTEXT(shape_str(shape) << (batch ? " batch statistics" : " fixed statistics")) {
        const auto f = [batch](const KernelInputs& in) { return kernel_forward(in, batch); };
        const auto b = [batch](const KernelInputs& in, const xt::xarray<double>& dy, KernelInputs& g) {
          kernel_backward(in, dy, g, batch);
        };
        const GradcheckResult r = gradcheck_kernel(f, b, kernel_inputs(shape, 11));
        BOOST_TEST(r.ok, r.summary());
      }
    }
  }
}

// The checker must fail backwards with planted errors: dx without the mean(dy) term, and dx
// computed as if the statistics were fixed while the forward used the batch's.
BOOST_AUTO_TEST_CASE(gradient_check_catches_planted_errors) {
  const KernelInputs inputs = kernel_inputs({3, 2, 4, 5}, 12);
  const auto f = [](const KernelInputs& in) { return kernel_forward(in, true); };
  const auto without_mean_term = [](const KernelInputs& in, const xt::xarray<double>& dy, KernelInputs& g) {
    kernel_backward(in, dy, g, true);
    // add back weight * invstd * mean(dy) per channel: the term the formula subtracts
    const Dims d = dims_of(Shape(in[0].shape().begin(), in[0].shape().end()));
    std::vector<double> mean(d.C), var(d.C), invstd(d.C);
    kernels::batch_norm_statistics<double>(in[0].data(), d.N, d.C, d.S, 1e-5, mean.data(), var.data(), invstd.data());
    for (std::size_t c = 0; c < d.C; ++c) {
      double sum = 0.0;
      for (std::size_t n = 0; n < d.N; ++n)
        for (std::size_t s = 0; s < d.S; ++s) sum += dy.data()[(n * d.C + c) * d.S + s];
      for (std::size_t n = 0; n < d.N; ++n)
        for (std::size_t s = 0; s < d.S; ++s)
          g[0].data()[(n * d.C + c) * d.S + s] += in[1].data()[c] * invstd[c] * sum / static_cast<double>(d.N * d.S);
    }
  };
  const auto as_fixed = [](const KernelInputs& in, const xt::xarray<double>& dy, KernelInputs& g) {
    const Dims d = dims_of(Shape(in[0].shape().begin(), in[0].shape().end()));
    std::vector<double> mean(d.C), var(d.C), invstd(d.C);
    kernels::batch_norm_statistics<double>(in[0].data(), d.N, d.C, d.S, 1e-5, mean.data(), var.data(), invstd.data());
    kernels::batch_norm_backward<double>(in[0].data(), dy.data(), d.N, d.C, d.S, mean.data(), invstd.data(),
                                         in[1].data(), false, g[0].data(), false, g[1].data(), g[2].data());
  };
  for (const auto& wrong : {KernelBackward(without_mean_term), KernelBackward(as_fixed)}) {
    const GradcheckResult r = gradcheck_kernel(f, wrong, inputs);
    BOOST_TEST(!r.ok, r.summary());
    BOOST_TEST(r.worst_error > 1e-3);
  }
}

BOOST_AUTO_TEST_CASE(tape_gradients_through_the_layer) {
  BatchNorm2d bn(3);
  Variable w = bn.weight(), b = bn.bias();
  w.mutable_value() = random_tensor({3}, 21, 0.5, 2.0);
  b.mutable_value() = random_tensor({3}, 22);
  GradcheckResult r = gradcheck(bn, Variable(random_tensor({4, 3, 3, 2}, 23, -2.0, 2.0), true));
  BOOST_TEST(r.ok, r.summary());
  bn.eval();
  r = gradcheck(bn, Variable(random_tensor({2, 3, 3, 2}, 24, -2.0, 2.0), true));
  BOOST_TEST(r.ok, r.summary());
}

BOOST_AUTO_TEST_CASE(normalises_each_channel_and_registers_its_state) {
  BatchNorm2d bn(BatchNorm2dOptions(2).momentum(0.5));
  BOOST_TEST(bn.parameters().size() == 2u);
  BOOST_TEST(bn.parameters()[0].name == "weight");
  BOOST_TEST(bn.parameters()[1].name == "bias");
  const auto buffers = bn.buffers();
  BOOST_REQUIRE(buffers.size() == 2u);
  BOOST_TEST(buffers[0].name == "running_mean");
  BOOST_TEST(buffers[1].name == "running_var");

  // channel 0 holds 1..8, channel 1 holds 10 x that
  Tensor x = empty({2, 2, 2, 2});
  for (std::size_t n = 0; n < 2; ++n)
    for (std::size_t c = 0; c < 2; ++c)
      for (std::size_t s = 0; s < 4; ++s) x.data()[(n * 2 + c) * 4 + s] = static_cast<float>((n * 4 + s + 1) * (c ? 10 : 1));
  const Tensor y = bn(Variable(x)).value();
  for (std::size_t c = 0; c < 2; ++c) {
    double sum = 0.0, squares = 0.0;
    for (std::size_t n = 0; n < 2; ++n)
      for (std::size_t s = 0; s < 4; ++s) {
        const double v = y.data()[(n * 2 + c) * 4 + s];
        sum += v;
        squares += v * v;
      }
    BOOST_TEST(std::abs(sum / 8) <= 1e-6);
    BOOST_TEST(squares / 8 == 1.0, boost::test_tools::tolerance(1e-4));  // biased variance, eps 1e-5
  }
  // mean 4.5, unbiased variance 6 (channel 0); x10 and x100 in channel 1; momentum 0.5
  BOOST_TEST((*bn.running_mean())(0) == 0.5f * 4.5f, boost::test_tools::tolerance(1e-6f));
  BOOST_TEST((*bn.running_mean())(1) == 0.5f * 45.0f, boost::test_tools::tolerance(1e-6f));
  BOOST_TEST((*bn.running_var())(0) == 0.5f + 0.5f * 6.0f, boost::test_tools::tolerance(1e-6f));
  BOOST_TEST((*bn.running_var())(1) == 0.5f + 0.5f * 600.0f, boost::test_tools::tolerance(1e-6f));

  BOOST_TEST(bn.repr() == "BatchNorm2d(2, eps=1e-05, momentum=0.5, affine=true, track_running_stats=true)");
}

BOOST_AUTO_TEST_CASE(options_without_affine_or_running_estimates) {
  BatchNorm2d plain(BatchNorm2dOptions(3).affine(false));
  BOOST_TEST(plain.parameters().empty());
  BOOST_TEST(!plain.weight().defined());
  const Tensor x = random_tensor({4, 3, 2, 2}, 31, -3.0, 5.0);
  Variable xv(x, true);
  Variable y = plain(xv);
  y.backward(random_tensor({4, 3, 2, 2}, 32));
  BOOST_TEST(xv.has_grad());

  // Without running estimates, eval() normalises by the batch's statistics too.
  BatchNorm2d untracked(BatchNorm2dOptions(3).track_running_stats(false));
  BOOST_TEST(untracked.buffers().empty());
  BOOST_TEST(untracked.running_mean() == nullptr);
  const Tensor trained = untracked(Variable(x)).value();
  untracked.eval();
  BOOST_TEST((untracked(Variable(x)).value() == trained));
}

BOOST_AUTO_TEST_CASE(bit_identical_at_one_and_two_threads) {
  const Tensor x0 = random_tensor({16, 96, 7, 7}, 41, -2.0, 3.0);
  const Tensor dy0 = random_tensor({16, 96, 7, 7}, 42);
  auto run = [&](int threads) {
    set_num_threads(threads);
    BatchNorm2d bn(96);
    Variable x(x0, true);
    Variable y = bn(x);
    y.backward(dy0);
    return std::vector<Tensor>{y.value(), x.grad(), bn.weight().grad(), bn.bias().grad(), *bn.running_var()};
  };
  const int before = get_num_threads();
  const auto one = run(1), two = run(2);
  set_num_threads(before);
  for (std::size_t i = 0; i < one.size(); ++i) BOOST_TEST((one[i] == two[i]), "output " << i);
}

BOOST_AUTO_TEST_CASE(bad_settings_and_inputs_throw_naming_layer_and_argument) {
  BOOST_CHECK_EXCEPTION(BatchNorm2d(0), Error, mentions({"BatchNorm2d", "num_features", "0"}));
  BOOST_CHECK_EXCEPTION(BatchNorm2d(BatchNorm2dOptions(4).eps(0.0)), Error, mentions({"BatchNorm2d", "eps"}));
  BOOST_CHECK_EXCEPTION(BatchNorm2d(BatchNorm2dOptions(4).eps(std::numeric_limits<double>::quiet_NaN())), Error,
                        mentions({"BatchNorm2d", "eps"}));
  BOOST_CHECK_EXCEPTION(BatchNorm2d(BatchNorm2dOptions(4).momentum(1.5)), Error,
                        mentions({"BatchNorm2d", "momentum", "1.5"}));
  BatchNorm2d bn(4);
  BOOST_CHECK_EXCEPTION(bn(Variable(random_tensor({2, 4, 3}, 1))), Error,
                        mentions({"BatchNorm2d(4", "(N, 4, H, W)", "(2, 4, 3)"}));
  BOOST_CHECK_EXCEPTION(bn(Variable(random_tensor({2, 3, 3, 3}, 1))), Error, mentions({"BatchNorm2d(4", "(2, 3, 3, 3)"}));
  BOOST_CHECK_EXCEPTION(bn(Variable()), Error, mentions({"BatchNorm2d", "undefined"}));
  // one value per channel cannot be normalised in training; in eval() it can
  BOOST_CHECK_EXCEPTION(bn(Variable(random_tensor({1, 4, 1, 1}, 1))), Error,
                        mentions({"BatchNorm2d(4", "more than one value per channel", "(1, 4, 1, 1)"}));
  BOOST_CHECK_EXCEPTION(bn(Variable(empty({0, 4, 2, 2}))), Error, mentions({"BatchNorm2d(4", "(0, 4, 2, 2)"}));
  bn.eval();
  BOOST_TEST(bn(Variable(random_tensor({1, 4, 1, 1}, 1))).shape() == (Shape{1, 4, 1, 1}));
  BOOST_TEST(bn(Variable(empty({0, 4, 2, 2}))).shape() == (Shape{0, 4, 2, 2}));

  // the functional form checks what a layer cannot get wrong
  Tensor rm = zeros<float>({4}), rv = full<float>({4}, 1.0f), short_stat = zeros<float>({3});
  const Variable x(random_tensor({2, 4, 2, 2}, 2));
  BOOST_CHECK_EXCEPTION(functional::batch_norm(x, &short_stat, &rv, Variable(), Variable(), true), Error,
                        mentions({"BatchNorm2d", "running_mean", "(4,)", "(3,)"}));
  BOOST_CHECK_EXCEPTION(functional::batch_norm(x, &rm, nullptr, Variable(), Variable(), true), Error,
                        mentions({"BatchNorm2d", "together"}));
  BOOST_CHECK_EXCEPTION(functional::batch_norm(x, nullptr, nullptr, Variable(), Variable(), false), Error,
                        mentions({"BatchNorm2d", "evaluation"}));
  BOOST_CHECK_EXCEPTION(functional::batch_norm(x, &rm, &rv, Variable(zeros<float>({3})), Variable(), true), Error,
                        mentions({"BatchNorm2d", "weight", "(4,)", "(3,)"}));
  BOOST_CHECK_EXCEPTION(functional::batch_norm(Variable(random_tensor({5}, 3)), nullptr, nullptr, Variable(),
                                               Variable(), true),
                        Error, mentions({"BatchNorm2d", "rank >= 2", "(5,)"}));
}

BOOST_AUTO_TEST_SUITE_END()
