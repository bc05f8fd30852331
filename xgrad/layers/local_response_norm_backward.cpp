// LocalResponseNorm backward: dispatch of lrn_backward to the kernels (see the kernels header).
#include <xgrad/layers/local_response_norm_kernels.hpp>  // first: its pragmas cover xsimd's headers

#include <algorithm>
#include <cstddef>
#include <type_traits>
#include <vector>

#include <xgrad/core/error.hpp>
#include <xgrad/layers/local_response_norm.hpp>

namespace xgrad {

template <class T>
void lrn_backward(const T* x, const T* dy, T* dx, const std::vector<std::size_t>& shape,
                  const LrnOptions& o, bool accumulate) {
  validate_lrn_input(o, shape);
  if (is_empty(shape)) return;
  if (beta_is_zero<T>(o)) {  // y = x: dx = dy
    const std::size_t count = element_count(shape);
    if (accumulate) {
      for (std::size_t i = 0; i < count; ++i) dx[i] += dy[i];
    } else {
      std::copy(dy, dy + count, dx);
    }
    return;
  }
  if constexpr (std::is_same_v<T, float>) {
    if (float_needs_double(o)) {  // see the forward
      const std::size_t count = element_count(shape);
      detail::naming_allocation_failure("LocalResponseNorm", [&] {
        std::vector<double> xd(x, x + count), dyd(dy, dy + count), dxd(count);
        lrn_backward<double>(xd.data(), dyd.data(), dxd.data(), shape, o, false);
        for (std::size_t i = 0; i < count; ++i) {
          dx[i] = accumulate ? dx[i] + static_cast<float>(dxd[i]) : static_cast<float>(dxd[i]);
        }
      });
      return;
    }
  }
  const Geometry g = geometry_of(shape);
  with_beta_kind(o.beta(), [x, dy, dx, accumulate, &g, &o](auto kind) {
    backward_impl<T, decltype(kind)::value>(x, dy, dx, g, o, accumulate);
  });
}

template void lrn_backward<float>(const float*, const float*, float*,
                                  const std::vector<std::size_t>&, const LrnOptions&, bool);
template void lrn_backward<double>(const double*, const double*, double*,
                                   const std::vector<std::size_t>&, const LrnOptions&, bool);

}  // namespace xgrad
