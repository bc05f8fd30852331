#pragma once
// CrossEntropyLoss: the mean over the batch of -log softmax(logits)[label], as PyTorch's
// nn.CrossEntropyLoss() with its defaults, or with label smoothing e as
// nn.CrossEntropyLoss(label_smoothing=e): the target of row n is (1 - e) onehot(label_n) + e / K.
// Not a Layer: it takes two inputs.
//
// Dimension key: N = batch, K = classes; t_n[k] = (1 - e) [k == label_n] + e / K.
//   loss = (1/N) sum_n [ logsumexp(z_n) - sum_k t_n[k] z_n[k] ],  logsumexp with max
//          subtraction, accumulated in double per row (e = 0: logsumexp(z_n) - z_n[label_n])
//   dz_n[k] += (softmax(z_n)[k] - t_n[k]) * dloss / N
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include <xgrad/autograd/variable.hpp>
#include <xgrad/core/tensor.hpp>

namespace xgrad {

namespace kernels {

// Throws xgrad::Error naming CrossEntropyLoss when: logits are not 2-D, the batch is empty,
// there is not one label per row, or a label is outside [0, K) (naming its index and value).
void validate_cross_entropy(const Shape& logits_shape, const std::vector<std::int64_t>& labels);

// The mean loss over the N rows of logits (N, K); labels (N); smoothing e in [0, 1].
template <class T>
T cross_entropy_forward(const T* logits, const std::int64_t* labels, std::size_t N, std::size_t K,
                        double smoothing = 0.0);

// dlogits (N, K) += (softmax - target) * dloss / N; softmax is recomputed from logits.
template <class T>
void cross_entropy_backward(const T* logits, const std::int64_t* labels, T dloss, T* dlogits, std::size_t N,
                            std::size_t K, double smoothing = 0.0);

}  // namespace kernels

namespace functional {

// logits (N, K), labels N values in [0, K), label smoothing in [0, 1] -> the mean loss, a
// scalar of shape (). A non-finite loss throws xgrad::Error naming the first non-finite logit,
// if any; a smoothing outside [0, 1] throws xgrad::Error.
Variable cross_entropy(const Variable& logits, const std::vector<std::int64_t>& labels,
                       double label_smoothing = 0.0);

}  // namespace functional

// The settings of CrossEntropyLoss, as nn.CrossEntropyLoss's keyword arguments:
//   CrossEntropyLossOptions().label_smoothing(0.1)
class CrossEntropyLossOptions {
 public:
  CrossEntropyLossOptions& label_smoothing(double e) { label_smoothing_ = e; return *this; }
  double label_smoothing() const { return label_smoothing_; }

 private:
  double label_smoothing_ = 0.0;
};

// The loss as an object, like PyTorch's nn.CrossEntropyLoss(): functional::cross_entropy.
// Throws xgrad::Error for a label smoothing outside [0, 1].
class CrossEntropyLoss {
 public:
  explicit CrossEntropyLoss(CrossEntropyLossOptions options = {});
  Variable forward(const Variable& logits, const std::vector<std::int64_t>& labels);
  Variable operator()(const Variable& logits, const std::vector<std::int64_t>& labels) {
    return forward(logits, labels);
  }
  const CrossEntropyLossOptions& options() const { return options_; }
  std::string repr() const;

 private:
  CrossEntropyLossOptions options_;
};

}  // namespace xgrad
