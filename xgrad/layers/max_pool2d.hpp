#pragma once
// MaxPool2d: the maximum over K x K windows, with PyTorch's semantics (floor mode, padding
// read as -inf, padding <= K / 2, ties go to the first maximum in row-major window order, NaN
// counts as a maximum). Backward routes each output gradient to its argmax, so gradients add
// where windows overlap (e.g. AlexNet's 3/2 pooling).
//
// Dimension key: N = batch, C = channels, H, W = input height, width, K = kernel size,
// S = stride, P = padding, OH = (H + 2P - K) / S + 1, OW likewise.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include <xtensor/xarray.hpp>

#include <xgrad/layers/layer.hpp>

namespace xgrad {

struct MaxPool2dGeometry {
  std::size_t N = 0, C = 0, H = 0, W = 0;
  std::size_t K = 1, S = 1, P = 0;
  std::size_t OH = 0, OW = 0;

  // Throws xgrad::Error naming `who`, the argument and the shape when: the input is not 4-D,
  // a size other than the batch is zero, kernel_size or stride is 0, padding > kernel_size / 2,
  // the kernel is larger than the padded input, or a size would overflow (the padded input,
  // the output, the window reads). An empty batch (N = 0) is valid: an empty output.
  static MaxPool2dGeometry make(const char* who, const Shape& input, std::size_t kernel_size,
                                std::size_t stride, std::size_t padding);
  Shape output_shape() const { return {N, C, OH, OW}; }
};

namespace kernels {

// y (N, C, OH, OW) = window maxima of x (N, C, H, W); argmax (N, C, OH, OW) = the flat index
// ih * W + iw of each maximum inside its (H, W) plane.
template <class T>
void maxpool2d_forward(const T* x, T* y, std::int32_t* argmax, const MaxPool2dGeometry& g);

// dx (N, C, H, W) += dy (N, C, OH, OW) routed through argmax; with overwrite, dx = that (its
// previous contents are never read).
template <class T>
void maxpool2d_backward(const T* dy, const std::int32_t* argmax, T* dx, const MaxPool2dGeometry& g,
                        bool overwrite = false);

}  // namespace kernels

// MaxPool2d's settings: MaxPool2dOptions(3).stride(2).padding(1). Stride 0 (the default)
// means stride = kernel_size, as PyTorch's stride=None.
class MaxPool2dOptions {
 public:
  explicit MaxPool2dOptions(std::size_t kernel_size) : kernel_size_(kernel_size) {}

  std::size_t kernel_size() const { return kernel_size_; }
  MaxPool2dOptions& stride(std::size_t stride) { stride_ = stride; return *this; }
  // The effective stride (kernel_size when left at 0).
  std::size_t stride() const { return stride_ == 0 ? kernel_size_ : stride_; }
  MaxPool2dOptions& padding(std::size_t padding) { padding_ = padding; return *this; }
  std::size_t padding() const { return padding_; }

 private:
  std::size_t kernel_size_, stride_ = 0, padding_ = 0;
};

// The argmax indices a pooling keeps for its backward (a MaxPool2d layer reuses one across
// calls while no pending backward holds it).
using MaxPool2dWorkspace = std::shared_ptr<xt::xarray<std::int32_t>>;  // (N, C, OH, OW)

namespace functional {

// x: (N, C, H, W) -> (N, C, OH, OW). Throws xgrad::Error naming MaxPool2d, the argument and
// the shape for bad options or input. workspace: argmax buffer to reuse (none: a fresh one).
Variable max_pool2d(const Variable& x, const MaxPool2dOptions& options, MaxPool2dWorkspace* workspace = nullptr);

}  // namespace functional

class MaxPool2d : public Layer {
 public:
  // Throws xgrad::Error for kernel_size 0 or padding > kernel_size / 2.
  explicit MaxPool2d(const MaxPool2dOptions& options);
  explicit MaxPool2d(std::size_t kernel_size) : MaxPool2d(MaxPool2dOptions(kernel_size)) {}

  // x: (N, C, H, W) -> (N, C, OH, OW)
  Variable forward(const Variable& x) override;
  // "MaxPool2d(kernel_size=3, stride=2, padding=0)"
  std::string repr() const override;

  const MaxPool2dOptions& options() const { return options_; }

 private:
  MaxPool2dOptions options_;
  MaxPool2dWorkspace argmax_;
};

}  // namespace xgrad
