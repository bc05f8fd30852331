#include <xgrad/layers/flatten.hpp>

#include <xgrad/autograd/ops.hpp>
#include <xgrad/core/error.hpp>

namespace xgrad {

Variable Flatten::forward(const Variable& x) {
  XGRAD_CHECK(x.defined(), "Flatten(): undefined input");
  XGRAD_CHECK(x.shape().size() >= 1, "Flatten(): input must have rank >= 1, got ", shape_str(x.shape()));
  return flatten(x);
}

}  // namespace xgrad
