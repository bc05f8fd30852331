#include "core/blas.hpp"

#include <xtensor-blas/xblas.hpp>
#include <xtensor/xadapt.hpp>

namespace xgrad {

void gemm(bool trans_a, bool trans_b, std::size_t m, std::size_t n, std::size_t k, float alpha, const float* a,
          const float* b, float beta, float* c) {
  if (m == 0 || n == 0) return;
  if (k == 0) {
    // BLAS would scale C by beta; keep that meaning without calling it on empty operands.
    for (std::size_t i = 0; i < m * n; ++i) c[i] = beta == 0.0f ? 0.0f : beta * c[i];
    return;
  }
  using shape2 = std::array<std::size_t, 2>;
  const auto A = xt::adapt(a, m * k, xt::no_ownership(), trans_a ? shape2{k, m} : shape2{m, k});
  const auto B = xt::adapt(b, k * n, xt::no_ownership(), trans_b ? shape2{n, k} : shape2{k, n});
  auto C = xt::adapt(c, m * n, xt::no_ownership(), shape2{m, n});
  xt::blas::gemm(A, B, C, trans_a, trans_b, alpha, beta);
}

}  // namespace xgrad
