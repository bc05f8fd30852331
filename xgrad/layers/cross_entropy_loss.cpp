#include <xgrad/layers/cross_entropy_loss.hpp>

#include <algorithm>
#include <cmath>

#include <xgrad/autograd/tape.hpp>
#include <xgrad/core/error.hpp>
#include <xgrad/core/threading.hpp>

// Dimension key: N = batch, K = classes. Rows are independent: the OpenMP loops give each row
// to one thread (a per-row loss, or one row of dlogits), and the forward sums the per-row
// losses serially, so results do not depend on the thread count.

namespace xgrad {
namespace {

using Index = std::int64_t;

// max and log(sum(exp(z - max))) of one row, accumulated in double.
template <class T>
void row_stats(const T* z, std::size_t K, double& max, double& log_sum) {
  max = static_cast<double>(*std::max_element(z, z + K));
  double sum = 0.0;
  for (std::size_t k = 0; k < K; ++k) sum += std::exp(static_cast<double>(z[k]) - max);
  log_sum = std::log(sum);
}

}  // namespace

namespace kernels {

void validate_cross_entropy(const Shape& logits_shape, const std::vector<std::int64_t>& labels) {
  XGRAD_CHECK(logits_shape.size() == 2, "CrossEntropyLoss: expected logits (N, K) of rank 2, got ",
        shape_str(logits_shape));
  const std::size_t N = logits_shape[0], K = logits_shape[1];
  // The kernels index rows in Index: N * K must not wrap (the shape need not be a tensor's).
  detail::checked_elements("CrossEntropyLoss", "the logits", logits_shape);
  XGRAD_CHECK(N >= 1, "CrossEntropyLoss: empty batch, logits are ", shape_str(logits_shape));
  XGRAD_CHECK(K >= 1, "CrossEntropyLoss: no classes, logits are ", shape_str(logits_shape));
  XGRAD_CHECK(labels.size() == N, "CrossEntropyLoss: got ", labels.size(), " labels for logits ",
        shape_str(logits_shape), " (expected ", N, ")");
  for (std::size_t i = 0; i < N; ++i) {
    XGRAD_CHECK(labels[i] >= 0 && static_cast<std::size_t>(labels[i]) < K, "CrossEntropyLoss: label ", i, " is ",
          labels[i], ", outside [0, ", K, ") for logits ", shape_str(logits_shape));
  }
}

template <class T>
T cross_entropy_forward(const T* logits, const std::int64_t* labels, std::size_t N, std::size_t K,
                        double smoothing) {
  std::vector<double> row_loss;  // (N)
  detail::naming_allocation_failure("CrossEntropyLoss", [&] { row_loss.resize(N); });
  const double on = 1.0 - smoothing, spread = smoothing / static_cast<double>(K);
  const Index n_rows = static_cast<Index>(N);
#pragma omp parallel for schedule(static) if (static_cast<Index>(N * K) >= kParallelElements)
  for (Index n = 0; n < n_rows; ++n) {
    const T* z = logits + n * static_cast<Index>(K);
    double max, log_sum;
    row_stats(z, K, max, log_sum);
    // sum_k t[k] (z[k] - max), with sum_k t[k] = 1: the max cancels against logsumexp's.
    double target_dot = on * (static_cast<double>(z[labels[n]]) - max);
    if (spread != 0.0) {
      double sum = 0.0;
      for (std::size_t k = 0; k < K; ++k) sum += static_cast<double>(z[k]) - max;
      target_dot += spread * sum;
    }
    row_loss[n] = log_sum - target_dot;
  }
  double total = 0.0;
  for (double l : row_loss) total += l;
  return static_cast<T>(total / static_cast<double>(N));
}

template <class T>
void cross_entropy_backward(const T* logits, const std::int64_t* labels, T dloss, T* dlogits, std::size_t N,
                            std::size_t K, double smoothing) {
  const double on = 1.0 - smoothing, spread = smoothing / static_cast<double>(K);
  const double scale = static_cast<double>(dloss) / static_cast<double>(N);
  const Index n_rows = static_cast<Index>(N);
#pragma omp parallel for schedule(static) if (static_cast<Index>(N * K) >= kParallelElements)
  for (Index n = 0; n < n_rows; ++n) {
    const T* z = logits + n * static_cast<Index>(K);  // (K)
    T* dz = dlogits + n * static_cast<Index>(K);      // (K)
    double max, log_sum;
    row_stats(z, K, max, log_sum);
    for (std::size_t k = 0; k < K; ++k) {
      const double p = std::exp(static_cast<double>(z[k]) - max - log_sum);
      const double target = (static_cast<Index>(k) == labels[n] ? on : 0.0) + spread;
      dz[k] += static_cast<T>((p - target) * scale);
    }
  }
}

template float cross_entropy_forward<float>(const float*, const std::int64_t*, std::size_t, std::size_t, double);
template double cross_entropy_forward<double>(const double*, const std::int64_t*, std::size_t, std::size_t, double);
template void cross_entropy_backward<float>(const float*, const std::int64_t*, float, float*, std::size_t,
                                            std::size_t, double);
template void cross_entropy_backward<double>(const double*, const std::int64_t*, double, double*, std::size_t,
                                             std::size_t, double);

}  // namespace kernels

namespace functional {

Variable cross_entropy(const Variable& logits, const std::vector<std::int64_t>& labels, double label_smoothing) {
  XGRAD_CHECK(logits.defined(), "CrossEntropyLoss: undefined logits");
  XGRAD_CHECK(label_smoothing >= 0.0 && label_smoothing <= 1.0, "CrossEntropyLoss: label_smoothing must be in [0, 1], got ",
              label_smoothing);
  const Shape s = logits.shape();
  kernels::validate_cross_entropy(s, labels);
  const std::size_t N = s[0], K = s[1];
  const float loss = kernels::cross_entropy_forward<float>(logits.value().data(), labels.data(), N, K, label_smoothing);
  if (!std::isfinite(loss)) {
    // Only now look for the cause: a NaN or infinity in the logits (a diverged model).
    const float* v = logits.value().data();
    for (std::size_t i = 0; i < N * K; ++i) {
      XGRAD_CHECK(std::isfinite(v[i]), "CrossEntropyLoss: logits ", shape_str(s), " hold a non-finite value (", v[i],
            ") at [", i / K, ", ", i % K, "]");
    }
    throw Error(cat("CrossEntropyLoss: the loss is non-finite (", loss, ") for finite logits ", shape_str(s)));
  }
  return record_op("CrossEntropyLoss", full<float>({}, loss, "CrossEntropyLoss"), {logits},
                   [logits, labels, N, K, label_smoothing](const Tensor& dout) mutable {
    kernels::cross_entropy_backward<float>(logits.value().data(), labels.data(), dout(), logits.grad_buffer().data(), N,
                                           K, label_smoothing);
  });
}

}  // namespace functional

CrossEntropyLoss::CrossEntropyLoss(CrossEntropyLossOptions options) : options_(options) {
  const double e = options_.label_smoothing();
  XGRAD_CHECK(e >= 0.0 && e <= 1.0, "CrossEntropyLoss: label_smoothing must be in [0, 1], got ", e);
}

Variable CrossEntropyLoss::forward(const Variable& logits, const std::vector<std::int64_t>& labels) {
  return functional::cross_entropy(logits, labels, options_.label_smoothing());
}

std::string CrossEntropyLoss::repr() const {
  if (options_.label_smoothing() == 0.0) return "CrossEntropyLoss()";
  return cat("CrossEntropyLoss(label_smoothing=", options_.label_smoothing(), ")");
}

}  // namespace xgrad
