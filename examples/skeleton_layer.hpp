#pragma once
// The skeleton layer: copy these two files (and tests/test_skeleton_layer.cpp) to add a layer.
// Scale multiplies each channel by a learnable weight; each part says what it MUST do.
//
// Dimension key (MUST: a layer names its dimensions once, at the top):
//   N = batch, C = channels, S = product of the trailing dimensions (1 for a rank-2 input);
//   an input (N, C, *) is viewed as (N, C, S).
//
//   y[n, c, s] = x[n, c, s] * weight[c]
//   dx[n, c, s] += dy[n, c, s] * weight[c]      dweight[c] += sum over (n, s) of dy[n, c, s] * x[n, c, s]
#include <cstddef>
#include <string>

#include <xgrad/layers/layer.hpp>

namespace xgrad::examples {

// The functional form: the maths, once; the layer's forward is one call of it.
// requires: x (N, C, *) of rank >= 2 and weight (C); else xgrad::Error naming "Scale", the
//           argument and the shapes.
// ensures:  y has x's shape; when x or weight requires grad, one tape node whose backward ADDS
//           into their grads. Results are bit-identical at any thread count.
Variable scale(const Variable& x, const Variable& weight);

class Scale : public Layer {
 public:
  // MUST validate its arguments (xgrad::Error naming the layer and the argument) and register
  // every parameter with register_parameter: parameters(), optimisers and checkpoints then find
  // it by its path ("weight", or "block.scale.weight" inside a model). weight starts at ones.
  explicit Scale(std::size_t channels);

  // MUST be one call of the functional form.
  Variable forward(const Variable& x) override;
  // MUST describe this layer alone, on one line, with its arguments: "Scale(channels=3)".
  std::string repr() const override;

  Variable& weight() { return weight_; }

 private:
  std::size_t channels_;
  Variable weight_;  // (C), the registered handle
};

}  // namespace xgrad::examples
