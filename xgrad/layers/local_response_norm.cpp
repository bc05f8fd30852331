// LocalResponseNorm: validation, the tensor-level forms and the layer. The kernels are in
// local_response_norm_kernels.hpp, dispatched from local_response_norm_forward.cpp and
// local_response_norm_backward.cpp.
#include <xgrad/layers/local_response_norm.hpp>

#include <cmath>
#include <limits>
#include <vector>

#include <xgrad/autograd/tape.hpp>
#include <xgrad/core/error.hpp>
#include <xgrad/core/tensor.hpp>

namespace xgrad {
namespace {

constexpr const char* kLayer = "LocalResponseNorm";

}  // namespace

void validate_lrn_options(const LrnOptions& o) {
  XGRAD_CHECK(o.size() >= 1, kLayer, ": size must be >= 1, got ", o.size());
  XGRAD_CHECK(std::isfinite(o.alpha()), kLayer, ": alpha must be finite, got ", o.alpha());
  XGRAD_CHECK(std::isfinite(o.beta()), kLayer, ": beta must be finite, got ", o.beta());
  XGRAD_CHECK(std::isfinite(o.k()), kLayer, ": k must be finite, got ", o.k());
  XGRAD_CHECK(o.alpha() >= 0, kLayer, ": alpha must be >= 0, got ", o.alpha());
  XGRAD_CHECK(o.k() >= 0, kLayer, ": k must be >= 0, got ", o.k());
  XGRAD_CHECK(o.k() > 0 || o.alpha() > 0, kLayer,
        ": k and alpha are both 0, so the divisor k + alpha/n * sum(x^2) is 0");
  // The float kernels take the settings as float: each must be one (alpha and k below the
  // largest float, alpha and k 0 or normal, as a smaller one would round to 0 or lose its digits), and so
  // must the coefficients they form in double (see coefficients_of). The double kernels take
  // the same settings, so that a model means the same in both.
  const double float_max = static_cast<double>(std::numeric_limits<float>::max());
  const double float_min = static_cast<double>(std::numeric_limits<float>::min());
  XGRAD_CHECK(o.alpha() <= float_max, kLayer, ": alpha must be at most ", float_max,
        " (the largest float), got ", o.alpha());
  XGRAD_CHECK(o.k() <= float_max, kLayer, ": k must be at most ", float_max,
        " (the largest float), got ", o.k());
  XGRAD_CHECK(o.k() == 0 || o.k() >= float_min, kLayer, ": k must be 0 or at least ", float_min,
        " (the smallest normal float), got ", o.k());
  XGRAD_CHECK(o.alpha() == 0 || o.alpha() >= float_min, kLayer, ": alpha must be 0 or at least ", float_min,
        " (the smallest normal float), got ", o.alpha());
  XGRAD_CHECK(std::abs(o.beta()) <= float_max, kLayer, ": beta must be within +-", float_max,
        " (the largest float), got ", o.beta());
  const double n = static_cast<double>(o.size());
  const double divisor = o.mode() == LrnMode::WithinChannel ? n * n : n;
  const char* divisor_name = o.mode() == LrnMode::WithinChannel ? "size^2" : "size";
  const double grad_scale = 2.0 * o.alpha() * o.beta() / divisor;
  XGRAD_CHECK(std::abs(grad_scale) <= float_max, kLayer, ": 2 * alpha * beta / ", divisor_name,
        " must be within +-", float_max, " (the largest float), got ", grad_scale, " (alpha ",
        o.alpha(), ", beta ", o.beta(), ", size ", o.size(), ")");
  XGRAD_CHECK(o.mode() == LrnMode::AcrossChannels || o.mode() == LrnMode::WithinChannel, kLayer,
        ": unknown mode");
}

void validate_lrn_input(const LrnOptions& o, const std::vector<std::size_t>& shape) {
  validate_lrn_options(o);
  if (o.mode() == LrnMode::WithinChannel) {
    XGRAD_CHECK(shape.size() == 4, kLayer, ": mode=within_channel needs a 4-D input (N, C, H, W), got ",
          shape_str(shape));
  } else {
    XGRAD_CHECK(shape.size() >= 3, kLayer, ": input must have rank >= 3 (N, C, *), got ",
          shape_str(shape));
  }
  // The kernels take the shape as given (it need not be a tensor's): its element count, and
  // with it every offset they compute in Index, must not wrap.
  detail::checked_elements(kLayer, "the input", shape);
}

template <class T>
xt::xarray<T> local_response_norm(const xt::xarray<T>& x, const LrnOptions& o) {
  const Shape shape(x.shape().begin(), x.shape().end());
  validate_lrn_input(o, shape);
  xt::xarray<T> y = empty<T>(shape, kLayer);
  lrn_forward(x.data(), y.data(), shape, o);
  return y;
}

template <class T>
xt::xarray<T> local_response_norm_backward(const xt::xarray<T>& x, const xt::xarray<T>& dy,
                                           const LrnOptions& o) {
  const Shape shape(x.shape().begin(), x.shape().end());
  const Shape dy_shape(dy.shape().begin(), dy.shape().end());
  validate_lrn_input(o, shape);
  XGRAD_CHECK(dy_shape == shape, kLayer, ": dy must have the input's shape ", shape_str(shape),
        ", got ", shape_str(dy_shape));
  xt::xarray<T> dx = empty<T>(shape, kLayer);
  lrn_backward(x.data(), dy.data(), dx.data(), shape, o, /*accumulate=*/false);
  return dx;
}

namespace functional {

Variable local_response_norm(const Variable& x, const LrnOptions& options) {
  XGRAD_CHECK(x.defined(), kLayer, ": undefined input");
  const Shape shape = x.shape();
  validate_lrn_input(options, shape);
  Tensor y = empty(shape, kLayer);
  lrn_forward(x.value().data(), y.data(), shape, options);
  // Captures only the input handle: s is recomputed from x in the backward.
  return record_op(kLayer, std::move(y), {x}, [x, shape, options](const Tensor& dy) mutable {
    if (!x.requires_grad()) return;
    bool overwrite = false;
    float* dx = x.grad_buffer(overwrite).data();
    lrn_backward(x.value().data(), dy.data(), dx, shape, options, /*accumulate=*/!overwrite);
  });
}

}  // namespace functional

LocalResponseNorm::LocalResponseNorm(const LrnOptions& options) : options_(options) { validate_lrn_options(options_); }

LocalResponseNorm::LocalResponseNorm(std::int64_t size) : LocalResponseNorm(LrnOptions{size}) {}

Variable LocalResponseNorm::forward(const Variable& x) { return functional::local_response_norm(x, options_); }

std::string LocalResponseNorm::repr() const {
  return cat("LocalResponseNorm(size=", options_.size(), ", alpha=", options_.alpha(),
             ", beta=", options_.beta(), ", k=", options_.k(),
             options_.mode() == LrnMode::WithinChannel ? ", mode=within_channel" : "", ")");
}

#define XGRAD_LRN_INSTANTIATE(T)                                                              \
  template xt::xarray<T> local_response_norm<T>(const xt::xarray<T>&, const LrnOptions&);     \
  template xt::xarray<T> local_response_norm_backward<T>(const xt::xarray<T>&,                \
                                                         const xt::xarray<T>&, const LrnOptions&);
XGRAD_LRN_INSTANTIATE(float)
XGRAD_LRN_INSTANTIATE(double)
#undef XGRAD_LRN_INSTANTIATE

}  // namespace xgrad
