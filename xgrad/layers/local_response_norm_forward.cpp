// LocalResponseNorm forward: dispatch of lrn_forward to the kernels (see the kernels header).
#include <xgrad/layers/local_response_norm_kernels.hpp>  // first: its pragmas cover xsimd's headers

#include <vector>

#include <xgrad/layers/local_response_norm.hpp>

namespace xgrad {

template <class T>
void lrn_forward(const T* x, T* y, const std::vector<std::size_t>& shape, const LrnOptions& o) {
  validate_lrn_input(o, shape);
  if (is_empty(shape)) return;
  const Geometry g = geometry_of(shape);
  switch (beta_kind(o.beta())) {
    case BetaKind::ThreeQuarters: forward_impl<T, BetaKind::ThreeQuarters>(x, y, g, o); break;
    case BetaKind::Half: forward_impl<T, BetaKind::Half>(x, y, g, o); break;
    case BetaKind::One: forward_impl<T, BetaKind::One>(x, y, g, o); break;
    case BetaKind::Generic: forward_impl<T, BetaKind::Generic>(x, y, g, o); break;
  }
}

template void lrn_forward<float>(const float*, float*, const std::vector<std::size_t>&,
                                 const LrnOptions&);
template void lrn_forward<double>(const double*, double*, const std::vector<std::size_t>&,
                                  const LrnOptions&);

}  // namespace xgrad
