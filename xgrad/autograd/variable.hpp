#pragma once
// Variable: a shared handle to a value, its gradient (allocated on first use), a
// requires_grad flag and a name. Copies of a Variable refer to the same data; like a
// shared_ptr, a const handle still lets backward add into the shared gradient.
//
// requires: ops receive defined Variables. ensures: backward only ever *adds* into grads;
// only zero_grad clears them.
#include <cstdint>
#include <memory>
#include <string>

#include <xgrad/core/tensor.hpp>

namespace xgrad {

class Tape;

namespace detail {
struct VariableImpl {
  Tensor value;
  Tensor grad;  // valid only when has_grad
  bool has_grad = false;
  // Set by zero_grad: the gradient is zero but its buffer has not been filled yet. The next
  // reader fills it (grad, grad_buffer()), and a kernel that writes every element stores into it
  // instead (grad_buffer(overwrite)), so a training step's zero_grad costs no pass over the
  // gradients (AlexNet's are 244 MB).
  bool grad_zero = false;
  bool requires_grad = false;
  std::string name;
  // Set for op outputs recorded on a tape: which tape, and in which of its generations.
  // A generation ends when backward clears the tape; an output of an ended generation can
  // no longer pass gradients back to its inputs.
  const Tape* tape = nullptr;
  std::uint64_t generation = 0;
  // Counts in-place changes of value (Variable::mutable_value). The tape notes it for every
  // value a backward will read and refuses to run that backward once it has moved on.
  std::uint64_t version = 0;
};
}  // namespace detail

class Variable {
 public:
  Variable() = default;  // undefined; most calls throw on it
  explicit Variable(Tensor value, bool requires_grad = false, std::string name = {});

  bool defined() const { return impl_ != nullptr; }
  const Tensor& value() const;
  // The value, for changing it in place (optimiser steps, loading, initialisers): counts as a
  // new version, so a backward that saved the old value throws xgrad::Error instead of
  // computing a wrong gradient. Take the reference once per change; reading goes through
  // value() const.
  Tensor& mutable_value();
  // How many times mutable_value() has been taken (0 for a new Variable).
  std::uint64_t version() const;
  Shape shape() const;
  std::size_t size() const { return value().size(); }

  bool requires_grad() const;
  void set_requires_grad(bool requires_grad);
  const std::string& name() const;
  void set_name(std::string name);

  // True when produced by a recorded op (not a leaf).
  bool is_op_output() const;

  bool has_grad() const;
  // The gradient; throws xgrad::Error when none has been accumulated yet.
  const Tensor& grad() const;
  // Adds g into the gradient (allocating zeros first). op names the caller in the error
  // thrown when g's shape differs from the value's.
  void add_grad(const Tensor& g, const char* op) const;
  // The gradient buffer, allocated as zeros if absent, for kernels that accumulate in place.
  Tensor& grad_buffer() const;
  // The gradient buffer for a kernel that writes every element of it. When there is no
  // gradient yet (or zero_grad cleared it), the buffer is not zeroed and `overwrite` is set: the
  // kernel stores its result (dx = ...). Otherwise `overwrite` is false and the kernel adds into
  // it (dx += ...). This saves the zeroing pass and a read of every element for the first
  // gradient of each activation. (Builds with XGRAD_POISON_NEW_GRADIENTS, the sanitizer build,
  // fill such a buffer with NaN instead, so that an element the kernel leaves unwritten shows in
  // every test.)
  Tensor& grad_buffer(bool& overwrite) const;
  // Sets the gradient to zero (keeping its buffer). The buffer is filled with zeros when the
  // gradient is next read or added to, or not at all when a kernel next overwrites all of it, so
  // a reference taken from grad() before zero_grad does not see the zeros: take it again.
  void zero_grad() const;
  // Drops the gradient and its buffer.
  void reset_grad() const;

  // Runs the active tape backward from this Variable, which must be a scalar (seed 1).
  void backward(bool retain_tape = false) const;
  // Same with an explicit output gradient of this Variable's shape.
  void backward(const Tensor& seed, bool retain_tape = false) const;

  bool same(const Variable& other) const { return impl_ == other.impl_; }
  const std::shared_ptr<detail::VariableImpl>& impl() const { return impl_; }

 private:
  detail::VariableImpl& checked() const;
  std::shared_ptr<detail::VariableImpl> impl_;
};

// A parameter and its name: a local name ("weight") or a dotted path ("0.weight").
struct NamedParameter {
  std::string name;
  Variable variable;
};

}  // namespace xgrad
