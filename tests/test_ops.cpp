// autograd/ops and the gradient checkers: every op through gradcheck, op errors, and the
// negative tests proving that the checkers catch wrong backward passes.

// GCC 12's AVX-512 intrinsic headers start some intrinsics from _mm512_undefined_pd(), which
// -Wmaybe-uninitialized (at -O3) or -Wuninitialized (in the -O1 sanitizer build) then reports
// wherever xsimd's tanh is inlined into the double kernels below (a known GCC bug, fixed in
// GCC 13; layers/local_response_norm_kernels_common.hpp does the same). The pragmas come first
// so that they cover those headers.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif

#include <cmath>
#include <limits>

#include <boost/test/data/test_case.hpp>
#include <boost/test/unit_test.hpp>

#include <xgrad/autograd/gradcheck.hpp>
#include <xgrad/autograd/ops.hpp>
#include <xgrad/core/error.hpp>
#include <xgrad/core/rng.hpp>
#include "tests/test_util.hpp"

namespace bdata = boost::unit_test::data;
using namespace xgrad;
using xgrad::test::message_contains;
using xgrad::test::message_has;

namespace {
// A random leaf; values kept away from 0 so relu's kink does not meet the finite differences.
Variable random_var(const Shape& shape, std::uint64_t seed, const std::string& name) {
  Rng rng(seed);
  Tensor t = empty(shape);
  for (auto& v : t) {
    const double u = rng.uniform(0.2, 1.5);
    v = static_cast<float>(rng.uniform() < 0.5 ? -u : u);
  }
  return Variable(std::move(t), true, name);
}
void require_ok(const GradcheckResult& r) {
  BOOST_TEST_MESSAGE(r.summary());
  BOOST_TEST(r.ok, r.summary());
  BOOST_TEST(r.checked > 0u);
}
}  // namespace

BOOST_AUTO_TEST_SUITE(op_gradients)

BOOST_AUTO_TEST_CASE(add_sub_mul_with_broadcasting) {
  Variable a = random_var({4, 5}, 1, "a");
  Variable bias = random_var({5}, 2, "bias");
  Variable col = random_var({4, 1}, 3, "col");
  require_ok(gradcheck([&] { return add(a, bias); }, {a, bias}));
  require_ok(gradcheck([&] { return sub(a, col); }, {a, col}));
  require_ok(gradcheck([&] { return sub(bias, a); }, {a, bias}));
  require_ok(gradcheck([&] { return mul(a, bias); }, {a, bias}));
  require_ok(gradcheck([&] { return mul(col, a); }, {a, col}));
  require_ok(gradcheck([&] { return scale(a, -1.5f); }, {a}));
}

BOOST_DATA_TEST_CASE(matmul_every_transpose, bdata::make({0, 1}) * bdata::make({0, 1}), ta, tb) {
  const std::size_t m = 3, k = 4, n = 5;
  Variable a = random_var(ta ? Shape{k, m} : Shape{m, k}, 10, "a");
  Variable b = random_var(tb ? Shape{n, k} : Shape{k, n}, 11, "b");
  Variable c = matmul(a, b, ta, tb);
  BOOST_TEST(c.shape() == (Shape{m, n}), boost::test_tools::per_element());
  require_ok(gradcheck([&] { return matmul(a, b, ta, tb); }, {a, b}));
}

BOOST_AUTO_TEST_CASE(reshape_flatten_sum_mean_relu) {
  Variable x = random_var({2, 3, 4}, 20, "x");
  require_ok(gradcheck([&] { return reshape(x, {6, 4}); }, {x}));
  require_ok(gradcheck([&] { return flatten(x); }, {x}));
  BOOST_TEST(flatten(x).shape() == (Shape{2, 12}), boost::test_tools::per_element());
  require_ok(gradcheck([&] { return sum(x); }, {x}));
  require_ok(gradcheck([&] { return mean(x); }, {x}));
  require_ok(gradcheck([&] { return relu(x); }, {x}));
  require_ok(gradcheck([&] { return mean(mul(relu(x), x)); }, {x}));
}

BOOST_AUTO_TEST_CASE(large_inputs_are_sampled) {
  Variable x = random_var({50, 40}, 30, "x");
  GradcheckOptions options;
  options.max_elements = 64;
  const auto r = gradcheck([&] { return relu(x); }, {x}, options);
  require_ok(r);
  BOOST_TEST(r.checked == 64u);
}

BOOST_AUTO_TEST_CASE(relu_propagates_nan_as_pytorch_does) {
  // torch.relu(NaN) is NaN, and its backward (threshold_backward: 0 where y <= 0) passes the
  // gradient at a NaN.
  const float nan = std::numeric_limits<float>::quiet_NaN();
  Variable x(Tensor(xt::xarray<float>({-1.0f, nan, 2.0f, 0.0f})), true, "x");
  Variable y = relu(x);
  BOOST_TEST(y.value()(0) == 0.0f);
  BOOST_TEST(std::isnan(y.value()(1)));
  BOOST_TEST(y.value()(2) == 2.0f);
  BOOST_TEST(y.value()(3) == 0.0f);
  y.backward(Tensor(xt::xarray<float>({1.0f, 1.0f, 1.0f, 1.0f})));
  BOOST_TEST(x.grad()(0) == 0.0f);
  BOOST_TEST(x.grad()(1) == 1.0f);
  BOOST_TEST(x.grad()(2) == 1.0f);
  BOOST_TEST(x.grad()(3) == 0.0f);
}

BOOST_AUTO_TEST_CASE(a_nan_gradient_never_passes_the_checker) {
  Variable x = random_var({3}, 41, "x");
  const float nan = std::numeric_limits<float>::quiet_NaN();
  // y = 2x with a backward right but for a NaN in its last element: every comparison with NaN
  // is false, so a checker that kept the largest error by '>' alone would report success.
  const auto r = gradcheck(
      [&] {
        return record_op("nan_grad", Tensor(x.value() * 2.0f), {x}, [x, nan](const Tensor& dout) {
          Tensor g = dout * 2.0f;
          g(2) = nan;
          x.add_grad(g, "nan_grad");
        });
      },
      {x});
  BOOST_TEST(!r.ok, r.summary());
}

BOOST_AUTO_TEST_CASE(inputs_without_requires_grad_are_left_alone) {
  Variable a = random_var({3}, 40, "a");
  Variable constant(Tensor(xt::xarray<float>({1.0f, 2.0f, 3.0f})), false, "constant");
  require_ok(gradcheck([&] { return mul(a, constant); }, {a, constant}));
  BOOST_TEST(!constant.has_grad());
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(op_errors)

BOOST_AUTO_TEST_CASE(matmul_shapes) {
  Variable a(zeros({2, 3})), b(zeros({4, 5})), v(zeros({3}));
  BOOST_CHECK_EXCEPTION(matmul(a, b), Error, [](const Error& e) {
    return message_contains(e, "matmul") && message_contains(e, "(2, 3)") && message_contains(e, "(4, 5)");
  });
  BOOST_CHECK_EXCEPTION(matmul(a, v), Error,
                        [](const Error& e) { return message_contains(e, "2-D") && message_contains(e, "(3,)"); });
  BOOST_CHECK_NO_THROW(matmul(a, Variable(zeros({5, 3})), false, true));
}

BOOST_AUTO_TEST_CASE(broadcast_and_reshape_shapes) {
  Variable a(zeros({2, 3})), b(zeros({4}));
  BOOST_CHECK_EXCEPTION(add(a, b), Error, [](const Error& e) {
    return message_contains(e, "add") && message_contains(e, "(2, 3)") && message_contains(e, "(4,)");
  });
  BOOST_CHECK_EXCEPTION(mul(a, b), Error, [](const Error& e) { return message_contains(e, "mul"); });
  BOOST_CHECK_EXCEPTION(reshape(a, {5}), Error,
                        [](const Error& e) { return message_contains(e, "reshape") && message_contains(e, "(5,)"); });
  BOOST_CHECK_EXCEPTION(mean(Variable(zeros({0}))), Error, [](const Error& e) { return message_contains(e, "empty"); });
}

BOOST_AUTO_TEST_SUITE_END()

// The checkers must fail on wrong backward passes, or every passing gradient test above
// would prove nothing.
BOOST_AUTO_TEST_SUITE(checker_catches_errors)

namespace {
// y = x^2 with a backward that is wrong in a chosen way.
enum class Bug { None, Scaled, Overwrites, SkipsOne };
Variable square_with(const Variable& x, Bug bug) {
  return record_op("square", Tensor(x.value() * x.value()), {x}, [x, bug](const Tensor& dout) {
    Tensor g = dout * 2.0f * x.value();
    if (bug == Bug::Scaled) g *= 1.05f;
    if (bug == Bug::SkipsOne) g(1) = 0.0f;
    if (bug == Bug::Overwrites) {
      x.grad_buffer() = g;  // replaces instead of adding
    } else {
      x.add_grad(g, "square");
    }
  });
}
}  // namespace

BOOST_AUTO_TEST_CASE(tape_checker_catches_planted_bugs) {
  Variable x = random_var({6}, 50, "x");
  BOOST_TEST(gradcheck([&] { return square_with(x, Bug::None); }, {x}).ok);
  for (Bug bug : {Bug::Scaled, Bug::Overwrites, Bug::SkipsOne}) {
    const auto r = gradcheck([&] { return square_with(x, bug); }, {x});
    BOOST_TEST(!r.ok, "planted bug " << int(bug) << " was not caught: " << r.summary());
    BOOST_TEST(r.worst_input == "x");
  }
}

BOOST_AUTO_TEST_CASE(kernel_checker_catches_planted_bugs) {
  // f(x, w) = tanh(x) * w elementwise, in double.
  auto forward = [](const KernelInputs& in) { return xt::xarray<double>(xt::tanh(in[0]) * in[1]); };
  auto backward_with = [](double error) {
    return [error](const KernelInputs& in, const xt::xarray<double>& dy, KernelInputs& g) {
      const auto t = xt::tanh(in[0]);
      g[0] += dy * in[1] * (1.0 - t * t) * (1.0 + error);
      g[1] += dy * t;
    };
  };
  Rng rng(60);
  KernelInputs inputs{xt::xarray<double>::from_shape({3, 4}), xt::xarray<double>::from_shape({3, 4})};
  for (auto& t : inputs)
    for (auto& v : t) v = rng.normal();
  const auto good = gradcheck_kernel(forward, backward_with(0.0), inputs);
  BOOST_TEST(good.ok, good.summary());
  BOOST_TEST(good.worst_error < 1e-8);
  // A relative error of 1e-5 in one term is far above the 1e-6 tolerance.
  const auto bad = gradcheck_kernel(forward, backward_with(1e-5), inputs);
  BOOST_TEST(!bad.ok, bad.summary());
  BOOST_TEST(bad.worst_input == "input 0");
  // A backward that forgets to add (overwrites the pre-filled gradient) is caught too.
  const auto overwrite = gradcheck_kernel(
      forward,
      [](const KernelInputs& in, const xt::xarray<double>& dy, KernelInputs& g) {
        const auto t = xt::tanh(in[0]);
        g[0] = dy * in[1] * (1.0 - t * t);
        g[1] += dy * t;
      },
      inputs);
  BOOST_TEST(!overwrite.ok, overwrite.summary());
}

BOOST_AUTO_TEST_SUITE_END()
