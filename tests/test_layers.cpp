// layers/: the Layer interface, Sequential, Linear and ReLU.
#include <boost/test/unit_test.hpp>

#include <xgrad/autograd/ops.hpp>
#include <xgrad/core/blas_skinny_kernels.hpp>
#include <xgrad/core/error.hpp>
#include <xgrad/layers/layer.hpp>
#include <xgrad/layers/linear.hpp>
#include <xgrad/layers/relu.hpp>
#include "tests/test_util.hpp"

using namespace xgrad;
using xgrad::test::message_contains;
using xgrad::test::message_has;

namespace {
Variable input(const Shape& shape, std::uint64_t seed) {
  Rng rng(seed);
  Tensor t = empty(shape);
  for (auto& v : t) v = static_cast<float>((rng.uniform() < 0.5 ? -1 : 1) * rng.uniform(0.2, 1.5));
  return Variable(std::move(t), true, "input");
}
}  // namespace

BOOST_AUTO_TEST_SUITE(layers)

BOOST_AUTO_TEST_CASE(linear_forward_matches_definition) {
  Rng rng(1);
  Linear fc(3, 2, true, rng);
  Variable x = input({4, 3}, 2);
  Variable y = fc(x);
  BOOST_TEST(y.shape() == (Shape{4, 2}), boost::test_tools::per_element());
  const Tensor& w = fc.weight().value();
  const Tensor& b = fc.bias().value();
  for (std::size_t n = 0; n < 4; ++n)
    for (std::size_t o = 0; o < 2; ++o) {
      double ref = b(o);
      for (std::size_t i = 0; i < 3; ++i) ref += double(x.value()(n, i)) * w(o, i);
      BOOST_TEST(y.value()(n, o) == ref, boost::test_tools::tolerance(1e-5));
    }
  // PyTorch's init bound 1/sqrt(in_features)
  for (float v : w) BOOST_TEST(std::abs(v) <= 1.0f / std::sqrt(3.0f));
}

// At a small batch against a weight of 2^20 elements or more, Linear's three products run on
// gemm()'s own kernels (core/blas_skinny_kernels.hpp): y, dx and dW against double sums (within
// the worst-case bound of a float sum of k products), the weight gradient stored after
// zero_grad (beta 0) and added without it (beta 1).
BOOST_AUTO_TEST_CASE(linear_at_a_small_batch_against_a_large_weight) {
  const std::size_t n = 5, in = 1040, out = 1030;
  BOOST_TEST_REQUIRE(detail::takes_skinny_gemm(false, true, n, out, in));
  BOOST_TEST_REQUIRE(detail::takes_skinny_gemm(false, false, n, in, out));
  BOOST_TEST_REQUIRE(detail::takes_skinny_gemm(true, false, out, in, n));
  Rng rng(9);
  Linear fc(in, out, true, rng);
  Tensor xv = empty({n, in}), seed = empty({n, out});
  rng.fill_normal(xv, 0.0, 1.0);
  rng.fill_normal(seed, 0.0, 1.0);
  const Tensor& w = fc.weight().value();
  const double u = std::ldexp(1.0, -24);
  // |got - sum of terms| within (k + 8) u sum |terms|, counted over all elements.
  // first: the bias of column j, or none.
  auto bad = [u](const Tensor& got, std::size_t rows, std::size_t cols, std::size_t k, auto term, const Tensor* first) {
    std::size_t count = 0;
    for (std::size_t i = 0; i < rows; ++i) {
      for (std::size_t j = 0; j < cols; ++j) {
        double ref = first ? double((*first)(j)) : 0.0, bound = std::abs(ref);
        for (std::size_t p = 0; p < k; ++p) {
          const double t = term(i, j, p);
          ref += t;
          bound += std::abs(t);
        }
        if (!(std::abs(got(i, j) - ref) <= double(k + 8) * u * bound + 1e-6 * std::abs(ref))) ++count;
      }
    }
    return count;
  };
  Variable x(xv, true);
  Variable y = fc(x);
  BOOST_TEST(bad(y.value(), n, out, in, [&](auto i, auto j, auto p) { return double(xv(i, p)) * w(j, p); },
                 &fc.bias().value()) == 0u);
  y.backward(seed);
  BOOST_TEST(bad(x.grad(), n, in, out, [&](auto i, auto j, auto p) { return double(seed(i, p)) * w(p, j); },
                 nullptr) == 0u);
  auto dw_term = [&](auto o, auto i, auto p) { return double(seed(p, o)) * xv(p, i); };
  BOOST_TEST(bad(fc.weight().grad(), out, in, n, dw_term, nullptr) == 0u);
  const Tensor once = fc.weight().grad();
  // After zero_grad the weight gradient is stored again (beta 0): the same bits.
  fc.zero_grad();
  fc(Variable(xv)).backward(seed);
  BOOST_TEST(fc.weight().grad() == once);
  // Without zero_grad it is added (beta 1): twice the first, within the bound.
  fc(Variable(xv)).backward(seed);
  std::size_t twice_bad = 0;
  for (std::size_t o = 0; o < out; ++o) {
    for (std::size_t i = 0; i < in; ++i) {
      if (!(std::abs(fc.weight().grad()(o, i) - 2.0 * once(o, i)) <= 1e-6 * std::abs(once(o, i)))) ++twice_bad;
    }
  }
  BOOST_TEST(twice_bad == 0u);
}

BOOST_AUTO_TEST_CASE(linear_and_relu_gradients) {
  Rng rng(3);
  Linear fc(5, 4, true, rng);
  auto r = gradcheck(fc, input({3, 5}, 4));
  BOOST_TEST(r.ok, r.summary());
  Linear no_bias(5, 4, false, rng);
  r = gradcheck(no_bias, input({3, 5}, 5));
  BOOST_TEST(r.ok, r.summary());
  ReLU relu;
  r = gradcheck(relu, input({2, 3, 4}, 6));
  BOOST_TEST(r.ok, r.summary());
}

BOOST_AUTO_TEST_CASE(sequential_names_parameters_by_dotted_path) {
  auto inner = std::make_shared<Sequential>();
  inner->emplace<Linear>(4, 4);
  inner->emplace<ReLU>();
  Sequential model;
  model.emplace<Linear>(3, 4);
  model.emplace<ReLU>();
  model.add(inner);
  const auto params = model.parameters();
  BOOST_TEST_REQUIRE(params.size() == 4u);
  BOOST_TEST(params[0].name == "0.weight");
  BOOST_TEST(params[1].name == "0.bias");
  BOOST_TEST(params[2].name == "2.0.weight");
  BOOST_TEST(params[3].name == "2.0.bias");
  // Parameters are the layer's own Variables, not copies.
  params[0].variable.impl()->value(0, 0) = 42.0f;
  BOOST_TEST(static_cast<Linear&>(model[0]).weight().value()(0, 0) == 42.0f);
}

BOOST_AUTO_TEST_CASE(sequential_gradient_and_modes) {
  Rng rng(7);
  Sequential model;
  model.add(std::make_shared<Linear>(4, 6, true, rng));
  model.emplace<ReLU>();
  model.add(std::make_shared<Linear>(6, 2, true, rng));
  // A step of 1e-3: with 1e-2, perturbing a first-layer weight moves some hidden unit
  // across ReLU's kink and the finite difference is no longer a derivative.
  GradcheckOptions options;
  options.eps = 1e-3;
  auto r = gradcheck(model, input({3, 4}, 8), options);
  BOOST_TEST(r.ok, r.summary());
  BOOST_TEST(model.is_training());
  model.eval();
  BOOST_TEST(!model.is_training());
  BOOST_TEST(!model[0].is_training());
  model.train();
  BOOST_TEST(model[2].is_training());
}

BOOST_AUTO_TEST_CASE(describe_in_pytorch_style) {
  Sequential model;
  model.emplace<Linear>(2, 3, false);
  model.emplace<ReLU>();
  BOOST_TEST(model[0].describe() == "Linear(in_features=2, out_features=3, bias=false)");
  BOOST_TEST(model.describe() == "Sequential(\n  (0): Linear(in_features=2, out_features=3, bias=false)\n  (1): ReLU()\n)");
}

BOOST_AUTO_TEST_CASE(linear_rejects_bad_input) {
  Linear fc(3, 2);
  BOOST_CHECK_EXCEPTION(fc(Variable(zeros({4, 5}))), Error, [](const Error& e) {
    return message_contains(e, "Linear(in_features=3") && message_contains(e, "(N, 3)") && message_contains(e, "(4, 5)");
  });
  BOOST_CHECK_EXCEPTION(fc(Variable(zeros({4, 3, 1}))), Error, [](const Error& e) { return message_contains(e, "(4, 3, 1)"); });
  BOOST_CHECK_EXCEPTION(Linear(0, 2), Error, [](const Error& e) { return message_contains(e, "in_features"); });
  // The layer still works after rejecting bad input.
  BOOST_TEST(fc(Variable(zeros({4, 3}))).shape() == (Shape{4, 2}), boost::test_tools::per_element());
}

BOOST_AUTO_TEST_SUITE_END()
