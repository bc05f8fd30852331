#pragma once
// Conv2d: 2-D convolution (cross-correlation, as in PyTorch) with groups, through im2col + GEMM
// or, for the shapes where those measured faster, direct float kernels on AVX-512 and AVX2
// builds and Winograd F(2x2, 3x3) for float 3x3 layers at stride 1 with padding 1 (see
// conv2d.cpp and conv2d_winograd_kernels.hpp).
//
// Dimension key: N = batch, C = in_channels, O = out_channels, G = groups, Cg = C / G,
// Og = O / G, K = kernel size (square), S = stride, P = padding, H, W = input height, width,
// OH = (H + 2P - K) / S + 1, OW likewise, L = N * OH * OW (columns of the batch),
// R = Cg * K * K (rows of one group's column matrix).
//
//   y[n, o, oh, ow] = b[o] + sum_{c in group(o), kh, kw} w[o, c - g*Cg, kh, kw] * x[n, c, oh*S - P + kh, ow*S - P + kw]
//
// with x read as 0 outside the image. The weight is (O, Cg, K, K), OIHW like PyTorch.
#include <cstddef>
#include <memory>
#include <string>
#include <vector>

#include <xgrad/core/rng.hpp>
#include <xgrad/layers/layer.hpp>

namespace xgrad {

// The sizes of one convolution. make() validates them and computes OH, OW; `who` names the
// caller in the error (e.g. "Conv2d").
struct Conv2dGeometry {
  std::size_t N = 0, C = 0, H = 0, W = 0;  // input (N, C, H, W)
  std::size_t O = 0, K = 1, S = 1, P = 0, G = 1;
  std::size_t OH = 0, OW = 0;

  // Throws xgrad::Error naming `who`, the argument and the shapes when: the input is not 4-D,
  // its channels differ from in_channels, its height or width is zero, stride is 0, groups does
  // not divide the channels, the kernel is larger than the padded input, or a size would
  // overflow (the padded input, the output, the columns: more than kMaxElements; the GEMM
  // sizes L and R: more than kMaxGemmSize). An empty batch (N = 0) is valid: an empty output.
  static Conv2dGeometry make(const char* who, const Shape& input, std::size_t in_channels,
                             std::size_t out_channels, std::size_t kernel_size, std::size_t stride,
                             std::size_t padding, std::size_t groups);

  std::size_t Cg() const { return C / G; }
  std::size_t Og() const { return O / G; }
  std::size_t L() const { return N * OH * OW; }
  std::size_t R() const { return Cg() * K * K; }
  std::size_t cols_size() const { return G * R() * L(); }  // C*K*K * N*OH*OW
  std::size_t scratch_size() const { return O * L(); }     // the backward's workspace
  Shape output_shape() const { return {N, O, OH, OW}; }
};

// Raw kernels, templates on the scalar type (float for training, double for gradient checks).
// requires: contiguous row-major buffers of the sizes stated, a valid geometry, no aliasing
// between inputs and outputs. ensures: results do not depend on the thread count (each output
// element is written by one OpenMP thread, with a fixed order of summation).
namespace kernels {

// cols (G*R, L): row (c, kh, kw), column (n, oh, ow) holds x[n, c, oh*S-P+kh, ow*S-P+kw] (0 if outside).
template <class T>
void im2col(const T* x, T* cols, const Conv2dGeometry& g);

// dx (N, C, H, W) += the scatter of dcols (R, L), the column gradient of group `group` only.
template <class T>
void col2im_add(const T* dcols, T* dx, std::size_t group, const Conv2dGeometry& g);

// y (N, O, OH, OW) = conv(x (N, C, H, W), w (O, Cg, K, K)) + b (O) (b may be null).
template <class T>
void conv2d_forward(const T* x, const T* w, const T* b, T* y, const Conv2dGeometry& g);

// Adds the gradients: dx (N, C, H, W), dw (O, Cg, K, K), db (O); any of them may be null (skipped).
// With dx_overwrite, dx is stored instead (its previous contents are never read). x is the
// forward's input (read for dw only); scratch (O, L) is workspace.
template <class T>
void conv2d_backward(const T* dy, const T* w, const T* x, T* dx, T* dw, T* db, T* scratch, const Conv2dGeometry& g,
                     bool dx_overwrite = false);

}  // namespace kernels

namespace detail {
// The settings that Conv2d's options and its functional form's options share; each setter
// returns the derived options, so that calls chain.
template <class Derived>
class Conv2dSettings {
 public:
  Derived& stride(std::size_t stride) { stride_ = stride; return self(); }
  std::size_t stride() const { return stride_; }
  Derived& padding(std::size_t padding) { padding_ = padding; return self(); }
  std::size_t padding() const { return padding_; }
  Derived& groups(std::size_t groups) { groups_ = groups; return self(); }
  std::size_t groups() const { return groups_; }

 private:
  Derived& self() { return static_cast<Derived&>(*this); }
  std::size_t stride_ = 1, padding_ = 0, groups_ = 1;
};
}  // namespace detail

// The functional form's settings (the sizes come from the weight):
//   Conv2dFuncOptions().stride(2).padding(2)
class Conv2dFuncOptions : public detail::Conv2dSettings<Conv2dFuncOptions> {};

// Conv2d's settings: the sizes are required (positional), the rest named, as
//   Conv2dOptions(24, 64, 5).stride(1).padding(2).groups(2).bias(false)
class Conv2dOptions : public detail::Conv2dSettings<Conv2dOptions> {
 public:
  Conv2dOptions(std::size_t in_channels, std::size_t out_channels, std::size_t kernel_size)
      : in_channels_(in_channels), out_channels_(out_channels), kernel_size_(kernel_size) {}

  std::size_t in_channels() const { return in_channels_; }
  std::size_t out_channels() const { return out_channels_; }
  std::size_t kernel_size() const { return kernel_size_; }
  Conv2dOptions& bias(bool bias) { bias_ = bias; return *this; }
  bool bias() const { return bias_; }
  // The functional form's share of these settings.
  Conv2dFuncOptions func() const { return Conv2dFuncOptions().stride(stride()).padding(padding()).groups(groups()); }

 private:
  std::size_t in_channels_, out_channels_, kernel_size_;
  bool bias_ = true;
};

// The buffer a convolution reuses from call to call (a Conv2d layer keeps one), reallocated only
// when the shape changes: the backward's regrouped output gradient, O * N*OH*OW floats.
struct Conv2dWorkspace {
  std::shared_ptr<Tensor> scratch;  // (O, L): dy regrouped by channel, in backward
};

namespace functional {

// y = conv2d(x (N, C, H, W), weight (O, C/G, K, K), bias (O) or undefined) -> (N, O, OH, OW).
// Throws xgrad::Error naming Conv2d, the argument and the shapes for a bad input, weight or
// bias. workspace: buffers to reuse across calls (none: fresh ones each call).
Variable conv2d(const Variable& x, const Variable& weight, const Variable& bias,
                const Conv2dFuncOptions& options = {}, Conv2dWorkspace* workspace = nullptr);

}  // namespace functional

class Conv2d : public Layer {
 public:
  // weight and bias ~ U(-1/sqrt(fan_in), 1/sqrt(fan_in)), fan_in = Cg*K*K, as PyTorch's default
  // initialisation, drawn from `rng` (the global generator by default).
  explicit Conv2d(const Conv2dOptions& options, Rng& rng = global_rng());
  Conv2d(std::size_t in_channels, std::size_t out_channels, std::size_t kernel_size)
      : Conv2d(Conv2dOptions(in_channels, out_channels, kernel_size)) {}

  // x: (N, C, H, W) -> (N, O, OH, OW)
  Variable forward(const Variable& x) override;
  // "Conv2d(3, 24, kernel_size=5, stride=2, padding=2, groups=1, bias=true)"
  std::string repr() const override;

  const Conv2dOptions& options() const { return options_; }
  Variable& weight() { return weight_; }
  Variable& bias() { return bias_; }

 private:
  Conv2dOptions options_;
  Variable weight_;  // (O, Cg, K, K)
  Variable bias_;    // (O), undefined without bias
  Conv2dWorkspace workspace_;
};

}  // namespace xgrad
