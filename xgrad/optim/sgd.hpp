#pragma once
// SGD with momentum, weight decay and Nesterov momentum, with PyTorch's update rule:
//   g = grad + weight_decay * p
//   buf = momentum * buf + g            (buf = g on the first step)
//   g = nesterov ? g + momentum * buf : buf      (when momentum > 0)
//   p -= lr * g
// Parameters without a gradient are skipped.
#include <vector>

#include <xgrad/autograd/variable.hpp>

namespace xgrad::optim {

struct SGDOptions {
  double lr = 0.01;
  double momentum = 0.0;
  double weight_decay = 0.0;
  bool nesterov = false;
};

class SGD {
 public:
  // Throws xgrad::Error for lr <= 0, momentum < 0, weight_decay < 0, non-finite values, or
  // nesterov without momentum.
  SGD(std::vector<NamedParameter> parameters, SGDOptions options);

  void step();
  void zero_grad();

  double lr() const { return options_.lr; }
  void set_lr(double lr);
  const SGDOptions& options() const { return options_; }

 private:
  std::vector<NamedParameter> params_;
  std::vector<Tensor> momentum_;  // one buffer per parameter, allocated on first use
  SGDOptions options_;
};

}  // namespace xgrad::optim
