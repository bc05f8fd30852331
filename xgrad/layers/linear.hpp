#pragma once
// Linear: y = x W^T + b.
// N = batch, I = in_features, O = out_features.
#include <cstddef>

#include <xgrad/core/rng.hpp>
#include <xgrad/layers/layer.hpp>

namespace xgrad {

class Linear : public Layer {
 public:
  // Weights initialised as PyTorch does: U(-1/sqrt(I), 1/sqrt(I)) for weight and bias,
  // drawn from `rng` (the global generator when omitted).
  Linear(std::size_t in_features, std::size_t out_features, bool bias = true);
  Linear(std::size_t in_features, std::size_t out_features, bool bias, Rng& rng);

  // x: (N, I) -> (N, O)
  Variable forward(const Variable& x) override;
  std::vector<NamedParameter> parameters() override;
  std::string describe() const override;

  Variable& weight() { return weight_; }
  Variable& bias() { return bias_; }

 private:
  std::size_t in_, out_;
  Variable weight_;  // (O, I)
  Variable bias_;    // (O), undefined without bias
};

}  // namespace xgrad
