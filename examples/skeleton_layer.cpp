#include "examples/skeleton_layer.hpp"

#include <cstddef>
#include <utility>

#include <xgrad/autograd/tape.hpp>
#include <xgrad/core/error.hpp>

namespace xgrad::examples {

Variable scale(const Variable& x, const Variable& weight) {
  // MUST validate before computing. XGRAD_CHECK builds its message (the shape strings) only
  // when the check fails, so a valid call pays for the comparisons alone.
  XGRAD_CHECK(x.defined() && weight.defined(), "Scale: undefined ", x.defined() ? "weight" : "input");
  const Shape xs = x.shape(), ws = weight.shape();
  XGRAD_CHECK(xs.size() >= 2, "Scale: input must be (N, C, *) of rank >= 2, got ", shape_str(xs));
  XGRAD_CHECK(ws.size() == 1 && ws[0] == xs[1], "Scale: weight must be (C) for C = ", xs[1],
              " input channels, got weight ", shape_str(ws), " for input ", shape_str(xs));
  const std::size_t N = xs[0], C = xs[1], S = numel(Shape(xs.begin() + 2, xs.end()));

  // Forward: a plain loop over the contiguous row-major values, through raw pointers.
  Tensor y = empty(xs);
  const float* xp = x.value().data();
  const float* wp = weight.value().data();
  float* yp = y.data();
  // OpenMP over the N*C rows: each output is written by one thread, with the same arithmetic at
  // any thread count, so the results do not depend on it.
  const auto rows = static_cast<std::ptrdiff_t>(N * C);
#pragma omp parallel for schedule(static)
  for (std::ptrdiff_t r = 0; r < rows; ++r) {
    const std::size_t row = static_cast<std::size_t>(r), begin = row * S;
    for (std::size_t s = 0; s < S; ++s) yp[begin + s] = xp[begin + s] * wp[row % C];
  }

  // Backward: a closure that ADDS into the inputs' grads (a Variable used twice accumulates both
  // uses; only zero_grad clears), capturing only what it needs: the two handles (x's value gives
  // dweight, weight's gives dx; handles share, they do not copy) and the sizes.
  return record_op("Scale", std::move(y), {x, weight}, [x, weight, N, C, S](const Tensor& dy) {
    const float* dyp = dy.data();
    const float* xv = x.value().data();
    const float* wv = weight.value().data();
    float* dx = x.requires_grad() ? x.grad_buffer().data() : nullptr;
    float* dweight = weight.requires_grad() ? weight.grad_buffer().data() : nullptr;
    // OpenMP over channels: a thread owns dx[:, c, :] and dweight[c] for each of its channels c
    // and sums dweight[c] over (n, s) in that fixed order, whatever the thread count.
#pragma omp parallel for schedule(static)
    for (std::ptrdiff_t ci = 0; ci < static_cast<std::ptrdiff_t>(C); ++ci) {
      const std::size_t c = static_cast<std::size_t>(ci);
      double dw = 0.0;
      for (std::size_t n = 0; n < N; ++n) {
        const std::size_t begin = (n * C + c) * S;
        for (std::size_t s = 0; s < S; ++s) {
          if (dx != nullptr) dx[begin + s] += dyp[begin + s] * wv[c];
          dw += static_cast<double>(dyp[begin + s]) * xv[begin + s];
        }
      }
      if (dweight != nullptr) dweight[c] += static_cast<float>(dw);
    }
  });
}

Scale::Scale(std::size_t channels) : channels_(channels) {
  XGRAD_CHECK(channels >= 1, "Scale: channels must be >= 1, got ", channels);
  weight_ = register_parameter("weight", Variable(full<float>({channels}, 1.0f)));
}

Variable Scale::forward(const Variable& x) { return scale(x, weight_); }

std::string Scale::repr() const { return cat("Scale(channels=", channels_, ")"); }

}  // namespace xgrad::examples
