// MaxPool2d: forward against a direct reference (PyTorch semantics: floor mode, -inf padding,
// first maximum on ties), gradients routed to the argmax and added where windows overlap,
// gradient checks, validation errors.
#include <boost/test/data/monomorphic.hpp>
#include <boost/test/data/test_case.hpp>
#include <boost/test/unit_test.hpp>

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <ostream>
#include <string>
#include <vector>

#include <xtensor/xarray.hpp>

#include <xgrad/autograd/gradcheck.hpp>
#include <xgrad/autograd/tape.hpp>
#include <xgrad/core/error.hpp>
#include <xgrad/core/rng.hpp>
#include <xgrad/core/threading.hpp>
#include <xgrad/layers/max_pool2d.hpp>
#include "tests/test_util.hpp"

namespace bdata = boost::unit_test::data;
using namespace xgrad;
using xgrad::test::message_contains;
using xgrad::test::message_has;

namespace {

struct PoolCase {
  std::size_t N, C, H, W, K, S, P;
};

std::ostream& operator<<(std::ostream& out, const PoolCase& c) {
  return out << "N=" << c.N << " C=" << c.C << " H=" << c.H << " W=" << c.W << " K=" << c.K << " S=" << c.S
             << " P=" << c.P;
}

// AlexNet's 3/2 (with and without padding) and 2/2, stride 1, non-square inputs, ragged ends.
const std::vector<PoolCase> kCases = {
    {2, 3, 7, 7, 3, 2, 0}, {1, 2, 8, 9, 3, 2, 1}, {2, 2, 8, 8, 2, 2, 0}, {1, 3, 7, 5, 2, 2, 1},
    {3, 1, 6, 9, 3, 1, 1}, {1, 2, 5, 11, 4, 3, 2}, {2, 2, 3, 3, 3, 3, 0}, {1, 1, 15, 15, 3, 2, 0},
    {1, 2, 1, 6, 1, 1, 0}, {2, 1, 9, 4, 5, 1, 2},
};

MaxPool2dGeometry geometry(const PoolCase& c) {
  return MaxPool2dGeometry::make("test", {c.N, c.C, c.H, c.W}, c.K, c.S, c.P);
}

// Distinct values (a shuffled ramp with the given spacing), so that finite differences never
// change which element is the maximum.
xt::xarray<double> distinct_values(const Shape& shape, double spacing, std::uint64_t seed) {
  xt::xarray<double> a = xt::xarray<double>::from_shape(shape);
  std::vector<std::size_t> order(a.size());
  std::iota(order.begin(), order.end(), std::size_t{0});
  Rng rng(seed);
  for (std::size_t i = order.size(); i > 1; --i) std::swap(order[i - 1], order[rng.below(i)]);
  for (std::size_t i = 0; i < a.size(); ++i) a.data()[i] = (static_cast<double>(order[i]) - a.size() / 2.0) * spacing;
  return a;
}

// Direct reference: y and the flat argmax (ih * W + iw) of each window.
void reference_pool(const xt::xarray<double>& x, const MaxPool2dGeometry& g, xt::xarray<double>& y,
                    xt::xarray<std::int32_t>& argmax) {
  y = xt::xarray<double>::from_shape(g.output_shape());
  argmax = xt::xarray<std::int32_t>::from_shape(g.output_shape());
  for (std::size_t n = 0; n < g.N; ++n)
    for (std::size_t c = 0; c < g.C; ++c)
      for (std::size_t oh = 0; oh < g.OH; ++oh)
        for (std::size_t ow = 0; ow < g.OW; ++ow) {
          // From the window's first element in the image, in (ih, iw) order, a strictly greater
          // value or a NaN replaces the maximum.
          double best = 0.0;
          long at = -1;
          for (std::size_t kh = 0; kh < g.K; ++kh)
            for (std::size_t kw = 0; kw < g.K; ++kw) {
              const long ih = static_cast<long>(oh * g.S + kh) - static_cast<long>(g.P);
              const long iw = static_cast<long>(ow * g.S + kw) - static_cast<long>(g.P);
              if (ih < 0 || iw < 0 || ih >= static_cast<long>(g.H) || iw >= static_cast<long>(g.W)) continue;
              const double v = x(n, c, ih, iw);
              if (at < 0 || v > best || std::isnan(v)) {
                best = v;
                at = ih * static_cast<long>(g.W) + iw;
              }
            }
          y(n, c, oh, ow) = best;
          argmax(n, c, oh, ow) = static_cast<std::int32_t>(at);
        }
}

xt::xarray<double> kernel_forward(const KernelInputs& in, const MaxPool2dGeometry& g) {
  xt::xarray<double> y = xt::xarray<double>::from_shape(g.output_shape());
  xt::xarray<std::int32_t> argmax = xt::xarray<std::int32_t>::from_shape(g.output_shape());
  kernels::maxpool2d_forward<double>(in[0].data(), y.data(), argmax.data(), g);
  return y;
}

void kernel_backward(const KernelInputs& in, const xt::xarray<double>& dout, KernelInputs& grads,
                     const MaxPool2dGeometry& g) {
  xt::xarray<double> y = xt::xarray<double>::from_shape(g.output_shape());
  xt::xarray<std::int32_t> argmax = xt::xarray<std::int32_t>::from_shape(g.output_shape());
  kernels::maxpool2d_forward<double>(in[0].data(), y.data(), argmax.data(), g);
  kernels::maxpool2d_backward<double>(dout.data(), argmax.data(), grads[0].data(), g);
}

}  // namespace

BOOST_AUTO_TEST_SUITE(max_pool2d)

BOOST_DATA_TEST_CASE(forward_matches_direct_reference, bdata::make(kCases), c) {
  const MaxPool2dGeometry g = geometry(c);
  Rng rng(1);
  xt::xarray<double> x = xt::xarray<double>::from_shape({c.N, c.C, c.H, c.W});
  for (auto& v : x) v = std::round(rng.uniform(-4.0, 4.0));  // small integers: many ties
  xt::xarray<double> y_ref;
  xt::xarray<std::int32_t> argmax_ref;
  reference_pool(x, g, y_ref, argmax_ref);

  xt::xarray<double> y = xt::xarray<double>::from_shape(g.output_shape());
  xt::xarray<std::int32_t> argmax = xt::xarray<std::int32_t>::from_shape(g.output_shape());
  kernels::maxpool2d_forward<double>(x.data(), y.data(), argmax.data(), g);
  BOOST_TEST((y == y_ref));
  BOOST_TEST((argmax == argmax_ref));

  MaxPool2d pool(MaxPool2dOptions(c.K).stride(c.S).padding(c.P));
  const Variable out = pool(Variable(Tensor(xt::cast<float>(x))));
  BOOST_TEST((out.value() == Tensor(xt::cast<float>(y_ref))));
}

// The float kernel (a vector path for P = 0 and S = 1 or 2 on AVX-512 and AVX2 builds, a scalar
// one otherwise) against the reference: planes wider than one and two vectors, ragged ends, ties,
// NaNs (the last NaN of a window wins) and infinities.
const std::vector<PoolCase> kFloatCases = {
    {2, 3, 28, 28, 2, 2, 0}, {1, 2, 14, 14, 2, 2, 0}, {2, 2, 55, 55, 3, 2, 0}, {1, 3, 13, 13, 3, 2, 0},
    {1, 2, 7, 7, 3, 2, 0},   {1, 2, 9, 40, 3, 1, 0},  {1, 1, 6, 33, 2, 1, 0},  {1, 2, 8, 70, 4, 2, 0},
    {1, 2, 8, 9, 3, 2, 1},   {1, 2, 5, 11, 4, 3, 2},  {2, 1, 3, 3, 3, 3, 0},   {1, 1, 1, 17, 1, 2, 0},
};

BOOST_DATA_TEST_CASE(float_kernel_matches_direct_reference, bdata::make(kFloatCases), c) {
  const MaxPool2dGeometry g = geometry(c);
  Rng rng(7);
  xt::xarray<double> x = xt::xarray<double>::from_shape({c.N, c.C, c.H, c.W});
  for (auto& v : x) {
    const double u = rng.uniform(0.0, 1.0);
    v = u < 0.03 ? std::numeric_limits<double>::quiet_NaN()
      : u < 0.05 ? -std::numeric_limits<double>::infinity()
      : u < 0.06 ? std::numeric_limits<double>::infinity()
                 : std::round(rng.uniform(-4.0, 4.0));  // small integers: many ties
  }
  xt::xarray<double> y_ref;
  xt::xarray<std::int32_t> argmax_ref;
  reference_pool(x, g, y_ref, argmax_ref);

  const xt::xarray<float> xf = xt::cast<float>(x);
  xt::xarray<float> y = xt::xarray<float>::from_shape(g.output_shape());
  xt::xarray<std::int32_t> argmax = xt::xarray<std::int32_t>::from_shape(g.output_shape());
  kernels::maxpool2d_forward<float>(xf.data(), y.data(), argmax.data(), g);
  BOOST_TEST((argmax == argmax_ref));
  std::size_t wrong = 0;
  for (std::size_t i = 0; i < y.size(); ++i) {
    const double want = y_ref.data()[i], got = y.data()[i];
    if (std::isnan(want) ? !std::isnan(got) : got != want) ++wrong;
  }
  BOOST_TEST(wrong == 0u);
}

BOOST_DATA_TEST_CASE(double_kernel_gradients, bdata::make(kCases), c) {
  const MaxPool2dGeometry g = geometry(c);
  const GradcheckResult r = gradcheck_kernel(
      [&g](const KernelInputs& in) { return kernel_forward(in, g); },
      [&g](const KernelInputs& in, const xt::xarray<double>& dout, KernelInputs& grads) {
        kernel_backward(in, dout, grads, g);
      },
      {distinct_values({c.N, c.C, c.H, c.W}, 0.01, 2)});
  BOOST_TEST(r.ok, r.summary());
}

BOOST_DATA_TEST_CASE(layer_gradients_on_the_tape, bdata::make(kCases), c) {
  MaxPool2d pool(MaxPool2dOptions(c.K).stride(c.S).padding(c.P));
  Variable x(Tensor(xt::cast<float>(distinct_values({c.N, c.C, c.H, c.W}, 0.05, 3))), true, "x");
  const GradcheckResult r = gradcheck(pool, x);
  BOOST_TEST(r.ok, r.summary());
}

BOOST_AUTO_TEST_CASE(ties_go_to_the_first_maximum) {
  MaxPool2d pool(2);
  Variable x(full({1, 1, 2, 4}, 1.0f), true);
  Variable y = pool(x);
  y.backward(full({1, 1, 1, 2}, 1.0f));
  const Tensor expected = {{{{1.0f, 0.0f, 1.0f, 0.0f}, {0.0f, 0.0f, 0.0f, 0.0f}}}};
  BOOST_TEST((x.grad() == expected));
}

BOOST_AUTO_TEST_CASE(overlapping_windows_add_their_gradients) {
  // 3/2 pooling of a 5 x 5 plane: the centre (2, 2) is in all four windows.
  Tensor v = zeros({1, 1, 5, 5});
  v(0, 0, 2, 2) = 9.0f;
  Variable x(v, true);
  MaxPool2d pool(MaxPool2dOptions(3).stride(2));
  Variable y = pool(x);
  BOOST_TEST((y.shape() == Shape{1, 1, 2, 2}));
  y.backward(Tensor{{{{1.0f, 2.0f}, {3.0f, 4.0f}}}});
  BOOST_TEST(x.grad()(0, 0, 2, 2) == 10.0f);
  BOOST_TEST(xt::sum(x.grad())() == 10.0f);
}

BOOST_AUTO_TEST_CASE(nan_wins_and_the_last_nan_gets_the_gradient) {
  Tensor v = zeros({1, 1, 2, 2});
  v(0, 0, 0, 1) = std::numeric_limits<float>::quiet_NaN();
  v(0, 0, 1, 0) = std::numeric_limits<float>::quiet_NaN();
  v(0, 0, 1, 1) = 5.0f;
  Variable x(v, true);
  MaxPool2d pool(2);
  Variable y = pool(x);
  BOOST_TEST(std::isnan(y.value()(0, 0, 0, 0)));
  y.backward(full({1, 1, 1, 1}, 1.0f));
  BOOST_TEST(x.grad()(0, 0, 1, 0) == 1.0f);
  BOOST_TEST(xt::sum(x.grad())() == 1.0f);
}

BOOST_AUTO_TEST_CASE(padding_is_minus_infinity) {
  // All-negative input: padded positions must never win.
  MaxPool2d pool(MaxPool2dOptions(3).stride(2).padding(1));
  Variable x(full({1, 1, 4, 4}, -5.0f));
  const Variable y = pool(x);
  BOOST_TEST((y.value() == full({1, 1, 2, 2}, -5.0f)));
}

BOOST_AUTO_TEST_CASE(stride_defaults_to_kernel_size) {
  BOOST_TEST(MaxPool2d(2).describe() == "MaxPool2d(kernel_size=2, stride=2, padding=0)");
  BOOST_TEST(MaxPool2d(MaxPool2dOptions(3).stride(2).padding(1)).describe() == "MaxPool2d(kernel_size=3, stride=2, padding=1)");
  MaxPool2d pool(2);
  BOOST_TEST((pool(Variable(zeros({2, 3, 7, 6}))).shape() == Shape{2, 3, 3, 3}));
}

BOOST_AUTO_TEST_CASE(bit_identical_at_one_and_two_threads) {
  const Tensor x0 = xt::cast<float>(distinct_values({4, 8, 27, 27}, 0.01, 4));
  auto run = [&](int threads) {
    set_num_threads(threads);
    MaxPool2d pool(MaxPool2dOptions(3).stride(2));
    Variable x(x0, true);
    Variable y = pool(x);
    y.backward(full(y.shape(), 0.5f));
    return std::make_pair(Tensor(y.value()), Tensor(x.grad()));
  };
  const int before = get_num_threads();
  const auto one = run(1), two = run(2);
  set_num_threads(before);
  BOOST_TEST((one.first == two.first));
  BOOST_TEST((one.second == two.second));
}

BOOST_AUTO_TEST_CASE(invalid_arguments_throw_naming_layer_and_argument) {
  auto has = [](std::initializer_list<const char*> parts) {
    return [parts](const Error& e) { return message_has(e, parts); };
  };
  BOOST_CHECK_EXCEPTION(MaxPool2d(0), Error, has({"MaxPool2d(", "kernel_size"}));
  BOOST_CHECK_EXCEPTION(MaxPool2d(MaxPool2dOptions(3).stride(2).padding(2)), Error, has({"MaxPool2d(", "padding (2)", "half of kernel_size (3)"}));
  MaxPool2d pool(MaxPool2dOptions(3).stride(2));
  BOOST_CHECK_EXCEPTION(pool(Variable(zeros({2, 5, 5}))), Error, has({"MaxPool2d(kernel_size=3", "rank 4", "(2, 5, 5)"}));
  BOOST_CHECK_EXCEPTION(pool(Variable(zeros({1, 1, 2, 5}))), Error,
                        has({"MaxPool2d(kernel_size=3", "kernel_size 3", "padded input", "(1, 1, 2, 5)"}));
  BOOST_CHECK_EXCEPTION(pool(Variable(zeros({1, 0, 5, 5}))), Error, has({"MaxPool2d(kernel_size=3", "sizes", "(1, 0, 5, 5)"}));
  BOOST_CHECK_EXCEPTION(pool(Variable()), Error, has({"MaxPool2d(kernel_size=3", "undefined"}));
}

BOOST_AUTO_TEST_SUITE_END()
