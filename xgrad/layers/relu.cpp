#include <xgrad/layers/relu.hpp>

#include <xgrad/autograd/ops.hpp>

namespace xgrad {

Variable ReLU::forward(const Variable& x) { return relu(x); }

}  // namespace xgrad
