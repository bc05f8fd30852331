#include <xgrad/layers/linear.hpp>

#include <cmath>

#include <xgrad/autograd/tape.hpp>
#include <xgrad/core/blas.hpp>
#include <xgrad/core/error.hpp>

namespace xgrad {

Linear::Linear(std::size_t in_features, std::size_t out_features, bool bias)
    : Linear(in_features, out_features, bias, global_rng()) {}

Linear::Linear(std::size_t in_features, std::size_t out_features, bool bias, Rng& rng)
    : in_(in_features), out_(out_features) {
  XGRAD_CHECK(in_features >= 1 && out_features >= 1, "Linear: in_features and out_features must be >= 1, got ",
        in_features, " and ", out_features);
  const double bound = 1.0 / std::sqrt(static_cast<double>(in_features));
  Tensor w = empty({out_, in_});
  rng.fill_uniform(w, -bound, bound);
  weight_ = Variable(std::move(w), true, "weight");
  if (bias) {
    Tensor b = empty({out_});
    rng.fill_uniform(b, -bound, bound);
    bias_ = Variable(std::move(b), true, "bias");
  }
}

Variable Linear::forward(const Variable& x) {
  XGRAD_CHECK(x.defined(), describe(), ": undefined input");
  const Shape s = x.shape();
  XGRAD_CHECK(s.size() == 2 && s[1] == in_, describe(), ": expected input (N, ", in_, "), got ", shape_str(s));
  const std::size_t n = s[0];
  Tensor y = empty({n, out_});
  gemm(false, true, n, out_, in_, 1.0f, x.value().data(), weight_.value().data(), 0.0f, y.data());
  if (bias_.defined()) {
    const float* b = bias_.value().data();
    float* yd = y.data();
    for (std::size_t i = 0; i < n; ++i)
      for (std::size_t o = 0; o < out_; ++o) yd[i * out_ + o] += b[o];
  }
  Variable out = bias_.defined() ? make_output("Linear", std::move(y), {x, weight_, bias_})
                                 : make_output("Linear", std::move(y), {x, weight_});
  if (out.requires_grad()) {
    Tape::active().record("Linear", out, [x, w = weight_, b = bias_, n, in = in_, o = out_](const Tensor& dy) mutable {
      // dx (N, I) += dy (N, O) W (O, I); dW (O, I) += dy^T x; db (O) += sum over N of dy
      if (x.requires_grad()) gemm(false, false, n, in, o, 1.0f, dy.data(), w.value().data(), 1.0f, x.grad_buffer().data());
      if (w.requires_grad()) gemm(true, false, o, in, n, 1.0f, dy.data(), x.value().data(), 1.0f, w.grad_buffer().data());
      if (b.defined() && b.requires_grad()) {
        float* db = b.grad_buffer().data();
        const float* g = dy.data();
        for (std::size_t i = 0; i < n; ++i)
          for (std::size_t j = 0; j < o; ++j) db[j] += g[i * o + j];
      }
    });
  }
  return out;
}

std::vector<NamedParameter> Linear::parameters() {
  std::vector<NamedParameter> p{{"weight", weight_}};
  if (bias_.defined()) p.push_back({"bias", bias_});
  return p;
}

std::string Linear::describe() const {
  return cat("Linear(in_features=", in_, ", out_features=", out_, ", bias=", bias_.defined() ? "true" : "false", ")");
}

}  // namespace xgrad
