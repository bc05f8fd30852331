#pragma once
// Linear: y = x W^T + b.
// N = batch, I = in_features, O = out_features.
#include <cstddef>

#include <xgrad/core/rng.hpp>
#include <xgrad/layers/layer.hpp>

namespace xgrad {

namespace functional {

// y (N, O) = x (N, I) weight^T (O, I) + bias (O); bias may be undefined. Throws xgrad::Error
// naming Linear and the shapes when they do not fit.
Variable linear(const Variable& x, const Variable& weight, const Variable& bias);

}  // namespace functional

class Linear : public Layer {
 public:
  // Weights initialised as PyTorch does: U(-1/sqrt(I), 1/sqrt(I)) for weight and bias,
  // drawn from `rng` (the global generator by default).
  Linear(std::size_t in_features, std::size_t out_features, bool bias = true, Rng& rng = global_rng());

  // x: (N, I) -> (N, O)
  Variable forward(const Variable& x) override;
  // "Linear(in_features=4, out_features=8, bias=true)"
  std::string repr() const override;

  Variable& weight() { return weight_; }
  Variable& bias() { return bias_; }

 private:
  std::size_t in_, out_;
  Variable weight_;  // (O, I)
  Variable bias_;    // (O), undefined without bias
};

}  // namespace xgrad
