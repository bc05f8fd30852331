#include <xgrad/autograd/gradcheck.hpp>

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <sstream>

#include <xgrad/autograd/tape.hpp>
#include <xgrad/core/error.hpp>
#include <xgrad/core/rng.hpp>

namespace xgrad {

std::string GradcheckResult::summary() const {
  std::ostringstream out;
  out << (ok ? "ok" : "FAILED") << ": " << checked << " elements, worst error " << worst_error;
  if (!worst_input.empty()) {
    out << " at " << worst_input << shape_str(worst_shape) << "[" << worst_index << "] (analytic " << analytic
        << ", numeric " << numeric << ")";
  }
  return out.str();
}

namespace {

// Indices to check: all of them when few, else a seeded sample without repeats.
std::vector<std::size_t> pick_indices(std::size_t size, std::size_t max_elements, Rng& rng) {
  std::vector<std::size_t> idx(size);
  std::iota(idx.begin(), idx.end(), std::size_t{0});
  if (size <= max_elements) return idx;
  for (std::size_t i = 0; i < max_elements; ++i) std::swap(idx[i], idx[i + rng.below(size - i)]);
  idx.resize(max_elements);
  std::sort(idx.begin(), idx.end());
  return idx;
}

// L = sum(w * y). y must keep the shape the function's first output had: a function whose output
// changes shape between calls has no gradient to check.
template <class A, class W>
double projected(const A& y, const W& w, const char* who) {
  const Shape ys(y.shape().begin(), y.shape().end()), ws(w.shape().begin(), w.shape().end());
  XGRAD_CHECK(ys == ws, who, ": the function's output changed shape between calls, from ", shape_str(ws), " to ",
              shape_str(ys));
  double total = 0.0;
  for (std::size_t i = 0; i < y.size(); ++i) total += static_cast<double>(y.data()[i]) * static_cast<double>(w.data()[i]);
  return total;
}

void consider(GradcheckResult& r, double error, const std::string& name, const Shape& shape, std::size_t index,
              double analytic, double numeric) {
  ++r.checked;
  if (std::isnan(error)) error = std::numeric_limits<double>::infinity();  // a NaN never passes
  if (r.worst_input.empty() || error > r.worst_error) {
    r.worst_error = error;
    r.worst_input = name;
    r.worst_shape = shape;
    r.worst_index = index;
    r.analytic = analytic;
    r.numeric = numeric;
  }
}

void check_options(const GradcheckOptions& o) {
  XGRAD_CHECK(std::isfinite(o.eps) && o.eps > 0.0, "gradcheck: eps must be finite and > 0, got ", o.eps);
  XGRAD_CHECK(std::isfinite(o.rtol) && o.rtol >= 0.0, "gradcheck: rtol must be finite and >= 0, got ", o.rtol);
  XGRAD_CHECK(std::isfinite(o.atol) && o.atol >= 0.0, "gradcheck: atol must be finite and >= 0, got ", o.atol);
  XGRAD_CHECK(o.atol + o.rtol > 0.0, "gradcheck: atol and rtol are both 0, so no difference could pass");
  XGRAD_CHECK(o.max_elements >= 1, "gradcheck: max_elements must be >= 1 (a check of nothing proves nothing)");
  XGRAD_CHECK(std::isfinite(o.prefill), "gradcheck: prefill must be finite, got ", o.prefill);
}

void check_options(const KernelGradcheckOptions& o) {
  XGRAD_CHECK(std::isfinite(o.eps) && o.eps > 0.0, "gradcheck_kernel: eps must be finite and > 0, got ", o.eps);
  XGRAD_CHECK(std::isfinite(o.tolerance) && o.tolerance >= 0.0, "gradcheck_kernel: tolerance must be finite and >= 0, got ",
              o.tolerance);
  XGRAD_CHECK(std::isfinite(o.floor) && o.floor >= 0.0, "gradcheck_kernel: floor must be finite and >= 0, got ", o.floor);
  XGRAD_CHECK(o.max_elements >= 1, "gradcheck_kernel: max_elements must be >= 1 (a check of nothing proves nothing)");
  XGRAD_CHECK(std::isfinite(o.prefill), "gradcheck_kernel: prefill must be finite, got ", o.prefill);
}

}  // namespace

GradcheckResult gradcheck(const std::function<Variable()>& f, const std::vector<Variable>& wrt,
                          const GradcheckOptions& options) {
  check_options(options);
  Rng rng(options.seed);
  std::vector<Variable> inputs;
  for (const auto& v : wrt) {
    XGRAD_CHECK(v.defined(), "gradcheck: an input Variable is undefined");
    if (v.requires_grad()) inputs.push_back(v);
  }
  XGRAD_CHECK(!inputs.empty(), "gradcheck: no input requires grad");

  // Analytic: one backward seeded with the projection, on top of pre-filled grads.
  Tape::active().clear();
  Variable y = f();
  XGRAD_CHECK(y.defined() && y.requires_grad(), "gradcheck: the function's output does not require grad");
  Tensor w = empty(y.shape());
  rng.fill_normal(w, 0.0, 1.0);
  for (auto& v : inputs) {
    v.reset_grad();
    v.add_grad(full(v.shape(), options.prefill), "gradcheck");
  }
  y.backward(w);
  std::vector<Tensor> analytic;
  for (auto& v : inputs) analytic.push_back(Tensor(v.grad() - options.prefill));

  // Numeric: central differences of L = sum(w * f) with recording off.
  NoGradGuard no_grad;
  GradcheckResult result;
  for (std::size_t t = 0; t < inputs.size(); ++t) {
    Variable v = inputs[t];
    const std::string name = v.name().empty() ? "input " + std::to_string(t) : v.name();
    for (std::size_t i : pick_indices(v.size(), options.max_elements, rng)) {
      float& x = v.mutable_value().data()[i];  // a perturbation: a new version (no tape records here)
      const float saved = x;
      x = saved + static_cast<float>(options.eps);
      const double plus = projected(f().value(), w, "gradcheck");
      x = saved - static_cast<float>(options.eps);
      const double minus = projected(f().value(), w, "gradcheck");
      x = saved;
      // The actual step after float rounding of saved +- eps.
      const double step = static_cast<double>(saved + static_cast<float>(options.eps)) -
                          static_cast<double>(saved - static_cast<float>(options.eps));
      const double numeric = (plus - minus) / step;
      const double a = analytic[t].data()[i];
      const double error = std::abs(a - numeric) / (options.atol + options.rtol * std::abs(numeric));
      consider(result, error, name, v.shape(), i, a, numeric);
    }
  }
  result.ok = result.checked > 0 && result.worst_error <= 1.0;
  for (auto& v : inputs) v.reset_grad();
  return result;
}

GradcheckResult gradcheck_kernel(const KernelForward& forward, const KernelBackward& backward,
                                 const KernelInputs& inputs, const KernelGradcheckOptions& options) {
  check_options(options);
  Rng rng(options.seed);
  XGRAD_CHECK(!inputs.empty(), "gradcheck_kernel: no inputs");
  KernelInputs x = inputs;
  const xt::xarray<double> y = forward(x);
  xt::xarray<double> w = xt::xarray<double>::from_shape(y.shape());
  for (auto& v : w) v = rng.normal();
  KernelInputs grads;
  for (const auto& in : x) grads.push_back(xt::xarray<double>(in.shape(), options.prefill));
  backward(x, w, grads);
  for (std::size_t t = 0; t < grads.size(); ++t) {
    XGRAD_CHECK(grads[t].shape() == x[t].shape(), "gradcheck_kernel: backward changed the shape of gradient ", t,
          " to ", shape_str(grads[t].shape()), ", input is ", shape_str(x[t].shape()));
    grads[t] -= options.prefill;
  }

  // Numeric: fourth-order central differences, L'(x) ~ (-L(+2h) + 8L(+h) - 8L(-h) + L(-2h)) / 12h.
  struct Entry {
    std::size_t input, index;
    double analytic, numeric;
  };
  std::vector<Entry> entries;
  double largest = 0.0;
  const double h = options.eps;
  for (std::size_t t = 0; t < x.size(); ++t) {
    for (std::size_t i : pick_indices(x[t].size(), options.max_elements, rng)) {
      double& xi = x[t].data()[i];
      const double saved = xi;
      double l[4];
      const double offsets[4] = {2 * h, h, -h, -2 * h};
      for (int s = 0; s < 4; ++s) {
        xi = saved + offsets[s];
        l[s] = projected(forward(x), w, "gradcheck_kernel");
      }
      xi = saved;
      const double numeric = (-l[0] + 8 * l[1] - 8 * l[2] + l[3]) / (12 * h);
      const double a = grads[t].data()[i];
      entries.push_back({t, i, a, numeric});
      largest = std::max({largest, std::abs(a), std::abs(numeric)});
    }
  }
  const double floor = std::max(options.floor * largest, 1e-300);
  GradcheckResult result;
  for (const auto& e : entries) {
    const double error = std::abs(e.analytic - e.numeric) / std::max({std::abs(e.analytic), std::abs(e.numeric), floor});
    consider(result, error, "input " + std::to_string(e.input), Shape(x[e.input].shape().begin(), x[e.input].shape().end()),
             e.index, e.analytic, e.numeric);
  }
  result.ok = result.checked > 0 && result.worst_error <= options.tolerance;
  return result;
}

}  // namespace xgrad
