#pragma once
// CrossEntropyLoss: the mean over the batch of -log softmax(logits)[label], as PyTorch's
// nn.CrossEntropyLoss() with its defaults. Not a Layer: it takes two inputs.
//
// Dimension key: N = batch, K = classes.
//   loss = (1/N) sum_n [ logsumexp(z_n) - z_n[label_n] ],  logsumexp with max subtraction,
//          accumulated in double per row
//   dz_n[k] += (softmax(z_n)[k] - [k == label_n]) * dloss / N
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

// The mean loss over the N rows of logits (N, K); labels (N).
template <class T>
T cross_entropy_forward(const T* logits, const std::int64_t* labels, std::size_t N, std::size_t K);

// dlogits (N, K) += (softmax - onehot) * dloss / N; softmax is recomputed from logits.
template <class T>
void cross_entropy_backward(const T* logits, const std::int64_t* labels, T dloss, T* dlogits, std::size_t N,
                            std::size_t K);

}  // namespace kernels

namespace functional {

// logits (N, K), labels N values in [0, K) -> the mean loss, a scalar of shape ().
// A non-finite loss throws xgrad::Error naming the first non-finite logit, if any.
Variable cross_entropy(const Variable& logits, const std::vector<std::int64_t>& labels);

}  // namespace functional

// The loss as an object, like PyTorch's nn.CrossEntropyLoss(): functional::cross_entropy.
class CrossEntropyLoss {
 public:
  Variable forward(const Variable& logits, const std::vector<std::int64_t>& labels);
  Variable operator()(const Variable& logits, const std::vector<std::int64_t>& labels) {
    return forward(logits, labels);
  }
  std::string repr() const { return "CrossEntropyLoss()"; }
};

}  // namespace xgrad
