#pragma once
// ReLU: y = max(x, 0), any shape.
#include <xgrad/autograd/ops.hpp>
#include <xgrad/layers/layer.hpp>

namespace xgrad {

namespace functional {
using xgrad::relu;  // y = max(x, 0), from autograd/ops.hpp
}  // namespace functional

class ReLU : public Layer {
 public:
  Variable forward(const Variable& x) override;
  std::string repr() const override { return "ReLU()"; }
};

}  // namespace xgrad
