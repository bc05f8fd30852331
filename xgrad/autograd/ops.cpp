#include <xgrad/autograd/ops.hpp>

#include <xtensor/xmanipulation.hpp>
#include <xtensor/xreducer.hpp>

#include <xgrad/core/blas.hpp>
#include <xgrad/core/error.hpp>
#include <xgrad/core/threading.hpp>

namespace xgrad {

Shape broadcast_shape(const char* op, const Shape& a, const Shape& b) {
  const std::size_t rank = std::max(a.size(), b.size());
  Shape out(rank);
  for (std::size_t i = 0; i < rank; ++i) {
    const std::size_t da = i < rank - a.size() ? 1 : a[i - (rank - a.size())];
    const std::size_t db = i < rank - b.size() ? 1 : b[i - (rank - b.size())];
    XGRAD_CHECK(da == db || da == 1 || db == 1, op, ": shapes ", shape_str(a), " and ", shape_str(b),
          " cannot be broadcast together");
    out[i] = da == 1 ? db : da;
  }
  // (2^40, 1) and (1, 2^40) broadcast to more elements than anything can hold.
  detail::checked_elements(op, "the broadcast result", out);
  return out;
}

Tensor sum_to_shape(const Tensor& g, const Shape& shape) {
  const Shape gshape(g.shape().begin(), g.shape().end());
  if (gshape == shape) return g;
  // xtensor's reducers read garbage (or crash) over an empty tensor; the sum of nothing is 0.
  if (g.size() == 0) return zeros(shape, "sum_to_shape");
  const std::size_t lead = gshape.size() - shape.size();
  std::vector<std::size_t> axes;
  for (std::size_t i = 0; i < gshape.size(); ++i) {
    if (i < lead || (shape[i - lead] == 1 && gshape[i] != 1)) axes.push_back(i);
  }
  Tensor reduced = detail::naming_allocation_failure(
      "sum_to_shape", [&] { return Tensor(xt::sum(g, axes, xt::evaluation_strategy::immediate)); });
  reduced.reshape(shape);
  return reduced;
}

namespace {

// Names the op when an input handle is undefined (before any use of its value), or when an
// input's shape (a tensor built by xtensor directly) has more elements than kMaxElements.
void require_defined(const char* op, std::initializer_list<const Variable*> inputs) {
  for (const Variable* v : inputs) {
    XGRAD_CHECK(v->defined(), op, ": an input Variable is undefined");
    detail::checked_elements(op, "an input of shape", v->shape());
  }
}

// Shared body of add/sub: out = a + sign * b.
Variable add_signed(const char* op, const Variable& a, const Variable& b, float sign) {
  require_defined(op, {&a, &b});
  const Shape sa = a.shape(), sb = b.shape();
  broadcast_shape(op, sa, sb);
  Tensor value = detail::naming_allocation_failure(
      op, [&] { return sign > 0 ? Tensor(a.value() + b.value()) : Tensor(a.value() - b.value()); });
  return record_op(op, std::move(value), {a, b}, /*saved=*/{}, [a, b, sa, sb, sign, op](const Tensor& dout) mutable {
    if (a.requires_grad()) a.add_grad(sum_to_shape(dout, sa), op);
    if (b.requires_grad()) {
      Tensor db = sum_to_shape(dout, sb);
      if (sign < 0) db *= -1.0f;
      b.add_grad(db, op);
    }
  });
}

}  // namespace

Variable add(const Variable& a, const Variable& b) { return add_signed("add", a, b, 1.0f); }
Variable sub(const Variable& a, const Variable& b) { return add_signed("sub", a, b, -1.0f); }

Variable mul(const Variable& a, const Variable& b) {
  require_defined("mul", {&a, &b});
  const Shape sa = a.shape(), sb = b.shape();
  broadcast_shape("mul", sa, sb);
  Tensor value = detail::naming_allocation_failure("mul", [&] { return Tensor(a.value() * b.value()); });
  // Each input's value is needed only for the other's gradient.
  return record_op("mul", std::move(value), {a, b}, [a, b, sa, sb](const Tensor& dout) mutable {
    if (a.requires_grad()) a.add_grad(sum_to_shape(Tensor(dout * b.value()), sa), "mul");
    if (b.requires_grad()) b.add_grad(sum_to_shape(Tensor(dout * a.value()), sb), "mul");
  });
}

Variable scale(const Variable& x, float factor) {
  require_defined("scale", {&x});
  Tensor value = detail::naming_allocation_failure("scale", [&] { return Tensor(x.value() * factor); });
  return record_op("scale", std::move(value), {x}, /*saved=*/{}, [x, factor](const Tensor& dout) mutable {
    x.add_grad(Tensor(dout * factor), "scale");
  });
}

Variable matmul(const Variable& a, const Variable& b, bool trans_a, bool trans_b) {
  require_defined("matmul", {&a, &b});
  const Shape sa = a.shape(), sb = b.shape();
  XGRAD_CHECK(sa.size() == 2 && sb.size() == 2, "matmul: operands must be 2-D, got a ", shape_str(sa), " and b ",
        shape_str(sb));
  // op(a) is (m x k), op(b) is (k x n)
  const std::size_t m = trans_a ? sa[1] : sa[0], k = trans_a ? sa[0] : sa[1];
  const std::size_t kb = trans_b ? sb[1] : sb[0], n = trans_b ? sb[0] : sb[1];
  XGRAD_CHECK(k == kb, "matmul: inner dimensions differ: a is ", shape_str(sa), trans_a ? " (transposed)" : "", ", b is ",
        shape_str(sb), trans_b ? " (transposed)" : "", ": ", k, " vs ", kb);
  // BLAS counts in int; an empty operand (m, n or k 0) gives an empty or zero product.
  if (m > 0 && n > 0 && k > 0) {
    detail::checked_product("matmul", "the rows of op(a)", {m}, kMaxGemmSize);
    detail::checked_product("matmul", "the columns of op(b)", {n}, kMaxGemmSize);
    detail::checked_product("matmul", "the inner dimension", {k}, kMaxGemmSize);
  }
  Tensor value = empty({m, n}, "matmul");
  gemm(trans_a, trans_b, m, n, k, 1.0f, a.value().data(), b.value().data(), 0.0f, value.data());
  return record_op("matmul", std::move(value), {a, b}, [a, b, m, n, k, trans_a, trans_b](const Tensor& dout) mutable {
    // C = op(A) op(B): d op(A) = dC op(B)^T, d op(B) = op(A)^T dC; beta = 1 adds.
    if (a.requires_grad()) {
      float* da = a.grad_buffer().data();
      if (!trans_a) gemm(false, !trans_b, m, k, n, 1.0f, dout.data(), b.value().data(), 1.0f, da);
      else gemm(trans_b, true, k, m, n, 1.0f, b.value().data(), dout.data(), 1.0f, da);
    }
    if (b.requires_grad()) {
      float* db = b.grad_buffer().data();
      if (!trans_b) gemm(!trans_a, false, k, n, m, 1.0f, a.value().data(), dout.data(), 1.0f, db);
      else gemm(true, trans_a, n, k, m, 1.0f, dout.data(), a.value().data(), 1.0f, db);
    }
  });
}

Variable reshape(const Variable& x, const Shape& shape) {
  require_defined("reshape", {&x});
  const Shape from = x.shape();
  // The target's count is checked, never wrapped: (2^63 + 3, 2) must not pass for 6 elements.
  const std::optional<std::size_t> count = checked_numel(shape);
  XGRAD_CHECK(count.has_value(), "reshape: cannot reshape ", shape_str(from), " (", numel(from), " elements) to ",
              shape_str(shape), ": its element count overflows");
  XGRAD_CHECK(*count == numel(from), "reshape: cannot reshape ", shape_str(from), " (", numel(from),
        " elements) to ", shape_str(shape), " (", *count, " elements)");
  Tensor value = x.value();
  value.reshape(shape);
  return record_op("reshape", std::move(value), {x}, /*saved=*/{}, [x, from](const Tensor& dout) mutable {
    Tensor g = dout;
    g.reshape(from);
    x.add_grad(g, "reshape");
  });
}

Variable flatten(const Variable& x) {
  require_defined("flatten", {&x});
  const Shape s = x.shape();
  XGRAD_CHECK(s.size() >= 1, "flatten: input must have rank >= 1, got ", shape_str(s));
  // (N, d1*d2*...) also for N = 0 (as PyTorch: (0, 3, 4) -> (0, 12)); the product is checked.
  std::size_t features = 1;
  for (std::size_t i = 1; i < s.size(); ++i) features = detail::checked_product("flatten", "the features", {features, s[i]});
  return reshape(x, {s[0], features});
}

Variable sum(const Variable& x) {
  require_defined("sum", {&x});
  double total = 0.0;
  for (float v : x.value()) total += v;
  return record_op("sum", full<float>({}, static_cast<float>(total), "sum"), {x}, /*saved=*/{}, [x](const Tensor& dout) mutable {
    x.add_grad(full(x.shape(), dout(), "sum"), "sum");
  });
}

Variable mean(const Variable& x) {
  require_defined("mean", {&x});
  const std::size_t n = x.size();
  XGRAD_CHECK(n > 0, "mean: input of shape ", shape_str(x.shape()), " is empty");
  return scale(sum(x), 1.0f / static_cast<float>(n));
}

Variable relu(const Variable& x) {
  require_defined("relu", {&x});
  const Tensor& xv = x.value();
  Tensor value = empty(x.shape(), "relu");
  const float* src = xv.data();
  float* dst = value.data();
  const std::ptrdiff_t count = static_cast<std::ptrdiff_t>(xv.size());
#pragma omp parallel for schedule(static) if (count >= kParallelElements)
  // As PyTorch's: NaN passes through (NaN <= 0 is false).
  for (std::ptrdiff_t i = 0; i < count; ++i) dst[i] = src[i] <= 0.0f ? 0.0f : src[i];
  // The mask comes from the output (y > 0 iff x > 0), which the tape keeps alive anyway.
  return record_op("relu", std::move(value), {x}, /*saved=*/{}, [x](const Tensor& dout, const Tensor& y) mutable {
    const float* yv = y.data();
    const float* g = dout.data();
    bool overwrite = false;
    float* dx = x.grad_buffer(overwrite).data();
    const std::ptrdiff_t n = static_cast<std::ptrdiff_t>(dout.size());
    // PyTorch's threshold_backward, stored into a new gradient or added to one.
#pragma omp parallel for schedule(static) if (n >= kParallelElements)
    for (std::ptrdiff_t i = 0; i < n; ++i) {
      const float d = yv[i] <= 0.0f ? 0.0f : g[i];
      dx[i] = overwrite ? d : dx[i] + d;
    }
  });
}

}  // namespace xgrad
