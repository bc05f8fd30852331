#pragma once
// LocalResponseNorm: forward and analytic backward kernels, their tensor-level forms, and
// (below) the layer. Semantics are exactly those of PyTorch's torch.nn.LocalResponseNorm code.
//
// Dimension key: N = batch, C = channels, S = inner size (product of the trailing dims),
// n = window size. An input (N, C, *) is viewed as (N, C, S).
//
// Across channels (the default), for channel c the window is
//   win(c) = [c - floor(n/2), c + floor((n-1)/2)] clipped to [0, C-1]
// and the divisor is always n (also where the window is clipped, and for even n):
//   s_c = k + (alpha / n) * sum_{j in win(c)} x_j^2        y_c = x_c * s_c^(-beta)
//   dx_c = dy_c * s_c^(-beta)
//          - (2 alpha beta / n) * x_c * sum_{j in [c - floor((n-1)/2), c + floor(n/2)]} dy_j x_j s_j^(-beta-1)
// Within channel (4-D input only), the same window rule is applied to H and to W (a centred
// n x n window for odd n), zero padded, with divisor n^2:
//   s_hw = k + (alpha / n^2) * sum_{window} x^2
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include <xtensor/xarray.hpp>

#include <xgrad/layers/layer.hpp>

namespace xgrad {

enum class LrnMode { AcrossChannels, WithinChannel };

// LocalResponseNorm's settings: the window size is required, the rest named, as
//   LrnOptions(5).alpha(1e-4).beta(0.75).k(2.0)
class LrnOptions {
 public:
  LrnOptions(std::int64_t size) : size_(size) {}  // implicit, as PyTorch's: LrnOptions opts = 5

  LrnOptions& size(std::int64_t size) { size_ = size; return *this; }
  std::int64_t size() const { return size_; }  // window length n, >= 1
  LrnOptions& alpha(double alpha) { alpha_ = alpha; return *this; }
  double alpha() const { return alpha_; }
  LrnOptions& beta(double beta) { beta_ = beta; return *this; }
  double beta() const { return beta_; }
  LrnOptions& k(double k) { k_ = k; return *this; }
  double k() const { return k_; }
  LrnOptions& mode(LrnMode mode) { mode_ = mode; return *this; }
  LrnMode mode() const { return mode_; }

 private:
  std::int64_t size_;
  double alpha_ = 1e-4;
  double beta_ = 0.75;
  double k_ = 1.0;
  LrnMode mode_ = LrnMode::AcrossChannels;
};
// Throws xgrad::Error naming the parameter when: size < 1, alpha < 0, k < 0, k == 0 with
// alpha == 0 (s would be 0), or any of alpha, beta, k is not finite; and when a setting is not
// a float (the float kernels compute in float): alpha or k above the largest float
// (3.40282e+38), |beta| above it, k between 0 and the smallest normal float (1.17549e-38), or
// the gradient coefficient 2 alpha beta / n (n^2 within channel) beyond +-3.40282e+38.
void validate_lrn_options(const LrnOptions& options);

// Validates the options, then the input shape: rank >= 3 (across channels) or rank == 4
// (within channel). Throws xgrad::Error naming the layer, the parameter and the shape.
void validate_lrn_input(const LrnOptions& options, const std::vector<std::size_t>& shape);

// Raw kernels. requires: x, y, dy, dx contiguous row-major arrays of shape `shape` (the full
// input shape); y/dx do not alias x/dy; options and shape valid (the kernels validate them and
// throw otherwise). An empty shape (a dimension 0) is a no-op.
// ensures: every output element is written by exactly one OpenMP thread with arithmetic that
// does not depend on the thread count, so results are bit-identical at any thread count.
template <class T>
void lrn_forward(const T* x, T* y, const std::vector<std::size_t>& shape, const LrnOptions& options);

// Backward from x alone (s is recomputed, nothing is saved by the forward).
// accumulate = true adds the input gradient into dx; false overwrites dx.
template <class T>
void lrn_backward(const T* x, const T* dy, T* dx, const std::vector<std::size_t>& shape,
                  const LrnOptions& options, bool accumulate);

// Tensor-level forms (copy to a contiguous row-major array when needed).
template <class T>
xt::xarray<T> local_response_norm(const xt::xarray<T>& x, const LrnOptions& options);

// The gradient with respect to x; dy must have x's shape.
template <class T>
xt::xarray<T> local_response_norm_backward(const xt::xarray<T>& x, const xt::xarray<T>& dy,
                                           const LrnOptions& options);

namespace functional {

// (N, C, *) -> same shape (within channel: (N, C, H, W)). The forward saves nothing but a
// handle to its input; the backward recomputes s from it and adds into the input's gradient,
// so training holds no tensor beyond those the tape already has. Throws xgrad::Error naming
// LocalResponseNorm and the parameter or shape (see validate_lrn_input).
Variable local_response_norm(const Variable& x, const LrnOptions& options);

}  // namespace functional

// The layer: functional::local_response_norm with fixed options.
class LocalResponseNorm : public Layer {
 public:
  // Throws xgrad::Error when the options are invalid (see validate_lrn_options).
  explicit LocalResponseNorm(const LrnOptions& options);
  explicit LocalResponseNorm(std::int64_t size);

  Variable forward(const Variable& x) override;
  // "LocalResponseNorm(size=5, alpha=0.0001, beta=0.75, k=1)", with ", mode=within_channel"
  // appended in that mode.
  std::string repr() const override;

  const LrnOptions& options() const { return options_; }

 private:
  LrnOptions options_;
};

}  // namespace xgrad
