#pragma once
// ReLU: y = max(x, 0), any shape.
#include <xgrad/layers/layer.hpp>

namespace xgrad {

class ReLU : public Layer {
 public:
  Variable forward(const Variable& x) override;
  std::string describe() const override { return "ReLU()"; }
};

}  // namespace xgrad
