#include <xgrad/layers/linear.hpp>

#include <cmath>

#include <xgrad/autograd/tape.hpp>
#include <xgrad/core/blas.hpp>
#include <xgrad/core/error.hpp>

namespace xgrad {

namespace functional {

Variable linear(const Variable& x, const Variable& weight, const Variable& bias) {
  XGRAD_CHECK(x.defined() && weight.defined(), "Linear: undefined ", x.defined() ? "weight" : "input");
  const Shape s = x.shape(), ws = weight.shape();
  XGRAD_CHECK(ws.size() == 2, "Linear: weight must be (out_features, in_features), got ", shape_str(ws));
  const std::size_t n = s.size() == 2 ? s[0] : 0, in = ws[1], out = ws[0];
  XGRAD_CHECK(s.size() == 2 && s[1] == in, "Linear: expected input (N, ", in, ") for a weight ", shape_str(ws),
              ", got ", shape_str(s));
  XGRAD_CHECK(!bias.defined() || bias.shape() == Shape{out}, "Linear: bias must be (", out, ") for a weight ",
              shape_str(ws), ", got ", shape_str(bias.shape()));
  // The GEMMs' sizes in BLAS's int; the output's element count (N may be 0: an empty output).
  if (n > 0) {
    detail::checked_product("Linear", "the batch size N", {n}, kMaxGemmSize);
    detail::checked_product("Linear", "in_features", {in}, kMaxGemmSize);
    detail::checked_product("Linear", "out_features", {out}, kMaxGemmSize);
  }
  Tensor y = empty({n, out}, "Linear");
  gemm(false, true, n, out, in, 1.0f, x.value().data(), weight.value().data(), 0.0f, y.data());
  if (bias.defined()) {
    const float* b = bias.value().data();
    float* yd = y.data();
    for (std::size_t i = 0; i < n; ++i)
      for (std::size_t o = 0; o < out; ++o) yd[i * out + o] += b[o];
  }
  auto backward = [x, w = weight, b = bias, n, in, o = out](const Tensor& dy) mutable {
    // dx (N, I) += dy (N, O) W (O, I); dW (O, I) += dy^T x; db (O) += sum over N of dy (dx and dW
    // stored instead where their buffers are new or zeroed by zero_grad)
    if (x.requires_grad()) {
      bool overwrite = false;
      float* dx = x.grad_buffer(overwrite).data();
      gemm(false, false, n, in, o, 1.0f, dy.data(), w.value().data(), overwrite ? 0.0f : 1.0f, dx);
    }
    if (w.requires_grad()) {
      bool overwrite = false;
      float* dw = w.grad_buffer(overwrite).data();
      gemm(true, false, o, in, n, 1.0f, dy.data(), x.value().data(), overwrite ? 0.0f : 1.0f, dw);
    }
    if (b.defined() && b.requires_grad()) {
      float* db = b.grad_buffer().data();
      const float* g = dy.data();
      for (std::size_t i = 0; i < n; ++i)
        for (std::size_t j = 0; j < o; ++j) db[j] += g[i * o + j];
    }
  };
  return bias.defined() ? record_op("Linear", std::move(y), {x, weight, bias}, {x, weight}, std::move(backward))
                        : record_op("Linear", std::move(y), {x, weight}, std::move(backward));
}

}  // namespace functional

Linear::Linear(std::size_t in_features, std::size_t out_features, bool bias, Rng& rng)
    : in_(in_features), out_(out_features) {
  XGRAD_CHECK(in_features >= 1 && out_features >= 1, "Linear: in_features and out_features must be >= 1, got ",
              in_features, " and ", out_features);
  // Checked before allocating: the weight's element count and the GEMM sizes (BLAS's int).
  detail::checked_product("Linear", "in_features", {in_features}, kMaxGemmSize);
  detail::checked_product("Linear", "out_features", {out_features}, kMaxGemmSize);
  detail::checked_product("Linear", "the weight out_features x in_features", {out_features, in_features});
  const double bound = 1.0 / std::sqrt(static_cast<double>(in_features));
  Tensor w = empty({out_, in_}, "Linear");
  rng.fill_uniform(w, -bound, bound);
  weight_ = register_parameter("weight", Variable(std::move(w)));
  if (bias) {
    Tensor b = empty({out_}, "Linear");
    rng.fill_uniform(b, -bound, bound);
    bias_ = register_parameter("bias", Variable(std::move(b)));
  }
}

Variable Linear::forward(const Variable& x) {
  try {
    return functional::linear(x, weight_, bias_);
  } catch (const Error& e) {
    rethrow_naming_layer(e, "Linear");
  }
}

std::string Linear::repr() const {
  return cat("Linear(in_features=", in_, ", out_features=", out_, ", bias=", bias_.defined() ? "true" : "false", ")");
}

}  // namespace xgrad
