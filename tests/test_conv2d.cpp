// Conv2d: forward against a direct double reference over a sweep of shapes, analytic gradients
// (double kernels and the float layer on the tape), a planted wrong backward that the checker
// must catch, validation errors, and bit-identical results at 1 and 2 threads.
#include <boost/test/data/monomorphic.hpp>
#include <boost/test/data/test_case.hpp>
#include <boost/test/unit_test.hpp>

#include <cmath>
#include <limits>
#include <ostream>
#include <string>
#include <vector>

#include <xtensor/xarray.hpp>
#include <xtensor/xmath.hpp>

#include <xgrad/autograd/gradcheck.hpp>
#include <xgrad/autograd/ops.hpp>
#include <xgrad/autograd/tape.hpp>
#include <xgrad/core/error.hpp>
#include <xgrad/core/rng.hpp>
#include <xgrad/core/threading.hpp>
#include <xgrad/layers/conv2d.hpp>
#include <xgrad/layers/conv2d_winograd_kernels.hpp>
#include "tests/test_util.hpp"

namespace bdata = boost::unit_test::data;
namespace tt = boost::test_tools;
using namespace xgrad;
using xgrad::test::message_contains;
using xgrad::test::message_has;

namespace {

struct ConvCase {
  std::size_t N, C, H, W, O, K, S, P, G;
  bool bias;
};

std::ostream& operator<<(std::ostream& out, const ConvCase& c) {
  return out << "N=" << c.N << " C=" << c.C << " H=" << c.H << " W=" << c.W << " O=" << c.O << " K=" << c.K
             << " S=" << c.S << " P=" << c.P << " G=" << c.G << " bias=" << c.bias;
}

// Batch 1-3, groups 1/2/3, kernels 1/3/5, strides 1/2/4, paddings 0/1/2, non-square, bias on/off.
const std::vector<ConvCase> kCases = {
    {1, 1, 5, 5, 1, 1, 1, 0, 1, true},    {2, 3, 7, 9, 4, 3, 1, 1, 1, true},   {3, 2, 8, 6, 3, 3, 2, 0, 1, false},
    {1, 4, 9, 11, 6, 3, 1, 1, 2, true},   {2, 6, 10, 7, 6, 5, 2, 2, 3, true},  {2, 3, 13, 12, 5, 5, 4, 2, 1, true},
    {1, 6, 6, 6, 9, 1, 2, 0, 3, false},   {3, 4, 5, 8, 8, 3, 4, 1, 2, true},   {2, 2, 4, 4, 2, 5, 1, 2, 1, true},
    {1, 3, 11, 11, 6, 5, 2, 2, 3, false}, {2, 4, 6, 5, 4, 3, 1, 2, 4, true},   {1, 2, 3, 17, 4, 3, 1, 1, 2, true},
};

xt::xarray<double> random_array(const Shape& shape, Rng& rng, double lo = -1.0, double hi = 1.0) {
  xt::xarray<double> a = xt::xarray<double>::from_shape(shape);
  for (auto& v : a) v = rng.uniform(lo, hi);
  return a;
}

Tensor to_float(const xt::xarray<double>& a) { return xt::cast<float>(a); }
xt::xarray<double> to_double(const Tensor& a) { return xt::cast<double>(a); }

Conv2dGeometry geometry(const ConvCase& c) {
  return Conv2dGeometry::make("test", {c.N, c.C, c.H, c.W}, c.C, c.O, c.K, c.S, c.P, c.G);
}

// Direct convolution in nested loops, in double.
xt::xarray<double> reference_conv(const xt::xarray<double>& x, const xt::xarray<double>& w, const double* b,
                                  const Conv2dGeometry& g) {
  xt::xarray<double> y = xt::zeros<double>({g.N, g.O, g.OH, g.OW});
  const std::size_t Cg = g.C / g.G, Og = g.O / g.G;
  for (std::size_t n = 0; n < g.N; ++n)
    for (std::size_t o = 0; o < g.O; ++o)
      for (std::size_t oh = 0; oh < g.OH; ++oh)
        for (std::size_t ow = 0; ow < g.OW; ++ow) {
          double acc = b != nullptr ? b[o] : 0.0;
          for (std::size_t cg = 0; cg < Cg; ++cg)
            for (std::size_t kh = 0; kh < g.K; ++kh)
              for (std::size_t kw = 0; kw < g.K; ++kw) {
                const long ih = static_cast<long>(oh * g.S + kh) - static_cast<long>(g.P);
                const long iw = static_cast<long>(ow * g.S + kw) - static_cast<long>(g.P);
                if (ih < 0 || iw < 0 || ih >= static_cast<long>(g.H) || iw >= static_cast<long>(g.W)) continue;
                acc += w(o, cg, kh, kw) * x(n, (o / Og) * Cg + cg, ih, iw);
              }
          y(n, o, oh, ow) = acc;
        }
  return y;
}

// The double kernels as gradcheck_kernel functions of (x, w[, b]).
xt::xarray<double> kernel_forward(const KernelInputs& in, const Conv2dGeometry& g) {
  xt::xarray<double> y = xt::xarray<double>::from_shape(g.output_shape());
  kernels::conv2d_forward<double>(in[0].data(), in[1].data(), in.size() > 2 ? in[2].data() : nullptr, y.data(), g);
  return y;
}

// dout_scale != 1 plants a wrong backward.
void kernel_backward(const KernelInputs& in, const xt::xarray<double>& dout, KernelInputs& grads,
                     const Conv2dGeometry& g, double dout_scale = 1.0) {
  std::vector<double> scratch(g.scratch_size());
  const xt::xarray<double> dy = dout * dout_scale;
  kernels::conv2d_backward<double>(dy.data(), in[1].data(), in[0].data(), grads[0].data(), grads[1].data(),
                                   in.size() > 2 ? grads[2].data() : nullptr, scratch.data(), g);
}

KernelInputs kernel_inputs(const ConvCase& c, Rng& rng) {
  KernelInputs in{random_array({c.N, c.C, c.H, c.W}, rng), random_array({c.O, c.C / c.G, c.K, c.K}, rng)};
  if (c.bias) in.push_back(random_array({c.O}, rng));
  return in;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(conv2d)

BOOST_DATA_TEST_CASE(layer_forward_matches_direct_reference, bdata::make(kCases), c) {
  Rng rng(11);
  Conv2d conv(Conv2dOptions(c.C, c.O, c.K).stride(c.S).padding(c.P).groups(c.G).bias(c.bias), rng);
  const xt::xarray<double> x = random_array({c.N, c.C, c.H, c.W}, rng);
  const Variable y = conv(Variable(to_float(x)));
  const Conv2dGeometry g = geometry(c);
  const xt::xarray<double> w = to_double(conv.weight().value());
  const xt::xarray<double> b = c.bias ? to_double(conv.bias().value()) : xt::xarray<double>();
  const xt::xarray<double> expected = reference_conv(x, w, c.bias ? b.data() : nullptr, g);
  BOOST_TEST(y.shape() == Shape(g.output_shape()), tt::per_element());
  // Absolute: outputs are O(1) sums in which float rounding is ~1e-7 per term.
  const double worst = xt::amax(xt::abs(to_double(y.value()) - expected))();
  BOOST_TEST(worst <= 1e-5);
}

BOOST_DATA_TEST_CASE(double_kernel_forward_matches_direct_reference, bdata::make(kCases), c) {
  Rng rng(12);
  const KernelInputs in = kernel_inputs(c, rng);
  const Conv2dGeometry g = geometry(c);
  const xt::xarray<double> expected = reference_conv(in[0], in[1], c.bias ? in[2].data() : nullptr, g);
  const xt::xarray<double> got = kernel_forward(in, g);
  BOOST_TEST(got == expected, tt::tolerance(1e-12) << tt::per_element());
}

BOOST_DATA_TEST_CASE(double_kernel_gradients, bdata::make(kCases), c) {
  Rng rng(13);
  const Conv2dGeometry g = geometry(c);
  const GradcheckResult r = gradcheck_kernel([&g](const KernelInputs& in) { return kernel_forward(in, g); },
                                             [&g](const KernelInputs& in, const xt::xarray<double>& dout,
                                                  KernelInputs& grads) { kernel_backward(in, dout, grads, g); },
                                             kernel_inputs(c, rng));
  BOOST_TEST(r.ok, r.summary());
}

BOOST_AUTO_TEST_CASE(planted_wrong_backward_is_caught) {
  const ConvCase c{2, 4, 6, 7, 4, 3, 1, 1, 2, true};
  Rng rng(14);
  const Conv2dGeometry g = geometry(c);
  const KernelInputs in = kernel_inputs(c, rng);
  auto forward = [&g](const KernelInputs& x) { return kernel_forward(x, g); };

  // A backward scaled by 1.001.
  const GradcheckResult scaled = gradcheck_kernel(
      forward, [&g](const KernelInputs& x, const xt::xarray<double>& dout, KernelInputs& grads) {
        kernel_backward(x, dout, grads, g, 1.001);
      },
      in);
  BOOST_TEST(!scaled.ok, scaled.summary());

  // A col2im that skips one tap (row (c=1, kh=2, kw=0) of the column gradient of each group).
  const GradcheckResult skipped = gradcheck_kernel(
      forward,
      [&g](const KernelInputs& x, const xt::xarray<double>& dout, KernelInputs& grads) {
        std::vector<double> scratch(g.scratch_size());
        kernels::conv2d_backward<double>(dout.data(), x[1].data(), x[0].data(), nullptr, grads[1].data(),
                                         grads[2].data(), scratch.data(), g);
        // dcols_grp (R, L) = w_grp^T dy_grp, by loops, then the planted hole.
        const std::size_t R = g.R(), L = g.L(), Og = g.Og(), P = g.OH * g.OW;
        std::vector<double> dcols(R * L);
        for (std::size_t grp = 0; grp < g.G; ++grp) {
          for (std::size_t r = 0; r < R; ++r)
            for (std::size_t l = 0; l < L; ++l) {
              double acc = 0.0;
              const std::size_t n = l / P, p = l % P;
              for (std::size_t o = 0; o < Og; ++o)
                acc += x[1].data()[(grp * Og + o) * R + r] * dout.data()[(n * g.O + grp * Og + o) * P + p];
              dcols[r * L + l] = acc;
            }
          const std::size_t hole = (1 * g.K + 2) * g.K + 0;
          std::fill(dcols.begin() + hole * L, dcols.begin() + (hole + 1) * L, 0.0);
          kernels::col2im_add<double>(dcols.data(), grads[0].data(), grp, g);
        }
      },
      in);
  BOOST_TEST(!skipped.ok, skipped.summary());
  BOOST_TEST(skipped.worst_input == "input 0");
}

// The last case takes the direct float kernels for every gradient on AVX-512 and AVX2 builds.
BOOST_DATA_TEST_CASE(layer_gradients_on_the_tape,
                     bdata::make(std::vector<ConvCase>{kCases[1], kCases[4], kCases[7],
                                                       {2, 4, 12, 12, 6, 3, 1, 1, 2, true}}),
                     c) {
  Rng rng(15);
  Conv2d conv(Conv2dOptions(c.C, c.O, c.K).stride(c.S).padding(c.P).groups(c.G).bias(c.bias), rng);
  Variable x(to_float(random_array({c.N, c.C, c.H, c.W}, rng)), true, "x");
  const GradcheckResult r = gradcheck(conv, x);
  BOOST_TEST(r.ok, r.summary());
}

BOOST_AUTO_TEST_CASE(layer_applied_twice_before_backward) {
  // Two forwards share the layer's buffers; the first backward's saved columns must survive.
  Rng rng(16);
  Conv2d conv(Conv2dOptions(3, 4, 3).padding(1), rng);
  Variable x1(to_float(random_array({2, 3, 5, 6}, rng)), true, "x1");
  Variable x2(to_float(random_array({2, 3, 5, 6}, rng)), true, "x2");
  const GradcheckResult r = gradcheck([&] { return add(conv(x1), conv(x2)); },
                                      {x1, x2, conv.weight(), conv.bias()});
  BOOST_TEST(r.ok, r.summary());
}

BOOST_AUTO_TEST_CASE(no_grad_records_nothing) {
  Conv2d conv(2, 3, 3);
  Variable x(full({1, 2, 5, 5}, 1.0f), true);
  Tape::active().clear();
  NoGradGuard guard;
  const Variable y = conv(x);
  BOOST_TEST(!y.requires_grad());
  BOOST_TEST(Tape::active().size() == 0u);
}

BOOST_AUTO_TEST_CASE(backward_adds_and_skips_frozen_parameters) {
  Rng rng(17);
  Conv2d conv(Conv2dOptions(2, 2, 3).padding(1), rng);
  conv.weight().set_requires_grad(false);
  Variable x(to_float(random_array({1, 2, 4, 4}, rng)), true, "x");
  const GradcheckResult r = gradcheck(conv, x);
  BOOST_TEST(r.ok, r.summary());
  BOOST_TEST(!conv.weight().has_grad());
}

// The float column kernel takes vector paths (AVX-512 builds: masked moves for stride 1 and a
// permute for stride 2) that the double one does not: the columns, copies of x, must be the
// same values. Widths around one and two vectors, strides 1-3, paddings 0-2.
BOOST_DATA_TEST_CASE(float_columns_equal_the_double_kernels,
                     bdata::make(std::vector<ConvCase>{{2, 2, 9, 7, 3, 3, 1, 1, 1, true},
                                                       {1, 3, 8, 33, 2, 3, 1, 0, 1, true},
                                                       {2, 1, 11, 40, 2, 5, 2, 2, 1, true},
                                                       {1, 2, 9, 64, 2, 5, 2, 2, 1, true},
                                                       {1, 2, 7, 70, 2, 3, 2, 0, 1, true},
                                                       {1, 1, 6, 35, 2, 1, 2, 0, 1, true},
                                                       {1, 2, 10, 29, 2, 4, 3, 1, 1, true}}),
                     c) {
  Rng rng(21);
  const Conv2dGeometry g = geometry(c);
  const xt::xarray<double> x = random_array({c.N, c.C, c.H, c.W}, rng);
  const Tensor xf = to_float(x);
  std::vector<double> cols(g.cols_size());
  std::vector<float> cols_f(g.cols_size());
  kernels::im2col<double>(x.data(), cols.data(), g);
  kernels::im2col<float>(xf.data(), cols_f.data(), g);
  std::size_t wrong = 0;
  for (std::size_t i = 0; i < cols.size(); ++i) wrong += static_cast<double>(cols_f[i]) != static_cast<float>(cols[i]);
  BOOST_TEST(wrong == 0u);
}

// Stride 1 with few column rows (C/G*K*K <= 32) takes a direct float kernel on AVX-512 and
// AVX2 builds (no im2col or GEMM; see conv2d.cpp) for the output and the weight gradient, and
// so does the output of wider-row cases with up to 1024 rows (seven from the eighth, three of
// them at strides 2-4; on AVX2 also the 7-wide one). On AVX-512 the weight gradient of every
// stride-1 3x3 and 5x5 case with more rows takes the wide kernel (the 17th-19th cases: channel
// blocks of 32 with 1, 8 and 24 left over, kernel rows in tiles of 2 and 4 with one left over),
// and the output and the input gradient of the stride-1 cases whose rows fill the vectors
// poorly the wide forward (7-, 10- (8 + 2) and 3-wide rows; 12, 40, 25 and 20 channels a
// group). The last two cases have a shorter last weight-gradient chunk (4 x 2 + 1 and 4 + 3
// images). The results must be the double (GEMM) kernels' within float rounding. Output widths
// around one and two vectors of 16 and of 8, odd and even row counts, output channels around
// blocks of 4 and 8, several weight-gradient chunks, groups, with and without the input
// gradient (whose absence changes how the bias gradient is summed). The wide weight gradient
// also takes the 3x3 and 5x5 cases at stride 2 (the mini preset's conv1, the twelfth, and the
// last three: groups, odd sizes, 8 and 24 channels left over, a shorter last chunk). The last
// five take the Winograd kernels (3x3, stride 1, padding 1, 16 or more channels a group, planes
// of 10 or more): odd and even sides, groups, planes up to 30 columns (one or two vectors of
// the AVX-512 transforms) and wider ones (the portable transforms).
BOOST_DATA_TEST_CASE(direct_float_kernels_match_the_double_kernels,
                     bdata::make(std::vector<ConvCase>{{3, 1, 28, 28, 32, 3, 1, 1, 1, true},
                                                       {2, 1, 6, 16, 9, 5, 1, 2, 1, true},
                                                       {4, 2, 17, 17, 17, 3, 1, 1, 1, false},
                                                       {2, 4, 5, 33, 16, 2, 1, 0, 2, true},
                                                       {1, 2, 9, 4, 8, 4, 1, 0, 1, true},
                                                       {2, 2, 8, 40, 6, 1, 1, 0, 2, true},
                                                       {6, 1, 20, 20, 1, 3, 1, 0, 1, true},
                                                       {2, 32, 14, 14, 16, 5, 1, 2, 2, true},
                                                       {2, 8, 15, 15, 8, 5, 1, 2, 1, false},
                                                       {1, 4, 30, 28, 10, 4, 1, 1, 1, true},
                                                       {1, 96, 12, 12, 9, 3, 1, 1, 1, true},
                                                       {2, 3, 64, 64, 24, 5, 2, 2, 1, true},
                                                       {1, 1, 19, 127, 9, 11, 4, 2, 1, true},
                                                       {1, 2, 9, 40, 8, 3, 3, 1, 1, false},
                                                       {2, 16, 7, 7, 12, 3, 1, 1, 1, true},
                                                       {2, 3, 6, 9, 5, 3, 1, 1, 1, true},
                                                       {2, 20, 9, 11, 40, 3, 1, 1, 1, true},
                                                       {1, 12, 10, 10, 48, 5, 1, 2, 2, false},
                                                       {3, 7, 8, 8, 33, 3, 1, 1, 1, true},
                                                       {2, 6, 10, 10, 40, 3, 1, 1, 1, true},
                                                       {1, 8, 5, 9, 50, 3, 1, 0, 2, true},
                                                       {1, 40, 3, 3, 20, 3, 1, 1, 1, false},
                                                       {9, 1, 28, 28, 8, 3, 1, 1, 1, true},
                                                       {7, 8, 14, 14, 16, 3, 1, 1, 1, true},
                                                       {2, 8, 9, 11, 20, 3, 2, 1, 2, true},
                                                       {1, 6, 13, 10, 17, 5, 2, 1, 1, false},
                                                       {5, 4, 12, 12, 40, 3, 2, 0, 1, true},
                                                       {2, 16, 13, 13, 16, 3, 1, 1, 1, true},
                                                       {3, 32, 10, 12, 48, 3, 1, 1, 2, true},
                                                       {2, 16, 30, 29, 17, 3, 1, 1, 1, false},
                                                       {1, 16, 11, 40, 20, 3, 1, 1, 1, true},
                                                       {2, 18, 31, 33, 16, 3, 1, 1, 1, true}}),
                     c) {
  Rng rng(23);
  const Conv2dGeometry g = geometry(c);
  const KernelInputs in = kernel_inputs(c, rng);
  const xt::xarray<double> dy = random_array(g.output_shape(), rng);
  const xt::xarray<double> y = kernel_forward(in, g);
  const Tensor xf = to_float(in[0]), wf = to_float(in[1]), bf = c.bias ? to_float(in[2]) : Tensor();
  const Tensor dyf = to_float(dy);
  Tensor yf = empty(g.output_shape());
  kernels::conv2d_forward<float>(xf.data(), wf.data(), c.bias ? bf.data() : nullptr, yf.data(), g);
  const double R = static_cast<double>(g.R()), L = static_cast<double>(g.L());
  BOOST_TEST(xt::amax(xt::abs(to_double(yf) - y))() <= 1e-6 * (1.0 + R));
  // 0: no input gradient; 1: added to zeros; 2: stored over NaN (dx_overwrite).
  for (const int mode : {0, 1, 2}) {
    const bool with_dx = mode > 0;
    BOOST_TEST_CONTEXT("dx mode " << mode) {
      xt::xarray<double> dx = xt::zeros<double>({c.N, c.C, c.H, c.W}), dw = xt::zeros<double>(in[1].shape());
      xt::xarray<double> db = xt::zeros<double>({c.O});
      std::vector<double> scratch(g.scratch_size());
      kernels::conv2d_backward<double>(dy.data(), in[1].data(), in[0].data(), with_dx ? dx.data() : nullptr,
                                       dw.data(), c.bias ? db.data() : nullptr, scratch.data(), g);
      Tensor dxf = full({c.N, c.C, c.H, c.W}, mode == 2 ? std::nanf("") : 0.0f);
      Tensor dwf = zeros({c.O, c.C / c.G, c.K, c.K}), dbf = zeros({c.O});
      std::vector<float> scratch_f(g.scratch_size());
      kernels::conv2d_backward<float>(dyf.data(), wf.data(), xf.data(), with_dx ? dxf.data() : nullptr, dwf.data(),
                                      c.bias ? dbf.data() : nullptr, scratch_f.data(), g, mode == 2);
      // Sums of L (weight, bias) or O*K*K/G (input) products of values in [-1, 1].
      BOOST_TEST(xt::amax(xt::abs(to_double(dwf) - dw))() <= 1e-6 * (1.0 + L));
      if (c.bias) BOOST_TEST(xt::amax(xt::abs(to_double(dbf) - db))() <= 1e-6 * (1.0 + L));
      if (with_dx) BOOST_TEST(xt::amax(xt::abs(to_double(dxf) - dx))() <= 1e-6 * (1.0 + R * c.O));
    }
  }
}

// The direct weight gradient reads vectors of taps that run past a row's end; those lanes
// must not count, even when the input there is infinite (0 * inf is NaN). The input is infinite
// in its last column: the taps with kw = 0 and 1 never reach it (they are finite and equal the
// double kernels'), those with kw >= 2 do (they are not finite). R = 25: direct on AVX-512 and
// AVX2 builds.
BOOST_AUTO_TEST_CASE(direct_weight_gradient_ignores_lanes_past_the_row) {
  const ConvCase c{2, 1, 14, 14, 4, 5, 1, 2, 1, true};
  Rng rng(24);
  const Conv2dGeometry g = geometry(c);
  xt::xarray<double> x = random_array({c.N, c.C, c.H, c.W}, rng);
  for (std::size_t n = 0; n < c.N; ++n)
    for (std::size_t h = 0; h < c.H; ++h) x(n, 0, h, c.W - 1) = std::numeric_limits<double>::infinity();
  const xt::xarray<double> w = random_array({c.O, c.C, c.K, c.K}, rng);
  const xt::xarray<double> dy = random_array(g.output_shape(), rng);
  xt::xarray<double> dw = xt::zeros<double>(w.shape());
  std::vector<double> scratch(g.scratch_size());
  kernels::conv2d_backward<double>(dy.data(), w.data(), x.data(), nullptr, dw.data(), nullptr, scratch.data(), g);
  const Tensor xf = to_float(x), wf = to_float(w), dyf = to_float(dy);
  Tensor dwf = zeros({c.O, c.C, c.K, c.K});
  std::vector<float> scratch_f(g.scratch_size());
  kernels::conv2d_backward<float>(dyf.data(), wf.data(), xf.data(), nullptr, dwf.data(), nullptr, scratch_f.data(), g);
  std::size_t finite_wrong = 0, far = 0, infinite_wrong = 0;
  for (std::size_t o = 0; o < c.O; ++o)
    for (std::size_t ch = 0; ch < c.C; ++ch)
      for (std::size_t kh = 0; kh < c.K; ++kh)
        for (std::size_t kw = 0; kw < c.K; ++kw) {
          const bool reaches = ch == 0 && kw >= 2;
          const float got = dwf(o, ch, kh, kw);
          if (reaches) {
            infinite_wrong += std::isfinite(got) || std::isfinite(dw(o, ch, kh, kw));
          } else {
            finite_wrong += !std::isfinite(got);
            far += std::isfinite(got) && std::abs(got - dw(o, ch, kh, kw)) > 1e-6 * (1.0 + g.L());
          }
        }
  BOOST_TEST(finite_wrong == 0u);
  BOOST_TEST(far == 0u);
  BOOST_TEST(infinite_wrong == 0u);
}

// Large enough that every loop and GEMM takes its parallel path; the third takes the direct
// kernels on AVX-512 and AVX2 builds, the fourth the Winograd kernels.
BOOST_DATA_TEST_CASE(bit_identical_at_one_and_two_threads,
                     bdata::make(std::vector<ConvCase>{{8, 16, 24, 26, 32, 3, 1, 1, 2, true},
                                                       {4, 3, 40, 36, 24, 5, 2, 2, 1, true},
                                                       {16, 1, 28, 28, 32, 3, 1, 1, 1, true},
                                                       {8, 32, 14, 14, 32, 3, 1, 1, 1, true}}),
                     c) {
  Rng rng(18);
  const Conv2dGeometry g = geometry(c);
  const Tensor x0 = to_float(random_array({c.N, c.C, c.H, c.W}, rng));
  const Tensor dy0 = to_float(random_array(g.output_shape(), rng));
  struct Result {
    Tensor y, dx, dw, db;
  };
  auto run = [&](int threads) {
    set_num_threads(threads);
    Rng init(19);
    Conv2d conv(Conv2dOptions(c.C, c.O, c.K).stride(c.S).padding(c.P).groups(c.G).bias(c.bias), init);
    Variable x(x0, true);
    Variable y = conv(x);
    y.backward(dy0);
    return Result{y.value(), x.grad(), conv.weight().grad(), conv.bias().grad()};
  };
  const int before = get_num_threads();
  const Result one = run(1), two = run(2);
  set_num_threads(before);
  BOOST_TEST((one.y == two.y));
  BOOST_TEST((one.dx == two.dx));
  BOOST_TEST((one.dw == two.dw));
  BOOST_TEST((one.db == two.db));
}

// A batch whose Winograd buffers pass the pass size goes in passes of whole images, and the
// weight gradient adds the passes' products: 1, 2 and 3 images a pass of 5, against the double
// kernels.
BOOST_AUTO_TEST_CASE(winograd_passes_match_the_double_kernels) {
  const ConvCase c{5, 16, 12, 11, 24, 3, 1, 1, 1, true};
  Rng rng(25);
  const Conv2dGeometry g = geometry(c);
  const KernelInputs in = kernel_inputs(c, rng);
  const xt::xarray<double> dy = random_array(g.output_shape(), rng);
  const xt::xarray<double> y = kernel_forward(in, g);
  xt::xarray<double> dx = xt::zeros<double>({c.N, c.C, c.H, c.W}), dw = xt::zeros<double>(in[1].shape());
  xt::xarray<double> db = xt::zeros<double>({c.O});
  std::vector<double> scratch(g.scratch_size());
  kernels::conv2d_backward<double>(dy.data(), in[1].data(), in[0].data(), dx.data(), dw.data(), db.data(),
                                   scratch.data(), g);
  const Tensor xf = to_float(in[0]), wf = to_float(in[1]), bf = to_float(in[2]), dyf = to_float(dy);
  const std::int64_t per_image = 16 * static_cast<std::int64_t>(c.C + c.O) * 6 * 6;  // 6x6 tiles of 2x2
  for (const std::int64_t images : {1, 2, 3}) {
    BOOST_TEST_CONTEXT(images << " images a pass") {
      const std::int64_t before = detail::set_winograd_pass_floats(images * per_image);
      Tensor yf = empty(g.output_shape());
      kernels::conv2d_forward<float>(xf.data(), wf.data(), bf.data(), yf.data(), g);
      Tensor dxf = zeros({c.N, c.C, c.H, c.W}), dwf = zeros({c.O, c.C / c.G, c.K, c.K}), dbf = zeros({c.O});
      std::vector<float> scratch_f(g.scratch_size());
      kernels::conv2d_backward<float>(dyf.data(), wf.data(), xf.data(), dxf.data(), dwf.data(), dbf.data(),
                                      scratch_f.data(), g);
      detail::set_winograd_pass_floats(before);
      const double R = static_cast<double>(g.R()), L = static_cast<double>(g.L());
      BOOST_TEST(xt::amax(xt::abs(to_double(yf) - y))() <= 1e-6 * (1.0 + R));
      BOOST_TEST(xt::amax(xt::abs(to_double(dwf) - dw))() <= 1e-6 * (1.0 + L));
      BOOST_TEST(xt::amax(xt::abs(to_double(dxf) - dx))() <= 1e-6 * (1.0 + R * c.O));
    }
  }
}

// The weight gradient rebuilds the columns chunk by chunk (chunks of whole images, more than
// one once N*OH*OW >= 1024): cases with 2, 3 and 6 chunks, through the double kernels.
BOOST_DATA_TEST_CASE(double_kernel_gradients_over_several_chunks,
                     bdata::make(std::vector<ConvCase>{{4, 2, 20, 20, 3, 3, 1, 1, 1, true},
                                                       {3, 4, 24, 22, 4, 3, 1, 1, 2, false},
                                                       {6, 2, 24, 24, 2, 5, 1, 2, 1, true}}),
                     c) {
  Rng rng(21);
  const Conv2dGeometry g = geometry(c);
  BOOST_TEST_REQUIRE(g.L() >= 1024u);
  const KernelInputs in = kernel_inputs(c, rng);
  const GradcheckResult r = gradcheck_kernel([&g](const KernelInputs& x) { return kernel_forward(x, g); },
                                             [&g](const KernelInputs& x, const xt::xarray<double>& dout,
                                                  KernelInputs& grads) { kernel_backward(x, dout, grads, g); },
                                             in);
  BOOST_TEST(r.ok, r.summary());
}

BOOST_AUTO_TEST_CASE(initialisation_like_pytorch) {
  Rng rng(20);
  Conv2d conv(Conv2dOptions(6, 8, 3).groups(2), rng);
  BOOST_TEST(conv.weight().shape() == Shape({8, 3, 3, 3}), tt::per_element());
  BOOST_TEST(conv.bias().shape() == Shape({8}), tt::per_element());
  const float bound = 1.0f / std::sqrt(27.0f);  // fan_in = (6 / 2) * 3 * 3
  BOOST_TEST(xt::amax(xt::abs(conv.weight().value()))() <= bound);
  BOOST_TEST(xt::amax(xt::abs(conv.weight().value()))() > 0.8f * bound);
  BOOST_TEST(xt::amax(xt::abs(conv.bias().value()))() <= bound);
  const auto params = conv.parameters();
  BOOST_TEST_REQUIRE(params.size() == 2u);
  BOOST_TEST(params[0].name == "weight");
  BOOST_TEST(params[1].name == "bias");
  BOOST_TEST(Conv2d(Conv2dOptions(3, 4, 3).bias(false)).parameters().size() == 1u);
}

BOOST_AUTO_TEST_CASE(describe_names_every_argument) {
  BOOST_TEST(Conv2d(Conv2dOptions(3, 24, 5).stride(2).padding(2)).describe() == "Conv2d(3, 24, kernel_size=5, stride=2, padding=2, groups=1, bias=true)");
  BOOST_TEST(Conv2d(Conv2dOptions(4, 6, 3).groups(2).bias(false)).describe() ==
             "Conv2d(4, 6, kernel_size=3, stride=1, padding=0, groups=2, bias=false)");
}

BOOST_AUTO_TEST_CASE(invalid_arguments_throw_naming_layer_and_argument) {
  auto has = [](std::initializer_list<const char*> parts) {
    return [parts](const Error& e) { return message_has(e, parts); };
  };
  BOOST_CHECK_EXCEPTION(Conv2d(Conv2dOptions(3, 4, 3).stride(0)), Error, has({"Conv2d(", "stride"}));
  BOOST_CHECK_EXCEPTION(Conv2d(Conv2dOptions(3, 4, 3).groups(2)), Error, has({"Conv2d(", "groups", "in_channels (3)"}));
  BOOST_CHECK_EXCEPTION(Conv2d(Conv2dOptions(4, 3, 3).groups(2)), Error, has({"Conv2d(", "groups", "out_channels (3)"}));
  BOOST_CHECK_EXCEPTION(Conv2d(0, 3, 3), Error, has({"Conv2d(", "in_channels"}));
  BOOST_CHECK_EXCEPTION(Conv2d(3, 0, 3), Error, has({"Conv2d(", "out_channels"}));
  BOOST_CHECK_EXCEPTION(Conv2d(3, 4, 0), Error, has({"Conv2d(", "kernel_size"}));
  BOOST_CHECK_EXCEPTION(Conv2d(Conv2dOptions(3, 4, 3).groups(0)), Error, has({"Conv2d(", "groups"}));

  Conv2d conv(Conv2dOptions(3, 4, 5).padding(1));
  BOOST_CHECK_EXCEPTION(conv(Variable(zeros({3, 8, 8}))), Error, has({"Conv2d(3, 4", "rank 4", "(3, 8, 8)"}));
  BOOST_CHECK_EXCEPTION(conv(Variable(zeros({1, 2, 8, 8}))), Error, has({"Conv2d(3, 4", "channels", "(1, 2, 8, 8)"}));
  BOOST_CHECK_EXCEPTION(conv(Variable(zeros({1, 3, 2, 8}))), Error,
                        has({"Conv2d(3, 4", "kernel_size 5", "padded input", "(1, 3, 2, 8)"}));
  BOOST_CHECK_EXCEPTION(conv(Variable(zeros({1, 3, 8, 0}))), Error, has({"Conv2d(3, 4", "sizes", "(1, 3, 8, 0)"}));
  BOOST_CHECK_EXCEPTION(conv(Variable()), Error, has({"Conv2d(3, 4", "undefined"}));
}

BOOST_AUTO_TEST_SUITE_END()
