#pragma once
// Differentiable ops on Variables. Each computes its value, and when the output requires
// grad, records one tape node whose backward *adds* into its inputs' grads.
// Bad shapes throw xgrad::Error naming the op and the shapes.
#include <xgrad/autograd/tape.hpp>
#include <xgrad/autograd/variable.hpp>

namespace xgrad {

// Elementwise with NumPy broadcasting (e.g. a (N, F) + bias (F)); the gradient of a
// broadcast operand is summed over the broadcast dimensions.
Variable add(const Variable& a, const Variable& b);
Variable sub(const Variable& a, const Variable& b);
Variable mul(const Variable& a, const Variable& b);
// x * factor, for a constant factor.
Variable scale(const Variable& x, float factor);

// 2-D matrix product op(a) * op(b) through GEMM; trans_a / trans_b transpose the stored
// operand by flag, without copying it.
Variable matmul(const Variable& a, const Variable& b, bool trans_a = false, bool trans_b = false);

// Same data, new shape (same number of elements).
Variable reshape(const Variable& x, const Shape& shape);
// (N, d1, d2, ...) -> (N, d1*d2*...).
Variable flatten(const Variable& x);

// Sum or mean of all elements, as a scalar of shape ().
Variable sum(const Variable& x);
Variable mean(const Variable& x);

Variable relu(const Variable& x);

// Broadcast result shape of a and b, or xgrad::Error naming op and both shapes.
Shape broadcast_shape(const char* op, const Shape& a, const Shape& b);
// Sums g over the dimensions that broadcasting added to reach g's shape from `shape`.
Tensor sum_to_shape(const Tensor& g, const Shape& shape);

}  // namespace xgrad
