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
  // a size is zero, kernel_size or stride is 0, padding > kernel_size / 2, or the kernel is
  // larger than the padded input.
  static MaxPool2dGeometry make(const std::string& who, const Shape& input, std::size_t kernel_size,
                                std::size_t stride, std::size_t padding);
  Shape output_shape() const { return {N, C, OH, OW}; }
};

namespace kernels {

// y (N, C, OH, OW) = window maxima of x (N, C, H, W); argmax (N, C, OH, OW) = the flat index
// ih * W + iw of each maximum inside its (H, W) plane.
template <class T>
void maxpool2d_forward(const T* x, T* y, std::int32_t* argmax, const MaxPool2dGeometry& g);

// dx (N, C, H, W) += dy (N, C, OH, OW) routed through argmax.
template <class T>
void maxpool2d_backward(const T* dy, const std::int32_t* argmax, T* dx, const MaxPool2dGeometry& g);

}  // namespace kernels

class MaxPool2d : public Layer {
 public:
  // stride 0 means stride = kernel_size.
  explicit MaxPool2d(std::size_t kernel_size, std::size_t stride = 0, std::size_t padding = 0);

  // x: (N, C, H, W) -> (N, C, OH, OW)
  Variable forward(const Variable& x) override;
  // "MaxPool2d(kernel_size=3, stride=2, padding=0)"
  std::string describe() const override;

 private:
  std::size_t kernel_, stride_, padding_;
  // Reused across steps while no pending backward holds it.
  std::shared_ptr<xt::xarray<std::int32_t>> argmax_;  // (N, C, OH, OW)
};

}  // namespace xgrad
