#include <xgrad/optim/sgd.hpp>

#include <cmath>
#include <limits>
#include <unordered_set>

#include <xgrad/core/error.hpp>
#include <xgrad/core/threading.hpp>

namespace xgrad::optim {

namespace {
// The step runs in float: a setting must keep its meaning there. lr must be a positive normal
// float; momentum and weight decay 0 or a positive normal float (a smaller value would round
// to 0 or lose its precision, a larger one to inf).
constexpr double kFloatMin = std::numeric_limits<float>::min();
constexpr double kFloatMax = std::numeric_limits<float>::max();

void check_lr(double lr) {
  XGRAD_CHECK(lr >= kFloatMin && lr <= kFloatMax, "SGD: lr must be in [", kFloatMin, ", ", kFloatMax,
              "] (a positive normal float), got ", lr);
}

void check_zero_or_float(const char* name, double v) {
  XGRAD_CHECK(v == 0.0 || (v >= kFloatMin && v <= kFloatMax), "SGD: ", name, " must be 0 or in [", kFloatMin, ", ",
              kFloatMax, "] (a normal float), got ", v);
}
}  // namespace

SGD::SGD(std::vector<NamedParameter> parameters, const SGDOptions& options) : options_(options) {
  check_lr(options.lr());
  check_zero_or_float("momentum", options.momentum());
  check_zero_or_float("weight_decay", options.weight_decay());
  XGRAD_CHECK(!options.nesterov() || options.momentum() > 0.0, "SGD: nesterov requires momentum > 0");
  std::unordered_set<const void*> seen;
  for (auto& p : parameters) {
    XGRAD_CHECK(p.variable.defined(), "SGD: parameter '", p.name, "' is undefined");
    if (seen.insert(p.variable.impl().get()).second) params_.push_back(std::move(p));
  }
  momentum_.resize(params_.size());
  has_momentum_.assign(params_.size(), false);
}

void SGD::set_lr(double lr) {
  check_lr(lr);
  options_.lr(lr);
}

void SGD::step() {
  const float lr = static_cast<float>(options_.lr());
  const float mom = static_cast<float>(options_.momentum());
  const float wd = static_cast<float>(options_.weight_decay());
  for (std::size_t i = 0; i < params_.size(); ++i) {
    Variable& v = params_[i].variable;
    if (!v.requires_grad() || !v.has_grad()) continue;
    float* p = v.mutable_value().data();
    const float* g = v.grad().data();
    const std::ptrdiff_t n = static_cast<std::ptrdiff_t>(v.size());
    const bool first = !has_momentum_[i];
    if (mom > 0.0f && first) {
      momentum_[i] = empty(v.shape(), "SGD");
      has_momentum_[i] = true;
    }
    float* buf = mom > 0.0f ? momentum_[i].data() : nullptr;
    const bool nesterov = options_.nesterov();
#pragma omp parallel for schedule(static) if (n >= kParallelElements)
    for (std::ptrdiff_t j = 0; j < n; ++j) {
      float d = g[j] + wd * p[j];
      if (buf) {
        buf[j] = first ? d : mom * buf[j] + d;
        d = nesterov ? d + mom * buf[j] : buf[j];
      }
      p[j] -= lr * d;
    }
  }
}

const Tensor* SGD::momentum_buffer(std::size_t i) const {
  XGRAD_CHECK(i < params_.size(), "SGD: parameter index ", i, " out of range for ", params_.size(), " parameters");
  return has_momentum_[i] ? &momentum_[i] : nullptr;
}

void SGD::set_momentum_buffer(std::size_t i, Tensor buffer) {
  XGRAD_CHECK(i < params_.size(), "SGD: parameter index ", i, " out of range for ", params_.size(), " parameters");
  const Shape shape(buffer.shape().begin(), buffer.shape().end());
  XGRAD_CHECK(shape == params_[i].variable.shape(), "SGD: the momentum buffer of '", params_[i].name,
              "' must have its shape ", shape_str(params_[i].variable.shape()), ", got ", shape_str(shape));
  momentum_[i] = std::move(buffer);
  has_momentum_[i] = true;
}

void SGD::clear_momentum_buffer(std::size_t i) {
  XGRAD_CHECK(i < params_.size(), "SGD: parameter index ", i, " out of range for ", params_.size(), " parameters");
  momentum_[i] = Tensor();
  has_momentum_[i] = false;
}

void SGD::zero_grad() {
  for (auto& p : params_) p.variable.zero_grad();
}

}  // namespace xgrad::optim
