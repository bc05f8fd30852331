#pragma once
// Tensor: xgrad's one tensor type, a row-major float xtensor array of any rank.
// Kernels take raw pointers and explicit sizes; xtensor expressions are for glue code.
#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <new>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include <xtensor/xarray.hpp>

#include <xgrad/core/error.hpp>

namespace xgrad {

using Tensor = xt::xarray<float>;
using Shape = std::vector<std::size_t>;

// "(32, 96, 55, 55)"; "()" for a scalar.
std::string shape_str(const Shape& shape);

template <class S>
std::string shape_str(const S& shape) {
  return shape_str(Shape(shape.begin(), shape.end()));
}

// Product of the dimensions (1 for a scalar).
std::size_t numel(const Shape& shape);

// The same product, or nothing when it overflows std::size_t: the one overflow-checked size
// helper, for shapes read from files or computed from user input.
std::optional<std::size_t> checked_numel(const Shape& shape);

// The most elements a tensor or buffer may have: its byte count in double (the widest scalar
// the kernels are instantiated for) fits std::ptrdiff_t, and so does every flat index the
// kernels compute in std::int64_t. 2^60 - 1.
constexpr std::size_t kMaxElements = static_cast<std::size_t>(PTRDIFF_MAX) / sizeof(double);

namespace detail {

// The size checks of every layer and op, at the entry of each call (never inside a loop).
// The product (or sum) of the values, or xgrad::Error
//   "<op>: <what> (a x b x c) is too large: more than <limit>"
// when it overflows std::size_t or exceeds `limit` (a kernel's index type, BLAS's int, ...).
// checked_product(op, what, {v}, limit) checks one value against a limit.
std::size_t checked_product(const char* op, const char* what, std::initializer_list<std::size_t> factors,
                            std::size_t limit = kMaxElements);
std::size_t checked_sum(const char* op, const char* what, std::initializer_list<std::size_t> terms,
                        std::size_t limit = kMaxElements);
// The element count of a shape, checked likewise ("<op>: <what> (2, 3) is too large ...").
std::size_t checked_elements(const char* op, const char* what, const Shape& shape, std::size_t limit = kMaxElements);

[[noreturn]] void fail_allocation(const char* who, const Shape& shape, std::size_t element_size,
                                  const std::exception& cause);

// Allocates through make() a tensor of `shape`, its element count checked first; a failed
// allocation is an AllocationError naming `who`, the shape and the bytes.
template <class T, class Make>
xt::xarray<T> allocate(const char* who, const Shape& shape, Make&& make) {
  checked_elements(who, "a tensor of shape", shape);
  try {
    return make();
  } catch (const std::bad_alloc& e) {
    fail_allocation(who, shape, sizeof(T), e);
  } catch (const std::length_error& e) {
    fail_allocation(who, shape, sizeof(T), e);
  }
}

}  // namespace detail

// The tensor helpers. `who` names the layer or op in the error thrown when the shape has more
// than kMaxElements elements (its product is checked, never wrapped) or the memory cannot be
// allocated (an AllocationError: no std::bad_alloc leaves them).
template <class T = float>
xt::xarray<T> zeros(const Shape& shape, const char* who = "zeros") {
  return detail::allocate<T>(who, shape, [&] { return xt::xarray<T>(shape, T(0)); });
}

template <class T = float>
xt::xarray<T> full(const Shape& shape, T value, const char* who = "full") {
  return detail::allocate<T>(who, shape, [&] { return xt::xarray<T>(shape, value); });
}

// A tensor of the given shape with uninitialised contents (to be overwritten by a kernel).
template <class T = float>
xt::xarray<T> empty(const Shape& shape, const char* who = "empty") {
  return detail::allocate<T>(who, shape, [&] { return xt::xarray<T>::from_shape(shape); });
}

}  // namespace xgrad
