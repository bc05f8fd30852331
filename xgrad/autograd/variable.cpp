#include <xgrad/autograd/variable.hpp>

#include <cmath>

#include <xgrad/autograd/tape.hpp>
#include <xgrad/core/error.hpp>
#include <xgrad/core/threading.hpp>

namespace xgrad {

Variable::Variable(Tensor value, bool requires_grad, std::string name)
    : impl_(std::make_shared<detail::VariableImpl>()) {
  impl_->value = std::move(value);
  impl_->requires_grad = requires_grad;
  impl_->name = std::move(name);
}

namespace {
// The zeros zero_grad left pending, written.
void fill_zero_grad(detail::VariableImpl& impl) {
  if (!impl.grad_zero) return;
  parallel_fill(impl.grad.data(), static_cast<std::int64_t>(impl.grad.size()), 0.0f);
  impl.grad_zero = false;
}
}  // namespace

detail::VariableImpl& Variable::checked() const {
  XGRAD_CHECK(impl_ != nullptr, "Variable: use of an undefined Variable");
  return *impl_;
}

const Tensor& Variable::value() const { return checked().value; }
Tensor& Variable::mutable_value() {
  auto& impl = checked();
  ++impl.version;
  return impl.value;
}
std::uint64_t Variable::version() const { return checked().version; }
Shape Variable::shape() const {
  const auto& s = checked().value.shape();
  return Shape(s.begin(), s.end());
}
bool Variable::requires_grad() const { return checked().requires_grad; }
void Variable::set_requires_grad(bool requires_grad) { checked().requires_grad = requires_grad; }
const std::string& Variable::name() const { return checked().name; }
void Variable::set_name(std::string name) { checked().name = std::move(name); }
bool Variable::is_op_output() const { return checked().tape != nullptr; }
bool Variable::has_grad() const { return checked().has_grad; }

const Tensor& Variable::grad() const {
  auto& impl = checked();
  XGRAD_CHECK(impl.has_grad, "Variable", impl.name.empty() ? "" : " '" + impl.name + "'", " of shape ",
        shape_str(impl.value.shape()), " has no gradient (backward has not reached it)");
  fill_zero_grad(impl);
  return impl.grad;
}

Tensor& Variable::grad_buffer() const {
  bool overwrite = false;
  Tensor& grad = grad_buffer(overwrite);
  if (overwrite) parallel_fill(grad.data(), static_cast<std::int64_t>(grad.size()), 0.0f);
  return grad;
}

Tensor& Variable::grad_buffer(bool& overwrite) const {
  auto& impl = checked();
  overwrite = !impl.has_grad || impl.grad_zero;
  impl.grad_zero = false;
  if (overwrite) {
    if (impl.grad.shape() != impl.value.shape()) {
      impl.grad = empty(Shape(impl.value.shape().begin(), impl.value.shape().end()), "gradient");
    }
#if defined(XGRAD_POISON_NEW_GRADIENTS)
    parallel_fill(impl.grad.data(), static_cast<std::int64_t>(impl.grad.size()), std::nanf(""));
#endif
    impl.has_grad = true;
  }
  return impl.grad;
}

void Variable::add_grad(const Tensor& g, const char* op) const {
  auto& impl = checked();
  XGRAD_CHECK(g.shape() == impl.value.shape(), op, ": gradient of shape ", shape_str(g.shape()),
        " does not match the value of shape ", shape_str(impl.value.shape()),
        impl.name.empty() ? "" : " ('" + impl.name + "')");
  if (!impl.has_grad) {
    impl.grad = g;
    impl.has_grad = true;
    return;
  }
  fill_zero_grad(impl);
  float* dst = impl.grad.data();
  const float* src = g.data();
  const std::ptrdiff_t n = static_cast<std::ptrdiff_t>(g.size());
#pragma omp parallel for schedule(static) if (n >= kParallelElements)
  for (std::ptrdiff_t i = 0; i < n; ++i) dst[i] += src[i];
}

void Variable::zero_grad() const {
  auto& impl = checked();
  if (impl.has_grad) impl.grad_zero = true;
}

void Variable::reset_grad() const {
  auto& impl = checked();
  impl.grad = Tensor();
  impl.has_grad = false;
  impl.grad_zero = false;
}

void Variable::backward(bool retain_tape) const { Tape::active().backward(*this, nullptr, retain_tape); }

void Variable::backward(const Tensor& seed, bool retain_tape) const {
  Tape::active().backward(*this, &seed, retain_tape);
}

}  // namespace xgrad
