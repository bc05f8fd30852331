#include "layers/flatten.hpp"

#include "autograd/ops.hpp"
#include "core/error.hpp"

namespace xgrad {

Variable Flatten::forward(const Variable& x) {
  check(x.defined(), "Flatten(): undefined input");
  check(x.shape().size() >= 1, "Flatten(): input must have rank >= 1, got ", shape_str(x.shape()));
  return flatten(x);
}

}  // namespace xgrad
