#include "layers/relu.hpp"

#include "autograd/ops.hpp"

namespace xgrad {

Variable ReLU::forward(const Variable& x) { return relu(x); }

}  // namespace xgrad
