#pragma once
// BatchNorm2d: batch normalisation over (N, H, W) for each channel, with PyTorch's semantics.
// In training each channel is normalised by the batch's mean and biased variance,
//   y = (x - mean) / sqrt(var + eps) * weight + bias,
// and the running estimates move towards the batch's: running_mean = (1 - momentum) *
// running_mean + momentum * mean, running_var likewise with the unbiased variance (times
// M / (M - 1), M = N * H * W). In eval() the running estimates take the batch's place (with
// track_running_stats(false) the batch's statistics are used in both modes and no buffers are
// kept). weight starts at 1 and bias at 0; running_mean at 0 and running_var at 1.
//
// Dimension key: N = batch, C = channels, S = the elements of one channel in one example
// (H * W; 1 for (N, C) inputs), M = N * S.
//
// Every channel's statistics and gradients are summed in double by one thread, in a fixed
// order, so results do not depend on the thread count.
#include <cstddef>
#include <string>

#include <xgrad/layers/layer.hpp>

namespace xgrad {

// BatchNorm2d's settings, after PyTorch's BatchNorm2dOptions:
//   BatchNorm2dOptions(96).eps(1e-5).momentum(0.1).affine(true).track_running_stats(true)
class BatchNorm2dOptions {
 public:
  BatchNorm2dOptions(std::size_t num_features) : num_features_(num_features) {}  // implicit, as PyTorch's

  BatchNorm2dOptions& num_features(std::size_t n) { num_features_ = n; return *this; }
  std::size_t num_features() const { return num_features_; }  // C, >= 1
  BatchNorm2dOptions& eps(double eps) { eps_ = eps; return *this; }
  double eps() const { return eps_; }  // added to the variance: finite, > 0
  BatchNorm2dOptions& momentum(double momentum) { momentum_ = momentum; return *this; }
  double momentum() const { return momentum_; }  // of the running estimates: in [0, 1]
  BatchNorm2dOptions& affine(bool affine) { affine_ = affine; return *this; }
  bool affine() const { return affine_; }  // learnable weight and bias
  BatchNorm2dOptions& track_running_stats(bool track) { track_ = track; return *this; }
  bool track_running_stats() const { return track_; }

 private:
  std::size_t num_features_;
  double eps_ = 1e-5;
  double momentum_ = 0.1;
  bool affine_ = true;
  bool track_ = true;
};

namespace kernels {

// The per-channel statistics: mean[c] and invstd[c] = 1 / sqrt(var[c] + eps), var[c] the
// biased variance (two passes, in double). x is (N, C, S).
template <class T>
void batch_norm_statistics(const T* x, std::size_t N, std::size_t C, std::size_t S, double eps, double* mean,
                           double* var, double* invstd);

// y = (x - mean[c]) * invstd[c] * weight[c] + bias[c]; weight and bias may be null (1 and 0).
template <class T>
void batch_norm_forward(const T* x, T* y, std::size_t N, std::size_t C, std::size_t S, const double* mean,
                        const double* invstd, const T* weight, const T* bias);

// The gradients for y = batch_norm_forward(x, mean, invstd, weight, bias):
//   dweight[c] += sum of dy * xhat, dbias[c] += sum of dy  (xhat = (x - mean) * invstd)
//   dx += weight * invstd * (dy - mean(dy) - xhat * mean(dy * xhat))   when batch_statistics
//   dx += weight * invstd * dy                                          otherwise (fixed statistics)
// Any of dx, dweight, dbias may be null (not wanted); with overwrite, dx = that (its previous
// contents are never read).
template <class T>
void batch_norm_backward(const T* x, const T* dy, std::size_t N, std::size_t C, std::size_t S, const double* mean,
                         const double* invstd, const T* weight, bool batch_statistics, T* dx, bool overwrite,
                         T* dweight, T* dbias);

}  // namespace kernels

namespace functional {

// PyTorch's F::batch_norm for inputs (N, C, ...): with training, the batch's statistics
// normalise x and, when running_mean and running_var are given (tensors of C elements), are
// folded into them; without training the running estimates normalise x. weight and bias
// (Variables of shape (C)) may be undefined. Throws xgrad::Error naming BatchNorm2d, the
// argument and the shapes for: an input of rank < 2, statistics or parameters of the wrong
// size, only one of running_mean and running_var, eval without running estimates, eps not
// finite and > 0, momentum outside [0, 1], and training on one value per channel (M <= 1).
Variable batch_norm(const Variable& x, Tensor* running_mean, Tensor* running_var, const Variable& weight,
                    const Variable& bias, bool training, double momentum = 0.1, double eps = 1e-5);

}  // namespace functional

class BatchNorm2d : public Layer {
 public:
  // num_features >= 1, eps finite and > 0, momentum in [0, 1]; else xgrad::Error.
  explicit BatchNorm2d(const BatchNorm2dOptions& options);

  // x (N, C, H, W) with C = num_features; the output has x's shape.
  Variable forward(const Variable& x) override;
  // "BatchNorm2d(96, eps=1e-05, momentum=0.1, affine=true, track_running_stats=true)"
  std::string repr() const override;

  const BatchNorm2dOptions& options() const { return options_; }
  // Undefined without affine.
  const Variable& weight() const { return weight_; }
  const Variable& bias() const { return bias_; }
  // Null without track_running_stats.
  Tensor* running_mean() const { return running_mean_; }
  Tensor* running_var() const { return running_var_; }

 private:
  BatchNorm2dOptions options_;
  Variable weight_, bias_;
  Tensor* running_mean_ = nullptr;
  Tensor* running_var_ = nullptr;
};

}  // namespace xgrad
