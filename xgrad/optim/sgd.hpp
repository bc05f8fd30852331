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

// SGD's settings: the learning rate is required, the rest named, as
//   SGDOptions(0.01).momentum(0.9).weight_decay(5e-4)
class SGDOptions {
 public:
  SGDOptions(double lr) : lr_(lr) {}  // implicit, as PyTorch's: SGD(parameters, 0.1)

  SGDOptions& lr(double lr) { lr_ = lr; return *this; }
  double lr() const { return lr_; }
  SGDOptions& momentum(double momentum) { momentum_ = momentum; return *this; }
  double momentum() const { return momentum_; }
  SGDOptions& weight_decay(double weight_decay) { weight_decay_ = weight_decay; return *this; }
  double weight_decay() const { return weight_decay_; }
  SGDOptions& nesterov(bool nesterov) { nesterov_ = nesterov; return *this; }
  bool nesterov() const { return nesterov_; }

 private:
  double lr_;
  double momentum_ = 0.0;
  double weight_decay_ = 0.0;
  bool nesterov_ = false;
};

class SGD {
 public:
  // Throws xgrad::Error for a setting the float update cannot represent (lr outside
  // [FLT_MIN, FLT_MAX]; momentum or weight_decay neither 0 nor in that range: negative, NaN,
  // infinite or rounding to 0 or inf in float), or nesterov without momentum. set_lr checks
  // as the constructor does. A Variable listed twice (under any names) is kept once, so a
  // step moves it once.
  SGD(std::vector<NamedParameter> parameters, const SGDOptions& options);

  void step();
  void zero_grad();

  double lr() const { return options_.lr(); }
  void set_lr(double lr);
  const SGDOptions& options() const { return options_; }

  // The optimiser's state, for training-state checkpoints: the parameters it updates (each
  // once, in order) and parameter i's momentum buffer, null until its first step with momentum.
  const std::vector<NamedParameter>& parameters() const { return params_; }
  const Tensor* momentum_buffer(std::size_t i) const;
  // Restores buffer i, which must have the parameter's shape (else xgrad::Error); or drops it,
  // so that the next step starts the momentum afresh.
  void set_momentum_buffer(std::size_t i, Tensor buffer);
  void clear_momentum_buffer(std::size_t i);

 private:
  std::vector<NamedParameter> params_;
  std::vector<Tensor> momentum_;    // one buffer per parameter, allocated on first use
  std::vector<bool> has_momentum_;  // whether momentum_[i] holds a buffer (a default Tensor is 0-d,
                                    // one element: its size cannot tell)
  SGDOptions options_;
};

}  // namespace xgrad::optim
