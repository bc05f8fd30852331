#include <xgrad/layers/dropout.hpp>

#include <cmath>

#include <xgrad/autograd/tape.hpp>
#include <xgrad/core/error.hpp>
#include <xgrad/core/rng.hpp>
#include <xgrad/core/threading.hpp>

// Dimension key: E = number of elements (any shape, flat).
// Each element's keep/drop decision depends only on (seed, call, index), so the OpenMP loops
// below split the elements statically and every element is written by one thread.

namespace xgrad {
namespace {

using Index = std::int64_t;

// The stream of one forward call.
std::uint64_t stream_key(const DropoutMask& mask) {
  return mix64(mix64(mask.seed + 0x9E3779B97F4A7C15ull) ^ (mask.call * 0xD1B54A32D192ED03ull + 1));
}

// Elements whose 32-bit hash is below this are dropped: ceil(p * 2^32).
std::uint64_t drop_threshold(double p) { return static_cast<std::uint64_t>(std::ceil(p * 4294967296.0)); }

bool keep(std::uint64_t key, std::uint64_t threshold, std::uint64_t index) {
  return (mix64(key + index * 0x9E3779B97F4A7C15ull) >> 32) >= threshold;
}

}  // namespace

namespace kernels {

bool dropout_keep(const DropoutMask& mask, std::size_t index) {
  return keep(stream_key(mask), drop_threshold(mask.p), index);
}

template <class T>
void dropout_forward(const T* x, T* y, std::size_t count, const DropoutMask& mask) {
  const std::uint64_t key = stream_key(mask), threshold = drop_threshold(mask.p);
  const T scale = static_cast<T>(1.0 / (1.0 - mask.p));
  const Index n = static_cast<Index>(count);
#pragma omp parallel for schedule(static) if (n >= kParallelElements)
  for (Index i = 0; i < n; ++i) y[i] = keep(key, threshold, i) ? x[i] * scale : T(0);
}

template <class T>
void dropout_backward(const T* dy, T* dx, std::size_t count, const DropoutMask& mask, bool overwrite) {
  const std::uint64_t key = stream_key(mask), threshold = drop_threshold(mask.p);
  const T scale = static_cast<T>(1.0 / (1.0 - mask.p));
  const Index n = static_cast<Index>(count);
#pragma omp parallel for schedule(static) if (n >= kParallelElements)
  for (Index i = 0; i < n; ++i) {
    const T d = keep(key, threshold, i) ? dy[i] * scale : T(0);
    dx[i] = overwrite ? d : dx[i] + d;
  }
}

template void dropout_forward<float>(const float*, float*, std::size_t, const DropoutMask&);
template void dropout_forward<double>(const double*, double*, std::size_t, const DropoutMask&);
template void dropout_backward<float>(const float*, float*, std::size_t, const DropoutMask&, bool);
template void dropout_backward<double>(const double*, double*, std::size_t, const DropoutMask&, bool);

}  // namespace kernels

Dropout::Dropout(double p, std::uint64_t seed) : p_(p), seed_(seed) {
  XGRAD_CHECK(std::isfinite(p) && p >= 0.0 && p < 1.0, "Dropout: p must be in [0, 1), got ", p);
}

void Dropout::set_seed(std::uint64_t seed) {
  seed_ = seed;
  calls_ = 0;
}

namespace functional {

Variable dropout(const Variable& x, const DropoutMask& mask, bool training) {
  XGRAD_CHECK(x.defined(), "Dropout: undefined input");
  XGRAD_CHECK(std::isfinite(mask.p) && mask.p >= 0.0 && mask.p < 1.0, "Dropout: p must be in [0, 1), got ", mask.p);
  if (!training || mask.p == 0.0) return x;
  Tensor y = empty(x.shape(), "Dropout");
  kernels::dropout_forward<float>(x.value().data(), y.data(), y.size(), mask);
  // Nothing saved: backward regenerates the mask from (seed, call).
  return record_op("Dropout", std::move(y), {x}, /*saved=*/{}, [x, mask](const Tensor& dy) mutable {
    bool overwrite = false;
    float* dx = x.grad_buffer(overwrite).data();
    kernels::dropout_backward<float>(dy.data(), dx, dy.size(), mask, overwrite);
  });
}

}  // namespace functional

Variable Dropout::forward(const Variable& x) {
  XGRAD_CHECK(x.defined(), repr(), ": undefined input");
  if (!training_ || p_ == 0.0) return x;
  return functional::dropout(x, DropoutMask{p_, seed_, calls_++});
}

void Dropout::set_extra_state(const std::vector<std::uint64_t>& state) {
  XGRAD_CHECK(state.size() == 2, repr(), ": extra state must be {seed, calls}, got ", state.size(), " words");
  seed_ = state[0];
  calls_ = state[1];
}

std::string Dropout::repr() const { return cat("Dropout(p=", p_, ")"); }

}  // namespace xgrad
