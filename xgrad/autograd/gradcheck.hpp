#pragma once
// Gradient checkers, in the spirit of torch.autograd.gradcheck.
//
// Both compare the analytic gradient of L = sum(w * f(inputs)), for a random projection w,
// with finite differences of L, and report the worst element (input, index, analytic,
// numeric). Gradients are pre-filled with a known value before backward and the value is
// subtracted afterwards, so a backward that overwrites instead of adding, or never writes
// an element, is caught. Small inputs are checked at every element; large ones at a seeded
// sample of max_elements elements.
//
// - gradcheck():        tape level, float, any function of Variables (layers included).
//                        Central differences; pass when |a - n| <= atol + rtol * |n|.
// - gradcheck_kernel(): kernel level, double: forward/backward kernels on xt::xarray<double>.
//                        Fourth-order differences; pass when the relative error
//                        |a - n| / max(|a|, |n|, floor) <= tolerance (1e-6 by default).
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include <xtensor/xarray.hpp>

#include <xgrad/autograd/variable.hpp>

namespace xgrad {

struct GradcheckResult {
  bool ok = true;
  std::size_t checked = 0;     // elements compared
  double worst_error = 0.0;    // the statistic compared against the tolerance
  std::string worst_input;     // name (or "input <i>") of the worst element's input
  std::size_t worst_index = 0; // flat index into that input
  Shape worst_shape;           // that input's shape
  double analytic = 0.0, numeric = 0.0;
  // One line: "ok: 120 elements, worst relative error 3.1e-9 at weight[17] (analytic ..., numeric ...)".
  std::string summary() const;
};

struct GradcheckOptions {
  double eps = 1e-2;        // finite-difference step (float default; kernels use kernel_eps)
  double rtol = 1e-2;       // tape level: relative tolerance
  double atol = 1e-3;       // tape level: absolute tolerance
  std::size_t max_elements = 200;  // per input; larger inputs are sampled
  std::uint64_t seed = 0;
  float prefill = 0.375f;   // known value put in every grad before backward
};

// f recomputes its output from the current values of `wrt` (which the checker perturbs in
// place and restores). Checks every Variable of wrt that requires grad.
GradcheckResult gradcheck(const std::function<Variable()>& f, const std::vector<Variable>& wrt,
                          const GradcheckOptions& options = {});

using KernelInputs = std::vector<xt::xarray<double>>;
// forward(inputs) -> output
using KernelForward = std::function<xt::xarray<double>(const KernelInputs&)>;
// backward(inputs, dout, grads): must ADD each input's gradient into grads[i].
using KernelBackward = std::function<void(const KernelInputs&, const xt::xarray<double>&, KernelInputs&)>;

struct KernelGradcheckOptions {
  double eps = 1e-3;        // step of the fourth-order stencil
  double tolerance = 1e-6;  // max relative error
  double floor = 1e-4;      // relative-error denominator floor, times the largest |gradient|
  std::size_t max_elements = 400;  // per input
  std::uint64_t seed = 0;
  double prefill = 0.375;
};

GradcheckResult gradcheck_kernel(const KernelForward& forward, const KernelBackward& backward,
                                 const KernelInputs& inputs, const KernelGradcheckOptions& options = {});

}  // namespace xgrad
