#include <xgrad/layers/batch_norm.hpp>

#include <cmath>
#include <memory>
#include <vector>

#include <xgrad/autograd/tape.hpp>
#include <xgrad/core/error.hpp>
#include <xgrad/core/threading.hpp>

// Dimension key: see batch_norm.hpp. Channel c of example n is the contiguous run
// x[(n * C + c) * S, + S). The OpenMP loops split the channels statically: one thread sums
// each channel, over n then s, so the sums (and everything after them) are the same at any
// thread count. `omp simd` reductions reassociate within a run of S, but in a way fixed at
// compile time.

namespace xgrad {
namespace {

using Index = std::int64_t;

bool parallel(std::size_t N, std::size_t C, std::size_t S) {
  return C > 1 && static_cast<Index>(N * C * S) >= kParallelElements;
}

}  // namespace

namespace kernels {

template <class T>
void batch_norm_statistics(const T* x, std::size_t N, std::size_t C, std::size_t S, double eps, double* mean,
                           double* var, double* invstd) {
  const double count = static_cast<double>(N * S);
#pragma omp parallel for schedule(static) if (parallel(N, C, S))
  for (Index c = 0; c < static_cast<Index>(C); ++c) {
    double sum = 0.0;
    for (std::size_t n = 0; n < N; ++n) {
      const T* p = x + (n * C + static_cast<std::size_t>(c)) * S;
#pragma omp simd reduction(+ : sum)
      for (std::size_t s = 0; s < S; ++s) sum += static_cast<double>(p[s]);
    }
    const double m = sum / count;
    double squares = 0.0;
    for (std::size_t n = 0; n < N; ++n) {
      const T* p = x + (n * C + static_cast<std::size_t>(c)) * S;
#pragma omp simd reduction(+ : squares)
      for (std::size_t s = 0; s < S; ++s) {
        const double d = static_cast<double>(p[s]) - m;
        squares += d * d;
      }
    }
    const double v = squares / count;
    mean[c] = m;
    var[c] = v;
    invstd[c] = 1.0 / std::sqrt(v + eps);
  }
}

template <class T>
void batch_norm_forward(const T* x, T* y, std::size_t N, std::size_t C, std::size_t S, const double* mean,
                        const double* invstd, const T* weight, const T* bias) {
  // y = x * a + b with a = invstd * weight, b = bias - mean * a (as PyTorch's CPU kernel).
#pragma omp parallel for schedule(static) if (parallel(N, C, S))
  for (Index c = 0; c < static_cast<Index>(C); ++c) {
    const double scale = invstd[c] * (weight ? static_cast<double>(weight[c]) : 1.0);
    const T a = static_cast<T>(scale);
    const T b = static_cast<T>((bias ? static_cast<double>(bias[c]) : 0.0) - mean[c] * scale);
    for (std::size_t n = 0; n < N; ++n) {
      const std::size_t base = (n * C + static_cast<std::size_t>(c)) * S;
      const T* p = x + base;
      T* q = y + base;
#pragma omp simd
      for (std::size_t s = 0; s < S; ++s) q[s] = p[s] * a + b;
    }
  }
}

template <class T>
void batch_norm_backward(const T* x, const T* dy, std::size_t N, std::size_t C, std::size_t S, const double* mean,
                         const double* invstd, const T* weight, bool batch_statistics, T* dx, bool overwrite,
                         T* dweight, T* dbias) {
  const double count = static_cast<double>(N * S);
#pragma omp parallel for schedule(static) if (parallel(N, C, S))
  for (Index c = 0; c < static_cast<Index>(C); ++c) {
    const double m = mean[c], is = invstd[c];
    // sum of dy and of dy * (x - mean)
    double sum_dy = 0.0, sum_dyx = 0.0;
    for (std::size_t n = 0; n < N; ++n) {
      const std::size_t base = (n * C + static_cast<std::size_t>(c)) * S;
      const T* p = x + base;
      const T* g = dy + base;
#pragma omp simd reduction(+ : sum_dy, sum_dyx)
      for (std::size_t s = 0; s < S; ++s) {
        const double d = static_cast<double>(g[s]);
        sum_dy += d;
        sum_dyx += d * (static_cast<double>(p[s]) - m);
      }
    }
    if (dweight) dweight[c] += static_cast<T>(sum_dyx * is);
    if (dbias) dbias[c] += static_cast<T>(sum_dy);
    if (!dx) continue;
    // dx = dy * k1 + x * k2 + k3
    const double w = weight ? static_cast<double>(weight[c]) : 1.0;
    const double k1 = w * is;
    double k2 = 0.0, k3 = 0.0;
    if (batch_statistics) {
      k2 = -k1 * is * is * sum_dyx / count;
      k3 = -k1 * sum_dy / count - m * k2;
    }
    const T a = static_cast<T>(k1), b = static_cast<T>(k2), e = static_cast<T>(k3);
    for (std::size_t n = 0; n < N; ++n) {
      const std::size_t base = (n * C + static_cast<std::size_t>(c)) * S;
      const T* p = x + base;
      const T* g = dy + base;
      T* q = dx + base;
      if (overwrite) {
#pragma omp simd
        for (std::size_t s = 0; s < S; ++s) q[s] = g[s] * a + (p[s] * b + e);
      } else {
#pragma omp simd
        for (std::size_t s = 0; s < S; ++s) q[s] += g[s] * a + (p[s] * b + e);
      }
    }
  }
}

template void batch_norm_statistics<float>(const float*, std::size_t, std::size_t, std::size_t, double, double*,
                                           double*, double*);
template void batch_norm_statistics<double>(const double*, std::size_t, std::size_t, std::size_t, double, double*,
                                            double*, double*);
template void batch_norm_forward<float>(const float*, float*, std::size_t, std::size_t, std::size_t, const double*,
                                        const double*, const float*, const float*);
template void batch_norm_forward<double>(const double*, double*, std::size_t, std::size_t, std::size_t,
                                         const double*, const double*, const double*, const double*);
template void batch_norm_backward<float>(const float*, const float*, std::size_t, std::size_t, std::size_t,
                                         const double*, const double*, const float*, bool, float*, bool, float*,
                                         float*);
template void batch_norm_backward<double>(const double*, const double*, std::size_t, std::size_t, std::size_t,
                                          const double*, const double*, const double*, bool, double*, bool,
                                          double*, double*);

}  // namespace kernels

namespace {

void check_settings(const char* who, double momentum, double eps) {
  XGRAD_CHECK(std::isfinite(eps) && eps > 0.0, who, ": eps must be finite and > 0, got ", eps);
  XGRAD_CHECK(std::isfinite(momentum) && momentum >= 0.0 && momentum <= 1.0, who,
              ": momentum must be in [0, 1], got ", momentum);
}

}  // namespace

namespace functional {

Variable batch_norm(const Variable& x, Tensor* running_mean, Tensor* running_var, const Variable& weight,
                    const Variable& bias, bool training, double momentum, double eps) {
  constexpr const char* who = "BatchNorm2d";
  XGRAD_CHECK(x.defined(), who, ": undefined input");
  check_settings(who, momentum, eps);
  const Shape shape = x.shape();
  XGRAD_CHECK(shape.size() >= 2, who, ": expected an input (N, C, ...) of rank >= 2, got ", shape_str(shape));
  const std::size_t N = shape[0], C = shape[1];
  std::size_t S = 1;
  for (std::size_t d = 2; d < shape.size(); ++d) S *= shape[d];  // the tensor exists: no overflow
  const Shape channels{C};
  XGRAD_CHECK((running_mean == nullptr) == (running_var == nullptr), who,
              ": running_mean and running_var must be given together");
  if (running_mean) {
    XGRAD_CHECK(running_mean->shape() == channels && running_var->shape() == channels, who,
                ": running_mean and running_var must be (", C, ",) for an input ", shape_str(shape), ", got ",
                shape_str(running_mean->shape()), " and ", shape_str(running_var->shape()));
  }
  XGRAD_CHECK(training || running_mean, who, ": evaluation needs running_mean and running_var");
  XGRAD_CHECK(!weight.defined() || weight.shape() == channels, who, ": weight must be (", C, ",) for an input ",
              shape_str(shape), ", got ", shape_str(weight.shape()));
  XGRAD_CHECK(!bias.defined() || bias.shape() == channels, who, ": bias must be (", C, ",) for an input ",
              shape_str(shape), ", got ", shape_str(bias.shape()));
  XGRAD_CHECK(!training || N * S > 1, who, ": training needs more than one value per channel, got an input ",
              shape_str(shape));

  auto mean = std::make_shared<std::vector<double>>(C), invstd = std::make_shared<std::vector<double>>(C);
  const float* xd = x.value().data();
  if (training) {
    std::vector<double> var(C);
    kernels::batch_norm_statistics<float>(xd, N, C, S, eps, mean->data(), var.data(), invstd->data());
    if (running_mean) {
      const double unbiased = static_cast<double>(N * S) / static_cast<double>(N * S - 1);
      float* rm = running_mean->data();
      float* rv = running_var->data();
      for (std::size_t c = 0; c < C; ++c) {
        rm[c] = static_cast<float>((1.0 - momentum) * rm[c] + momentum * (*mean)[c]);
        rv[c] = static_cast<float>((1.0 - momentum) * rv[c] + momentum * var[c] * unbiased);
      }
    }
  } else {
    const float* rm = running_mean->data();
    const float* rv = running_var->data();
    for (std::size_t c = 0; c < C; ++c) {
      (*mean)[c] = rm[c];
      (*invstd)[c] = 1.0 / std::sqrt(static_cast<double>(rv[c]) + eps);
    }
  }
  Tensor y = empty(shape, who);
  const float* wd = weight.defined() ? weight.value().data() : nullptr;
  const float* bd = bias.defined() ? bias.value().data() : nullptr;
  kernels::batch_norm_forward<float>(xd, y.data(), N, C, S, mean->data(), invstd->data(), wd, bd);

  auto backward = [x, w = weight, b = bias, N, C, S, mean, invstd, training](const Tensor& dy) mutable {
    float* dx = nullptr;
    bool overwrite = false;
    if (x.requires_grad()) dx = x.grad_buffer(overwrite).data();
    float* dw = w.defined() && w.requires_grad() ? w.grad_buffer().data() : nullptr;
    float* db = b.defined() && b.requires_grad() ? b.grad_buffer().data() : nullptr;
    kernels::batch_norm_backward<float>(x.value().data(), dy.data(), N, C, S, mean->data(), invstd->data(),
                                        w.defined() ? w.value().data() : nullptr, training, dx, overwrite, dw, db);
  };
  if (weight.defined() && bias.defined())
    return record_op(who, std::move(y), {x, weight, bias}, {x, weight}, std::move(backward));
  if (weight.defined()) return record_op(who, std::move(y), {x, weight}, std::move(backward));
  if (bias.defined()) return record_op(who, std::move(y), {x, bias}, {x}, std::move(backward));
  return record_op(who, std::move(y), {x}, std::move(backward));
}

}  // namespace functional

BatchNorm2d::BatchNorm2d(const BatchNorm2dOptions& options) : options_(options) {
  XGRAD_CHECK(options.num_features() >= 1, "BatchNorm2d: num_features must be >= 1, got ", options.num_features());
  check_settings("BatchNorm2d", options.momentum(), options.eps());
  const Shape channels{options.num_features()};
  if (options.affine()) {
    weight_ = register_parameter("weight", Variable(full<float>(channels, 1.0f, "BatchNorm2d")));
    bias_ = register_parameter("bias", Variable(zeros<float>(channels, "BatchNorm2d")));
  }
  if (options.track_running_stats()) {
    running_mean_ = &register_buffer("running_mean", zeros<float>(channels, "BatchNorm2d"));
    running_var_ = &register_buffer("running_var", full<float>(channels, 1.0f, "BatchNorm2d"));
  }
}

Variable BatchNorm2d::forward(const Variable& x) {
  XGRAD_CHECK(x.defined(), repr(), ": undefined input");
  XGRAD_CHECK(x.shape().size() == 4 && x.shape()[1] == options_.num_features(), repr(), ": expected input (N, ",
              options_.num_features(), ", H, W), got ", shape_str(x.shape()));
  try {
    // Without running estimates the batch's statistics are used in eval() too.
    const bool batch_statistics = training_ || running_mean_ == nullptr;
    return functional::batch_norm(x, running_mean_, running_var_, weight_, bias_, batch_statistics,
                                  training_ ? options_.momentum() : 0.0, options_.eps());
  } catch (const Error& e) {
    rethrow_naming_layer(e, "BatchNorm2d");
  }
}

std::string BatchNorm2d::repr() const {
  return cat("BatchNorm2d(", options_.num_features(), ", eps=", options_.eps(), ", momentum=", options_.momentum(),
             ", affine=", options_.affine() ? "true" : "false",
             ", track_running_stats=", options_.track_running_stats() ? "true" : "false", ")");
}

}  // namespace xgrad
