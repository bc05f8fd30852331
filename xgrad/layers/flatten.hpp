#pragma once
// Flatten: (N, d1, d2, ...) -> (N, d1*d2*...), through the reshape op (no copy in backward
// beyond reshaping the gradient).
#include <string>

#include <xgrad/layers/layer.hpp>

namespace xgrad {

class Flatten : public Layer {
 public:
  // x of rank >= 1 (a rank-1 input (N) becomes (N, 1)).
  Variable forward(const Variable& x) override;
  std::string repr() const override { return "Flatten()"; }
};

}  // namespace xgrad
