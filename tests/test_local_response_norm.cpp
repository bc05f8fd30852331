// LocalResponseNorm: kernels against a direct double reference over a sweep of shapes, modes
// and parameters; analytic gradients (double kernels, and the float layer on the tape); a
// planted wrong backward that the checker must catch; float against double; mixed magnitudes;
// bit-identical results at 1 and 2 threads; accumulation; PyTorch fixtures; validation errors.
#include <boost/test/data/monomorphic.hpp>
#include <boost/test/data/test_case.hpp>
#include <boost/test/unit_test.hpp>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <fstream>
#include <limits>
#include <ostream>
#include <sstream>
#include <string>
#include <vector>

#include <omp.h>
#include <xtensor/xarray.hpp>

#include <xgrad/autograd/gradcheck.hpp>
#include <xgrad/autograd/tape.hpp>
#include <xgrad/core/error.hpp>
#include <xgrad/core/npy.hpp>
#include <xgrad/core/rng.hpp>
#include <xgrad/layers/local_response_norm.hpp>
#include <xgrad/layers/local_response_norm_kernels_hooks.hpp>

namespace bdata = boost::unit_test::data;
using namespace xgrad;

namespace {

using Index = std::int64_t;

struct LrnCase {
  Shape shape;
  LrnOptions options;
};

std::ostream& operator<<(std::ostream& out, const LrnCase& c) {
  return out << shape_str(c.shape) << " size=" << c.options.size() << " alpha=" << c.options.alpha()
             << " beta=" << c.options.beta() << " k=" << c.options.k()
             << (c.options.mode() == LrnMode::WithinChannel ? " within_channel" : "");
}

LrnOptions across(std::int64_t size, double alpha, double beta, double k) {
  return LrnOptions(size).alpha(alpha).beta(beta).k(k);
}
LrnOptions within(std::int64_t size, double alpha, double beta, double k) {
  return LrnOptions(size).alpha(alpha).beta(beta).k(k).mode(LrnMode::WithinChannel);
}

// Ranks 3 to 6, C = 1, trailing dims of 1, size > C, odd and even sizes, both kernel paths
// (size <= 8 and longer windows), rows wider than one vector and than one position block,
// beta 0.75 / 0.5 / 1 / 0.6, k = 0, alpha = 0; within channel with windows larger than H, W.
const std::vector<LrnCase> kCases = {
    {{2, 7, 5, 3}, across(5, 0.5, 0.75, 1.0)},
    {{2, 7, 5, 3}, across(4, 0.5, 0.75, 1.0)},
    {{3, 5, 4}, across(3, 1.0, 0.5, 2.0)},
    {{2, 1, 4, 4}, across(5, 1.0, 0.75, 1.0)},
    {{2, 3, 1, 1}, across(5, 2.0, 0.75, 1.0)},
    {{2, 4, 3}, across(9, 1.5, 0.6, 1.0)},
    {{1, 12, 2, 3}, across(11, 1.0, 1.0, 0.5)},
    {{2, 3, 2, 1, 2, 3}, across(2, 0.7, 0.75, 1.0)},
    {{2, 16, 17}, across(8, 0.5, 0.6, 2.0)},
    {{1, 6, 40}, across(1, 1.0, 0.75, 1.0)},
    {{1, 5, 530}, across(6, 1.0, 0.5, 1.0)},
    {{2, 20, 7}, across(15, 1.0, 0.75, 0.2)},
    {{1, 3, 10}, across(30, 1.0, 0.75, 1.0)},
    {{1, 4, 5}, across(3, 1.0, 0.75, 0.0)},
    {{2, 3, 4}, across(3, 0.0, 0.75, 2.0)},
    {{1, 9, 33}, across(7, 0.3, 1.0, 1.0)},
    {{2, 3, 7, 6}, within(3, 1.0, 0.75, 1.0)},
    {{1, 2, 5, 5}, within(4, 2.0, 0.5, 1.0)},
    {{1, 1, 3, 4}, within(7, 3.0, 0.75, 0.5)},
    {{2, 2, 6, 19}, within(5, 1.0, 0.6, 2.0)},
    {{1, 2, 4, 3}, within(2, 1.0, 1.0, 1.0)},
};

std::size_t count_of(const Shape& shape) {
  std::size_t count = 1;
  for (std::size_t d : shape) count *= d;
  return count;
}

template <class T = double>
xt::xarray<T> random_array(const Shape& shape, std::uint64_t seed, double lo = -2.0, double hi = 2.0) {
  Rng rng(seed);
  xt::xarray<T> a = xt::xarray<T>::from_shape(shape);
  for (auto& v : a) v = static_cast<T>(rng.uniform(lo, hi));
  return a;
}

template <class To, class From>
xt::xarray<To> converted(const xt::xarray<From>& a) {
  xt::xarray<To> out = xt::xarray<To>::from_shape(a.shape());
  std::transform(a.begin(), a.end(), out.begin(), [](From v) { return static_cast<To>(v); });
  return out;
}

// ---- The reference: loops straight from the formulas, in double ----------------------------

// The window of position c along an axis of length `extent`: [c - n/2, c + (n-1)/2] clipped;
// mirrored: [c - (n-1)/2, c + n/2] clipped.
void window(Index c, Index n, Index extent, bool mirrored, Index& lo, Index& hi) {
  const Index before = mirrored ? (n - 1) / 2 : n / 2;
  const Index after = mirrored ? n / 2 : (n - 1) / 2;
  lo = std::max<Index>(0, c - before);
  hi = std::min<Index>(extent - 1, c + after);
}

// Visits, for every element e of a (N, C, S) or (N, C, H, W) view, the elements of its window.
struct View {
  Index n, c, inner, h, w;
  bool within_channel;
  explicit View(const LrnCase& lc) {
    n = static_cast<Index>(lc.shape[0]);
    c = static_cast<Index>(lc.shape[1]);
    inner = static_cast<Index>(count_of(lc.shape) / (lc.shape[0] * lc.shape[1]));
    within_channel = lc.options.mode() == LrnMode::WithinChannel;
    h = within_channel ? static_cast<Index>(lc.shape[2]) : 0;
    w = within_channel ? static_cast<Index>(lc.shape[3]) : 0;
  }
  template <class F>
  void for_window(Index e, Index size, bool mirrored, F f) const {
    const Index plane = c * inner;
    const Index sample = e / plane, ch = (e % plane) / inner, pos = e % inner;
    Index lo, hi;
    if (!within_channel) {
      window(ch, size, c, mirrored, lo, hi);
      for (Index j = lo; j <= hi; ++j) f(sample * plane + j * inner + pos);
      return;
    }
    const Index row = pos / w, col = pos % w;
    Index clo, chi;
    window(row, size, h, mirrored, lo, hi);
    window(col, size, w, mirrored, clo, chi);
    for (Index r = lo; r <= hi; ++r)
      for (Index q = clo; q <= chi; ++q) f(sample * plane + ch * inner + r * w + q);
  }
};

double divisor(const LrnOptions& o) {
  const double n = static_cast<double>(o.size());
  return o.mode() == LrnMode::WithinChannel ? n * n : n;
}

std::vector<double> reference_s(const LrnCase& lc, const double* x) {
  const View v(lc);
  const Index count = static_cast<Index>(count_of(lc.shape));
  std::vector<double> s(static_cast<std::size_t>(count));
  for (Index e = 0; e < count; ++e) {
    double sum = 0.0;
    v.for_window(e, lc.options.size(), false, [&](Index j) { sum += x[j] * x[j]; });
    s[e] = lc.options.k() + lc.options.alpha() / divisor(lc.options) * sum;
  }
  return s;
}

xt::xarray<double> reference_forward(const LrnCase& lc, const xt::xarray<double>& x) {
  const std::vector<double> s = reference_s(lc, x.data());
  xt::xarray<double> y = xt::xarray<double>::from_shape(lc.shape);
  for (std::size_t e = 0; e < y.size(); ++e) y.data()[e] = x.data()[e] * std::pow(s[e], -lc.options.beta());
  return y;
}

// dx, and in `scale` the sum of the magnitudes of the terms making up each dx element (the
// yardstick for relative errors where the two terms of dx cancel).
xt::xarray<double> reference_backward(const LrnCase& lc, const xt::xarray<double>& x,
                                      const xt::xarray<double>& dy, xt::xarray<double>* scale = nullptr) {
  const View v(lc);
  const LrnOptions& o = lc.options;
  const std::vector<double> s = reference_s(lc, x.data());
  const double g = 2.0 * o.alpha() * o.beta() / divisor(o);
  xt::xarray<double> dx = xt::xarray<double>::from_shape(lc.shape);
  if (scale != nullptr) *scale = xt::xarray<double>::from_shape(lc.shape);
  const Index count = static_cast<Index>(count_of(lc.shape));
  for (Index e = 0; e < count; ++e) {
    double sum = 0.0, magnitude = 0.0;
    v.for_window(e, o.size(), true, [&](Index j) {
      const double t = dy.data()[j] * x.data()[j] * std::pow(s[j], -o.beta() - 1.0);
      sum += t;
      magnitude += std::abs(t);
    });
    const double direct = dy.data()[e] * std::pow(s[e], -o.beta());
    dx.data()[e] = direct - g * x.data()[e] * sum;
    if (scale != nullptr) scale->data()[e] = std::abs(direct) + g * std::abs(x.data()[e]) * magnitude;
  }
  return dx;
}

// ---- Comparisons ---------------------------------------------------------------------------

// Worst |actual - expected| / (|scale| + tiny) over the elements.
template <class A>
double worst_relative(const A& actual, const xt::xarray<double>& expected, const xt::xarray<double>& scale) {
  double worst = 0.0;
  for (std::size_t i = 0; i < expected.size(); ++i) {
    const double err = std::abs(static_cast<double>(actual.data()[i]) - expected.data()[i]) /
                       (std::abs(scale.data()[i]) + 1e-300);
    worst = std::max(worst, err);
  }
  return worst;
}

template <class T>
xt::xarray<T> run_forward(const LrnCase& lc, const xt::xarray<T>& x) {
  xt::xarray<T> y = xt::xarray<T>::from_shape(lc.shape);
  lrn_forward(x.data(), y.data(), lc.shape, lc.options);
  return y;
}

template <class T>
xt::xarray<T> run_backward(const LrnCase& lc, const xt::xarray<T>& x, const xt::xarray<T>& dy) {
  xt::xarray<T> dx = xt::xarray<T>::from_shape(lc.shape);
  lrn_backward(x.data(), dy.data(), dx.data(), lc.shape, lc.options, false);
  return dx;
}

// Restores the OpenMP thread count on scope exit.
struct ThreadCountGuard {
  int saved = omp_get_max_threads();
  ~ThreadCountGuard() { omp_set_num_threads(saved); }
};

}  // namespace

BOOST_AUTO_TEST_SUITE(local_response_norm)
// (Inside the suite, which is a namespace of the same name, the functions are called
// xgrad::local_response_norm.)

BOOST_DATA_TEST_CASE(double_kernels_match_reference, bdata::make(kCases), lc) {
  const auto x = random_array(lc.shape, 1);
  const auto dy = random_array(lc.shape, 2, -1.0, 1.0);
  const auto y_ref = reference_forward(lc, x);
  xt::xarray<double> scale;
  const auto dx_ref = reference_backward(lc, x, dy, &scale);
  BOOST_TEST(worst_relative(run_forward(lc, x), y_ref, y_ref) <= 1e-12);
  BOOST_TEST(worst_relative(run_backward(lc, x, dy), dx_ref, scale) <= 1e-12);
}

BOOST_DATA_TEST_CASE(float_kernels_match_reference, bdata::make(kCases), lc) {
  // The reference runs on the float-rounded inputs, so only the kernels' arithmetic differs.
  const auto xf = random_array<float>(lc.shape, 3);
  const auto dyf = random_array<float>(lc.shape, 4, -1.0, 1.0);
  const auto x = converted<double>(xf), dy = converted<double>(dyf);
  const auto y_ref = reference_forward(lc, x);
  xt::xarray<double> scale;
  const auto dx_ref = reference_backward(lc, x, dy, &scale);
  BOOST_TEST(worst_relative(run_forward(lc, xf), y_ref, y_ref) <= 1e-5);
  BOOST_TEST(worst_relative(run_backward(lc, xf, dyf), dx_ref, scale) <= 1e-5);
  // And against the double kernels.
  BOOST_TEST(worst_relative(run_forward(lc, xf), run_forward(lc, x), y_ref) <= 1e-5);
}

// Shapes for the float forward's band walks (beta = 3/4 across channels; forced here, as the
// library takes them only for tensors of 2^22 values or more): every window size the walks
// take (1 to 8), channel counts that are not a multiple of the band (4) and some below the
// window, ragged plane ends, planes shorter than one vector, planes cut into chunks (longer
// than 4096 positions).
const std::vector<LrnCase> kBandCases = {
    {{2, 13, 11, 13}, across(5, 1.0, 0.75, 1.0)},  {{2, 10, 128}, across(1, 1.0, 0.75, 1.0)},
    {{2, 9, 130}, across(2, 0.5, 0.75, 1.0)},      {{2, 6, 200}, across(3, 1.0, 0.75, 2.0)},
    {{2, 11, 161}, across(4, 1.0, 0.75, 1.0)},     {{1, 3, 150}, across(5, 2.0, 0.75, 1.0)},
    {{2, 14, 140}, across(6, 1.0, 0.75, 0.5)},     {{1, 17, 300}, across(7, 1.0, 0.75, 1.0)},
    {{2, 5, 129}, across(8, 3.0, 0.75, 1.0)},      {{1, 2, 4500}, across(3, 1.0, 0.75, 1.0)},
    {{9, 6, 4100}, across(5, 1.0, 0.75, 1.0)},     {{3, 7, 700}, across(4, 1.0, 0.75, 1.0)},
    {{1, 9, 1200}, across(8, 1.0, 0.75, 1.0)},     {{8, 12, 8, 16}, across(5, 1e-4, 0.75, 2.0)},
    {{2, 7, 5, 3}, across(5, 0.5, 0.75, 1.0)},     {{3, 4, 9000}, across(5, 1.0, 0.75, 1.0)},
};

// Runs the float forward with the band or the column walks.
xt::xarray<float> run_forward_walks(const LrnCase& lc, const xt::xarray<float>& x, bool bands) {
  const detail::LrnWalks before = detail::set_lrn_walks(bands ? detail::LrnWalks::Bands : detail::LrnWalks::Columns);
  xt::xarray<float> y = run_forward(lc, x);
  detail::set_lrn_walks(before);
  return y;
}

std::size_t differing(const xt::xarray<float>& a, const xt::xarray<float>& b) {
  std::size_t count = 0;
  for (std::size_t i = 0; i < a.size(); ++i) count += std::memcmp(&a.data()[i], &b.data()[i], sizeof(float)) != 0;
  return count;
}

// The band walks form the same sums in the same order as the column walks, and the same
// s^(-3/4): the same bits, and the double reference's values.
BOOST_DATA_TEST_CASE(float_band_walks_match_columns_and_reference, bdata::make(kBandCases), lc) {
  const auto xf = random_array<float>(lc.shape, 16);
  const auto y_ref = reference_forward(lc, converted<double>(xf));
  const auto bands = run_forward_walks(lc, xf, true);
  const auto columns = run_forward_walks(lc, xf, false);
  BOOST_TEST(worst_relative(bands, y_ref, y_ref) <= 1e-5);
  BOOST_TEST(differing(bands, columns) == 0u);
}

// A chunk with a u that is not normal and finite (x^2 overflowing to inf, an inf, a NaN) is
// redone by the column walks, which take the exact form where needed: the same bits as the
// column walks alone (one chunk, so the same columns), NaN spreading to the windows holding it,
// and finite values elsewhere.
BOOST_AUTO_TEST_CASE(float_band_walks_redo_non_finite_chunks) {
  const LrnCase lc{{2, 9, 150}, across(5, 1e-4, 0.75, 2.0)};
  auto xf = random_array<float>(lc.shape, 17);
  xf(0, 3, 7) = 3e38f;
  xf(1, 0, 149) = std::numeric_limits<float>::infinity();
  xf(1, 6, 20) = std::numeric_limits<float>::quiet_NaN();
  const auto bands = run_forward_walks(lc, xf, true);
  const auto columns = run_forward_walks(lc, xf, false);
  BOOST_TEST(differing(bands, columns) == 0u);
  std::size_t nan = 0, not_finite = 0;
  for (std::size_t c = 0; c < 9; ++c) {
    for (std::size_t p = 0; p < 150; ++p) {
      const bool in_nan_window = c >= 4 && c <= 8 && p == 20;
      nan += in_nan_window && std::isnan(bands(1, c, p));
      not_finite += !in_nan_window && !(c == 0 && p == 149) && !std::isfinite(bands(1, c, p));
      not_finite += !std::isfinite(bands(0, c, p));
    }
  }
  BOOST_TEST(nan == 5u);
  BOOST_TEST(not_finite == 0u);
  // Away from the planted values, the fast and exact forms agree with the reference.
  const auto y_ref = reference_forward(lc, converted<double>(xf));
  double worst = 0.0;
  for (std::size_t p = 30; p < 140; ++p) {
    for (std::size_t c = 0; c < 9; ++c) {
      worst = std::max(worst, std::abs(bands(0, c, p) - y_ref(0, c, p)) / std::abs(y_ref(0, c, p)));
    }
  }
  BOOST_TEST(worst <= 1e-5);
}

BOOST_DATA_TEST_CASE(gradients_match_finite_differences, bdata::make(kCases), lc) {
  KernelGradcheckOptions options;
  options.tolerance = 1e-6;
  options.max_elements = 100000;  // every input element
  const auto forward = [&](const KernelInputs& in) { return run_forward(lc, in[0]); };
  const auto backward = [&](const KernelInputs& in, const xt::xarray<double>& dout, KernelInputs& grads) {
    lrn_backward(in[0].data(), dout.data(), grads[0].data(), lc.shape, lc.options, /*accumulate=*/true);
  };
  const GradcheckResult r = gradcheck_kernel(forward, backward, {random_array(lc.shape, 5)}, options);
  BOOST_TEST(r.ok, r.summary());
  BOOST_TEST(r.checked == count_of(lc.shape));
}

// The checker must fail a backward with a planted error: the second term dropped, or the
// forward window used where the mirrored one belongs (wrong for even sizes).
BOOST_AUTO_TEST_CASE(gradient_check_catches_planted_errors) {
  const LrnCase lc{{2, 6, 3}, across(4, 1.0, 0.75, 1.0)};
  const auto forward = [&](const KernelInputs& in) { return run_forward(lc, in[0]); };
  const auto add = [](const xt::xarray<double>& g, xt::xarray<double>& into) {
    for (std::size_t i = 0; i < g.size(); ++i) into.data()[i] += g.data()[i];
  };
  const auto no_second_term = [&](const KernelInputs& in, const xt::xarray<double>& dout, KernelInputs& grads) {
    const std::vector<double> s = reference_s(lc, in[0].data());
    xt::xarray<double> g = xt::xarray<double>::from_shape(lc.shape);
    for (std::size_t i = 0; i < g.size(); ++i) g.data()[i] = dout.data()[i] * std::pow(s[i], -lc.options.beta());
    add(g, grads[0]);
  };
  const auto unmirrored_window = [&](const KernelInputs& in, const xt::xarray<double>& dout, KernelInputs& grads) {
    // dx_c with the sum over win(c) instead of {j : c in win(j)}.
    const View v(lc);
    const std::vector<double> s = reference_s(lc, in[0].data());
    const double gs = 2.0 * lc.options.alpha() * lc.options.beta() / divisor(lc.options);
    xt::xarray<double> g = xt::xarray<double>::from_shape(lc.shape);
    for (Index e = 0; e < static_cast<Index>(g.size()); ++e) {
      double sum = 0.0;
      v.for_window(e, lc.options.size(), false, [&](Index j) {
        sum += dout.data()[j] * in[0].data()[j] * std::pow(s[j], -lc.options.beta() - 1.0);
      });
      g.data()[e] = dout.data()[e] * std::pow(s[e], -lc.options.beta()) - gs * in[0].data()[e] * sum;
    }
    add(g, grads[0]);
  };
  const KernelInputs inputs{random_array(lc.shape, 6)};
  for (const auto& wrong : {KernelBackward(no_second_term), KernelBackward(unmirrored_window)}) {
    const GradcheckResult r = gradcheck_kernel(forward, wrong, inputs);
    BOOST_TEST(!r.ok, r.summary());
    BOOST_TEST(r.worst_error > 1e-3);
  }
}

// Neighbouring channels of magnitudes 1e3 and 1e-3 (and k tiny, so s is set by the window):
// a sliding sum would leave the large squares' rounding in the small channels' sums.
BOOST_DATA_TEST_CASE(mixed_magnitudes_stay_accurate,
                     bdata::make(std::vector<std::int64_t>{3, 4, 5, 8, 11, 16}), size) {
  const LrnCase lc{{2, 40, 37}, across(size, 1.0, 0.75, 1e-8)};
  auto xf = random_array<float>(lc.shape, 7, 0.5, 1.0);
  for (std::size_t n = 0; n < 2; ++n)
    for (std::size_t c = 0; c < 40; ++c)
      for (std::size_t p = 0; p < 37; ++p) xf(n, c, p) *= (c % 12 == 0) ? 1e3f : 1e-3f;
  const auto dyf = random_array<float>(lc.shape, 8, -1.0, 1.0);
  const auto x = converted<double>(xf), dy = converted<double>(dyf);
  const auto y_ref = reference_forward(lc, x);
  xt::xarray<double> scale;
  const auto dx_ref = reference_backward(lc, x, dy, &scale);
  BOOST_TEST(worst_relative(run_forward(lc, xf), y_ref, y_ref) <= 1e-5);
  BOOST_TEST(worst_relative(run_backward(lc, xf, dyf), dx_ref, scale) <= 1e-5);
}

// Extreme but valid settings and values: wherever the exact answer (in double) is a finite
// float, the float kernels return a finite value, forward and backward, in both modes.
// Settings that are not floats (k below the smallest normal float) are rejected instead.
struct Extreme {
  const char* name;
  double magnitude, alpha, beta, k;
  bool rejected = false;
};
std::ostream& operator<<(std::ostream& out, const Extreme& e) { return out << e.name; }
const std::vector<Extreme> kExtremes{
    {"large inputs", 1e19, 1e-4, 0.75, 2.0},    {"huge inputs", 1e30, 1e-4, 0.75, 2.0},
    {"float max inputs", 3e38, 1e-4, 0.75, 2.0}, {"tiny inputs", 1e-30, 1e-4, 0.75, 1e-30},
    {"denormal inputs", 1e-44, 1.0, 0.75, 1.2e-38}, {"large alpha", 1.0, 1e30, 0.75, 2.0},
    {"large alpha and inputs", 1e10, 1e30, 0.75, 2.0}, {"alpha below float", 1.0, 1e-60, 0.75, 2.0, true},
    {"large k", 1.0, 1e-4, 0.75, 1e38},          {"tiny k only", 1e-20, 0.0, 0.75, 1.2e-38},
    {"large beta", 1.0, 1e-4, 30.0, 2.0},        {"negative beta", 1e10, 1e-4, -0.75, 2.0},
    {"beta 0", 1e30, 1e-4, 0.0, 2.0},            {"k below float", 1.0, 1e-4, 0.75, 1e-60, true},
    {"k 0 and tiny inputs", 1e-20, 1e-4, 0.75, 0.0}, {"k 0 and denormal inputs", 1e-44, 1.0, 0.75, 0.0},
    {"beta 2 and tiny k", 1e-20, 1e-4, 2.0, 1.2e-38}, {"beta 1.5 and small k", 1e-20, 1.0, 1.5, 1e-30}};

BOOST_DATA_TEST_CASE(extreme_settings_and_values_stay_finite, bdata::make(kExtremes), e) {
  for (const LrnMode mode : {LrnMode::AcrossChannels, LrnMode::WithinChannel}) {
    const LrnCase lc{{2, 7, 5, 6}, LrnOptions(5).alpha(e.alpha).beta(e.beta).k(e.k).mode(mode)};
    if (e.rejected) {
      BOOST_CHECK_THROW(validate_lrn_options(lc.options), Error);
      continue;
    }
    auto xf = random_array<float>(lc.shape, 11, -1.0, 1.0);
    for (std::size_t i = 0; i < xf.size(); ++i) {
      xf.data()[i] = static_cast<float>(xf.data()[i] * e.magnitude);
      if (i % 5 == 0) xf.data()[i] = 0.0f;  // zeros, and windows of zeros
    }
    const auto dyf = random_array<float>(lc.shape, 12, -1.0, 1.0);
    const auto x = converted<double>(xf), dy = converted<double>(dyf);
    const auto y_ref = reference_forward(lc, x);
    const auto dx_ref = reference_backward(lc, x, dy);
    const auto y = run_forward(lc, xf);
    const auto dx = run_backward(lc, xf, dyf);
    auto representable = [](double v) { return std::isfinite(v) && std::abs(v) <= std::numeric_limits<float>::max(); };
    std::size_t bad_y = 0, bad_dx = 0;
    for (std::size_t i = 0; i < y.size(); ++i) {
      const bool by = representable(y_ref.data()[i]) && !std::isfinite(y.data()[i]);
      const bool bdx = representable(dx_ref.data()[i]) && !std::isfinite(dx.data()[i]);
      if ((by || bdx) && bad_y + bad_dx == 0)
        BOOST_TEST_MESSAGE("first at " << i << ": x " << xf.data()[i] << " y " << y.data()[i] << " ref " << y_ref.data()[i]
                                       << " dx " << dx.data()[i] << " ref " << dx_ref.data()[i]);
      bad_y += by;
      bad_dx += bdx;
    }
    BOOST_TEST(bad_y == 0u, "mode " << static_cast<int>(mode) << ": " << bad_y << " outputs not finite");
    BOOST_TEST(bad_dx == 0u, "mode " << static_cast<int>(mode) << ": " << bad_dx << " input gradients not finite");
  }
}

BOOST_DATA_TEST_CASE(bit_identical_at_1_and_2_threads,
                     bdata::make(std::vector<LrnCase>{{{3, 24, 700}, across(5, 1.0, 0.75, 1.0)},
                                                      {{1, 10, 2000}, across(5, 1.0, 0.75, 1.0)},
                                                      {{3, 10, 600}, across(12, 1.0, 0.6, 1.0)},
                                                      {{2, 5, 9, 30}, within(3, 1.0, 0.75, 1.0)}}),
                     lc) {
  ThreadCountGuard guard;
  const auto x = random_array<float>(lc.shape, 9);
  const auto dy = random_array<float>(lc.shape, 10);
  omp_set_num_threads(1);
  const auto y1 = run_forward(lc, x);
  const auto bands1 = run_forward_walks(lc, x, true);
  const auto dx1 = run_backward(lc, x, dy);
  omp_set_num_threads(2);
  const auto y2 = run_forward(lc, x);
  const auto bands2 = run_forward_walks(lc, x, true);
  const auto dx2 = run_backward(lc, x, dy);
  BOOST_TEST(std::memcmp(y1.data(), y2.data(), y1.size() * sizeof(float)) == 0);
  BOOST_TEST(std::memcmp(bands1.data(), bands2.data(), y1.size() * sizeof(float)) == 0);
  BOOST_TEST(std::memcmp(dx1.data(), dx2.data(), dx1.size() * sizeof(float)) == 0);
}

BOOST_DATA_TEST_CASE(accumulate_adds_into_dx, bdata::make(kCases), lc) {
  const auto x = random_array<float>(lc.shape, 11);
  const auto dy = random_array<float>(lc.shape, 12);
  const auto prior = random_array<float>(lc.shape, 13);
  const auto fresh = run_backward(lc, x, dy);
  xt::xarray<float> dx = prior;
  lrn_backward(x.data(), dy.data(), dx.data(), lc.shape, lc.options, /*accumulate=*/true);
  bool same = true;
  for (std::size_t i = 0; i < dx.size(); ++i) same = same && dx.data()[i] == prior.data()[i] + fresh.data()[i];
  BOOST_TEST(same);
}

BOOST_AUTO_TEST_CASE(tensor_forms_match_kernels) {
  const LrnCase lc{{2, 7, 3, 2}, across(5, 1.0, 0.75, 1.0)};
  const auto x = random_array(lc.shape, 14);
  const auto dy = random_array(lc.shape, 15);
  BOOST_TEST(xgrad::local_response_norm(x, lc.options) == run_forward(lc, x));
  BOOST_TEST(xgrad::local_response_norm_backward(x, dy, lc.options) == run_backward(lc, x, dy));
}

BOOST_AUTO_TEST_CASE(empty_input_gives_empty_output) {
  for (const Shape& shape : {Shape{0, 3, 4}, Shape{2, 0, 4}, Shape{2, 3, 0, 5}}) {
    const xt::xarray<float> x = xt::xarray<float>::from_shape(shape);
    const auto y = xgrad::local_response_norm(x, across(5, 1e-4, 0.75, 1.0));
    BOOST_TEST(y.size() == 0u);
    BOOST_TEST(Shape(y.shape().begin(), y.shape().end()) == shape);
    const auto dx = xgrad::local_response_norm_backward(x, x, across(5, 1e-4, 0.75, 1.0));
    BOOST_TEST(Shape(dx.shape().begin(), dx.shape().end()) == shape);
  }
  const xt::xarray<float> x = xt::xarray<float>::from_shape({0, 2, 3, 3});
  BOOST_TEST(xgrad::local_response_norm(x, within(3, 1.0, 0.75, 1.0)).size() == 0u);
}

// ---- PyTorch fixtures ------------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(matches_pytorch_fixtures) {
  const std::string dir = std::string(XGRAD_FIXTURES_DIR) + "/lrn/";
  std::ifstream manifest(dir + "cases.txt");
  BOOST_REQUIRE(manifest.good());
  std::string line;
  int cases = 0;
  while (std::getline(manifest, line)) {
    if (line.empty()) continue;
    std::istringstream fields(line);
    std::string name;
    std::int64_t size = 0;
    double alpha = 0, beta = 0, k = 0;
    fields >> name >> size >> alpha >> beta >> k;
    const LrnOptions o = across(size, alpha, beta, k);
    BOOST_TEST_CONTEXT(name) {
      const auto x = load_npy<double>(dir + name + ".x.npy");
      const auto dy = load_npy<double>(dir + name + ".dy.npy");
      const auto y = load_npy<double>(dir + name + ".y.npy");
      const auto dx = load_npy<double>(dir + name + ".dx.npy");
      const LrnCase lc{Shape(x.shape().begin(), x.shape().end()), o};
      xt::xarray<double> scale;
      reference_backward(lc, x, dy, &scale);
      BOOST_TEST(worst_relative(xgrad::local_response_norm(x, o), y, y) <= 1e-12);
      BOOST_TEST(worst_relative(xgrad::local_response_norm_backward(x, dy, o), dx, scale) <= 1e-12);
      const auto xf = converted<float>(x), dyf = converted<float>(dy);
      BOOST_TEST(worst_relative(xgrad::local_response_norm(xf, o), y, y) <= 1e-5);
      BOOST_TEST(worst_relative(xgrad::local_response_norm_backward(xf, dyf, o), dx, scale) <= 1e-5);
    }
    ++cases;
  }
  BOOST_TEST(cases >= 8);
}

// ---- The layer -------------------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(layer_describe) {
  BOOST_TEST(LocalResponseNorm(5).describe() == "LocalResponseNorm(size=5, alpha=0.0001, beta=0.75, k=1)");
  BOOST_TEST(LocalResponseNorm(LrnOptions(3).alpha(0.5).beta(0.6).k(2.0).mode(LrnMode::WithinChannel)).describe() ==
             "LocalResponseNorm(size=3, alpha=0.5, beta=0.6, k=2, mode=within_channel)");
}

BOOST_AUTO_TEST_CASE(layer_forward_matches_kernel) {
  LocalResponseNorm layer(LrnOptions(5).alpha(0.5).beta(0.75).k(1.0));
  const Tensor x = random_array<float>({2, 7, 4, 3}, 16);
  const Variable y = layer(Variable(x));
  BOOST_TEST(y.value() == run_forward<float>({{2, 7, 4, 3}, layer.options()}, x));
  BOOST_TEST(!y.requires_grad());
}

BOOST_DATA_TEST_CASE(layer_gradcheck_on_tape,
                     bdata::make(std::vector<LrnCase>{{{2, 7, 3, 2}, across(5, 0.5, 0.75, 1.0)},
                                                      {{2, 5, 4}, across(4, 1.0, 0.6, 2.0)},
                                                      {{1, 2, 5, 4}, within(3, 1.0, 0.75, 1.0)}}),
                     lc) {
  LocalResponseNorm layer(lc.options);
  const Variable x(random_array<float>(lc.shape, 17), true, "x");
  const GradcheckResult r = gradcheck(layer, x);
  BOOST_TEST(r.ok, r.summary());
}

BOOST_AUTO_TEST_CASE(layer_records_nothing_without_grad) {
  LocalResponseNorm layer(5);
  Tape::active().clear();
  const Variable x(random_array<float>({1, 6, 2, 2}, 18), true);
  {
    NoGradGuard guard;
    const Variable y = layer(x);
    BOOST_TEST(!y.requires_grad());
  }
  BOOST_TEST(Tape::active().size() == 0u);
  const Variable y = layer(x);
  BOOST_TEST(Tape::active().size() == 1u);
  Tape::active().clear();
}

// ---- Validation ----------------------------------------------------------------------------

namespace {

// Runs f, which must throw xgrad::Error whose message contains every fragment.
template <class F>
void expect_error(F f, std::initializer_list<const char*> fragments) {
  try {
    f();
  } catch (const Error& e) {
    const std::string message = e.what();
    for (const char* fragment : fragments) BOOST_TEST(message.find(fragment) != std::string::npos, message);
    return;
  }
  BOOST_ERROR("no xgrad::Error thrown");
}

}  // namespace

BOOST_AUTO_TEST_CASE(invalid_options_throw) {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  const double inf = std::numeric_limits<double>::infinity();
  BOOST_CHECK_THROW(LocalResponseNorm(0), Error);
  expect_error([] { LocalResponseNorm(0); }, {"LocalResponseNorm", "size", "0"});
  expect_error([] { LocalResponseNorm(-3); }, {"LocalResponseNorm", "size", "-3"});
  expect_error([] { LocalResponseNorm(LrnOptions(5).alpha(-1e-4)); }, {"LocalResponseNorm", "alpha", "-0.0001"});
  expect_error([] { LocalResponseNorm(LrnOptions(5).alpha(1e-4).beta(0.75).k(-1.0)); }, {"LocalResponseNorm", "k", "-1"});
  expect_error([] { LocalResponseNorm(LrnOptions(5).alpha(0.0).beta(0.75).k(0.0)); }, {"LocalResponseNorm", "k", "alpha", "0"});
  expect_error([&] { LocalResponseNorm(LrnOptions(5).alpha(nan)); }, {"LocalResponseNorm", "alpha", "finite"});
  expect_error([&] { LocalResponseNorm(LrnOptions(5).alpha(1e-4).beta(inf)); }, {"LocalResponseNorm", "beta", "finite"});
  expect_error([&] { LocalResponseNorm(LrnOptions(5).alpha(1e-4).beta(0.75).k(nan)); }, {"LocalResponseNorm", "k", "finite"});
  expect_error([] { validate_lrn_options(across(0, 1e-4, 0.75, 1.0)); }, {"size"});
}

BOOST_AUTO_TEST_CASE(invalid_inputs_throw) {
  const xt::xarray<float> matrix = xt::xarray<float>::from_shape({3, 4});
  BOOST_CHECK_THROW(xgrad::local_response_norm(matrix, across(5, 1e-4, 0.75, 1.0)), Error);
  expect_error([&] { xgrad::local_response_norm(matrix, across(5, 1e-4, 0.75, 1.0)); },
               {"LocalResponseNorm", "rank", "(3, 4)"});
  expect_error([&] { LocalResponseNorm(5)(Variable(Tensor(matrix))); }, {"LocalResponseNorm", "(3, 4)"});
  const xt::xarray<float> rank5 = xt::xarray<float>::from_shape({1, 2, 3, 4, 5});
  expect_error([&] { xgrad::local_response_norm(rank5, within(3, 1.0, 0.75, 1.0)); },
               {"LocalResponseNorm", "within_channel", "(1, 2, 3, 4, 5)"});
  const xt::xarray<float> rank3 = xt::xarray<float>::from_shape({1, 2, 3});
  expect_error([&] { xgrad::local_response_norm(rank3, within(3, 1.0, 0.75, 1.0)); },
               {"LocalResponseNorm", "within_channel", "(1, 2, 3)"});
  const xt::xarray<float> x = xt::xarray<float>::from_shape({1, 2, 3});
  const xt::xarray<float> dy = xt::xarray<float>::from_shape({1, 2, 4});
  expect_error([&] { xgrad::local_response_norm_backward(x, dy, across(3, 1.0, 0.75, 1.0)); },
               {"LocalResponseNorm", "dy", "(1, 2, 3)", "(1, 2, 4)"});
  float value = 0.0f, out = 0.0f;
  expect_error([&] { lrn_forward(&value, &out, Shape{1, 1}, across(3, 1.0, 0.75, 1.0)); }, {"rank", "(1, 1)"});
  expect_error([&] { lrn_backward(&value, &value, &out, Shape{1, 1, 1}, across(0, 1.0, 0.75, 1.0), false); },
               {"size"});
}

BOOST_AUTO_TEST_SUITE_END()
