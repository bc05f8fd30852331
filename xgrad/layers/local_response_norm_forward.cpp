// LocalResponseNorm forward: dispatch of lrn_forward to the kernels (see the kernels header).
#include <xgrad/layers/local_response_norm_kernels.hpp>  // first: its pragmas cover xsimd's headers

#include <algorithm>
#include <atomic>
#include <cstddef>
#include <type_traits>
#include <vector>

#include <xgrad/core/error.hpp>
#include <xgrad/layers/local_response_norm.hpp>

namespace xgrad {

namespace detail {
namespace {
std::atomic<LrnWalks> walks{LrnWalks::Automatic};
}  // namespace

LrnWalks set_lrn_walks(LrnWalks w) { return walks.exchange(w); }
LrnWalks lrn_walks() { return walks.load(std::memory_order_relaxed); }
}  // namespace detail

template <class T>
void lrn_forward(const T* x, T* y, const std::vector<std::size_t>& shape, const LrnOptions& o) {
  validate_lrn_input(o, shape);
  if (is_empty(shape)) return;
  if (beta_is_zero<T>(o)) {  // s^0 = 1, also for s = 0, inf or NaN: y = x exactly
    std::copy(x, x + element_count(shape), y);
    return;
  }
  if constexpr (std::is_same_v<T, float>) {
    if (float_needs_double(o)) {
      const std::size_t count = element_count(shape);
      detail::naming_allocation_failure("LocalResponseNorm", [&] {
        std::vector<double> xd(x, x + count), yd(count);
        lrn_forward<double>(xd.data(), yd.data(), shape, o);
        std::transform(yd.begin(), yd.end(), y, [](double v) { return static_cast<float>(v); });
      });
      return;
    }
  }
  const Geometry g = geometry_of(shape);
  with_beta_kind(o.beta(), [x, y, &g, &o](auto kind) {
    forward_impl<T, decltype(kind)::value>(x, y, g, o);
  });
}

template void lrn_forward<float>(const float*, float*, const std::vector<std::size_t>&,
                                 const LrnOptions&);
template void lrn_forward<double>(const double*, double*, const std::vector<std::size_t>&,
                                  const LrnOptions&);

}  // namespace xgrad
